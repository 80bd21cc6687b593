"""PSNR of every quantization method at several bit widths (the Quality table).

For each image, one float fit of ``--steps + --qat-steps`` steps (one cosine
learning-rate decay over that budget) is shared by all rows: its end is the
``fp32`` row and the model of the rows quantized without QAT (at ≥ 8 bits,
``FitConfig.is_ptq``); its state after ``--steps`` starts the QAT rows
(``--qat-steps`` of QAT each), its state after the warm-up the rows trained
quantized from the start (at ≤ 4 bits, ``FitConfig.is_from_start``) — every
row has the same budget. Every row is exported and rendered by the integer golden model; the
table shows the golden PSNR (fake-quant PSNR in the JSON). Runs on CPU
(``--jobs`` worker processes, one torch thread each).

    python bench/quality.py                       # camera + astronaut, 128², width 32, depth 3
    python bench/quality.py --jobs 16 --json out.json --markdown out.md
"""

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_METHODS = ["fp32", "wonly", "naive", "dhq", "dhq-auto"]
DEFAULT_BITS = ["w8a8", "w6a6", "w4a4"]


def _setup():
    import torch

    torch.set_num_threads(1)


def _image_path(name):
    """A picture given by path, or by name in ``bench/images``."""
    p = Path(name)
    return p if p.exists() else HERE / "images" / f"{name}.png"


def _load(name, size):
    from dhq_rtl.images import load_image

    return load_image(_image_path(name), size)


def _fp(args, image):
    """One float fit over the whole budget; its snapshots at every float-step
    count a row needs (the QAT rows start from the state after ``--steps``,
    the from-start rows after the warm-up)."""
    _setup()
    from dhq_rtl.reference.fit import FitConfig, train_float

    px = _load(image, args.size)
    cfg = FitConfig(width=args.width, depth=args.depth, omega0=args.omega0, seed=args.seed)
    total = args.steps + args.qat_steps
    t = time.perf_counter()
    kept = train_float(px, cfg, total, snapshots={args.steps, min(cfg.warmup_steps, args.steps)})
    return image, {k: m.state_dict() for k, m in kept.items()}, time.perf_counter() - t


def _row(args, image, method, bits, state):
    _setup()
    from dhq_rtl.reference.fit import FitConfig, fit_image, parse_bits
    from dhq_rtl.reference.siren import Siren

    px = _load(image, args.size)
    w, a = parse_bits(bits)
    cfg = FitConfig(method=method, w_bits=w, a_bits=a, width=args.width, depth=args.depth, omega0=args.omega0,
                    steps=args.steps, qat_steps=args.qat_steps, seed=args.seed, quantizer=args.quantizer,
                    per_channel=not args.per_tensor, qat_forward=args.qat_forward,
                    phase_bits=args.phase_bits, lut_bits=args.lut_bits, rounding=args.rounding,
                    act_grid=args.act_grid, first_weight_grid=args.first_weight_grid,
                    refine_rounds=args.refine_rounds, dampening=args.dampening)
    pre = {}
    for steps, st in (state or {}).items():
        pre[steps] = Siren(args.width, args.depth, px.shape[2], args.omega0)
        pre[steps].load_state_dict(st)
    r = fit_image(px, cfg, pretrained=pre)
    s = r.summary()
    s.update(image=image, requested_bits=bits)
    return s


