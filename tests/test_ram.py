"""Block-RAM read ports with undefined read-during-write data (``gateware/ram.py``).

rtl: a memory of 16 words, one write port, one port from :func:`read_port`.
ref: the memory's words as a Python list; a read of the address written in
the same cycle gives :data:`POISON` (simulation) or the old word (under
:func:`no_collision_check`). Synthesis: the port maps to a bare block RAM.
"""

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib.memory import Memory

from dhq_rtl.gateware.ram import POISON, YOSYS_SCRIPT, memory_attrs, no_collision_check, read_port

from tests.testbench import run_sim

WIDTH, DEPTH = 12, 16


class _Dut(Elaboratable):
    def __init__(self, *, amaranth_port=False):
        #: Amaranth's own read port (old word on a collision) instead.
        self.amaranth_port = amaranth_port
        self.waddr, self.wdata, self.we = Signal(4), Signal(WIDTH), Signal()
        self.raddr, self.ren, self.rdata = Signal(4), Signal(init=1), Signal(WIDTH)
        self.ren_q = Signal()       # a register: the module has a process, as every real one does

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=WIDTH, depth=DEPTH, init=range(DEPTH),
                                        attrs=None if self.amaranth_port else memory_attrs())
        wr = mem.write_port()
        m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.we)]
        rd = mem.read_port() if self.amaranth_port else read_port(m, mem, platform)
        m.d.comb += [rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.rdata.eq(rd.data)]
        m.d.sync += self.ren_q.eq(self.ren)
        return m


def _run(dut, steps):
    """``steps``: (write (addr, data) or None, read addr, read enable); returns
    the data after each step's clock edge."""
    got = []

    async def bench(ctx):
        for write, raddr, ren in steps:
            ctx.set(dut.we, write is not None)
            if write is not None:
                ctx.set(dut.waddr, write[0])
                ctx.set(dut.wdata, write[1])
            ctx.set(dut.raddr, raddr)
            ctx.set(dut.ren, ren)
            await ctx.tick()
            got.append(ctx.get(dut.rdata))

    run_sim(dut, [bench])
    return got


STEPS = [(None, 3, 1),              # 3
         ((5, 100), 3, 1),          # 3: another address
         ((3, 200), 3, 1),          # collision
         (None, 3, 1),              # 200: the write landed
         ((7, 300), 7, 0),          # no read: the data holds (poisoned still)
         (None, 7, 1),              # 300
         ((7, 400), 7, 1),          # collision
         ((8, 500), 8, 0),          # held
         ]


def test_ref_vs_rtl_poison_on_collision():
    poison = POISON & ((1 << WIDTH) - 1)
    assert _run(_Dut(), STEPS) == [3, 3, poison, 200, 200, 300, poison, poison]


def test_ref_vs_rtl_old_word_without_the_check():
    with no_collision_check():
        dut = _Dut()
        got = _run(dut, STEPS)
    assert got == [3, 3, 3, 200, 200, 300, 300, 300]


def test_poison_is_not_a_plausible_word():
    # Alternating bits, the low bit set: not 0, not all ones, odd.
    width = WIDTH
    p = POISON & ((1 << width) - 1)
    assert p not in (0, (1 << width) - 1) and p & 1 and (p >> 1) & 1 == 0


def test_memory_without_the_attribute_is_refused():
    m = Module()
    mem = Memory(shape=8, depth=4, init=[])
    mem.write_port()
    with pytest.raises(ValueError, match="memory_attrs"):
        read_port(m, mem, None)


def test_combinational_port_is_refused():
    m = Module()
    mem = Memory(shape=8, depth=4, init=[], attrs=memory_attrs())
    mem.write_port()
    with pytest.raises(ValueError, match="combinational"):
        read_port(m, mem, None, domain="comb")


def test_memory_attrs():
    assert memory_attrs() == {"no_rw_check": 1}
    assert memory_attrs(block_ram=True) == {"no_rw_check": 1, "ram_style": "block"}


def test_script_covers_port_counts():
    lines = YOSYS_SCRIPT.splitlines()
    assert lines[:2] == ["proc", "memory_collect"]
    assert "setparam -set RD_COLLISION_X_MASK 1'b1 t:$mem_v2 a:no_rw_check %i r:RD_PORTS=1 %i r:WR_PORTS=1 %i" in lines
    assert "setparam -set RD_COLLISION_X_MASK 8'b11111111 t:$mem_v2 a:no_rw_check %i r:RD_PORTS=4 %i r:WR_PORTS=2 %i" \
        in lines


def test_synthesis_maps_a_bare_block_ram():
    """With the attribute, the port is one SB_RAM40_4K and no flip-flop;
    Amaranth's own port (old word on a collision) costs Yosys's emulation:
    a delayed write and a bypass, flip-flops and LUTs per data bit."""
    from amaranth.back import rtlil
    from dhq_rtl.synthesis import synth_ice40_cells

    def cells(dut):
        with no_collision_check():      # (as the out-of-context synthesis converts)
            text = rtlil.convert(dut, name="top", ports=[dut.waddr, dut.wdata, dut.we, dut.raddr, dut.ren,
                                                         dut.rdata, dut.ren_q])
        return synth_ice40_cells(text)

    bare, emulated = cells(_Dut()), cells(_Dut(amaranth_port=True))
    flops = lambda cells: sum(n for kind, n in cells.items() if kind.startswith("SB_DFF"))
    assert bare.get("SB_RAM40_4K") == 1 and emulated.get("SB_RAM40_4K") == 1
    assert flops(bare) == 1 and bare.get("SB_LUT4", 0) <= 2      # (ren_q)
    assert flops(emulated) >= WIDTH and emulated.get("SB_LUT4", 0) >= WIDTH
