# amaranth: UnusedElaboratable=no
"""ActivationBuffers against a Python twin: allocation, writes, the ready queue, reads."""

import numpy as np
import pytest

from dhq_rtl.gateware.activation_buffers import ActivationBuffers
from dhq_rtl.gateware.plan import CorePlan
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim


class BuffersTwin:
    """What the buffers hold: the free set, each buffer's activations, the
    ready queue."""

    def __init__(self, plan):
        self.plan = plan
        self.free = set(range(plan.buffers))
        self.data = np.zeros((plan.buffers, plan.load_words * plan.act_word), dtype=np.int64)
        self.queue = []

    def lowest_free(self):
        return min(self.free) if self.free else None

    def word(self, buffer, w):
        """Memory word ``w`` of ``buffer``: activation ``j`` of the word in bits ``[j·ab, (j+1)·ab)``."""
        ab, r = self.plan.act_bits, self.plan.act_word
        return sum((int(v) & ((1 << ab) - 1)) << (j * ab) for j, v in enumerate(self.data[buffer, w * r:(w + 1) * r]))


def exercise(plan, seed, n_vectors=12):
    """Allocate buffers, write random vectors of random layers into them
    (elements in order, with gaps), read each back word by word through the
    read port when the ready queue offers it, then release it; several
    vectors overlap. The allocator's offer, the queue and every word read
    are compared with the twin in every cycle."""
    dut = ActivationBuffers(plan)
    twin = BuffersTwin(plan)
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (plan.act_bits - 1)), (1 << (plan.act_bits - 1)) - 1
    stats = {"taken": 0, "released": 0, "reads": 0}

    async def bench(ctx):
        free_reg = set(range(plan.buffers))   # the free set register
        offer = None                          # the registered offer (None: not valid)
        writing, queued = [], []
        reader = None                         # (buffer, next word to address, word to check)
        for cycle in range(6000):
            if stats["released"] == n_vectors:
                break
            assert ctx.get(dut.alloc.valid) == (offer is not None), cycle
            if offer is not None:
                assert ctx.get(dut.alloc.payload) == offer, cycle
            clr = set()
            take = (offer is not None and offer in twin.free and len(writing) < 2
                    and stats["taken"] < n_vectors and rng.random() < 0.5)
            ctx.set(dut.alloc.ready, take)
            if take:
                layer = int(rng.integers(0, plan.n_layers - 1))
                writing.append([offer, layer, rng.integers(lo, hi + 1, size=plan.out_features[layer]), 0])
                twin.free.discard(offer)
                clr = {offer}
                stats["taken"] += 1
            # One element of the oldest vector being written, or a gap.
            write = bool(writing) and rng.random() < 0.7
            ctx.set(dut.write.valid, write)
            if write:
                buffer, layer, values, k = writing[0]
                ctx.set(dut.write.payload, {"value": int(values[k]), "index": k, "buffer": buffer, "layer": layer})
                twin.data[buffer, k] = values[k]
                writing[0][3] += 1
                if k + 1 == len(values):
                    writing.pop(0)
                    queued.append((buffer, layer + 1))
            # The reader: take a queue entry, address its words, check each a cycle later, release.
            ctx.set(dut.ready.ready, 0)
            ctx.set(dut.release.valid, 0)
            released = set()
            if reader is None:
                if ctx.get(dut.ready.valid) and rng.random() < 0.5:
                    entry = ctx.get(dut.ready.payload)
                    assert queued and (int(entry.buffer), int(entry.layer)) == queued.pop(0), cycle
                    # The flags of the job that consumes it, looked up from its layer's descriptor.
                    job = int(entry.layer)
                    neurons = plan.out_features[job]
                    assert (int(entry.c1), int(entry.k1), int(entry.k2)) == (
                        int(plan.chunks[job] == 1), int(neurons == 1), int(neurons == 2)), cycle
                    ctx.set(dut.ready.ready, 1)
                    reader = [int(entry.buffer), 0, None]
            else:
                buffer, w, check = reader
                if check is not None:
                    assert ctx.get(dut.read.data) == twin.word(buffer, check), (cycle, buffer, check)
                    stats["reads"] += 1
                if w < plan.load_words:
                    ctx.set(dut.read.addr, {"word": w, "buffer": buffer})
                    reader = [buffer, w + 1, w]
                else:
                    ctx.set(dut.release.valid, 1)
                    ctx.set(dut.release.payload, buffer)
                    twin.free.add(buffer)
                    released = {buffer}
                    stats["released"] += 1
                    reader = None
            await ctx.tick()
            offer = min(free_reg) if free_reg else None
            free_reg = (free_reg | released) - clr
        assert stats["released"] == n_vectors, f"only {stats['released']} of {n_vectors} vectors went round"

    run_sim(dut, [bench])
    return stats


@pytest.mark.parametrize("kw,lanes,buffers,word_bits", [
    (dict(width=8, depth=2, size=8, seed=1), 4, 4, 32),      # 4 activations a word
    (dict(width=8, depth=2, size=8, seed=2), 4, 2, 8),       # one activation a word
    (dict(width=16, depth=3, size=8, seed=3, weight_bits=6, act_bits=6, channels=3), 8, 6, 24),
])
def test_vectors_round_trip(kw, lanes, buffers, word_bits):
    plan = CorePlan(random_model(**kw), lanes=lanes, buffers=buffers, act_word_bits=word_bits)
    stats = exercise(plan, seed=lanes + buffers)
    assert stats["reads"] > 0


def test_allocator_offers_the_lowest_free_buffer_and_none_when_all_are_taken():
    plan = CorePlan(random_model(width=8, depth=1, size=8, seed=1), lanes=4, buffers=3)
    dut = ActivationBuffers(plan)
    seen = []

    async def bench(ctx):
        await ctx.tick()
        for _ in range(3):
            seen.append((ctx.get(dut.alloc.valid), ctx.get(dut.alloc.payload)))
            ctx.set(dut.alloc.ready, 1)
            await ctx.tick()
            ctx.set(dut.alloc.ready, 0)
            await ctx.tick()
        seen.append((ctx.get(dut.alloc.valid),))
        ctx.set(dut.release.valid, 1)
        ctx.set(dut.release.payload, 1)
        await ctx.tick()
        ctx.set(dut.release.valid, 0)
        await ctx.tick()
        seen.append((ctx.get(dut.alloc.valid), ctx.get(dut.alloc.payload)))

    run_sim(dut, [bench])
    assert seen == [(1, 0), (1, 1), (1, 2), (0,), (1, 1)]
