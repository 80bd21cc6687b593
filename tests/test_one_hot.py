import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from dhq_rtl.gateware.one_hot import OneHotStates


def test_transitions_keep_one_state_active():
    m = Module()
    go, back = Signal(), Signal()
    states = OneHotStates(m, ("IDLE", "RUN", "DONE"), init="IDLE", name="t")
    with states.state("IDLE"):
        with m.If(go):
            states.next = "RUN"
    with states.state("RUN"):
        with m.If(back):
            states.next = "IDLE"
        with m.Else():
            states.next = "DONE"
    with states.state("DONE"):
        states.next = "DONE"       # staying is no transition
    seen = []

    async def bench(ctx):
        for g, b in [(0, 0), (1, 0), (0, 1), (1, 0), (0, 0), (0, 0)]:
            ctx.set(go, g)
            ctx.set(back, b)
            seen.append(tuple(ctx.get(states.active[n]) for n in ("IDLE", "RUN", "DONE")))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(1, 0, 0), (1, 0, 0), (0, 1, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]


def test_rejects_bad_arguments():
    m = Module()
    m._MustUse__silence = True      # built only for its errors
    with pytest.raises(ValueError, match="distinct"):
        OneHotStates(m, ("A", "A"), init="A", name="t")
    with pytest.raises(ValueError, match="init"):
        OneHotStates(m, ("A", "B"), init="C", name="t")
    with pytest.raises(TypeError, match="names"):
        OneHotStates(m, (), init="A", name="t")
    states = OneHotStates(m, ("A", "B"), init="A", name="t")
    with pytest.raises(RuntimeError, match="inside a state"):
        states.next = "B"
    with pytest.raises(ValueError, match="unknown state"):
        with states.state("C"):
            pass
