"""Energy per image on the iCEBreaker (iCE40UP5K): the default model and a
few model shapes, with the breakdown by resource class.

Each row simulates the core a build for the board makes (``CorePlan.for_board``)
rendering the whole image, counting switching activity in the compiled
simulation (:mod:`dhq_rtl.energy`, ``docs/energy.md``). The shapes other
than the default model are random SIREN-initialised models
(:func:`dhq_rtl.synthetic.random_model`, 128×128, gray, 3 hidden layers):
their activity stands for a model of that shape, not for a trained one.
The EBR and SPRAM constants are assumptions; the ``ebr×½`` / ``ebr×2``
columns give the total with both halved / doubled.

::

    python bench/energy.py [--json OUT] [--shapes 16x8,32x8,...] [--no-default]

Each new model costs one activity-simulator build (cached afterwards).
"""

import argparse
import json
import platform
import sys
import time

from dhq_rtl.boards import get_board
from dhq_rtl.cli import ArgumentParser, run_main
from dhq_rtl.energy import CLASSES, board_energy, constants_for, energy_of
from dhq_rtl.envelope import get_envelope
from dhq_rtl.firmware import default_model
from dhq_rtl.outputs import check_output_file, write_file
from dhq_rtl.synthetic import random_model

DEFAULT_SHAPES = "16x8,32x8,64x8,32x6,32x4"


def _shapes(text):
    out = []
    for part in filter(None, text.split(",")):
        try:
            w, b = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"shapes are WIDTHxBITS, e.g. 32x8, got {part!r}") from None
        if not (1 <= w <= 256 and 2 <= b <= 16):
            raise argparse.ArgumentTypeError(f"width 1…256 and bits 2…16, got {part!r}")
        out.append((w, b))
    return out


def _row(name, model, board, envelope=None):
    t0 = time.perf_counter()
    report, activity, info = board_energy(model, board, envelope=envelope,
                                          log=lambda m: print(f"  {m}", file=sys.stderr))
    consts = constants_for(board.family)
    sens = {}
    for f in (0.5, 2.0):
        sens[f] = energy_of(activity, consts.scaled(ebr_access=f, spram_access=f), clock_hz=report.clock_hz).total
    return {"name": name, "width": model.layers[1].weight.shape[1] if len(model.layers) > 1 else None,
            "bits": f"w{model.layers[1].weight_bits}a{model.layers[1].act_bits}" if len(model.layers) > 1 else "",
            "report": report.as_dict(), "cycles_per_pixel": activity.cycles / activity.pixels,
            "energy_ebr_half_j": sens[0.5], "energy_ebr_double_j": sens[2.0], "simulator": info,
            "seconds": round(time.perf_counter() - t0, 1)}


def _table(rows):
    head = ("| model | W/A bits | lanes | weights | cycles/px | µJ/image | nJ/px | mW avg | "
            + " | ".join(CLASSES) + " | ebr×½ µJ | ebr×2 µJ |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        rep = r["report"]
        b = rep["breakdown_j"]
        tot = rep["energy_j"]
        shares = " | ".join(f"{100 * b[k] / tot:.1f}%" for k in CLASSES)
        lines.append(f"| {r['name']} | {r['bits']} | {r['simulator']['lanes']} | {r['simulator']['weights_in']} | "
                     f"{r['cycles_per_pixel']:.1f} | {tot * 1e6:.0f} | {rep['energy_per_pixel_j'] * 1e9:.1f} | "
                     f"{rep['average_power_w'] * 1e3:.1f} | {shares} | {r['energy_ebr_half_j'] * 1e6:.0f} | "
                     f"{r['energy_ebr_double_j'] * 1e6:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = ArgumentParser(prog="bench/energy.py", description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the rows as JSON here")
    p.add_argument("--board", default="icebreaker", help="board (default icebreaker; ECP5 boards: relative only)")
    p.add_argument("--shapes", type=_shapes, default=_shapes(DEFAULT_SHAPES),
                   help=f"random models WIDTHxBITS, comma-separated, '' for none (default {DEFAULT_SHAPES})")
    p.add_argument("--no-default", action="store_true", help="skip the bundled default model")
    args = p.parse_args(argv)
    if args.json:
        check_output_file(args.json, f"--json {args.json}")
    board = get_board(args.board)
    rows = []
    if not args.no_default:
        model, _ = default_model()
        print("default model (envelope 'default', as python -m dhq_rtl.build makes it)", file=sys.stderr)
        rows.append(_row("default (trained, camera)", model, board, envelope=get_envelope("default")))
    for width, bits in args.shapes:
        print(f"random model width {width}, {bits} bits", file=sys.stderr)
        model = random_model(size=128, width=width, depth=3, channels=1, weight_bits=bits, act_bits=bits, seed=0)
        rows.append(_row(f"random {width}×3", model, board))
    print(_table(rows))
    machine = f"{platform.processor() or platform.machine()}, {platform.python_version()}"
    if args.json:
        write_file(args.json, json.dumps({"board": board.name, "machine": machine, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
