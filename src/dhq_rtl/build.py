"""``python -m dhq_rtl.build``: model image → bitstream + utilization reports.

::

    python -m dhq_rtl.build [--board icebreaker|upduino_v3|ulx3s|list] [--envelope default|large]
                            [--model FILE] [--arith int|fp32] [--out DIR] [--seed N]
                            [--toolchain yowasp|system] [--lanes N] [--freq MHZ] [--baud N]
                            [--multipliers dsp|fabric] [--fixed-model] [--fixed-clock] [--program]

A build makes a bitstream that runs *any* model image inside an envelope
(:mod:`dhq_rtl.envelope`: widest layer, layers, image size, bit widths,
rotation), loaded at run time over the host link (``python -m
dhq_rtl.host``), and starts with one model loaded: ``--envelope NAME``
(default ``default``) with the bundled model ``dhq_rtl.firmware/default.dhq``
or ``--model M``; ``--model M`` without ``--envelope`` shrinks the envelope
to M (the tightest one that holds it). The envelope is printed and written
to ``utilization.json``, and the board's ``INFO`` answers it.

``--arith fp32`` builds the float core (IEEE-754 binary32) for the float
model the model image carries (format version 3), with the largest lane
count whose estimate fits the board unless ``--lanes`` is given. Its
weights are ROMs: no envelope, the board renders its one model over the
same host link and refuses load commands (docs/float32.md).

``--fixed-model`` builds the integer core for the one model it starts with
(:class:`~dhq_rtl.gateware.plan.CorePlan` ``loadable=False``): no envelope
(``--envelope`` is refused), no staging memory, no installer, no
descriptor registers; every memory holds the model from its initial
contents, the weights in block RAM (SPRAM has no initial contents). The
board renders that model over the same host link and refuses load commands
(``NACK FIXED_MODEL``), like the float core. Its lanes are by default
those of the loadable build of the same model, so the cycles per pixel are
the same; the bitstream is smaller and its clock faster (docs/RESULTS.md,
"A fixed model"). The float core's model is always fixed: ``--arith fp32
--fixed-model`` is the same build as ``--arith fp32``. ``utilization.json``
says ``"fixed_model": true`` (``parameters``) and has no ``envelope``.

``--multipliers fabric`` makes the integer core's MAC products in logic
(shift-and-add, :class:`~dhq_rtl.gateware.mac.MacArray` ``dsp="fabric"``),
on any board: no DSP for them, more LUTs (logic cells on iCE40). The
default, ``dsp``, is the board's kind (``SB_MAC16`` on the iCE40UP5K,
``*`` mapped to ``MULT18X18D`` on the ECP5). The float core refuses it (its
FP32 multipliers are DSP pieces). The kind is in ``utilization.json``
(``parameters.multipliers``) and in the summary.

Steps: check the model against the envelope, estimate the envelope's
hardware and stop with a :class:`~dhq_rtl.errors.FitError` if it cannot fit
the board, elaborate the board top (:mod:`dhq_rtl.gateware.top`), run
Yosys (``synth_ice40`` / ``synth_ecp5``) and nextpnr through Amaranth's
platform build with the selected tools (YoWASP by default), then write
``utilization.json`` and ``utilization.log`` next to the bitstream and the
tool logs (``top.rpt``: Yosys, ``top.tim``: nextpnr) and print a summary.
Output folder, options, fit and tools are checked before any tool runs. The
tools run in a fresh attempt folder inside the output folder; a previous
build there is replaced only when the new one succeeds, and a failed or
interrupted build leaves it untouched and says where its logs are
(:mod:`dhq_rtl.build_folder`). If timing fails at the requested clock on a board with a PLL, the build runs
once more at the fastest PLL clock not above the achieved Fmax less a margin
(:data:`FALLBACK_MARGIN`; ``--fixed-clock`` turns this off); the report lists
both attempts. A final timing failure does
not stop the build (the bitstream is still written) but is reported loudly, in
the summary and in the JSON (``timing_met: false``), and the exit status is 1;
such a build does not replace a previous one that met timing.

``--program`` flashes the board after a build that met timing, with
``iceprog`` (iCE40) or ``openFPGALoader`` from ``PATH``; without one it
stops before any tool runs and says how to get one.
"""

