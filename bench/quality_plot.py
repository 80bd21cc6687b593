"""Quantized PSNR against float PSNR, one point per image, rung and seed (the ladder's picture).

Each point is a row of ``bench/quality.py`` JSON files: x = the float model's
PSNR (the fidelity the rung reaches on that image), y = the quantized
model's loss Δ (golden PSNR minus float PSNR); one colour per bit width,
one marker per rung. The dashed lines are the targets (0.2, 1 and 3 dB).

    python bench/quality_plot.py bench/results/ladder_best.json --out docs/img/ladder.png
"""

import io
import sys
from pathlib import Path

COLOURS = {"w8a8": "tab:blue", "w6a6": "tab:orange", "w4a4": "tab:red"}
TARGETS = {"w8a8": 0.2, "w6a6": 1.0, "w4a4": 3.0}
MARKERS = ["o", "s", "^", "D", "v", "P"]


def points(rows, method="dhq-auto", recipe="uniform"):
    """``{bits: [(rung, float dB, Δ dB), …]}`` for ``method`` rows with an fp32 row of the same seed."""
    ref = {(r["image"], r["rung"], r["seed"]): r["psnr_fp32"] for r in rows if r["method"] == "fp32"}
    out = {}
    for r in rows:
        key = (r["image"], r["rung"], r["seed"])
        if r["method"] != method or r.get("recipe", "uniform") != recipe or r.get("overrides") or key not in ref:
            continue
        out.setdefault(r["requested_bits"], []).append((r["rung"], ref[key], r["psnr_golden"] - ref[key]))
    return out


def main(argv=None):
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--images", nargs="+", help="only these images")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from quality_table import load_rows

    data = points(load_rows(args.json, args.images))
    rungs = sorted({rung for pts in data.values() for rung, _, _ in pts},
                   key=lambda t: tuple(int(x) for x in t.split(":"))[::-1])
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for bits in sorted(data, key=lambda b: -int(b[1:b.index("a")])):
        for k, rung in enumerate(rungs):
            pts = [(x, y) for r, x, y in data[bits] if r == rung]
            if pts:
                ax.scatter(*zip(*pts), color=COLOURS.get(bits, "gray"), marker=MARKERS[k % len(MARKERS)],
                           s=28, alpha=0.8, label=f"{bits.upper()}, {rung.replace(':', '², width ')}")
        if bits in TARGETS:
            ax.axhline(-TARGETS[bits], color=COLOURS.get(bits, "gray"), linestyle="--", linewidth=0.8)
    ax.set_xlabel("float model PSNR (dB): the fidelity of the fit")
    ax.set_ylabel("Δ golden PSNR to the float model (dB)")
    ax.set_title("Best quantizer: loss against fidelity (dashed: targets)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dhq_rtl.outputs import check_output_file, write_file

    check_output_file(args.out, f"--out {args.out}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_file(args.out, buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
