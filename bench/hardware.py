"""Accelerator on the iCEBreaker: resources, Fmax, slack and throughput per model.

::

    python bench/hardware.py [--out bench/out/hardware] [--only NAME ...] [--board icebreaker]
                             [--fixed-model] [--fixed-clock] [--json F]

Builds (synthesis + place-and-route with the YoWASP tools) one core per
configuration and prints a Markdown table:

* ``default``: what ``python -m dhq_rtl.build --board B`` builds — the
  bundled trained model in the board's default envelope (loadable);
* ``trained``: the same model in the tightest envelope around it (what
  ``--model`` builds, and the W8A8 row of ``python -m dhq_rtl.compare``);
* ``W8A8``/``W6A6``/``W4A4 DHQ``: synthetic models (``random_model``, hidden
  width 32, 3 sine layers, 128×128) with every hidden layer rotated — the
  faithful DHQ configurations, whose butterfly and requantizer paths are
  the deepest — as fixed-model cores (their loadable cores need 6058–6316
  of the UP5K's 5280 logic cells);
* ``W16A16``: fixed point without rotation, 4 lanes (one 16×16 product per
  SB_MAC16); only with ``--only W16A16``.

``--fixed-model`` builds the trained model's fixed-model core too (no load
path; not for ``default``). ``--fixed-clock`` keeps every build at the
board's target clock (no fallback rebuild): the table then says how far
each is from the target. Columns: LCs (estimate), FFs, EBR, SPRAM, DSP, Fmax,
the core clock, the slack at that clock (``1000/clock − 1000/Fmax`` ns; the
project's goal is ≥ 0 for every model and ≥ 1.5 ns for ``default``),
nextpnr's critical path (its end cell and logic steps), cycles/pixel,
multiplier efficiency, ms per image at the core clock, build time, and PSNR
of the golden reconstruction against the training image for the trained
model. Rows also go to ``<out>/hardware.json`` (or ``--json``).
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
from dhq_rtl.envelope import get_envelope
from dhq_rtl.errors import DhqError
from dhq_rtl.firmware import default_model
from dhq_rtl.outputs import check_output_file, check_output_folder, write_file
from dhq_rtl.synthetic import random_model


def configs():
    """``(name, make_model, lanes, envelope_name, fixed_model, default_run)`` per configuration."""
    yield "default (trained W8A8, default envelope)", lambda: default_model()[0], None, "default", False, True
    yield "trained W8A8 (tightest envelope)", lambda: default_model()[0], None, None, False, True
    common = dict(width=32, depth=3, size=128, seed=0)
    for bits in (8, 6, 4):
        yield (f"W{bits}A{bits} DHQ (random, rotated, fixed model)",
               lambda bits=bits: random_model(weight_bits=bits, act_bits=bits, rotate=True, **common), None, None,
               True, True)
    yield ("W16A16 no rotation (random)",
           lambda: random_model(weight_bits=16, act_bits=16, rotate=False, lut_bits=16, **common), 4, None, False,
           False)


def _chosen(only):
    return [c for c in configs()
            if (c[5] if not only else any(o.lower() in c[0].lower() for o in only))]


def _critical(report):
    paths = report.get("critical_paths") or []
    worst = max(paths, key=lambda p: p.get("ns", 0.0), default=None)
    return f"{worst['to']} ({worst['logic_steps']} steps)" if worst else None


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
    p.add_argument("--only", nargs="*", help="configurations whose name contains one of these words")
    p.add_argument("--fixed-model", action="store_true", help="each model's fixed-model core (not 'default')")
    p.add_argument("--fixed-clock", action="store_true", help="no fallback rebuild below the target clock")
    p.add_argument("--json", help="the rows' JSON file (default: <out>/hardware.json)")
    args = p.parse_args(argv)
    board = get_board(args.board)
    chosen = _chosen(args.only)
    if args.fixed_model:
        chosen = [c for c in chosen if c[3] is None]
    if not chosen:
        raise DhqError("no configuration chosen: --only names none of "
                       + ", ".join(c[0] for c in configs()) + (" (--fixed-model leaves out 'default')"
                                                               if args.fixed_model else ""))
    json_path = Path(args.json) if args.json else Path(args.out) / "hardware.json"
    # Every output is checked before the first build starts.
    check_output_folder(args.out, f"--out {args.out}", products=[] if args.json else ["hardware.json"])
    if args.json:
        check_output_file(json_path, "--json", create_folder=True)
    for name, *_ in chosen:
        check_output_folder(Path(args.out) / _folder(name), f"--out {args.out}")
    rows = []
    for name, make, lanes, envelope, fixed, _ in chosen:
        model = make()
        out = Path(args.out) / _folder(name)
        t = time.monotonic()
        rep = build(model, board, out, source=name, lanes=lanes, log=lambda *a: None,
                    envelope=get_envelope(envelope) if envelope else None, fixed_model=fixed or args.fixed_model,
                    fallback=not args.fixed_clock)
        rows.append(_row(name, rep, model, time.monotonic() - t))
        print(json.dumps(rows[-1]), flush=True)
    keys = list(rows[0].keys())
    print("\n| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join("" if row[k] is None else str(row[k]) for k in keys) + " |")
    print(f"\nmachine: {platform.machine()} {platform.processor() or ''} python {sys.version.split()[0]}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_file(json_path, json.dumps(rows, indent=2) + "\n")
    return 0


def _row(name, rep, model, wall):
    r, perf = rep["resources"], rep["performance"]
    ffs = sum(v for k, v in rep["cells"].items() if k.startswith("SB_DFF"))
    fmax, clock = perf["core_fmax_mhz"], perf["clock_mhz"]
    return {
        "model": name, "fixed model": rep["parameters"].get("fixed_model", False),
        "lanes": rep["parameters"]["lanes"],
        "LC": r["lc"]["used"], "LC est": r["lc"]["estimated"], "FF": ffs,
        "EBR": r["ebr"]["used"], "EBR est": r["ebr"]["estimated"], "SPRAM": r["spram"]["used"],
        "DSP": r["dsp"]["used"],
        "clock MHz": clock, "fmax MHz": fmax, "timing met": rep["timing_met"],
        "slack ns": round(1000.0 / clock - 1000.0 / fmax, 2) if fmax else None,
        "attempts": " → ".join(f"{a['clock_mhz']:g}/{a['fmax_mhz']}" for a in rep.get("clock_attempts", [])),
        "critical path": _critical(rep),
        "cycles/px": perf["cycles_per_pixel"], "ideal": perf["ideal_cycles_per_pixel"],
        "mult. eff.": perf["multiplier_efficiency"],
        "ms/image @clock": perf["ms_per_image_at_clock"],
        "build s": round(wall, 1),
        "PSNR dB": psnr_of_default(model) if "trained" in name else None,
    }


def _folder(name):
    """The build folder of a configuration: its first word."""
    return name.split()[0].lower()


if __name__ == "__main__":
    run_main(main)