import json
import os
import time
from pathlib import Path

from .cli import ArgumentParser, run_main
from .errors import DhqError, ToolchainError
from .gateware.ram import YOSYS_SCRIPT as RAM_SCRIPT

__all__ = ["main", "build", "board_table", "fallback_clock_hz", "board_for_multipliers", "FALLBACK_MARGIN",
           "MULTIPLIERS"]

#: The fallback rebuild aims this fraction below the first attempt's Fmax: a
#: second place-and-route at a lower target lands somewhere else, and with no
#: margin it landed 3 % short of the new clock (W4A4: 44.25 → 42.89 MHz,
#: W16A16: 38.25 → 37.08 MHz), so the build still failed timing.
FALLBACK_MARGIN = 0.05

#: The core's number formats (:data:`dhq_rtl.gateware.core.ARITHMETICS`).
ARITHMETICS = ("int", "fp32")

#: Where the integer core's MAC products go: the board's DSPs (its ``dsp``
#: kind) or fabric logic (``MacArray`` ``dsp="fabric"``).
MULTIPLIERS = ("dsp", "fabric")


def board_for_multipliers(board, multipliers, arith="int"):
    """``board`` as a build with ``multipliers`` sees it: unchanged for
    ``"dsp"``, its DSP kind replaced by ``"fabric"`` for ``"fabric"`` (the
    plan, the estimate and the core then read the fabric kind). The float
    core takes only ``"dsp"`` (:class:`DhqError`)."""
    import dataclasses
    if multipliers not in MULTIPLIERS:
        raise DhqError(f"--multipliers must be one of {', '.join(MULTIPLIERS)}, got {multipliers!r}")
    if multipliers == "dsp":
        return board
    if arith == "fp32":
        raise DhqError("--multipliers fabric applies to the integer core's MAC array; the float core's FP32 "
                       "multipliers stay on DSPs (leave out --multipliers, or build --arith int)")
    return dataclasses.replace(board, dsp="fabric")

TOOLS = {"ice40": ("yosys", "nextpnr-ice40", "icepack"), "ecp5": ("yosys", "nextpnr-ecp5", "ecppack")}

#: Yosys commands run after ``read_rtlil`` for ECP5 boards. Amaranth names the
#: element wires of an array view ``x[0]``, ``x[1]``, ... beside the whole wire
#: ``x``; the ABC9 LUT mapping of ``synth_ecp5`` (Yosys 0.70) names bit k of
#: ``x`` ``x[k]`` as well, so two different nets meet under one name: it merges
#: them or stops on an internal assertion (rtlil.cc:3091). Giving the element
#: wires private ``$`` names (ports are never renamed) removes the clash; the
#: logic is unchanged. iCE40 synthesis (ABC, not ABC9) does not need it.
#: Both families first mark the block RAMs whose read-during-write data is
#: undefined (:mod:`dhq_rtl.gateware.ram`).
ECP5_SCRIPT_AFTER_READ = RAM_SCRIPT + "\nrename -hide w:*]"
#: Yosys commands run after ``read_rtlil`` for iCE40 boards.
ICE40_SCRIPT_AFTER_READ = RAM_SCRIPT


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


#: Programmers ``--program`` looks for on PATH, by FPGA family: (program, arguments before the bitstream).
PROGRAMMERS = {"ice40": [("iceprog", []), ("openFPGALoader", ["-b", "{board}"])],
               "ecp5": [("openFPGALoader", ["-b", "{board}"])]}


