"""The float (FP32) core next to the integer core: quality, cycles per pixel, resources, Fmax.

::

    python bench/fp32_core.py [--out bench/out/fp32_core] [--model FILE] [--only NAME ...]
                              [--skip-builds] [--skip-sim]

For one model image (default: the bundled model, which carries its float
model):

* **quality**: PSNR against the picture of the float32 golden model
  (``FloatGoldenModel``, the float core's specification, at 1 and 16 lanes),
  of the float model in float64, of the float PyTorch model (``Siren`` with
  the model image's float32 parameters, evaluated by torch on the training
  coordinates) and of the integer golden model; and the PSNR between the
  float32 golden model and the PyTorch model (they differ only in operation
  order and the sine algorithm) with the number of pixels that differ;
* **cycles per pixel**: the whole image in compiled simulation (Verilator)
  for every configuration, each pixel checked against its golden model,
  from the cycle of the first pixel to that of the last;
* **builds**: ``dhq_rtl.build`` of every configuration (the float core on
  the iCEBreaker with its default lanes, on the ULX3S at 4, 8 and 16
  lanes; the integer core's default builds on both boards): logic, flip-
  flops, block RAM, DSPs, Fmax at the board's clock target, and ms per
  image at the measured cycles per pixel and the build's clock.

Results go to ``<out>/fp32_core.json`` (a configuration already there is
not run again; ``--only`` reruns the named ones) and a Markdown table on
stdout.
"""

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from dhq_rtl.boards import get_board
from dhq_rtl.cli import ArgumentParser, run_main
from dhq_rtl.outputs import check_output_folder, write_file

#: (name, board, arith, lanes): lanes None = the build's default.
CONFIGS = [
    ("ice40-fp32", "icebreaker", "fp32", None),
    ("ice40-int", "icebreaker", "int", None),
    ("ecp5-fp32-4", "ulx3s", "fp32", 4),
    ("ecp5-fp32-8", "ulx3s", "fp32", 8),
    ("ecp5-fp32-16", "ulx3s", "fp32", 16),
    ("ecp5-int", "ulx3s", "int", None),
]


def machine():
    return f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"


def torch_render(model):
    """The float PyTorch model of ``model``'s float parameters on the
    training coordinates: ``(pixels, y)``."""
    import torch

    from dhq_rtl.images import to_pixels
    from dhq_rtl.reference.fit import _grid
    from dhq_rtl.reference.siren import Siren

    siren = Siren(model.hidden_width, model.depth, model.channels, model.omega0)
    with torch.no_grad():
        for lin, layer in zip(siren.linears, model.layers):
            lin.weight.copy_(torch.from_numpy(layer.float_weight))
            lin.bias.copy_(torch.from_numpy(layer.float_bias))
        _, c = _grid(model.height, model.width)
        y = siren(c).numpy()
    shape = (model.height, model.width, model.channels)
    return to_pixels(y).reshape(shape), y.reshape(shape)


def quality(model, picture):
    from dhq_rtl.golden import GoldenModel
    from dhq_rtl.golden_float32 import FloatGoldenModel, float64_render
    from dhq_rtl.images import psnr

    torch_px, _ = torch_render(model)
    f64, _ = float64_render(model)
    golden = {P: FloatGoldenModel(model, P).render() for P in (1, 4, 8, 16)}
    out = {"psnr_vs_picture": {
        "float32 golden (1 lane)": psnr(picture, golden[1]), "float32 golden (16 lanes)": psnr(picture, golden[16]),
        "float64": psnr(picture, f64), "pytorch float32": psnr(picture, torch_px),
        "integer golden": psnr(picture, GoldenModel(model).render())}}
    out["float32_golden_vs_pytorch"] = {
        str(P): {"psnr": psnr(torch_px, g), "pixels_differing": int(np.count_nonzero(g != torch_px)),
                 "max_difference": int(np.abs(g.astype(np.int64) - torch_px).max())} for P, g in golden.items()}
    out["float32_golden_vs_float64"] = {str(P): psnr(f64, g) for P, g in golden.items()}
    return out


def simulate(model, board, arith, lanes):
    """Whole image in compiled simulation: cycles per pixel (first to last
    pixel) and whether every pixel equals the golden model."""
    from dhq_rtl.gateware.core import InrCore
    from dhq_rtl.gateware.float32.plan import FloatCorePlan
    from dhq_rtl.rtlsim import CompiledSim, unpack_pixels
    from dhq_rtl.sim import golden_render

    if arith == "fp32":
        # The board's float core (its units, buffers and registers), with
        # generic multipliers (the simulator has no SB_MAC16).
        built = FloatCorePlan.for_board(model, board, lanes=lanes)
        core = InrCore(model, plan=FloatCorePlan(model, lanes=lanes, dsp="generic", buffers=built.buffers,
                                                 units=built.units,
                                                 link_timing_registers=built.link_timing_registers,
                                                 weight_register=built.weight_register))
    else:
        core = InrCore(model, lanes=lanes, dsp="generic")
    region = (0, 0, model.width, model.height)
    t = time.monotonic()
    res = CompiledSim(core).run(region)
    got = unpack_pixels(res.payloads, model, region)
    exact = bool(np.array_equal(got, golden_render(model, region, arith, lanes)))
    bc = res.beat_cycles
    return {"cycles": int(res.cycles), "cycles_per_pixel": (int(bc[-1]) - int(bc[0])) / (len(bc) - 1),
            "plan_cycles_per_pixel": core.plan.cycles_per_pixel(), "bit_exact": exact,
            "sim_seconds": round(time.monotonic() - t, 1)}


