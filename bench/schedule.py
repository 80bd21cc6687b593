"""Cycles per pixel by model shape: the plan's schedule against the RTL.

For each shape (random models of the given widths, 16×16 pixels): the MAC
array's own bound (``CorePlan.mac_cycles_per_pixel``: every job back to
back, the old plan), the arbiter's vector cycles per pixel (``n₀ + 5`` for the
phases plus ``n + 1`` per layer's vector), the plan's steady-state cycles per
pixel (``CorePlan.cycles_per_pixel``: the schedule model over an endless
region), the RTL measured in Amaranth's simulator over a 16×4 region
(steady state without the last pixels, which drain faster), and whether the
model's pixel times equal the RTL's for all 64 pixels.

    python bench/schedule.py [--markdown]
"""

import argparse
import time

from dhq_rtl.firmware import default_model
from dhq_rtl.gateware.core import InrCore
from dhq_rtl.gateware.schedule import ScheduleModel, steady_rate
from dhq_rtl.rtlsim.pysim import run_pysim
from dhq_rtl.synthetic import random_model

SHAPES = [
    ("2-16-16-16-1, rotated", dict(width=16, depth=3, size=16, seed=1), 16, 6),
    ("2-16-16-16-1, not rotated", dict(width=16, depth=3, size=16, seed=1, rotate=False), 16, 6),
    ("RGB 2-16-16-3, rotated first", dict(width=16, depth=2, size=16, seed=1, channels=3, rotate_first=True), 16, 6),
    ("2-8-8-1", dict(width=8, depth=2, size=16, seed=3), 4, 6),
    ("2-16-16-1, not rotated", dict(width=16, depth=2, size=16, seed=2, rotate=False), 8, 6),
    ("2-32-32-1, rotated", dict(width=32, depth=2, size=16, seed=2), 16, 6),
    ("2-8-8-8-1 W6A6", dict(width=8, depth=3, size=16, seed=4, weight_bits=6, act_bits=6), 2, 6),
    ("2-64-1, not rotated", dict(width=64, depth=1, size=16, seed=5, rotate=False), 16, 6),
    ("RGB 2-4-4-3 W4A4", dict(width=4, depth=2, size=16, seed=5, channels=3, weight_bits=4, act_bits=4), 1, 6),
    ("2-16-16-16-1, rotated", dict(width=16, depth=3, size=16, seed=1), 16, 2),
    ("2-16-16-16-1, not rotated", dict(width=16, depth=3, size=16, seed=1, rotate=False), 16, 3),
    ("default (2-32-32-32-1)", None, 16, 6),
    ("default (2-32-32-32-1)", None, 32, 6),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args()
    rows = []
    for name, kw, lanes, buffers in SHAPES:
        model = default_model()[0] if kw is None else random_model(**kw)
        core = InrCore(model, lanes=lanes, buffers=buffers)
        plan = core.plan
        region = (0, 0, 16, 4) if kw is not None else (48, 60, 80, 62)
        t0 = time.perf_counter()
        measured = run_pysim(core, region).beat_cycles.tolist()
        seconds = time.perf_counter() - t0
        exact = ScheduleModel(plan).run(len(measured)) == measured
        arbiter = (plan.out_features[0] + 5) + sum(n + 1 for n in plan.out_features[1:])
        rows.append((name, lanes, buffers, plan.mac_cycles_per_pixel(), arbiter, plan.cycles_per_pixel(),
                     steady_rate(measured[:-2 * buffers]), exact, seconds))
    if args.markdown:
        print("| model | lanes | buffers | MAC array alone | arbiter vectors | plan | measured (RTL) | pixel times equal |")
        print("|---|---|---|---|---|---|---|---|")
        for name, lanes, buffers, mac, arb, plan_cpp, meas, exact, _ in rows:
            print(f"| {name} | {lanes} | {buffers} | {mac} | {arb} | {plan_cpp:.2f} | {meas:.2f} | "
                  f"{'yes' if exact else 'no'} |")
    else:
        for row in rows:
            print("{:32s} lanes {:3d} buffers {} mac {:4d} arbiter {:4d} plan {:8.2f} measured {:8.2f} "
                  "exact {} ({:.1f} s)".format(*row))


if __name__ == "__main__":
    main()
