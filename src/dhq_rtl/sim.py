"""``python -m dhq_rtl.sim``: render an image cycle-accurately through the core's RTL.

The accelerator core (:class:`dhq_rtl.gateware.core.InrCore`) built for the
model is simulated clock by clock — by default compiled with Verilator
(:mod:`dhq_rtl.rtlsim.compiled`), else in Amaranth's Python simulator —
over a region of the image (default: all of it). Every pixel is checked
against :meth:`GoldenModel.render`; any mismatch is listed with its
coordinates and both values and the exit status is 1. Then it prints the
PSNR against the original picture, the total cycles, cycles per pixel and
simulated cycles per second, and optionally writes the image as a PNG.

``--arith fp32`` simulates the float core instead (IEEE-754 binary32, the
float model the model image carries) and checks it against
:class:`~dhq_rtl.golden_float32.FloatGoldenModel` for the same lanes.

``--engine netlist`` simulates the gates instead of the RTL: the core with
the iCE40's DSPs, synthesized as an iCE40 build synthesizes it
(:mod:`dhq_rtl.rtlsim.netlist`; Yosys, then Verilator with Yosys's cell
models), checked against the same golden model.

Examples::

    python -m dhq_rtl.sim                                # bundled model, whole image
    python -m dhq_rtl.sim --model my.dhq --out my.png
    python -m dhq_rtl.sim --region 0,0,32,8 --stall 0.3 --engine pysim
    python -m dhq_rtl.sim --arith fp32 --lanes 1 --sine-ii 11   # the float core as the iCEBreaker builds it
    python -m dhq_rtl.sim --model tiny.dhq --lanes 4 --engine netlist  # the synthesized iCE40 netlist
"""

import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from .cli import ArgumentParser, parse_region, run_main
from .errors import DhqError, ImageError
from .firmware import default_model
from .golden import GoldenModel
from .images import default_image_path, load_image, psnr, save_png
from .model_image import load
from .outputs import check_output_file, is_png
from .rtlsim import compiled as compiled_engine
from .rtlsim import netlist as netlist_engine
from .rtlsim.pysim import run_pysim
from .rtlsim.stimulus import check_region, stall_threshold, unpack_pixels

__all__ = ["main", "build_core", "golden_render", "simulate", "PYSIM_CYCLES_PER_SECOND"]

#: Rough speed of the Python simulator on the default core (bench/simspeed.py:
#: 440–730 cycles/s on the 2-core machine); only used to warn how long pysim will take.
PYSIM_CYCLES_PER_SECOND = 500.0
#: Mismatches listed one per line before the rest are only counted.
MAX_LISTED = 20


def build_core(model, lanes, arith="int", sine_ii=1, dsp="generic"):
    """The accelerator core for ``model`` (generic multipliers: simulatable
    everywhere); ``arith="fp32"``: the float core, its sine at ``sine_ii``.
    ``dsp="ice40"``: the iCE40's ``SB_MAC16`` instances instead (for the
    gate-level engine), the integer core's channel scaler on DSPs too."""
    from .gateware.core import InrCore
    if arith == "fp32":
        from .gateware.float32.plan import FloatUnits
        return InrCore(model, lanes=lanes, dsp=dsp, arith="fp32", units=FloatUnits(sine_ii=sine_ii))
    if dsp == "ice40":
        return InrCore(model, lanes=lanes, dsp=dsp, scaler_multiplier="dsp")
    return InrCore(model, lanes=lanes, dsp=dsp)


def golden_render(model, region, arith="int", lanes=1):
    """What the core must produce: the integer golden model's pixels, or
    the float golden model's for the float core with ``lanes`` lanes."""
    if arith == "fp32":
        from .golden_float32 import FloatGoldenModel
        return FloatGoldenModel(model, lanes).render(region)
    return GoldenModel(model).render(region)


def _estimated_cycles_per_pixel(core):
    plan = getattr(core, "plan", None)
    if plan is not None and hasattr(plan, "cycles_per_pixel"):
        return float(plan.cycles_per_pixel())
    cpp = getattr(core, "cycles_per_pixel", None)
    return float(cpp) if cpp is not None else None


