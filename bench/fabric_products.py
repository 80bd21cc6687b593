"""Logic of the MAC array's products in fabric (``MacArray`` ``dsp="fabric"``) on ECP5.

Out-of-context Yosys ``synth_ecp5`` of the bare :class:`~dhq_rtl.gateware.mac.MacArray`
at several operand widths and lane counts, once with ``*`` products
(``"generic"``: one ``MULT18X18D`` each) and once with shift-and-add
products (``"fabric"``); the difference in LUTs (``LUT4`` plus two per
``CCU2C``, the slices nextpnr counts as ``TRELLIS_COMB``) is what the
products in logic cost, per lane; :func:`dhq_rtl.estimate.fabric_product_luts`
is compared with it. Prints a Markdown table.

    python bench/fabric_products.py [--bits 4,6,8,8x4] [--lanes 4,8]

``--bits``: operand widths, ``B`` (activations and weights) or ``AxW``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from dhq_rtl.estimate import fabric_product_luts
from dhq_rtl.gateware.mac import MacArray
from dhq_rtl.synthesis import synth_ecp5_cells


def luts(cells):
    """ECP5 LUTs of a ``synth_ecp5`` netlist: LUT4s and the two of each CCU2C."""
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)


def mac_array(act_bits, weight_bits, lanes, dsp, seed=0):
    """The array with 64 weight rows (with its stall enable: a bare block
    needs signal ports)."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    weights = rng.integers(lo, hi + 1, size=(64, lanes))
    return MacArray(weights, act_bits=act_bits, weight_bits=weight_bits, acc_width=act_bits + weight_bits + 8,
                    dsp=dsp)


def measure(act_bits, weight_bits, lanes, workdir):
    """``{kind: cells}`` of the array with each product kind."""
    return {dsp: synth_ecp5_cells(mac_array(act_bits, weight_bits, lanes, dsp),
                                  workdir=Path(workdir) / f"{dsp}-{act_bits}x{weight_bits}-{lanes}")
            for dsp in ("generic", "fabric")}


def widths(text):
    """``"8"`` → (8, 8), ``"8x4"`` → (8, 4)."""
    a, _, w = text.partition("x")
    return int(a), int(w or a)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="4,6,8,8x4,4x8")
    p.add_argument("--lanes", default="4,8")
    args = p.parse_args()
    print("| act × weight bits | lanes | LUT (`*`, DSP) | MULT18X18D | LUT (fabric) | MULT18X18D "
          "| LUT per lane (fabric − `*`) | estimate per lane | error |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="fabric_products_") as tmp:
        for a, w in (widths(b) for b in args.bits.split(",")):
            for lanes in (int(n) for n in args.lanes.split(",")):
                c = measure(a, w, lanes, tmp)
                per_lane = (luts(c["fabric"]) - luts(c["generic"])) / lanes
                est = fabric_product_luts(a, w)
                print(f"| {a} × {w} | {lanes} | {luts(c['generic'])} | {c['generic'].get('MULT18X18D', 0)} | "
                      f"{luts(c['fabric'])} | {c['fabric'].get('MULT18X18D', 0)} | {per_lane:.1f} | {est} | "
                      f"{100 * (est - per_lane) / per_lane:+.0f} % |", flush=True)


if __name__ == "__main__":
    main()