def main(argv=None):
    from dhq_rtl.cli import ArgumentParser
    from dhq_rtl.errors import OutputError
    from dhq_rtl.outputs import check_output_file, same_file, write_file
    from dhq_rtl.reference.methods import GRIDS  # no torch: the parser stays light

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", default=["camera", "astronaut"])
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    p.add_argument("--bits", nargs="+", default=DEFAULT_BITS)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--omega0", type=float, default=30.0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--qat-steps", type=int, default=500)
    p.add_argument("--quantizer", default="lsq", choices=("lsq", "minmax"))
    p.add_argument("--rounding", default="gptq", choices=("gptq", "nearest"))
    p.add_argument("--act-grid", default="midrise", choices=GRIDS)
    p.add_argument("--first-weight-grid", default="midrise", choices=GRIDS)
    p.add_argument("--refine-rounds", type=int, default=20)
    p.add_argument("--dampening", type=float, default=0.3)
    p.add_argument("--per-tensor", action="store_true")
    p.add_argument("--qat-forward", default="hardware", choices=("hardware", "float"))
    p.add_argument("--phase-bits", type=int, default=10)
    p.add_argument("--lut-bits", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="worker processes (1 torch thread each)")
    p.add_argument("--json", help="write every row (all numbers) to this JSON file")
    p.add_argument("--markdown", help="write the table to this file")
    args = p.parse_args(argv)
    inputs = {f"--images {name}": _image_path(name) for name in args.images}
    for option in ("json", "markdown"):
        if getattr(args, option) is not None:
            check_output_file(getattr(args, option), f"--{option} {getattr(args, option)}", inputs=inputs)
    if args.json is not None and args.markdown is not None and same_file(args.json, args.markdown):
        raise OutputError(f"--json and --markdown name the same file {args.json}; give two files")

    t0 = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        fps = {}
        for img, states, _ in pool.map(_fp, [args] * len(args.images), args.images):
            fps[img] = states
        futs = []
        for img in args.images:
            for m in args.methods:
                for b in (["w16a16"] if m == "fp32" else args.bits):
                    futs.append(pool.submit(_row, args, img, m, b, fps[img]))
        for f in futs:
            rows.append(f.result())
            r = rows[-1]
            if args.json:  # after every row, so a run cut short keeps what it measured
                write_file(args.json, json.dumps({"args": vars(args), "rows": rows}, indent=1))
            print(f"{r['image']:10s} {r['method']:9s} {r['requested_bits']:7s} rot {''.join('R' if x else '-' for x in r['rotations'])} "
                  f"fp {r['psnr_fp32']:.2f}  fq {r['psnr_fakequant']:.2f}  golden {r['psnr_golden']:.2f}",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    table = format_table(rows, args)
    print(table)
    print(f"\nwall time {wall:.0f} s, {args.jobs} job(s), {os.cpu_count()} CPUs")
    if args.json:
        write_file(args.json, json.dumps({"args": vars(args), "wall_s": wall, "rows": rows}, indent=1))
    if args.markdown:
        write_file(args.markdown, table + "\n")
    return 0


def format_table(rows, args):
    """Markdown: one row per (image, method), one column per bit width;
    cells are golden PSNR (dB) and, in brackets, the difference to fp32."""
    lines = []
    for img in args.images:
        ref = next((r["psnr_golden"] for r in rows if r["image"] == img and r["method"] == "fp32"), None)
        lines.append(f"\n**{img}** ({args.size}², width {args.width}, depth {args.depth}, "
                     f"{args.steps + args.qat_steps} steps per row ({args.steps} float + {args.qat_steps} QAT; "
                     f"PTQ rows `*`: {args.steps + args.qat_steps} float; from-start rows `†`: warm-up + QAT), "
                     f"golden-model PSNR in dB, Δ to fp32)\n")
        lines.append("| method | " + " | ".join(args.bits) + " |")
        lines.append("|---|" + "---|" * len(args.bits))
        for m in args.methods:
            if m == "fp32":
                r = next((r for r in rows if r["image"] == img and r["method"] == m), None)
                if r:
                    lines.append(f"| fp32 (W16A16 export; float model {r['psnr_fp32']:.2f}) | "
                                 + " | ".join(f"{r['psnr_golden']:.2f}" for _ in args.bits) + " |")
                continue
            cells = []
            for b in args.bits:
                r = next((r for r in rows if r["image"] == img and r["method"] == m and r["requested_bits"] == b), None)
                if r is None:
                    cells.append("")
                    continue
                rot = "".join("R" if x else "-" for x in r["rotations"])
                d = f" ({r['psnr_golden'] - ref:+.2f})" if ref is not None else ""
                star = "*" if r.get("ptq") else "†" if r.get("from_start") else ""
                cells.append(f"{r['psnr_golden']:.2f}{star}{d}" + (f" `{rot}`" if m == "dhq-auto" else ""))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    from dhq_rtl.cli import run_main

    run_main(main)
