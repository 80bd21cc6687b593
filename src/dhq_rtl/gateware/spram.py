"""The iCE40UP5K's single-port RAM (``SB_SPRAM256KA``) and its simulation model.

:class:`Spram` is one 16 384 × 16-bit single-port RAM. On an iCE40UP
device it elaborates to an ``SB_SPRAM256KA`` instance; anywhere else (the
Python simulator, the compiled simulators, other FPGAs) to a
:class:`~amaranth.lib.memory.Memory` that behaves as Yosys's cell model
(``ice40/cells_sim.v``) does for every use the design makes of it:

* a cycle with ``cs`` high and ``we`` low reads ``addr``; the word is on
  ``rdata`` after the clock edge, and stays there until the next read
  (``rdata`` is only read after a read);
* a cycle with ``cs`` and ``we`` high writes ``wdata`` into the nibbles of
  ``addr`` whose bit of ``mask`` is set (``mask[k]``: bits ``[4k, 4k+4)``);
  the cell model's ``rdata`` is undefined after a write, the design never
  reads it then;
* ``STANDBY``, ``SLEEP`` off and ``POWEROFF`` on (the RAM always powered).

The RAM has no initial contents (hence the load path). Latency: one cycle
from a read to its data; throughput one access per cycle.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Spram", "SPRAM_WORDS", "SPRAM_WIDTH", "has_spram"]

SPRAM_WORDS = 16384
SPRAM_WIDTH = 16


def has_spram(platform):
    """True if ``platform`` is an iCE40UP device (``SB_SPRAM256KA`` exists)."""
    return platform is not None and str(getattr(platform, "device", "")).startswith("iCE40UP")


class Spram(wiring.Component):
    """One ``SB_SPRAM256KA`` (module docstring). Ports: ``addr`` (14 bits),
    ``wdata`` (16), ``mask`` (4 nibble enables), ``we``, ``cs`` (in),
    ``rdata`` (16, out)."""

    addr: In(14)
    wdata: In(SPRAM_WIDTH)
    mask: In(4)
    we: In(1)
    cs: In(1)
    rdata: Out(SPRAM_WIDTH)

    def elaborate(self, platform):
        m = Module()
        if has_spram(platform):
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=self.addr, i_DATAIN=self.wdata, i_MASKWREN=self.mask, i_WREN=self.we,
                i_CHIPSELECT=self.cs, i_CLOCK=ClockSignal(), i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1),
                i_POWEROFF=Const(1, 1), o_DATAOUT=self.rdata)
            return m
        m.submodules.mem = mem = Memory(shape=SPRAM_WIDTH, depth=SPRAM_WORDS, init=[])
        wr = mem.write_port(granularity=4)
        rd = mem.read_port()
        m.d.comb += [
            wr.addr.eq(self.addr), wr.data.eq(self.wdata),
            wr.en.eq(Cat(*[self.cs & self.we & self.mask[k] for k in range(4)])),
            rd.addr.eq(self.addr), rd.en.eq(self.cs & ~self.we),
            self.rdata.eq(rd.data),
        ]
        return m

