"""Resources, Fmax and accuracy of the FP32 units (dhq_rtl.gateware.float32).

Synthesis (default): every unit alone, out of context, on the iCE40UP5K
(Yosys ``synth_ice40 -dsp`` cells of the bare unit; nextpnr-ice40 ``--up5k
--package sg48`` on the unit inside :func:`dhq_rtl.gateware.ooc.ooc_harness`
for Fmax, over several placement seeds) and on the ECP5 LFE5U-85F of the
ULX3S (``synth_ecp5``; nextpnr-ecp5 ``--85k --package CABGA381``). Prints
Markdown tables.

Sine error (``--sine-error``): the sine twin (bit-exact with the RTL) on
every float32 phase ``t`` with ``2**lo ≤ |t| < 2**hi`` (default every
phase from ``2**-32`` to ``2**6``: 38 binades, 3.2·10**8 phases; a phase
and its negative give mirrored results, so the positive ones suffice),
against ``sin(2π·t)`` in float64 with the same exact reduction; the maximum
and mean error in ULP, the worst phase, and the error of the whole
``sin(ω0·z)`` path for model-like pre-activations ``z``.

    python bench/fp32_units.py [--seeds 1,2,3] [--freq 48] [--only Fp32Mul]
    python bench/fp32_units.py --sine-error [--lo -32 --hi 6]
"""

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dhq_rtl import float32_ref as ref
from dhq_rtl import synthesis, toolchain
from dhq_rtl.errors import ToolchainError
from dhq_rtl.gateware.float32 import Fp32Add, Fp32Mul, Fp32Sine
from dhq_rtl.gateware.ooc import ooc_harness
from dhq_rtl.synthesis import pnr_ecp5, synth_ecp5

MACHINE = "the shared 2-core AMD EPYC development machine"


def ice40_points():
    return [
        ("Fp32Mul", "dsp=ice40 (4 SB_MAC16 16×16)", lambda: Fp32Mul(dsp="ice40")),
        ("Fp32Add", "", lambda: Fp32Add()),
        ("Fp32Sine", "dsp=ice40, ii=11 (1 shared SB_MAC16)", lambda: Fp32Sine(dsp="ice40", ii=11)),
        ("Fp32Sine", "dsp=ice40, ii=4 (5 shared SB_MAC16)", lambda: Fp32Sine(dsp="ice40", ii=4)),
        ("Fp32Sine", "dsp=ice40, ii=1 (9 SB_MAC16)", lambda: Fp32Sine(dsp="ice40")),
    ]


def ecp5_points():
    return [
        ("Fp32Mul", "dsp=generic", lambda: Fp32Mul()),
        ("Fp32Add", "", lambda: Fp32Add()),
        ("Fp32Sine", "dsp=generic, ii=1", lambda: Fp32Sine()),
    ]


def _fmax(reports):
    vals = [max(r.fmax.values()) for r in reports if r.fmax]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{min(vals):.1f} / {statistics.median(vals):.1f} / {max(vals):.1f}"


def _failure(e):
    reason = [line for line in str(e).splitlines() if "ERROR" in line]
    return "does not fit: " + (reason[0].split("ERROR: ")[-1] if reason else "nextpnr failed")


def measure_ice40(make, work, freq, seeds):
    unit = make()
    cells = synthesis.synth_ice40_cells(unit, workdir=work / "bare")
    res = synthesis.synth_ice40(ooc_harness(make()), workdir=work / "ooc")
    try:
        reports = [synthesis.pnr_ice40(res, freq_mhz=freq, seed=s, workdir=work / f"pnr{s}") for s in seeds]
        fmax = _fmax(reports)
    except ToolchainError as e:
        fmax = _failure(e)
    ff = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return (f"{cells.get('SB_LUT4', 0)} | {ff} | {cells.get('SB_CARRY', 0)} | {cells.get('SB_RAM40_4K', 0)} | "
            f"{cells.get('SB_MAC16', 0)} | {unit.latency} | {getattr(unit, 'ii', 1)} | {fmax}")


