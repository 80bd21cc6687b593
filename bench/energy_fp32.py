"""Energy of the float (FP32) core next to the integer core, one model, one board.

::

    python bench/energy_fp32.py [--model M] [--board icebreaker] [--region X0 Y0 X1 Y1]
                                [--int-mhz F] [--fp32-mhz F] [--json out.json]

Both cores are the ones a build for the board makes (the integer core in the
``default`` envelope, the float core with its default lane count); each
renders the same region in the activity-counting compiled simulation
(:func:`dhq_rtl.energy.board_energy`, docs/energy.md). The float core is
slow to simulate (about 2 500 cycles a pixel on the iCEBreaker), so the
default region is a 16 × 16 patch; the per-image figures scale the patch's
energy and cycles by the pixel count (both cores run every pixel the same
way, so the ratio is the patch's). Static power is counted at each core's
clock (``--int-mhz``, ``--fp32-mhz``: what their builds reach; defaults:
the board's target for the integer core and 12.1875 MHz, the float build's
clock on the iCEBreaker, docs/RESULTS.md).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dhq_rtl.boards import get_board  # noqa: E402
from dhq_rtl.cli import ArgumentParser, run_main  # noqa: E402
from dhq_rtl.errors import DhqError  # noqa: E402
from dhq_rtl.energy import board_energy  # noqa: E402
from dhq_rtl.envelope import ENVELOPES  # noqa: E402
from dhq_rtl.firmware import default_model  # noqa: E402
from dhq_rtl.model_image import load  # noqa: E402
from dhq_rtl.outputs import check_output_file, write_file  # noqa: E402


def measure(model, board, region, clocks):
    rows = {}
    npix = (region[2] - region[0]) * (region[3] - region[1])
    scale = model.width * model.height / npix
    for arith in ("int", "fp32"):
        t0 = time.perf_counter()
        env = ENVELOPES["default"] if arith == "int" and ENVELOPES["default"].fits(model) else None
        report, activity, info = board_energy(model, board, arith=arith, region=region, envelope=env,
                                              clock_hz=clocks[arith],
                                              log=lambda m: print(f"  {m}", file=sys.stderr))
        d = report.as_dict()
        rows[arith] = {
            "lanes": info["lanes"], "clock_mhz": clocks[arith] / 1e6, "region": list(region),
            "cycles_per_pixel": round(activity.cycles / npix, 1),
            "image_energy_j": d["energy_j"] * scale, "image_latency_s": activity.cycles * scale / clocks[arith],
            "breakdown_j": {k: v * scale for k, v in d["breakdown_j"].items()},
            "simulator": info, "seconds": round(time.perf_counter() - t0, 1)}
    i, f = rows["int"], rows["fp32"]
    rows["ratio"] = {"energy": i["image_energy_j"] / f["image_energy_j"],
                     "latency": i["image_latency_s"] / f["image_latency_s"],
                     "cycles": i["cycles_per_pixel"] / f["cycles_per_pixel"]}
    return rows


def markdown(rows):
    out = ["| core | lanes | clock MHz | cycles/px | ms/image | mJ/image | " + " | ".join(
        f"{k} mJ" for k in rows["int"]["breakdown_j"]) + " |"]
    out.append("|" + "---|" * (6 + len(rows["int"]["breakdown_j"])))
    for arith in ("int", "fp32"):
        r = rows[arith]
        out.append(f"| {arith} | {r['lanes']} | {r['clock_mhz']:g} | {r['cycles_per_pixel']:g} | "
                   f"{1e3 * r['image_latency_s']:.1f} | {1e3 * r['image_energy_j']:.2f} | "
                   + " | ".join(f"{1e3 * v:.3f}" for v in r["breakdown_j"].values()) + " |")
    q = rows["ratio"]
    out.append(f"\nint / fp32: energy {q['energy']:.3f} ({100 * (q['energy'] - 1):+.1f} %), latency "
               f"{q['latency']:.3f} ({100 * (q['latency'] - 1):+.1f} %), cycles per pixel {q['cycles']:.3f}")
    return "\n".join(out)


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model image carrying its float model (default: the bundled one)")
    p.add_argument("--board", default="icebreaker")
    p.add_argument("--region", type=int, nargs=4, default=(0, 0, 16, 16), metavar=("X0", "Y0", "X1", "Y1"))
    p.add_argument("--int-mhz", type=float, help="the integer core's clock (default: the board's target)")
    p.add_argument("--fp32-mhz", type=float, default=12.1875, help="the float core's clock (default 12.1875)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.json:
        check_output_file(args.json, f"--json {args.json}", inputs={"--model": args.model} if args.model else {})
    model = load(args.model) if args.model else default_model()[0]
    if not model.has_float:
        raise DhqError("the model image carries no float model (train it again with this version's dhq_rtl.train)")
    board = get_board(args.board)
    x0, y0, x1, y1 = args.region
    if not (0 <= x0 < x1 <= model.width and 0 <= y0 < y1 <= model.height):
        raise DhqError(f"--region must lie inside the {model.width}×{model.height} image, got {args.region}")
    clocks = {"int": (args.int_mhz * 1e6) if args.int_mhz else board.clock_hz(None), "fp32": args.fp32_mhz * 1e6}
    rows = measure(model, board, (x0, y0, x1, y1), clocks)
    rows["model"] = args.model or "default.dhq"
    rows["board"] = board.name
    print(markdown(rows))
    if args.json:
        write_file(args.json, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