def build_one(model, board, arith, lanes, out):
    from dhq_rtl.build import build
    t = time.monotonic()
    rep = build(model, board, out, source="bundled model", lanes=lanes, arith=arith, log=lambda *a: None)
    r = rep["resources"]
    ff = sum(v for k, v in rep["cells"].items() if k.startswith(("SB_DFF", "TRELLIS_FF")))
    logic = "lc" if "lc" in r else "lut"
    return {"lanes": rep["parameters"]["lanes"], "parameters": rep["parameters"],
            "logic": r[logic]["used"], "logic_kind": logic, "logic_available": r[logic]["available"],
            "logic_estimated": r[logic]["estimated"], "ff": ff, "ebr": r["ebr"]["used"],
            "ebr_estimated": r["ebr"]["estimated"], "dsp": r["dsp"]["used"],
            "fmax_mhz": rep["performance"]["core_fmax_mhz"], "clock_mhz": rep["parameters"]["clock_mhz"],
            "timing_met": rep["timing_met"], "attempts": rep.get("clock_attempts", []),
            "build_seconds": round(time.monotonic() - t, 1)}


def table(results, model):
    """The Markdown table of the configurations in ``results`` (the logic
    estimate is the current one, :func:`dhq_rtl.estimate.estimate`)."""
    from dhq_rtl.estimate import estimate
    rows = ["| core | board | lanes | logic (est.) | FF | EBR | DSP | Fmax MHz | clock MHz | timing | "
            "cycles/px (plan) | ms/image @clock | whole image bit-exact |", "|" + "---|" * 13]
    for name, board_name, arith, _ in CONFIGS:
        r = results.get(name)
        if not r or "build" not in r:
            continue
        b, sim = r["build"], r.get("sim", {})
        est = estimate(model, get_board(board_name), lanes=b["lanes"], arith=arith)[b["logic_kind"]]
        cpp = sim.get("cycles_per_pixel")
        cycles = f"{cpp:.1f} ({sim['plan_cycles_per_pixel']:g})" if cpp else ""
        ms = f"{1e3 * r['pixels'] * cpp / (b['clock_mhz'] * 1e6):.1f}" if cpp else ""
        rows.append(f"| {arith} | {board_name} | {b['lanes']} | {b['logic']} {b['logic_kind'].upper()} ({est}) | "
                    f"{b['ff']} | {b['ebr']} | {b['dsp']} | {b['fmax_mhz']} | {b['clock_mhz']:g} | "
                    f"{'met' if b['timing_met'] else 'FAILED'} | {cycles} | {ms} | {sim.get('bit_exact', '')} |")
    return "\n".join(rows)


def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench/out/fp32_core", help="folder of the builds and fp32_core.json")
    p.add_argument("--model", help="model image (default: the bundled model)")
    p.add_argument("--only", nargs="*", help="configurations to (re)run: " + ", ".join(c[0] for c in CONFIGS))
    p.add_argument("--skip-builds", action="store_true")
    p.add_argument("--skip-sim", action="store_true")
    args = p.parse_args(argv)
    from dhq_rtl.firmware import default_model
    from dhq_rtl.golden_float32 import require_float
    from dhq_rtl.images import default_image_path, load_image
    from dhq_rtl.model_image import load

    out = check_output_folder(args.out, f"--out {args.out}", products=["fp32_core.json"],
                              inputs={"--model": args.model})
    for name, *_ in CONFIGS:
        check_output_folder(out / name, f"--out {args.out}")
    model = load(args.model) if args.model else default_model()[0]
    require_float(model)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fp32_core.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = machine()

    def save():
        write_file(path, json.dumps(results, indent=2) + "\n")

    if "quality" not in results or args.only is not None:
        picture = load_image(default_image_path() if not args.model else model.meta.get("image"), model.width,
                             "gray" if model.channels == 1 else "rgb")
        results["quality"] = quality(model, picture)
        save()
    for name, board_name, arith, lanes in CONFIGS:
        if args.only is not None and name not in args.only:
            continue
        board = get_board(board_name)
        r = results.setdefault(name, {"board": board_name, "arith": arith, "pixels": model.width * model.height})
        if args.only is None and "build" in r and "sim" in r:
            continue            # done in an earlier run (--only reruns it)
        if not args.skip_builds:
            r["build"] = build_one(model, board, arith, lanes, out / name)
            save()
        sim_lanes = lanes if lanes is not None else r.get("build", {}).get("lanes")
        if not args.skip_sim and sim_lanes:
            r["sim"] = simulate(model, board, arith, sim_lanes)
            save()
        print(f"{name}: {json.dumps(r)}", file=sys.stderr)
    print(json.dumps(results["quality"], indent=2))
    print(table(results, model))
    return 0


if __name__ == "__main__":
    run_main(main)