def measure_ecp5(make, work, freq, seeds):
    unit = make()
    cells = synth_ecp5(unit, workdir=work / "bare").cells
    res = synth_ecp5(ooc_harness(make()), workdir=work / "ooc")
    try:
        reports = [pnr_ecp5(res, freq_mhz=freq, seed=s, workdir=work / f"pnr{s}") for s in seeds]
        fmax = _fmax(reports)
    except ToolchainError as e:
        fmax = _failure(e)
    return (f"{cells.get('LUT4', 0)} | {cells.get('TRELLIS_FF', 0)} | {cells.get('CCU2C', 0)} | "
            f"{cells.get('DP16KD', 0)} | {cells.get('MULT18X18D', 0)} | {unit.latency} | {getattr(unit, 'ii', 1)} | "
            f"{fmax}")


def synthesis(args):
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(tempfile.mkdtemp(prefix="dhq_bench_fp32_"))
    tables = []
    for family, points, measure, head in (
            ("iCE40UP5K (sg48)", ice40_points(), measure_ice40,
             "| unit | parameters | SB_LUT4 | SB_DFF* | SB_CARRY | SB_RAM40_4K | SB_MAC16 | latency | ii | Fmax (MHz) |"),
            ("ECP5 LFE5U-85F (CABGA381)", ecp5_points(), measure_ecp5,
             "| unit | parameters | LUT4 | TRELLIS_FF | CCU2C | DP16KD | MULT18X18D | latency | ii | Fmax (MHz) |")):
        if args.family and args.family not in family:
            continue
        rows = []
        for k, (name, params, make) in enumerate(points):
            if args.only and name != args.only:
                continue
            t = time.time()
            row = f"| {name} | {params} | " + measure(make, work / f"{family[:5]}{k}", args.freq, seeds) + " |"
            print(f"[{time.time() - t:.0f} s] {row}", flush=True)
            rows.append(row)
        tables.append((family, head, rows))
    print()
    print(f"Cells of the bare unit after Yosys; Fmax from nextpnr (--freq {args.freq:g}) on the unit inside "
          f"ooc_harness, min / median / max over seeds {args.seeds}. Machine: {MACHINE} "
          f"({platform.machine()}, {platform.system()}); tools: {toolchain.find_tool('yosys')}, "
          f"{toolchain.find_tool('nextpnr-ice40')}, {toolchain.find_tool('nextpnr-ecp5')}.")
    for family, head, rows in tables:
        print(f"\n{family}\n")
        print(head)
        print("|---|---|" + "---:|" * 8)
        for r in rows:
            print(r)


# ------------------------------------------------------------------ sine error

def sine_error(args):
    spec = ref.SineSpec(index_bits=args.index_bits, h_bits=args.h_bits)
    chunk = 1 << 21
    worst, worst_t, total, count, above_half = 0.0, 0, 0.0, 0, 0
    hist = np.zeros(8, dtype=np.int64)           # errors in [0, 0.1), [0.1, 0.2), … , [0.7, ∞)
    t0 = time.time()
    for e in range(ref.BIAS + args.lo, ref.BIAS + args.hi):
        for start in range(0, 1 << ref.FRAC_BITS, chunk):
            t = (np.uint32(e) << np.uint32(ref.FRAC_BITS)) | np.arange(start, start + chunk, dtype=np.uint32)
            err = ref.ulp_error(ref.sin_turns(t, spec), ref.sin_turns_reference(t))
            k = int(np.argmax(err))
            if err[k] > worst:
                worst, worst_t = float(err[k]), int(t[k])
            total += float(err.sum())
            count += err.size
            above_half += int(np.count_nonzero(err > 0.5))
            hist += np.bincount(np.minimum((err * 10).astype(np.int64), 7), minlength=8)
        print(f"  binade 2**{e - ref.BIAS}: running max {worst:.4f} ULP ({time.time() - t0:.0f} s)", flush=True)
    tw = ref.from_bits(np.uint32(worst_t))
    y = ref.from_bits(ref.sin_turns(np.uint32(worst_t), spec))
    yref = ref.sin_turns_reference(np.uint32(worst_t))
    print()
    print(f"Sine unit (index_bits={spec.index_bits}, h_bits={spec.h_bits}), every float32 phase t with "
          f"2**{args.lo} ≤ |t| < 2**{args.hi} ({count} phases, {time.time() - t0:.0f} s on {MACHINE}):")
    print(f"  max error {worst:.4f} ULP at t = {float(tw)!r} ({worst_t:#010x}): unit {float(y)!r}, "
          f"sin(2πt) = {float(yref)!r}")
    print(f"  mean error {total / count:.4f} ULP; above 0.5 ULP (not correctly rounded): {above_half} "
          f"({above_half / count:.3%})")
    print("  histogram (ULP): " + ", ".join(f"[{k / 10:.1f}, {(k + 1) / 10:.1f}): {int(n)}" for k, n in
                                           enumerate(hist[:7])) + f", ≥ 0.7: {int(hist[7])}")
    model_path(spec)


