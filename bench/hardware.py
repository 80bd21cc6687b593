"""Accelerator on the iCEBreaker: resources, Fmax and throughput per model.

::

    python bench/hardware.py [--out bench/out/hardware] [--only NAME ...] [--board icebreaker]

Builds (synthesis + place-and-route with the YoWASP tools) the bundled default
model and synthetic models of several bit widths (``random_model``, hidden
width 32, 3 sine layers, 128×128: W8A8 DHQ (rotated), W6A6, W4A4 DHQ, and
W16A16 fixed point without rotation — one 16×16 product per SB_MAC16; 4
lanes, as 8 would need 36 EBR), and prints a Markdown table: LCs, FFs, EBR, SPRAM, DSP, Fmax,
the core clock (the build falls back to the fastest PLL clock at or below
the achieved Fmax when the 48 MHz target fails; ``attempts`` lists
clock/Fmax of each try), cycles/pixel, multiplier efficiency, ms per image at
the core clock, build time, and PSNR of
the golden reconstruction against the training image for the trained
default model. Results also go to ``<out>/hardware.json``.
"""

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from dhq_rtl.boards import get_board
from dhq_rtl.build import build
from dhq_rtl.cli import ArgumentParser, run_main
from dhq_rtl.firmware import default_model
from dhq_rtl.outputs import check_output_folder, write_file
from dhq_rtl.synthetic import random_model


def configs():
    yield "default (trained W8A8)", lambda: default_model()[0], None
    common = dict(width=32, depth=3, size=128, seed=0)
    yield "W8A8 DHQ (random)", lambda: random_model(weight_bits=8, act_bits=8, rotate=True, **common), None
    yield "W6A6 DHQ (random)", lambda: random_model(weight_bits=6, act_bits=6, rotate=True, **common), None
    yield "W4A4 DHQ (random)", lambda: random_model(weight_bits=4, act_bits=4, rotate=True, **common), None
    yield ("W16A16 no rotation (random)",
           lambda: random_model(weight_bits=16, act_bits=16, rotate=False, lut_bits=16, **common), 4)


def psnr_of_default(model):
    try:
        from PIL import Image
        from dhq_rtl.golden import GoldenModel
        from importlib import resources
        src = resources.files("dhq_rtl").joinpath("data/camera.png")
        with resources.as_file(src) as p:
            img = Image.open(p).convert("L").resize((model.width, model.height), Image.LANCZOS)
        ref = np.asarray(img, dtype=np.float64)
        out = GoldenModel(model).render()[..., 0].astype(np.float64)
        mse = np.mean((ref - out) ** 2)
        return round(10 * np.log10(255.0 ** 2 / mse), 2)
    except Exception:
        return None


def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench/out/hardware", help="folder of the builds and hardware.json")
    p.add_argument("--board", default="icebreaker")
    p.add_argument("--only", nargs="*")
    args = p.parse_args(argv)
    board = get_board(args.board)
    chosen = [c for c in configs() if not args.only or any(o.lower() in c[0].lower() for o in args.only)]
    # Every folder is checked before the first build starts.
    check_output_folder(args.out, f"--out {args.out}", products=["hardware.json"])
    for name, _, _ in chosen:
        check_output_folder(Path(args.out) / _folder(name), f"--out {args.out}")
    rows = []
    for name, make, lanes in chosen:
        model = make()
        out = Path(args.out) / _folder(name)
        t = time.monotonic()
        rep = build(model, board, out, source=name, lanes=lanes, log=lambda *a: None)
        wall = time.monotonic() - t
        r, perf = rep["resources"], rep["performance"]
        ffs = sum(v for k, v in rep["cells"].items() if k.startswith("SB_DFF"))
        row = {
            "model": name, "lanes": rep["parameters"]["lanes"],
            "LC": r["lc"]["used"], "LC est": r["lc"]["estimated"], "FF": ffs,
            "EBR": r["ebr"]["used"], "EBR est": r["ebr"]["estimated"], "SPRAM": r["spram"]["used"],
            "DSP": r["dsp"]["used"],
            "clock MHz": perf["clock_mhz"], "fmax MHz": perf["core_fmax_mhz"], "timing met": rep["timing_met"],
            "attempts": " → ".join(f"{a['clock_mhz']:g}/{a['fmax_mhz']}" for a in rep.get("clock_attempts", [])),
            "cycles/px": perf["cycles_per_pixel"], "ideal": perf["ideal_cycles_per_pixel"],
            "mult. eff.": perf["multiplier_efficiency"],
            "ms/image @clock": perf["ms_per_image_at_clock"],
            "build s": round(wall, 1),
            "PSNR dB": psnr_of_default(model) if name.startswith("default") else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = list(rows[0].keys()) if rows else []
    print("\n| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join("" if row[k] is None else str(row[k]) for k in keys) + " |")
    print(f"\nmachine: {platform.machine()} {platform.processor() or ''} python {sys.version.split()[0]}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_file(Path(args.out) / "hardware.json", json.dumps(rows, indent=2) + "\n")
    return 0


def _folder(name):
    """The build folder of a configuration: its first word."""
    return name.split()[0].lower()


if __name__ == "__main__":
    run_main(main)
