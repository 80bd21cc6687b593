"""RTL simulators of the accelerator core: cycle-accurate engines.

Two engines run the *same* RTL and report the same cycle numbers:

* :mod:`.pysim` — Amaranth's Python simulator (slow: thousands of cycles/s,
  needs nothing but Amaranth);
* :mod:`.compiled` — the RTL exported from Amaranth and compiled to C++ with
  Verilator (or CXXRTL), driven by ``sim/driver.cpp`` and cached on disk.

:mod:`.netlist` runs the gates instead of the RTL: the iCE40 netlist Yosys
synthesizes, compiled with Yosys's cell models, driven by the same driver.

:mod:`.stimulus` holds what both share: region packing, the back-pressure
pattern and the result type. The command ``python -m dhq_rtl.sim``
(:func:`dhq_rtl.sim.simulate`) picks an engine; the C++ driver sources are
the top-level ``sim/`` folder (installed as ``dhq_rtl.simdrivers``).
"""

from .stimulus import SimResult, pack_region, ready_pattern, stall_threshold, unpack_pixels, check_region
from .pysim import run_pysim
from .compiled import CompiledSim, ToolchainUnavailable, find_toolchain

__all__ = ["SimResult", "pack_region", "ready_pattern", "stall_threshold", "unpack_pixels",
           "check_region", "run_pysim", "CompiledSim", "ToolchainUnavailable", "find_toolchain"]