def model_path(spec, omega0=30.0, n=4_000_000, seed=0):
    """The error of ``sin(ω0·z)`` computed as ``sin_turns(float32(z · float32(ω0/2π)))``
    for pre-activations ``z`` spread over ``[2**-8, 8)``, against float64,
    next to numpy's float32 ``sin(float32(ω0·z))`` (what a float32 model
    computes). Both are dominated by the rounding of the argument."""
    rng = np.random.default_rng(seed)
    z = (np.exp2(rng.uniform(-8, 3, n)) * np.where(rng.random(n) < 0.5, -1, 1)).astype(np.float32)
    exact = np.sin(omega0 * z.astype(np.float64))
    c = np.float32(omega0 / (2 * np.pi))
    unit = ref.sin_turns(ref.to_bits(z * c), spec)
    numpy32 = ref.to_bits(np.sin(np.float32(omega0) * z))
    e_unit = ref.ulp_error(unit, exact)
    e_np = ref.ulp_error(numpy32, exact)
    print(f"  whole path sin(ω0·z), ω0 = {omega0:g}, {n} random z with 2**-8 ≤ |z| < 8, against float64: "
          f"unit on float32(z·float32(ω0/2π)): median {np.median(e_unit):.3f}, 99.9 % {np.quantile(e_unit, 0.999):.1f}, "
          f"max {e_unit.max():.3g} ULP; numpy float32 sin(float32(ω0·z)): median {np.median(e_np):.3f}, "
          f"99.9 % {np.quantile(e_np, 0.999):.1f}, max {e_np.max():.3g} ULP "
          f"(near the zeros of the sine an argument rounding of half an ULP of ω0·z is many ULPs of the result)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sine-error", action="store_true", help="measure the sine unit's error instead of synthesizing")
    ap.add_argument("--lo", type=int, default=-32, help="smallest binade of the sine sweep (2**lo)")
    ap.add_argument("--hi", type=int, default=6, help="the sine sweep stops below 2**hi")
    ap.add_argument("--index-bits", type=int, default=ref.DEFAULT_SINE.index_bits)
    ap.add_argument("--h-bits", type=int, default=ref.DEFAULT_SINE.h_bits)
    ap.add_argument("--seeds", default="1,2,3", help="nextpnr placement seeds (comma-separated)")
    ap.add_argument("--freq", type=float, default=48.0, help="nextpnr timing target in MHz (default 48)")
    ap.add_argument("--only", help="one unit (Fp32Mul, Fp32Add, Fp32Sine)")
    ap.add_argument("--family", choices=["iCE40", "ECP5"], help="one FPGA family only")
    args = ap.parse_args(argv)
    if args.sine_error:
        sine_error(args)
    else:
        synthesis(args)


if __name__ == "__main__":
    main()
