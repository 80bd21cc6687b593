"""Resources and Fmax of the arithmetic RTL blocks on iCE40UP5K (out of context).

For each block and parameter point: Yosys ``synth_ice40`` cell counts of the
bare block (what it costs inside a design; ``-dsp``, multiplies inferred as
``SB_MAC16``, only for a block without explicit ``SB_MAC16`` instances:
:func:`dhq_rtl.synthesis.ice40_synth`), then nextpnr-ice40 (UP5K,
SG48) on the block wrapped in :func:`dhq_rtl.gateware.ooc.ooc_harness` (every
port driven from / reduced into registers, so every timed path is
register-to-register) for the achieved Fmax. Prints a Markdown table.

    python bench/blocks.py [--freq MHZ] [--seed N] [--quick]
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dhq_rtl import synthesis, toolchain
from dhq_rtl.gateware.ooc import ooc_harness
from dhq_rtl.errors import ToolchainError
from dhq_rtl.gateware.mac import MacArray
from dhq_rtl.gateware.scaler import ChannelScaler
from dhq_rtl.synthetic import random_model


def _weights(depth, lanes, bits, seed=0):
    m = (1 << (bits - 1)) - 1
    return np.random.default_rng(seed).integers(-m, m + 1, size=(depth, lanes))


def points(quick=False):
    model = random_model(width=32, depth=3, channels=3, seed=0)
    pts = [
        ("MacArray", "P=16, 8×8, dsp=ice40 (dual 8×8)",
         lambda: MacArray(_weights(256, 16, 8), act_bits=8, weight_bits=8, acc_width=20, dsp="ice40")),
        ("MacArray", "P=16, 8×8, dsp=generic",
         lambda: MacArray(_weights(256, 16, 8), act_bits=8, weight_bits=8, acc_width=20, dsp="generic")),
        ("MacArray", "P=8, 8×8, dsp=generic",
         lambda: MacArray(_weights(256, 8, 8), act_bits=8, weight_bits=8, acc_width=20, dsp="generic")),
        ("MacArray", "P=8, 8×8, dsp=ice40 (dual 8×8)",
         lambda: MacArray(_weights(256, 8, 8), act_bits=8, weight_bits=8, acc_width=20, dsp="ice40")),
        ("MacArray", "P=4, 12×12, dsp=ice40 (16×16)",
         lambda: MacArray(_weights(256, 4, 12), act_bits=12, weight_bits=12, acc_width=28, dsp="ice40")),
        ("ChannelScaler", f"3 sine + 1 out layers, width 32, acc {ChannelScaler(model).acc_width} b, multiplier=logic",
         lambda: ChannelScaler(model, multiplier="logic")),
        ("ChannelScaler", "same, multiplier=dsp (inferred with -dsp)",
         lambda: ChannelScaler(model, multiplier="dsp")),
        ("ChannelScaler", "same, multiplier=dsp, dsp=ice40 (16×16 pieces, as the core)",
         lambda: ChannelScaler(model, multiplier="dsp", dsp="ice40")),
    ]
    return pts[:1] + pts[5:6] if quick else pts


def measure(make, workdir, freq, seed):
    t = time.time()
    cells = synthesis.synth_ice40_cells(make(), workdir=workdir / "bare")
    res = synthesis.synth_ice40(ooc_harness(make()), workdir=workdir / "ooc")
    try:
        rep = synthesis.pnr_ice40(res, freq_mhz=freq, seed=seed)
        fmax = f"{max(rep.fmax.values()):.1f}" if rep.fmax else "n/a"
    except ToolchainError as e:
        reason = [l for l in str(e).splitlines() if "ERROR" in l]
        fmax = "does not fit: " + (reason[0].split("ERROR: ")[-1] if reason else "nextpnr failed")
    return cells, fmax, time.time() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--freq", type=float, default=48.0, help="nextpnr timing target in MHz (default 48)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    ap.add_argument("--quick", action="store_true", help="two points only")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dhq_bench_blocks_"))
    rows = []
    for i, (block, params, make) in enumerate(points(args.quick)):
        cells, fmax, secs = measure(make, work / str(i), args.freq, args.seed)
        dffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
        rows.append(f"| {block} | {params} | {cells.get('SB_LUT4', 0)} | {dffs} | {cells.get('SB_CARRY', 0)} | "
                    f"{cells.get('SB_RAM40_4K', 0)} | {cells.get('SB_MAC16', 0)} | {fmax} |")
        print(f"[{secs:.0f} s] {rows[-1]}", flush=True)
    print()
    print(f"Yosys `synth_ice40` cells of the bare block (`-dsp` only without explicit SB_MAC16s); Fmax from nextpnr-ice40 --up5k --package sg48 "
          f"--freq {args.freq:g} --seed {args.seed} on the block inside ooc_harness. "
          f"Machine: {platform.machine()} {platform.processor() or ''} ({platform.system()}), "
          f"tools: {toolchain.find_tool('yosys')}, {toolchain.find_tool('nextpnr-ice40')}.")
    print()
    print("| block | parameters | SB_LUT4 | SB_DFF* | SB_CARRY | SB_RAM40_4K | SB_MAC16 | Fmax (MHz) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