def _duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def simulate(core, region, *, engine="auto", backend="verilator", stall=0.0, seed=1,
             progress=True, log=None):
    """Run ``core`` over ``region`` with the chosen engine; returns
    ``(SimResult, info)`` where ``info`` says which engine ran and build times.

    ``engine``: ``"compiled"`` (error if it cannot run here), ``"pysim"``,
    ``"auto"`` (compiled, else pysim with a warning that estimates the time),
    or ``"netlist"``: the iCE40 netlist Yosys synthesizes from ``core``
    (:class:`~dhq_rtl.rtlsim.netlist.NetlistSim`; Verilator only).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    x0, y0, x1, y1 = region
    npix = (x1 - x0) * (y1 - y0)
    info = {"build_seconds": 0.0, "cached": None, "export_seconds": 0.0}
    sim = None
    if engine == "netlist":
        t0 = time.perf_counter()
        sim = netlist_engine.NetlistSim(core, log=log)
        info["export_seconds"] = time.perf_counter() - t0
        info["cached"] = sim.cached
        if not sim.cached:
            log("synthesizing the core and building its gate-level simulator; it is cached for the next runs")
        t0 = time.perf_counter()
        sim.build()
        info["build_seconds"] = time.perf_counter() - t0
    elif engine in ("auto", "compiled"):
        try:
            toolchain = compiled_engine.find_toolchain(backend)
        except compiled_engine.ToolchainUnavailable as e:
            if engine == "compiled":
                raise
            cpp = _estimated_cycles_per_pixel(core)
            est = (f"about {_duration(npix * cpp / PYSIM_CYCLES_PER_SECOND)} for {npix} pixels "
                   f"(~{cpp:.0f} cycles/pixel at ~{PYSIM_CYCLES_PER_SECOND:.0f} cycles/s)"
                   if cpp else f"at ~{PYSIM_CYCLES_PER_SECOND:.0f} cycles/s")
            log(f"warning: compiled simulator unavailable ({e}); falling back to Amaranth's "
                f"Python simulator, which is slow: {est}")
            engine = "pysim"
        else:
            t0 = time.perf_counter()
            sim = compiled_engine.CompiledSim(core, backend=backend, toolchain=toolchain, log=log)
            info["export_seconds"] = time.perf_counter() - t0
            info["cached"] = sim.cached
            if not sim.cached:
                log(f"building the compiled simulator ({backend}); it is cached for the next runs")
            t0 = time.perf_counter()
            sim.build()
            info["build_seconds"] = time.perf_counter() - t0
            engine = "compiled"
    elif engine != "pysim":
        raise ValueError(f"engine must be 'auto', 'compiled', 'pysim' or 'netlist', not {engine!r}")

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=npix, unit="px", desc=f"simulating ({engine})", file=sys.stderr,
                   dynamic_ncols=True, leave=False)
    try:
        update = bar.update if bar is not None else None
        if sim is not None:
            result = sim.run(region, stall=stall, seed=seed, progress=update)
        else:
            result = run_pysim(core, region, stall=stall, seed=seed, progress=update)
    finally:
        if bar is not None:
            bar.close()
    info["engine"] = result.engine
    return result, info


def _mismatches(got, want, region):
    """Lines describing every differing pixel (coordinates in the whole image)."""
    x0, y0 = region[0], region[1]
    bad = np.argwhere(np.any(got != want, axis=-1))
    lines = []
    for r, c in bad[:MAX_LISTED]:
        lines.append(f"mismatch at x={x0 + c} y={y0 + r}: simulated {got[r, c].tolist()} "
                     f"golden {want[r, c].tolist()}")
    if len(bad) > MAX_LISTED:
        lines.append(f"... and {len(bad) - MAX_LISTED} more mismatching pixels")
    return len(bad), lines


def _original_image_or_reason(model, image_arg):
    """The picture the model was fitted to, resized to the model's size:
    ``(pixels, path, None)``, or ``(None, path, reason)`` when it cannot be
    compared. It is ``--image`` (an error if unusable), else the model meta's
    ``image`` if that file exists, else the bundled camera.png."""
    path = image_arg or model.meta.get("image")
    if not path or not Path(path).is_file():
        if image_arg:
            raise ImageError(f"image file not found: {image_arg}")
        path = default_image_path()
    if model.width != model.height:
        return None, path, "the model is not square"
    try:
        img = load_image(path, model.width, color="gray" if model.channels == 1 else "rgb")
    except ImageError as e:
        if image_arg:
            raise
        return None, path, str(e)
    return img, path, None


def bundled_model_path():
    """Path of the bundled ``firmware/default.dhq``, or None."""
    res = resources.files("dhq_rtl.firmware") / "default.dhq"
    return Path(str(res)) if res.is_file() else None


def _parser():
    p = ArgumentParser(prog="python -m dhq_rtl.sim",
                       description="Cycle-accurate simulation of the accelerator core over a whole image "
                                   "or a region, checked pixel by pixel against the golden model.")
    p.add_argument("--model", metavar="FILE", help="model image (.dhq); default: the bundled default model")
    p.add_argument("--engine", choices=("auto", "compiled", "pysim", "netlist"), default="auto",
                   help="compiled (Verilator/CXXRTL + g++, cached), pysim (Amaranth, slow), auto: "
                        "compiled if a C++ compiler is found, else pysim (default), or netlist: the core with "
                        "the iCE40's DSPs, synthesized by Yosys as an iCE40 build is, simulated gate by gate "
                        "(Verilator, cached; synthesis takes minutes for a large core)")
    p.add_argument("--backend", choices=compiled_engine.BACKENDS, default="verilator",
                   help="compiled simulator backend (default: verilator)")
    p.add_argument("--out", metavar="PNG", help="write the simulated image (region) to this PNG file")
    p.add_argument("--region", metavar="x0,y0,x1,y1", help="half-open pixel rectangle (default: whole image)")
    p.add_argument("--stall", type=float, default=0.0, metavar="P",
                   help="probability that the output is not ready in a cycle (default 0)")
    p.add_argument("--seed", type=int, default=1, help="seed of the stall pattern (default 1)")
    p.add_argument("--arith", choices=("int", "fp32"), default="int",
                   help="int: the integer (DHQ) core (default); fp32: the IEEE-754 binary32 core for the float model "
                        "the model image carries")
    p.add_argument("--lanes", type=int, default=None, metavar="N",
                   help="multipliers of the core (default 16; fp32: 1, as the iCEBreaker builds it)")
    p.add_argument("--sine-ii", type=int, default=1, metavar="N",
                   help="fp32: cycles per phase of the sine, 1 or at least 3 (the iCEBreaker build: 11; "
                        "the pixels are the same for every value; default 1)")
    p.add_argument("--image", metavar="FILE", help="original picture for the PSNR (default: the model's meta "
                                                   "or the bundled camera.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--energy", action="store_true",
                   help="count the switching activity in the simulation (Verilator) and print the energy "
                        "per image with its breakdown (iCE40UP5K model, docs/energy.md)")
    p.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="clock of the --energy figures in MHz (default: the iCEBreaker's 48)")
    return p


def main(argv=None, *, core_factory=None):
    args = _parser().parse_args(argv)
    try:
        stall_threshold(args.stall)
    except ValueError as e:
        raise DhqError(f"--stall: {e}") from None
    if args.model:
        model, model_name = load(args.model), args.model
    else:
        model, model_name = default_model()
    region = check_region(model, parse_region(args.region) if args.region is not None else None)
    # Everything a user can get wrong is found before the simulation runs.
    orig, orig_path, orig_error = _original_image_or_reason(model, args.image)
    if args.out is not None:
        check_output_file(args.out, f"--out {args.out}", keeps=(is_png, "a PNG"),
                          inputs={"--model": args.model or bundled_model_path(), "--image": args.image,
                                  "the original picture": orig_path})
    if args.energy:
        from .energy import check_energy_options
        clock_hz = check_energy_options(engine=args.engine, backend=args.backend, freq_mhz=args.freq)
    if args.engine == "netlist":
        if args.backend != "verilator":
            raise DhqError("--engine netlist runs on Verilator: leave out --backend or use --backend verilator")
        compiled_engine.find_toolchain("verilator")   # missing tools are reported before any work
        netlist_engine.ice40_cell_models()
    if args.engine == "compiled" or args.energy:
        compiled_engine.find_toolchain(args.backend)  # a missing compiler is reported before any work
    lanes = args.lanes if args.lanes is not None else (16 if args.arith == "int" else 1)
    if args.arith == "fp32":
        from .golden_float32 import require_float
        require_float(model)            # a model without float parameters: one line, before any work
        if args.sine_ii < 1 or args.sine_ii == 2 or args.sine_ii > 64:
            raise DhqError(f"--sine-ii must be 1 or in 3..64, got {args.sine_ii}")
    try:
        dsp = "ice40" if args.engine == "netlist" else "generic"
        core = core_factory(model, lanes) if core_factory else build_core(model, lanes, args.arith, args.sine_ii,
                                                                          dsp)
    except (TypeError, ValueError) as e:
        raise DhqError(f"cannot build the core for this model: {e}") from None
    x0, y0, x1, y1 = region
    npix = (x1 - x0) * (y1 - y0)
    kind = "float core (fp32)" if args.arith == "fp32" else "integer core"
    print(f"model: {model_name} ({model.width}×{model.height}, {model.channels} channel(s), "
          f"{len(model.layers)} layers); region {x0},{y0},{x1},{y1} ({npix} pixels); {kind}, lanes {lanes}")

    energy_report = None
    if args.energy:
        from .energy import simulate_energy
        result, info, energy_report = simulate_energy(core, region, clock_hz=clock_hz, stall=args.stall,
                                                      seed=args.seed, progress=not args.no_progress)
    else:
        result, info = simulate(core, region, engine=args.engine, backend=args.backend, stall=args.stall,
                                seed=args.seed, progress=not args.no_progress)
    got = unpack_pixels(result.payloads, model, region)
    want = golden_render(model, region, args.arith, lanes)
    nbad, lines = _mismatches(got, want, region)
    for line in lines:
        print(line)

    if info["cached"] is not None:
        how = "cached" if info["cached"] else f"built in {info['build_seconds']:.1f} s"
        print(f"engine: {result.engine}, simulator {how}")
    else:
        print(f"engine: {result.engine}")
    print(f"cycles: {result.cycles} total, {result.cycles / npix:.2f} per pixel "
          f"(busy low at cycle {result.busy_cycles}); stall probability {args.stall}")
    print(f"simulation speed: {result.cycles_per_second:,.0f} cycles/s ({result.seconds:.3f} s)")

    if orig is not None:
        p = psnr(orig[y0:y1, x0:x1], got)
        print(f"PSNR vs original ({Path(orig_path).name}): {p:.2f} dB")
    else:
        print(f"PSNR vs original: not computed ({orig_error})")
    recorded = {k: v for k, v in model.meta.items()
                if k.lower().startswith("psnr") and isinstance(v, (int, float)) and not isinstance(v, bool)}
    for k, v in sorted(recorded.items()):
        print(f"recorded in the model: {k} = {v:.2f} dB")

    if energy_report is not None:
        from .energy import format_report
        whole = (x1 - x0, y1 - y0) == (model.width, model.height)
        for line in format_report(energy_report, "image" if whole else "region"):
            print(line)
    if args.out is not None:
        save_png(got, args.out, model.pixel_bits)
        print(f"wrote {args.out}")
    if nbad:
        print(f"FAIL: {nbad} of {npix} pixels differ from the {'float32 ' if args.arith == 'fp32' else ''}golden model")
        return 1
    print(f"OK: all {npix} pixels equal the {'float32 ' if args.arith == 'fp32' else ''}golden model")
    return 0


if __name__ == "__main__":
    run_main(main)
