"""Out-of-context timing harness for a single gateware block.

Registered ports all round, so that nextpnr times the block's own
register-to-register paths (``bench/blocks.py``, ``bench/blocks_datapath.py``).
"""

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ooc_harness"]


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
            value = Value.cast(value)
            if isinstance(value, Const):    # e.g. the ready of an always_ready stream
                continue
            (ins if member.flow == In else outs).append(value)
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
    Ports of ``dut`` must be in the ``sync`` domain's world (no other clocks);
    constant ports (the ``ready`` of an ``always_ready`` stream) are left out.
    """
    if not isinstance(dut, wiring.Component):
        raise TypeError(f"ooc_harness needs a wiring.Component, got {type(dut).__name__}")
    if not isinstance(reduce_per_stage, int) or reduce_per_stage < 2:
        raise ValueError(f"reduce_per_stage must be an integer ≥ 2, got {reduce_per_stage!r}")
    return _Harness(dut, reduce_per_stage)
