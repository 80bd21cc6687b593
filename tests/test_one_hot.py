# amaranth: UnusedElaboratable=no
"""The one-hot state machine helper: one flip-flop per state, exactly one
set, moves as ``m.next`` would; its arguments checked."""

import pytest
from amaranth.hdl import Elaboratable, Module, Signal

from dhq_rtl.gateware.one_hot import OneHotStates

from tests.testbench import run_sim


class _Counter(Elaboratable):
    """A three-state machine: A → B while ``go``, B → C, C → A."""

    def __init__(self):
        self.go = Signal()
        self.m = m = Module()
        self.fsm = fsm = OneHotStates(m, ["A", "B", "C"], "A", name="t")
        with fsm.state("A"):
            with m.If(self.go):
                fsm.goto("B")
        with fsm.state("B"):
            fsm.goto("C")
        with fsm.state("C"):
            fsm.goto("A")

    def elaborate(self, platform):
        return self.m


def test_one_hot_states_step_like_a_state_machine():
    dut = _Counter()
    seen = []

    async def tb(ctx):
        for go in (0, 0, 1, 0, 0, 1, 1, 1):
            ctx.set(dut.go, go)
            bits = tuple(ctx.get(dut.fsm.on[n]) for n in "ABC")
            seen.append(bits)
            await ctx.tick()

    run_sim(dut, [tb])
    a, b, c = (1, 0, 0), (0, 1, 0), (0, 0, 1)
    assert seen == [a, a, a, b, c, a, b, c]
    assert all(sum(bits) == 1 for bits in seen)


def test_one_hot_states_check_their_arguments():
    m = Module()
    with pytest.raises(ValueError, match="initial state"):
        OneHotStates(m, ["A", "B"], "C", name="t")
    with pytest.raises(ValueError, match="must differ"):
        OneHotStates(m, ["A", "A"], "A", name="t")
    with pytest.raises(TypeError, match="non-empty strings"):
        OneHotStates(m, [], "A", name="t")
    fsm = OneHotStates(m, ["A", "B"], "A", name="t")
    with pytest.raises(RuntimeError, match="outside a state"):
        fsm.goto("B")
    with pytest.raises(ValueError, match="no state"):
        with fsm.state("A"):
            fsm.goto("Z")


def test_staying_is_no_transition_and_each_state_leaves_once():
    """A state that moves to itself stays set; branches move to different states."""
    m = Module()
    go, back = Signal(), Signal()
    states = OneHotStates(m, ("IDLE", "RUN", "DONE"), init="IDLE", name="t")
    with states.state("IDLE"):
        with m.If(go):
            states.goto("RUN")
    with states.state("RUN"):
        with m.If(back):
            states.goto("IDLE")
        with m.Else():
            states.goto("DONE")
    with states.state("DONE"):
        states.goto("DONE")
    seen = []

    async def bench(ctx):
        for g, b in [(0, 0), (1, 0), (0, 1), (1, 0), (0, 0), (0, 0)]:
            ctx.set(go, g)
            ctx.set(back, b)
            seen.append(tuple(ctx.get(states.on[n]) for n in ("IDLE", "RUN", "DONE")))
            await ctx.tick()

    run_sim(m, [bench])
    assert seen == [(1, 0, 0), (1, 0, 0), (0, 1, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert states.ongoing("RUN", "DONE") is not None
