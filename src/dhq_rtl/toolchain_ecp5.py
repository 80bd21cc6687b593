"""Out-of-context synthesis and place-and-route of a block for the ECP5.

The ECP5 counterparts of :func:`dhq_rtl.synthesis.synth_ice40` and
:func:`dhq_rtl.synthesis.pnr_ice40`, for measuring a single block (with
:func:`dhq_rtl.gateware.ooc.ooc_harness` around it for Fmax): Yosys
``synth_ecp5`` (after :data:`dhq_rtl.build.ECP5_SCRIPT_AFTER_READ`, the
name-clash fix the board build uses) and nextpnr-ecp5 with the pins placed
freely. Results come from files, as in :mod:`dhq_rtl.synthesis`.
"""

import shutil
from pathlib import Path

from amaranth.hdl import Elaboratable

from .build import ECP5_SCRIPT_AFTER_READ
from .errors import ToolchainError
from .reports import parse_nextpnr_report, parse_yosys_stat
from .synthesis import SynthResult, run_tool

__all__ = ["synth_ecp5", "synth_ecp5_cells", "pnr_ecp5", "ECP5_DEVICES"]

#: nextpnr-ecp5 device options.
ECP5_DEVICES = ("12k", "25k", "45k", "85k", "um-25k", "um-45k", "um-85k", "um5g-25k", "um5g-45k", "um5g-85k")


def _workdir(workdir):
    import tempfile
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="dhq_synth_ecp5_"))
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def synth_ecp5(elaboratable, *, top_name="top", workdir=None, timeout=900):
    """Convert ``elaboratable`` (or an RTLIL string) and run Yosys
    ``synth_ecp5 -top <top_name>``; returns a :class:`~dhq_rtl.synthesis.SynthResult`
    (cell counts: ``LUT4``, ``TRELLIS_FF``, ``MULT18X18D``, ``DP16KD``, …)."""
    if not isinstance(top_name, str) or not top_name.isidentifier():
        raise ValueError(f"top_name must be an identifier, got {top_name!r}")
    if isinstance(elaboratable, str):
        text = elaboratable
    else:
        from amaranth.back import rtlil
        if not isinstance(elaboratable, Elaboratable):
            raise TypeError(f"synth_ecp5 needs an Amaranth Elaboratable, got {type(elaboratable).__name__}")
        text = rtlil.convert(elaboratable, name=top_name)
    work = _workdir(workdir)
    (work / "top.il").write_text(text)
    script = ["read_rtlil top.il", ECP5_SCRIPT_AFTER_READ, f"synth_ecp5 -top {top_name}",
              "write_json top.json", "tee -q -o stats.json stat -json"]
    (work / "synth.ys").write_text("\n".join(script) + "\n")
    for stale in ("stats.json", "top.json"):
        (work / stale).unlink(missing_ok=True)
    run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work, log="yosys.log", timeout=timeout)
    if not (work / "stats.json").exists():
        raise ToolchainError(f"yosys exited normally but wrote no stats.json (see {work / 'yosys.log'})")
    return SynthResult(parse_yosys_stat(work / "stats.json"), work, work / "top.json", work / "yosys.log")


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
    if isinstance(netlist, SynthResult):
        netlist = netlist.netlist
    netlist = Path(netlist).resolve()
    work = _workdir(workdir if workdir is not None else netlist.parent)
    if netlist.parent != work.resolve():
        shutil.copyfile(netlist, work / netlist.name)
    (work / "report.json").unlink(missing_ok=True)
    args = [f"--{device}", "--package", package, "--json", netlist.name, "--report", "report.json",
            "--lpf-allow-unconstrained", "--freq", str(freq_mhz), "--seed", str(seed),
            "--timing-allow-fail", "-q", "-l", "nextpnr.log"]
    run_tool("nextpnr-ecp5", args, cwd=work, log="nextpnr.log", timeout=timeout)
    if not (work / "report.json").exists():
        raise ToolchainError(f"nextpnr exited normally but wrote no report.json (see {work / 'nextpnr.log'})")
    return parse_nextpnr_report(work / "report.json")