def find_programmer(board):
    """``[program, args…]`` to flash ``board`` (a bitstream path follows),
    or a :class:`DhqError` saying how to get a programmer."""
    import shutil
    for name, args in PROGRAMMERS.get(board.family, []):
        path = shutil.which(name)
        if path:
            return [path] + [a.format(board=board.name) for a in args]
    names = " or ".join(n for n, _ in PROGRAMMERS.get(board.family, [])) or "a programmer"
    raise DhqError(f"--program needs {names} on PATH: install openFPGALoader (e.g. apt install openfpgaloader, "
                   f"or from https://github.com/trabucayre/openFPGALoader) or icestorm's iceprog (apt install "
                   f"fpga-icestorm); or build without --program and flash the bitstream yourself")


def program_board(command, bitstream, log=print):
    """Run the programmer on ``bitstream``; a failure is a :class:`ToolchainError`."""
    import subprocess
    log(f"programming the board: {' '.join(command + [str(bitstream)])}")
    try:
        out = subprocess.run(command + [str(bitstream)], capture_output=True, text=True)
    except OSError as e:
        raise ToolchainError(f"cannot run {command[0]}: {e.strerror}") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or [f"exit status {out.returncode}"]
        raise ToolchainError(f"{command[0]} failed: {tail[0]} (is the board plugged in?)")


def model_info(model, source, arith="int"):
    """The model's part of ``utilization.json``: its shape, every layer's bits
    and the recipe that chose them (when the model records one); for the
    float core (``arith="fp32"``) its shape and number format."""
    from .model_image import layer_bits_text

    mac = model.layers[1:]
    if arith == "fp32":
        return {
            "source": source, "size": f"{model.width}x{model.height}", "channels": model.channels,
            "hidden_width": model.hidden_width, "sine_layers": model.depth,
            "arith": "float32 (the float model in the model image)", "omega0": model.omega0,
        }
    return {
        "source": source, "size": f"{model.width}x{model.height}", "channels": model.channels,
        "hidden_width": model.hidden_width, "sine_layers": model.depth,
        "weight_bits": sorted({l.weight_bits for l in mac}), "act_bits": sorted({l.act_bits for l in mac}),
        "rotate": [bool(l.rotate) for l in model.layers], "phase_bits": model.phase_bits,
        "layer_bits": [{"weight": l.weight_bits, "input": l.act_bits if i else None}
                       for i, l in enumerate(model.layers)],
        "recipe": model.meta.get("recipe"), "bits_text": layer_bits_text(model),
    }


