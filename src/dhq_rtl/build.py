"""``python -m dhq_rtl.build``: model image → bitstream + utilization reports.

::

    python -m dhq_rtl.build [--board icebreaker|upduino_v3|ulx3s|list] [--model FILE]
                            [--out DIR] [--seed N] [--toolchain yowasp|system]
                            [--lanes N] [--freq MHZ] [--baud N]

Steps: load the model (default: the bundled ``dhq_rtl.firmware/default.dhq``),
estimate its resources and stop with a :class:`~dhq_rtl.errors.FitError` if
it cannot fit, elaborate the board top (:mod:`dhq_rtl.gateware.top`), run
Yosys (``synth_ice40 -dsp`` / ``synth_ecp5``) and nextpnr through Amaranth's
platform build with the selected tools (YoWASP by default), then write
``utilization.json`` and ``utilization.log`` next to the bitstream and the
tool logs (``top.rpt``: Yosys, ``top.tim``: nextpnr) and print a summary.
A timing failure does not stop the build (the bitstream is still written) but
is reported loudly, in the summary and in the JSON (``timing_met: false``),
and the exit status is 1.
"""

import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

from .cli import ArgumentParser, run_main
from .errors import ModelImageError, ToolchainError

__all__ = ["main", "load_default_model", "build", "board_table"]

TOOLS = {"ice40": ("yosys", "nextpnr-ice40", "icepack"), "ecp5": ("yosys", "nextpnr-ecp5", "ecppack")}


def load_default_model():
    """The bundled default model (``dhq_rtl.firmware/default.dhq``); until it
    exists, the agreed stand-in ``random_model(width=32, depth=3, size=128)``."""
    from .model_image import load
    f = resources.files("dhq_rtl.firmware").joinpath("default.dhq")
    if f.is_file():
        with resources.as_file(f) as path:
            return load(path), "dhq_rtl.firmware/default.dhq"
    from .synthetic import random_model
    return random_model(width=32, depth=3, size=128), "random_model(width=32, depth=3, size=128)"


def board_table():
    from .boards import all_boards
    lines = []
    for b in all_boards():
        budget = ", ".join(f"{k.upper()} {v}" for k, v in b.budget.items())
        clock = f"PLL→{b.default_mhz:g} MHz" if b.pll else f"{b.default_mhz:g} MHz internal"
        default = " (default)" if b.name == "icebreaker" else ""
        lines.append(f"{b.name:<12}{default:<10} {b.device:<10} {clock:<16} lanes {b.default_lanes:<3} {budget}")
        lines.append(f"{'':<12}  {b.description}; pins: {b.pins}")
    return "\n".join(lines)


def model_info(model, source):
    mac = model.layers[1:]
    return {
        "source": source, "size": f"{model.width}x{model.height}", "channels": model.channels,
        "hidden_width": model.hidden_width, "sine_layers": model.depth,
        "weight_bits": sorted({l.weight_bits for l in mac}), "act_bits": sorted({l.act_bits for l in mac}),
        "rotate": [bool(l.rotate) for l in model.layers], "phase_bits": model.phase_bits,
    }


