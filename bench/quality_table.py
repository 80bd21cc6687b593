"""The quality ladder's tables from one or more ``bench/quality.py`` JSON files.

Each cell is the golden-model PSNR's Δ to the float model of the same image,
rung and seed (``fp32`` row: the float model's pixels, rounded as the output
layer does), averaged over the seeds present; ``n`` seeds and the spread
(min…max) are shown where there are several. The last line checks that the
model training optimised is the exported one: the largest difference between
the fake-quant (emulated integer) and golden PSNR over every row.

    python bench/quality_table.py bench/results/ladder_*.json [--markdown out.md]
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

ORDER_BITS = {"w8a8": 0, "w6a6": 1, "w4a4": 2}


def _rung_key(r):
    size, width = (int(x) for x in r.split(":"))
    return (width, size)


def _column(r):
    overrides = " ".join(f"{k}={v}" for k, v in sorted((r.get("overrides") or {}).items()))
    return (r["method"], r["requested_bits"], r.get("recipe", "uniform"), overrides)


def _column_name(col):
    method, bits, recipe, overrides = col
    name = "best" if method == "dhq-auto" else method
    return (f"{name} {bits.upper()}" + ("" if recipe == "uniform" else f" {recipe}")
            + (f" ({overrides})" if overrides else ""))


def _column_order(col):
    method, bits, recipe, overrides = col
    return ({"dhq-auto": 0, "dhq": 1, "naive": 2, "wonly": 3}.get(method, 9), recipe != "uniform", recipe,
            overrides, ORDER_BITS.get(bits, 9), bits)


def ladder(rows):
    """``{rung: {image: {"fp32": [dB per seed], column: [(seed, Δ), …]}}}``."""
    ref = {(r["image"], r["rung"], r["seed"]): r["psnr_fp32"] for r in rows if r["method"] == "fp32"}
    out = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        key = (r["image"], r["rung"], r["seed"])
        if r["method"] == "fp32":
            out[r["rung"]][r["image"]]["fp32"].append(r["psnr_fp32"])
        elif key in ref:
            out[r["rung"]][r["image"]][_column(r)].append((r["seed"], r["psnr_golden"] - ref[key]))
    return out


def _cell(values):
    if not values:
        return ""
    deltas = [d for _, d in values]
    mean = sum(deltas) / len(deltas)
    if len(deltas) == 1:
        return f"{mean:+.2f}"
    return f"{mean:+.2f} ({len(deltas)}: {min(deltas):+.2f}…{max(deltas):+.2f})"


def format_tables(rows):
    """Markdown: one table per rung, one row per image, one column per
    (method, bits, recipe); cells are the mean Δ to fp32 in dB."""
    lines = []
    data = ladder(rows)
    for rung in sorted(data, key=_rung_key):
        images = data[rung]
        cols = sorted({c for img in images.values() for c in img if c != "fp32"}, key=_column_order)
        size, width = rung.split(":")
        lines.append(f"\n**{size}², width {width}** (Δ golden PSNR to the float model of the same seed, dB; "
                     f"mean (seeds: min…max))\n")
        lines.append("| " + " | ".join(["image", "fp32 dB"] + [_column_name(c) for c in cols]) + " |")
        lines.append("|" + "---|" * (2 + len(cols)))
        for image in images:
            fp = images[image]["fp32"]
            fp_cell = f"{sum(fp) / len(fp):.2f}" if fp else ""
            cells = [image, fp_cell] + [_cell(images[image].get(c, [])) for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
    quantized = [r for r in rows if r["method"] != "fp32"]
    if quantized:
        worst = max(abs(r["psnr_fakequant"] - r["psnr_golden"]) for r in quantized)
        lines.append(f"\nTraining equals hardware: largest |fake-quant − golden| over {len(quantized)} rows: "
                     f"{worst:.3f} dB.")
    return "\n".join(lines)


TARGETS = {"w8a8": 0.2, "w6a6": 1.0, "w4a4": 3.0}


def format_targets(rows, method="dhq-auto", recipe="uniform"):
    """Markdown: per rung and bit width, each image's mean Δ over its seeds
    (seed count in brackets) and whether the target holds on every image."""
    data = ladder(rows)
    lines = ["| rung | bits | target | " + "per image: mean Δ dB (seeds)" + " | met on |", "|---|---|---|---|---|"]
    for rung in sorted(data, key=_rung_key):
        images = data[rung]
        for bits, target in TARGETS.items():
            col = (method, bits, recipe, "")
            cells, met, n = [], 0, 0
            for image, cols in images.items():
                values = cols.get(col, [])
                if not values:
                    continue
                mean = sum(d for _, d in values) / len(values)
                fp = cols.get("fp32", [])
                cells.append(f"{image} {mean:+.2f} ({len(values)}; fp32 {sum(fp) / len(fp):.1f} dB)")
                n += 1
                met += mean >= -target
            if cells:
                size, width = rung.split(":")
                lines.append(f"| {size}², width {width} | {bits.upper()} | {target:g} dB | " + ", ".join(cells)
                             + f" | {met} of {n} |")
    return "\n".join(lines)


def load_rows(files, images=None):
    """The rows of ``quality.py`` JSON files, merged (only ``images``' when given)."""
    rows = []
    for f in files:
        rows += json.loads(Path(f).read_text())["rows"]
    return [r for r in rows if r["image"] in images] if images else rows


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+", help="quality.py JSON files (rows are merged)")
    p.add_argument("--images", nargs="+", help="only these images")
    p.add_argument("--markdown", help="also write the tables to this file")
    p.add_argument("--targets", action="store_true", help="the targets table of the best quantizer instead")
    args = p.parse_args(argv)
    rows = load_rows(args.json, args.images)
    table = format_targets(rows) if args.targets else format_tables(rows)
    print(table)
    if args.markdown:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from dhq_rtl.outputs import write_file

        write_file(args.markdown, table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
