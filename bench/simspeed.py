"""Simulation speed: Amaranth pysim vs the compiled simulators, same design, one run.

Measures, for the accelerator core built for the default model (or --model):

1. pysim: simulated cycles/s on a patch of the image;
2. each compiled backend (Verilator, CXXRTL): cold build time (fresh cache,
   by phase) and simulated cycles/s on the same patch (and checks that its
   beats fall in the same cycles as pysim's) and on the whole image;
3. the user's view: wall time of ``python -m dhq_rtl.sim`` on the whole
   image with a cold cache (compile included) and again (compile excluded).

Usage::

    python bench/simspeed.py [--model FILE] [--patch-pixels 32] [--json out.json]
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dhq_rtl.cli import ArgumentParser, run_main
from dhq_rtl.gateware.core import InrCore
from dhq_rtl.golden import GoldenModel
from dhq_rtl.model_image import load
from dhq_rtl.firmware import default_model
from dhq_rtl.outputs import check_output_file, write_file
from dhq_rtl.rtlsim import CompiledSim, run_pysim, unpack_pixels


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _set_cache(path):
    os.environ["DHQ_RTL_CACHE"] = str(path)


def main(argv=None):
    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model image (default: the bundled default model)")
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--patch-pixels", type=int, default=32, help="pixels of the pysim patch (one row)")
    ap.add_argument("--backends", default="verilator,cxxrtl")
    ap.add_argument("--skip-cli", action="store_true", help="skip the end-to-end CLI timings")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)
    if args.json is not None:
        check_output_file(args.json, f"--json {args.json}", inputs={"--model": args.model})

    if args.model:
        model, name = load(args.model), args.model
    else:
        model, name = default_model()
    core = InrCore(model, lanes=args.lanes, dsp="generic")
    whole = (0, 0, model.width, model.height)
    patch = (0, model.height // 2, min(args.patch_pixels, model.width), model.height // 2 + 1)
    golden = GoldenModel(model)
    out = {"machine": _machine(), "model": name, "size": [model.width, model.height], "lanes": args.lanes,
           "patch": patch}
    print(f"machine: {out['machine']}\nmodel: {name} {model.width}x{model.height}, lanes {args.lanes}")

    ref = run_pysim(core, patch)
    assert np.array_equal(unpack_pixels(ref.payloads, model, patch), golden.render(patch))
    out["pysim"] = {"cycles": ref.cycles, "seconds": ref.seconds, "cycles_per_second": ref.cycles_per_second}
    print(f"pysim: patch {patch}: {ref.cycles} cycles in {ref.seconds:.2f} s = {ref.cycles_per_second:,.0f} cycles/s")

    want = golden.render(whole)
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as cache:
            _set_cache(cache)
            t0 = time.perf_counter()
            sim = CompiledSim(core, backend=backend)
            export = time.perf_counter() - t0
            t0 = time.perf_counter()
            sim.build()
            build = time.perf_counter() - t0
            p = sim.run(patch)
            same = (np.array_equal(p.beat_cycles, ref.beat_cycles) and np.array_equal(p.payloads, ref.payloads)
                    and p.cycles == ref.cycles)
            w = sim.run(whole)
            exact = np.array_equal(unpack_pixels(w.payloads, model, whole), want)
        rec = {"rtlil_seconds": export, "build_seconds": build, "build_phases": sim.build_times,
               "patch_cycles_per_second": p.cycles_per_second, "patch_same_cycles_as_pysim": bool(same),
               "image_cycles": w.cycles, "image_seconds": w.seconds, "image_cycles_per_second": w.cycles_per_second,
               "image_bit_exact": bool(exact),
               "speedup_vs_pysim": w.cycles_per_second / ref.cycles_per_second}
        out[backend] = rec
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in sim.build_times.items())
        print(f"{backend}: cold build {build:.1f} s ({phases}); patch same cycles as pysim: {same}; "
              f"whole image {w.cycles} cycles in {w.seconds:.2f} s = {w.cycles_per_second:,.0f} cycles/s "
              f"({rec['speedup_vs_pysim']:.0f}x pysim); bit-exact: {exact}")

    if not args.skip_cli:
        cmd = [sys.executable, "-m", "dhq_rtl.sim", "--no-progress", "--engine", "compiled"]
        if args.model:
            cmd += ["--model", args.model]
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, DHQ_RTL_CACHE=cache)
            for label in ("cold", "warm"):
                t0 = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True, env=env)
                wall = time.perf_counter() - t0
                ok = r.returncode == 0 and "OK: all" in r.stdout
                out[f"cli_{label}_seconds"] = wall
                print(f"CLI whole image, {label} cache: {wall:.1f} s wall (exit {r.returncode}, ok={ok})")
                if not ok:
                    print(r.stdout, r.stderr, file=sys.stderr)
        out["cli_command"] = " ".join(cmd[1:])

    if args.json:
        write_file(args.json, json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
