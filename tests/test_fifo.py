# amaranth: UnusedElaboratable=no
"""FlagFIFO against a Python deque model, cycle by cycle, under random stalls."""

import random
from collections import deque

import pytest
from amaranth.sim import Simulator

from dhq_rtl.gateware.fifo import FlagFIFO

from tests.testbench import ResetWrapper


def _run(width, depth, n_cycles, p_write, p_read, seed, reset_at=()):
    """Drive random writes/reads; check every output and flag against a model.

    The model: a deque of words in the memory plus an output register
    (valid, data); a word reaches the output register the cycle after it
    is in memory, so ``r_rdy``/``r_data`` are predicted exactly.
    """
    dut = FlagFIFO(width=width, depth=depth)
    top = ResetWrapper(dut)
    rng = random.Random(seed)
    stats = {"out": 0, "max_level": 0}

    async def bench(ctx):
        mem = deque()
        out_valid, out_data = False, 0
        written, read = [], []
        next_word = 0
        for cyc in range(n_cycles):
            if cyc in reset_at:
                ctx.set(top.rst, 1)
                ctx.set(dut.w_en, 0)
                ctx.set(dut.r_en, 0)
                await ctx.tick()
                ctx.set(top.rst, 0)
                mem.clear()
                out_valid = False
                written, read = [], []
            level = len(mem) + out_valid
            # Registered flags, checked every cycle.
            assert ctx.get(dut.level) == level
            assert ctx.get(dut.w_rdy) == (level < depth)
            assert ctx.get(dut.r_rdy) == out_valid
            if out_valid:
                assert ctx.get(dut.r_data) == out_data
            w = rng.random() < p_write
            r = rng.random() < p_read
            word = next_word
            ctx.set(dut.w_en, w)
            ctx.set(dut.w_data, word)
            ctx.set(dut.r_en, r)
            await ctx.tick()
            # Model update (registered semantics: memory contents before the edge).
            mem_before = len(mem)
            pop = r and out_valid
            if pop:
                read.append(out_data)
                stats["out"] += 1
            if (not out_valid or r) and mem_before:
                out_valid, out_data = True, mem.popleft()
            elif r:
                out_valid = False
            if w and level < depth:
                mem.append(word)
                written.append(word)
                next_word = (next_word + rng.randrange(1, 7)) % (1 << width)
            stats["max_level"] = max(stats["max_level"], len(mem) + out_valid)
            # Nothing lost, duplicated or reordered so far.
            assert written[:len(read)] == read
            assert len(written) - len(read) == len(mem) + out_valid

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return stats


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 6, 8, 16])
@pytest.mark.parametrize("p_write,p_read", [(0.5, 0.5), (0.9, 0.3), (0.3, 0.9), (1.0, 1.0), (0.8, 0.8)])
def test_order_and_flags_under_random_stalls(depth, p_write, p_read):
    stats = _run(width=9, depth=depth, n_cycles=600, p_write=p_write, p_read=p_read,
                 seed=depth * 1000 + int(p_write * 10) * 10 + int(p_read * 10))
    assert stats["out"] > 50
    if p_write > p_read:
        assert stats["max_level"] == depth        # filled up: backpressure exercised


def test_full_rate_throughput():
    # Always writing and reading: after the 2-cycle fill, one word per cycle.
    stats = _run(width=4, depth=4, n_cycles=200, p_write=1.0, p_read=1.0, seed=1)
    assert stats["out"] >= 200 - 3


def test_reset_recovers():
    stats = _run(width=8, depth=5, n_cycles=900, p_write=0.7, p_read=0.4, seed=7,
                 reset_at=(150, 151, 400, 650))
    assert stats["out"] > 100


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kw,exc", [
    (dict(width=0, depth=4), ValueError),
    (dict(width=8, depth=0), ValueError),
    (dict(width=8.0, depth=4), TypeError),
    (dict(width=8, depth="4"), TypeError),
    (dict(width=True, depth=4), TypeError),
])
def test_bad_arguments(kw, exc):
    with pytest.raises(exc):
        FlagFIFO(**kw)
