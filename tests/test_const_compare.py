"""Comparisons with a constant from bit patterns (no carry chain) against
Amaranth's ``<`` and ``>=``, every value of the width."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from dhq_rtl.gateware.const_compare import at_least, below


@pytest.mark.parametrize("width, bounds", [(4, range(-1, 18)), (6, (0, 1, 4, 5, 8, 37, 63, 64, 99))])
def test_below_and_at_least_match_the_comparison(width, bounds):
    value = Signal(width)
    m = Module()
    flags = []
    for b in bounds:
        lt, ge = Signal(name=f"lt_{b + 1}"), Signal(name=f"ge_{b + 1}")
        m.d.comb += [lt.eq(below(value, b)), ge.eq(at_least(value, b))]
        flags.append((b, lt, ge))
    seen = []

    async def bench(ctx):
        for v in range(1 << width):
            ctx.set(value, v)
            for b, lt, ge in flags:
                seen.append((v, b, ctx.get(lt), ctx.get(ge)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == (1 << width) * len(flags)
    for v, b, lt, ge in seen:
        assert (lt, ge) == (int(v < b), int(v >= b)), (v, b)


def test_below_checks_its_bound():
    with pytest.raises(TypeError):
        below(Signal(4), Signal(4))
