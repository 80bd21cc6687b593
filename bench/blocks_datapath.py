"""Resources and Fmax of the datapath blocks on the iCE40UP5K.

Synthesizes the Hadamard butterfly, the requantizer and the sine LUT at a few
parameter points with Yosys ``synth_ice40 -dsp`` (cell counts of the bare
block) and places and routes each block inside an out-of-context harness with
nextpnr-ice40 (up5k, sg48) for Fmax; prints a Markdown table.

    python bench/blocks_datapath.py            # every point, with Fmax
    python bench/blocks_datapath.py --no-fmax  # cell counts only (faster)
    python bench/blocks_datapath.py --only HadamardButterfly  # one block's rows
"""

import argparse
import sys
import time

from amaranth.hdl import Module, Shape, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dhq_rtl.numerics import sine_table
from dhq_rtl.gateware.butterfly import HadamardButterfly
from dhq_rtl.gateware.requant import Requantizer
from dhq_rtl.gateware.sine_lut import SineLUT
from dhq_rtl.gateware.ooc import ooc_harness
from dhq_rtl.synthesis import pnr_ice40, synth_ice40, synth_ice40_cells


class FlatPorts(wiring.Component):
    """Presents every port of ``dut`` as a plain unsigned signal (struct
    payloads flattened to bits), so the timing harness sees only plain values."""

    def __init__(self, dut):
        self.dut = dut
        self._names = []
        members = {}
        for path, member, _ in dut.signature.flatten(dut):
            name = "__".join(str(p) for p in path)
            self._names.append(name)
            members[name] = (In if member.flow == In else Out)(Shape.cast(member.shape).width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        for name, (_, member, value) in zip(self._names, self.dut.signature.flatten(self.dut)):
            if member.flow == In:
                m.d.comb += Value.cast(value).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(Value.cast(value))
        return m


def configs():
    """``(block, parameters, factory)`` for every measured point."""
    out = []
    for n in (16, 64, 256):
        for width in (8, 12):
            out.append(("HadamardButterfly", f"n={n}, width={width}",
                        lambda n=n, width=width: HadamardButterfly(n, width)))
    out.append(("Requantizer", "18→8 bit, 3 pairs (mult 1, shift 7/9/11)",
                lambda: Requantizer(18, [(1, 7), (1, 9), (1, 11)], 8)))
    out.append(("Requantizer", "18→8 bit, 2 pairs (mult 1/77, shift 7/12)",
                lambda: Requantizer(18, [(1, 7), (77, 12)], 8)))
    tables = [sine_table(10, a, 12) for a in (2047.0, 1500.0, 900.0)]
    for qw in (False, True):
        out.append(("SineLUT", f"3 tables, 10→12 bit, {'quarter' if qw else 'full'} wave",
                    lambda qw=qw: SineLUT(tables, 12, quarter_wave=qw)))
    return out


def measure(factory, fmax=True):
    block = factory()
    cells = synth_ice40_cells(block)
    row = {
        "latency": block.latency,
        "lut": cells.get("SB_LUT4", 0),
        "dff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
        "carry": cells.get("SB_CARRY", 0),
        "ram": cells.get("SB_RAM40_4K", 0),
        "mac": cells.get("SB_MAC16", 0),
        "fmax": None,
    }
    if fmax:
        synth = synth_ice40(ooc_harness(FlatPorts(factory())))
        report = pnr_ice40(synth)
        row["fmax"] = min(report.fmax.values()) if report.fmax else None
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-fmax", action="store_true", help="skip place and route (cell counts only)")
    parser.add_argument("--only", metavar="BLOCK", choices=sorted({c[0] for c in configs()}),
                        help="measure only this block's rows")
    args = parser.parse_args(argv)
    print("| block | parameters | latency | SB_LUT4 | DFF | SB_CARRY | SB_RAM40_4K | SB_MAC16 | Fmax (MHz) |")
    print("|---|---|---|---|---|---|---|---|---|")
    start = time.time()
    for block, params, factory in configs():
        if args.only and block != args.only:
            continue
        row = measure(factory, fmax=not args.no_fmax)
        fmax = "—" if row["fmax"] is None else f"{row['fmax']:.1f}"
        print(f"| {block} | {params} | {row['latency']} | {row['lut']} | {row['dff']} | {row['carry']} | "
              f"{row['ram']} | {row['mac']} | {fmax} |", flush=True)
    print(f"\n({time.time() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