def build(model, board, out_dir, *, source="", envelope=None, lanes=None, freq_mhz=None, baud=None, seed=1,
          toolchain=None, buffers=None, fallback=True, inputs=None, log=print, program=False, arith="int",
          energy=False, multipliers="dsp", fixed_model=False):
    """Build the core of ``envelope`` (default: the tightest around
    ``model``) for ``board``, starting with ``model`` loaded, into
    ``out_dir``; returns the report dict.

    Everything that can be wrong with the arguments is checked before any
    tool runs: the output folder (:class:`~dhq_rtl.build_folder.BuildFolder`;
    none of its files may be one of ``inputs``, label → path), the options
    (:func:`check_options`), the fit, and the tools (``toolchain``: ``"yowasp"``
    or ``"system"``; default: ``DHQ_TOOLCHAIN``, else YoWASP). The tools run in
    a fresh attempt folder; the previous build in ``out_dir`` is replaced only
    when the new one succeeds (see :mod:`dhq_rtl.build_folder`).

    Clock: the first attempt runs at ``freq_mhz`` (default: the board's
    target). If it fails timing, the board has a PLL and ``fallback`` is
    true, the build is run once more at :func:`fallback_clock_hz` (the
    highest frequency the PLL can make at or below the achieved Fmax less
    :data:`FALLBACK_MARGIN`, room for the second place-and-route to land
    lower). Both attempts are
    in the report (``clock_attempts``); the first attempt's nextpnr log is
    kept as ``top.attempt1.tim``.

    ``arith``: ``"int"`` (the integer core, ``lanes`` default: the board's)
    or ``"fp32"`` (the float core, ``lanes`` default: the largest whose
    estimate fits, :func:`~dhq_rtl.estimate.default_float_lanes`).

    ``multipliers``: ``"dsp"`` (the board's DSP kind) or ``"fabric"`` (the
    integer core's MAC products in logic; :func:`board_for_multipliers`).

    ``fixed_model``: the core runs ``model`` only (module docstring; no
    ``envelope``); the float core's model is fixed whatever it says.

    ``energy``: also simulate the built core rendering the whole image with
    activity counting and add its energy per image to the report
    (:func:`dhq_rtl.energy.build_entry`; the activity simulator is cached).
    """
    from .build_folder import BuildFolder
    from .toolchain import toolchain_env, toolchain_kind

    folder = BuildFolder(out_dir)
    folder.check(inputs)
    board, baud, envelope, lanes, fixed_model, est = _checked_core(
        model, board, arith=arith, multipliers=multipliers, baud=baud, fixed_model=fixed_model,
        envelope=envelope, lanes=lanes, buffers=buffers, freq_mhz=freq_mhz, seed=seed)
    programmer = find_programmer(board) if program else None
    if energy:
        from .rtlsim.compiled import find_toolchain
        find_toolchain("verilator")     # a missing compiler stops here, before any tool runs
    if envelope is not None:
        what = envelope.describe()
    else:
        what = "float core (fp32), its model fixed" if arith == "fp32" else "integer core, its model fixed"
    log(what + f"; {lanes} lanes")
    toolchain = toolchain or toolchain_kind()
    environ = dict(os.environ, DHQ_TOOLCHAIN=toolchain)
    env = dict(environ, **toolchain_env(TOOLS[board.family], environ))  # a missing tool stops here
    t_start = time.monotonic()
    attempt = folder.start_attempt()
    try:
        report, attempts = _build_with_fallback(
            model, board, attempt, est, freq_hz=freq_mhz * 1e6 if freq_mhz is not None else None,
            fallback=fallback, log=log, source=source, envelope=envelope, lanes=lanes, baud=baud, seed=seed,
            toolchain=toolchain, env=env, buffers=buffers, arith=arith, multipliers=multipliers,
            fixed_model=fixed_model)
        from .reports import summary_lines, write_reports
        if energy:
            from .energy import build_entry
            log("energy: simulating the whole image with activity counting")
            report["energy"] = build_entry(model, board, clock_hz=report["parameters"]["clock_mhz"] * 1e6,
                                           lanes=lanes, envelope=envelope, buffers=buffers, log=log, arith=arith,
                                           fixed_model=fixed_model and arith == "int")
        report["clock_attempts"] = attempts
        report["build_seconds"] = round(time.monotonic() - t_start, 1)
        report["files"] = sorted(set(folder.files(attempt)) | {"utilization.json", "utilization.log"})
        write_reports(report, attempt)
    except DhqError as e:       # a tool failed, a report could not be written, ...
        folder.discard_if_empty(attempt)
        raise type(e)(f"{e}{folder.kept_note()}") from None
    except BaseException as e:
        if folder.discard_if_empty(attempt):
            raise
        what = "interrupted" if isinstance(e, KeyboardInterrupt) else "the build stopped"
        log(f"{what}{folder.kept_note()}; the unfinished attempt is in {attempt}")
        raise
    if report["timing_met"] or not folder.holds_timing_met_build():
        folder.publish(attempt, report["files"])
        where = folder.path.resolve()
    else:
        log(f"timing failed: the previous build in {folder.path}, which met timing, is kept; "
            f"this build is in {attempt}")
        where = attempt
    for line in summary_lines(report):
        log(line)
    log(f"bitstream {where / report['bitstream']}, reports utilization.json / utilization.log "
        f"({report['build_seconds']:.0f} s)")
    if programmer is not None:
        if report["timing_met"]:
            program_board(programmer, where / report["bitstream"], log=log)
        else:
            log("not programming the board: the build failed timing")
    return report