def build(model, board, out_dir, *, source="", lanes=None, freq_mhz=None, baud=1_000_000, seed=1,
          toolchain="yowasp", buffers=6, log=print):
    """Build ``model`` for ``board`` into ``out_dir``; returns the report dict."""
    from . import fit
    from .gateware.top import BoardTop
    from .reports import make_report, summary_lines, write_reports
    from .toolchain import parse_nextpnr_report, parse_yosys_stat, toolchain_env

    lanes = board.default_lanes if lanes is None else lanes
    est = fit.estimate(model, board, lanes=lanes, buffers=buffers)
    fit.check_fit(est, board)
    environ = dict(os.environ, DHQ_TOOLCHAIN=toolchain)
    env = dict(environ, **toolchain_env(TOOLS[board.family], environ))

    t0 = time.monotonic()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("top.stat.json", "top.report.json", "top.bin", "top.bit"):
        (out / stale).unlink(missing_ok=True)
    top = BoardTop(model, board, lanes=lanes, freq_hz=freq_mhz * 1e6 if freq_mhz else None,
                   baud=baud, buffers=buffers)
    platform = board.platform()
    overrides = {
        "script_after_synth": "tee -q -o top.stat.json stat -json",
        "nextpnr_opts": f"--report top.report.json --seed {int(seed)} --timing-allow-fail",
    }
    if board.family == "ice40":
        overrides["synth_opts"] = "-dsp"
    log(f"building {board.name} ({board.device}), {lanes} lanes, {top.freq_hz / 1e6:g} MHz, "
        f"tools: {toolchain}, into {out}")
    plan = platform.build(top, name="top", build_dir=str(out), do_build=False, **overrides)
    try:
        plan.execute_local(str(out), env=env)
    except Exception as e:       # subprocess.CalledProcessError from the build script
        tail = ""
        for name in ("top.tim", "top.rpt"):
            p = out / name
            if p.exists():
                text = p.read_text(errors="replace").strip().splitlines()
                errs = [l for l in text if "ERROR" in l or "Error" in l]
                tail = (errs[0] if errs else text[-1]) if text else ""
                if errs:
                    break
        raise ToolchainError(f"the {board.family} build failed ({e.__class__.__name__}); {tail} "
                             f"(logs in {out})") from None
    seconds = time.monotonic() - t0
    bitstream = out / ("top.bin" if board.family == "ice40" else "top.bit")
    if not bitstream.exists():
        raise ToolchainError(f"the build wrote no bitstream {bitstream.name} (logs in {out})")
    pnr = parse_nextpnr_report(out / "top.report.json")
    cells = parse_yosys_stat(out / "top.stat.json") if (out / "top.stat.json").exists() else {}
    params = {"lanes": lanes, "buffers": buffers, "dsp": board.dsp, "clock_mhz": top.freq_hz / 1e6,
              "baud": baud, "seed": seed, "toolchain": toolchain}
    report = make_report(board=board, model_info=model_info(model, source), params=params, pnr=pnr,
                         cells=cells, estimate=est, plan=top.core.plan, clock_hz=top.freq_hz,
                         build_seconds=seconds)
    report["bitstream"] = bitstream.name
    write_reports(report, out)
    for line in summary_lines(report):
        log(line)
    log(f"bitstream {bitstream}, reports utilization.json / utilization.log ({seconds:.0f} s)")
    return report


def main(argv=None):
    from .boards import get_board
    from .model_image import load
    p = ArgumentParser(prog="python -m dhq_rtl.build", description="Build the INR accelerator for a board.")
    p.add_argument("--board", default="icebreaker", help="board name, or 'list' to show the boards")
    p.add_argument("--model", help="model image file (default: the bundled default model)")
    p.add_argument("--out", help="output folder (default: build/<board>)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--toolchain", choices=("yowasp", "system"), default="yowasp")
    p.add_argument("--lanes", type=int, help="multipliers of the MAC array (default: per board)")
    p.add_argument("--freq", type=float, help="core clock in MHz (default: per board)")
    p.add_argument("--baud", type=int, default=1_000_000, help="UART baud rate (default 1000000)")
    args = p.parse_args(argv)
    if args.board == "list":
        print(board_table())
        return 0
    board = get_board(args.board)
    if args.model:
        model, source = load(args.model), args.model
    else:
        model, source = load_default_model()
    out = args.out or os.path.join("build", board.name)
    try:
        report = build(model, board, out, source=source, lanes=args.lanes, freq_mhz=args.freq, baud=args.baud,
                       seed=args.seed, toolchain=args.toolchain)
    except ValueError as e:
        # Parameter errors (lanes, clock, baud) from the constructors.
        from .errors import DhqError
        raise DhqError(str(e)) from None
    return 0 if report["timing_met"] else 1


if __name__ == "__main__":
    run_main(main)