def _checked_core(model, board, *, arith, multipliers, baud, fixed_model, envelope, lanes, buffers, freq_mhz,
                  seed):
    """The options of :func:`build` checked and the core's shape and
    estimate, before any tool runs: ``(board, baud, envelope, lanes,
    fixed_model, estimate)`` (the board as the products' kind makes it;
    ``fixed_model`` true for the float core too). Raises a
    :class:`~dhq_rtl.errors.DhqError` (or :class:`FitError`) naming what is
    wrong."""
    from .estimate import check_fit, estimate, lanes_that_fit
    from .gateware.top import DEFAULT_BAUD, board_core_shape

    if arith not in ARITHMETICS:
        raise DhqError(f"--arith must be one of {', '.join(ARITHMETICS)}, got {arith!r}")
    board = board_for_multipliers(board, multipliers, arith)
    baud = DEFAULT_BAUD if baud is None else baud
    if not isinstance(fixed_model, bool):
        raise TypeError(f"fixed_model must be a bool, not {fixed_model!r}")
    if arith == "fp32" and envelope is not None:
        raise DhqError("--envelope applies to the integer core: the float core's model is fixed")
    if fixed_model and envelope is not None:
        raise DhqError("--envelope and --fixed-model exclude each other: a fixed model's core runs that model "
                       "only (leave out --envelope)")
    fixed_model = fixed_model or arith == "fp32"
    envelope, lanes = board_core_shape(model, board, arith=arith, envelope=envelope, lanes=lanes, buffers=buffers,
                                       fixed_model=fixed_model)
    if envelope is not None:
        envelope.check(model)                # the model the board starts with, against the envelope
    check_options(board, lanes=lanes, freq_mhz=freq_mhz, baud=baud, seed=seed)
    # The core (the envelope's, or the float core) against the board.
    est = estimate(model, board, lanes=lanes, buffers=buffers, envelope=envelope, arith=arith,
                   fixed_model=fixed_model)
    check_fit(est, board, fitting_lanes=lambda: lanes_that_fit(model, board, below=lanes, buffers=buffers,
                                                               envelope=envelope, arith=arith,
                                                               fixed_model=fixed_model))
    return board, baud, envelope, lanes, fixed_model, est


def check_options(board, *, lanes, freq_mhz, baud, seed):
    """Refuse options that are not finite, out of range, or that ``board``
    cannot honour (a clock on a board without a PLL, a clock its PLL cannot
    make, a baud rate the clock cannot divide down to), before any work."""
    import math

    from .gateware.top import ecp5_pll_params, ice40_pll_params
    from .gateware.uart import uart_divisor

    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or lanes & (lanes - 1):
        raise DhqError(f"--lanes must be a power of two ≥ 1, got {lanes!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise DhqError(f"--seed must be an integer in 0..{2**31 - 1}, got {seed!r}")
    if freq_mhz is not None:
        if not isinstance(freq_mhz, (int, float)) or not math.isfinite(freq_mhz) or freq_mhz <= 0:
            raise DhqError(f"--freq must be a positive number of MHz, got {freq_mhz!r}")
        if board.pll is None and freq_mhz != board.default_mhz:
            raise DhqError(f"--freq {freq_mhz:g}: the {board.name} has no PLL and always runs at "
                           f"{board.default_mhz:g} MHz; leave out --freq")
        params = {"ice40": ice40_pll_params, "ecp5": ecp5_pll_params}.get(board.pll)
        if params is not None:
            try:
                params(board.ref_hz, freq_mhz * 1e6)
            except ValueError as e:
                raise DhqError(f"--freq {freq_mhz:g}: {e} (within 1 %); choose another clock") from None
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise DhqError(f"--baud must be a positive integer, got {baud!r}")
    clock_hz = board.default_mhz * 1e6 if freq_mhz is None else freq_mhz * 1e6
    try:
        uart_divisor(clock_hz, baud)
    except ValueError as e:
        raise DhqError(f"--baud {baud}: {e}") from None


def fallback_clock_hz(board, fmax_mhz, margin=FALLBACK_MARGIN, baud=None):
    """The clock of the fallback rebuild: the fastest the board's PLL makes at
    or below ``fmax_mhz·(1 − margin)`` (Hz) — with ``baud``, one the UART
    divides that rate from within 2 % —, or None (no PLL, or nothing that
    slow)."""
    from .gateware.top import pll_frequency_at_most

    if board.pll is None or not fmax_mhz or not 0 <= margin < 1:
        return None
    return pll_frequency_at_most(board.pll, board.ref_hz, fmax_mhz * (1 - margin) * 1e6, baud=baud)


def _build_with_fallback(model, board, attempt, est, *, freq_hz, fallback, log, baud, **kw):
    """Run :func:`_build_once` at ``freq_hz``; if it fails timing (and
    ``fallback``, a PLL, an fmax), once more at :func:`fallback_clock_hz`
    (with its margin, else at or below the fmax), keeping the first
    attempt's nextpnr log as ``top.attempt1.tim``.
    Returns the last report and every attempt's summary."""
    attempts = []
    while True:
        report = _build_once(model, board, attempt, est, freq_hz=freq_hz, baud=baud, log=log, **kw)
        core_fmax = report["performance"]["core_fmax_mhz"]
        attempts.append({"clock_mhz": report["parameters"]["clock_mhz"], "fmax_mhz": core_fmax,
                         "timing_met": report["timing_met"],
                         "build_seconds": report["build_seconds"]})
        if report["timing_met"] or not fallback or board.pll is None or len(attempts) > 1 or not core_fmax:
            return report, attempts
        f_new, below = fallback_clock_hz(board, core_fmax, baud=baud), f"{FALLBACK_MARGIN:.0%} or more below"
        if not f_new:
            # No clock that far below (a core just above the slowest clock
            # the UART allows): the fastest at or below the fmax, checked
            # by the rebuild like any other.
            f_new, below = fallback_clock_hz(board, core_fmax, margin=0, baud=baud), "at or below"
        if not f_new:
            return report, attempts
        log(f"timing failed at {report['parameters']['clock_mhz']:g} MHz (fmax {core_fmax:g} MHz); "
            f"rebuilding at {f_new / 1e6:g} MHz, the fastest clock the board makes {below} "
            f"the achieved fmax{' (its reference, no PLL)' if f_new == board.ref_hz else ''}")
        (attempt / "top.tim").replace(attempt / "top.attempt1.tim")
        freq_hz = f_new


#: Options of every nextpnr-ice40 run of a board build.
ICE40_NEXTPNR_OPTS = "--opt-timing"
#: nextpnr-ice40's heap placer spreads cells to at most 90 % density
#: (``--placer-heap-beta``); near the UP5K's logic-cell limit (the default
#: build: 95 % of the cells, plus 75 to legalise carry chains) it can then
#: fail to legalise a design at some seeds. Such a build is placed once
#: more at 95 % density (which placed the default build whose seed-1 run
#: had failed, at 50.1 MHz; lifting the placer's per-cell try limit
#: instead failed too); the report says so (``placement_retry``).
ICE40_LEGALISATION_FAILURE = "Unable to find legal placement"
ICE40_PLACEMENT_RETRY_OPTS = "--placer-heap-beta 0.95"

# The deepest paths of the netlist listed in an iCE40 build's report (docs/timing.md).
LOGIC_PATHS_REPORTED = 8


def _execute(platform, top, out, env, board, overrides):
    """Write the toolchain's script for ``top`` into ``out`` and run it; a
    tool's failure is a :class:`ToolchainError` naming its first error."""
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


def _build_once(model, board, out, est, *, source, envelope, lanes, freq_hz, baud, seed, toolchain, env, buffers,
                log, arith="int", multipliers="dsp", fixed_model=False):
    """One synthesis + place-and-route run in ``out`` at ``freq_hz`` (None: the board's default)."""
    from .gateware.top import BoardTop
    from .reports import make_report, parse_nextpnr_report, parse_yosys_stat
    from .logic_paths import deepest_paths
    from .synthesis import check_dsp_cells

    t0 = time.monotonic()
    for stale in ("top.stat.json", "top.report.json", "top.bin", "top.bit"):
        (out / stale).unlink(missing_ok=True)
    def new_top():      # a design elaborates once: a second run needs a new one
        return BoardTop(model, board, envelope=envelope, lanes=lanes, freq_hz=freq_hz, baud=baud, buffers=buffers,
                        arith=arith, fixed_model=fixed_model and arith == "int")
    top = new_top()
    platform = board.platform()
    overrides = {
        "script_after_synth": "tee -q -o top.stat.json stat -json",
        "nextpnr_opts": f"--report top.report.json --seed {int(seed)} --timing-allow-fail",
    }
    if board.family == "ice40":
        overrides["script_after_read"] = ICE40_SCRIPT_AFTER_READ
        # nextpnr's post-placement timing pass: +4 to +6 % Fmax on the
        # default build over two placement seeds (docs/RESULTS.md, "iCE40
        # DSPs as designed").
        overrides["nextpnr_opts"] += " " + ICE40_NEXTPNR_OPTS
    elif board.family == "ecp5":
        overrides["script_after_read"] = ECP5_SCRIPT_AFTER_READ
    log(f"building {board.name} ({board.device}), {'float core, ' if arith == 'fp32' else ''}"
        f"{'fixed model, ' if fixed_model and arith == 'int' else ''}{lanes} lanes, "
        f"{'MAC products in fabric, ' if multipliers == 'fabric' else ''}"
        f"{top.freq_hz / 1e6:g} MHz, "
        f"tools: {toolchain}, into {out}")
    placement_retry = False
    try:
        _execute(platform, top, out, env, board, overrides)
    except ToolchainError as e:
        if board.family != "ice40" or ICE40_LEGALISATION_FAILURE not in str(e):
            raise
        # At the utilisation limit the heap placer can fail to spread the
        # cells: run once more at a higher density (ICE40_PLACEMENT_RETRY_OPTS).
        log(f"nextpnr could not legalise the placement at the first try; placing again with "
            f"{ICE40_PLACEMENT_RETRY_OPTS}")
        overrides["nextpnr_opts"] += " " + ICE40_PLACEMENT_RETRY_OPTS
        top = new_top()
        _execute(board.platform(), top, out, env, board, overrides)
        placement_retry = True
    seconds = time.monotonic() - t0
    bitstream = out / ("top.bin" if board.family == "ice40" else "top.bit")
    if not bitstream.exists():
        raise ToolchainError(f"the build wrote no bitstream {bitstream.name} (logs in {out})")
    try:
        pnr = parse_nextpnr_report(out / "top.report.json")
        cells = parse_yosys_stat(out / "top.stat.json") if (out / "top.stat.json").exists() else {}
        paths = None
        if board.family == "ice40":
            # Every DSP is an explicit instance: the netlist must have them as built.
            check_dsp_cells((out / "top.il").read_text(), out / "top.json")
            try:
                paths = deepest_paths(json.loads((out / "top.json").read_text()), count=LOGIC_PATHS_REPORTED)
            except DhqError:
                paths = None    # a netlist without a flattened top: the report goes without them
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ToolchainError(f"the tools wrote no readable report ({type(e).__name__}: {e}) "
                             f"(logs in {out})") from None
    plan = top.core.plan
    params = {"arith": arith, "lanes": lanes, "buffers": plan.buffers, "dsp": board.dsp, "multipliers": multipliers,
              "clock_mhz": top.pll_hz / 1e6, "baud": baud, "uart_divisor": top.divisor, "seed": seed,
              "toolchain": toolchain, "fixed_model": not plan.loadable}
    if board.family == "ice40":
        params["placement_retry"] = placement_retry
    if arith == "fp32":
        u = plan.units
        params.update(sine_ii=u.sine_ii, mul_latency=u.mul_latency, add_latency=u.add_latency,
                      sine_latency=u.sine_latency)
        info = dict(model_info(model, source, arith), model_image_crc=f"{top.model_crc:08x}")
    elif plan.loadable:
        info = dict(model_info(model, source, arith), load_image_crc=f"{top.model_crc:08x}")
    else:
        info = dict(model_info(model, source, arith), model_image_crc=f"{top.model_crc:08x}")
    report = make_report(board=board, model_info=info, params=params, pnr=pnr,
                         cells=cells, estimate=est, plan=plan, clock_hz=top.pll_hz,
                         build_seconds=seconds, logic_paths=paths)
    if plan.loadable:
        report["envelope"] = dict(envelope.as_dict(), lanes=lanes, signature=f"{plan.signature:08x}",
                                  weights_in_spram=plan.weights_in_spram, direct_reads=plan.direct,
                                  staging_bytes=2 * plan.staging_depth)
    report["bitstream"] = bitstream.name
    return report


def main(argv=None):
    from .boards import get_board
    from .firmware import default_model
    from .model_image import load
    from .envelope import ENVELOPES, get_envelope
    p = ArgumentParser(prog="python -m dhq_rtl.build", description="Build the INR accelerator for a board.")
    p.add_argument("--board", default="icebreaker", help="board name, or 'list' to show the boards")
    p.add_argument("--envelope", choices=sorted(ENVELOPES),
                   help="the models the bitstream runs (default: 'default', or the tightest around --model)")
    p.add_argument("--model", help="model image the board starts with (default: the bundled default model)")
    p.add_argument("--out", help="output folder (default: build/<board>); a previous build there is replaced "
                                 "only when the new one succeeds")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--toolchain", choices=("yowasp", "system"), default=None,
                   help="yowasp (the PyPI builds) or system (yosys/nextpnr from PATH); default: "
                        "$DHQ_TOOLCHAIN, else yowasp")
    p.add_argument("--arith", choices=ARITHMETICS, default="int",
                   help="int: the integer (DHQ) core (default); fp32: the IEEE-754 binary32 core for the float model "
                        "the model image carries")
    p.add_argument("--lanes", type=int, help="multipliers of the MAC array, a power of two (default: per board; "
                                             "fp32: the largest that fits)")
    p.add_argument("--freq", type=float, help="core clock in MHz (default: per board; boards with a PLL only)")
    p.add_argument("--baud", type=int, help="UART baud rate (default 3000000)")
    p.add_argument("--multipliers", choices=MULTIPLIERS, default="dsp",
                   help="the integer core's MAC products: dsp (the board's DSP blocks, default) or fabric "
                        "(shift-and-add in logic: no DSP, more LUTs)")
    p.add_argument("--fixed-model", action="store_true",
                   help="the integer core for the one model it starts with: no envelope, no load path (load "
                        "commands refused), smaller and faster; the float core's model is always fixed")
    p.add_argument("--fixed-clock", action="store_true",
                   help="do not rebuild at a lower PLL clock when timing fails")
    p.add_argument("--energy", action="store_true",
                   help="also simulate the whole image with activity counting and report the energy per "
                        "image (docs/energy.md; the activity simulator is cached per model)")
    p.add_argument("--program", action="store_true",
                   help="flash the board after the build (iceprog or openFPGALoader on PATH)")
    args = p.parse_args(argv)
    if args.board == "list":
        print(board_table())
        return 0
    board = get_board(args.board)
    if args.model:
        model, source = load(args.model), args.model
    else:
        model, source = default_model()
    if args.envelope is not None:
        envelope = get_envelope(args.envelope)
    else:
        envelope = None if args.model or args.arith == "fp32" or args.fixed_model else get_envelope("default")
    out = args.out if args.out is not None else os.path.join("build", board.name)
    try:
        report = build(model, board, out, source=source, envelope=envelope, lanes=args.lanes, freq_mhz=args.freq,
                       baud=args.baud, seed=args.seed, toolchain=args.toolchain, fallback=not args.fixed_clock,
                       inputs={"--model": args.model}, program=args.program, arith=args.arith,
                       energy=args.energy, multipliers=args.multipliers, fixed_model=args.fixed_model)
    except ValueError as e:
        # Parameter errors the constructors find (a lane count this model's core cannot use).
        raise DhqError(str(e)) from None
    return 0 if report["timing_met"] else 1


if __name__ == "__main__":
    run_main(main)
