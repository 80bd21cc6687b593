# amaranth: UnusedElaboratable=no
"""JobSequencer and AccumulatorQueue against Python twins: the beats of every
job, the buffer releases, the job timing, the credit."""

from collections import deque

import numpy as np
import pytest

from dhq_rtl.gateware.job_sequencer import CREDIT_MARGIN, AccumulatorQueue, JobSequencer
from dhq_rtl.gateware.plan import CorePlan
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim


def expected_beats(plan, layer, vector):
    """The beats of one job: every output neuron's chunks, in order."""
    P, chunks = plan.lanes, plan.chunks[layer]
    beats = []
    for k in range(plan.out_features[layer]):
        for c in range(chunks):
            beats.append({"addr": plan.wbase[layer] + k * chunks + c,
                          "act": [int(a) for a in vector[c * P:(c + 1) * P]],
                          "first": int(c == 0), "last": int(c == chunks - 1), "tag": layer})
    return beats


def job_flags(plan, layer):
    """The flags the ready queue carries with a job of ``layer`` (one chunk
    per neuron, one neuron, two neurons)."""
    neurons = plan.out_features[layer]
    return {"c1": int(plan.chunks[layer] == 1), "k1": int(neurons == 1), "k2": int(neurons == 2)}


def run_jobs(plan, jobs, seed, credit_prob=1.0, max_cycles=20_000):
    """Offer ``jobs`` (``(layer, vector)``) on the ready queue, serve the read
    port from a memory holding each job's vector in its own buffer, grant
    ``credit`` with probability ``credit_prob`` each cycle. Returns the beats
    (with their cycle), the releases and the reserve count."""
    dut = JobSequencer(plan)
    rng = np.random.default_rng(seed)
    ab, r, nw = plan.act_bits, plan.act_word, plan.load_words
    mem = {}
    out = {"beats": [], "releases": [], "reserves": 0, "issues": 0}

    def word(buffer, w):
        vec = mem[buffer]
        return sum((int(v) & ((1 << ab) - 1)) << (j * ab) for j, v in enumerate(vec[w * r:(w + 1) * r]))

    async def bench(ctx):
        pending = deque((j % plan.buffers, layer, vec) for j, (layer, vec) in enumerate(jobs))
        expected_total = sum(len(expected_beats(plan, layer, vec)) for layer, vec in jobs)
        in_use = set()
        for cycle in range(max_cycles):
            if len(out["beats"]) == expected_total:
                break
            if pending and pending[0][0] not in in_use:
                buffer, layer, vec = pending[0]
                mem[buffer] = vec
                ctx.set(dut.jobs.valid, 1)
                ctx.set(dut.jobs.payload, {"buffer": buffer, "layer": layer, **job_flags(plan, layer)})
            else:
                ctx.set(dut.jobs.valid, 0)
            grant = rng.random() < credit_prob
            ctx.set(dut.credit.credit, grant)
            addr = ctx.get(dut.read.addr)
            _, _, taken, valid, beat, reserve, issue, release_valid, release = await ctx.tick().sample(
                dut.jobs.ready, dut.beats.valid, dut.beats.payload, dut.credit.reserve, dut.issue,
                dut.release.valid, dut.release.payload)
            if pending and ctx.get(dut.jobs.valid) and taken:
                in_use.add(pending.popleft()[0])
            if int(addr.buffer) in mem and int(addr.word) < nw:
                ctx.set(dut.read.data, word(int(addr.buffer), int(addr.word)))
            assert not issue or grant, "a beat without credit"
            out["reserves"] += reserve
            out["issues"] += issue
            if valid:
                out["beats"].append((cycle, {"addr": int(beat.addr), "act": [int(a) for a in beat.act],
                                             "first": int(beat.first), "last": int(beat.last), "tag": int(beat.tag)}))
            if release_valid:
                out["releases"].append(int(release))
                in_use.discard(int(release))
        assert len(out["beats"]) == expected_total, f"{len(out['beats'])} of {expected_total} beats"

    run_sim(dut, [bench])
    return out


def random_jobs(plan, rng, n):
    lo, hi = -(1 << (plan.act_bits - 1)), (1 << (plan.act_bits - 1)) - 1
    jobs = []
    for _ in range(n):
        layer = int(rng.integers(1, plan.n_layers))
        vec = np.zeros(plan.cpow * plan.lanes, dtype=np.int64)
        vec[:plan.model.layers[layer].in_features] = rng.integers(lo, hi + 1, plan.model.layers[layer].in_features)
        jobs.append((layer, vec))
    return jobs


@pytest.mark.parametrize("kw,lanes,credit_prob", [
    (dict(width=8, depth=2, size=8, seed=1), 4, 1.0),
    (dict(width=8, depth=3, size=8, seed=2, channels=3), 4, 0.6),
    (dict(width=16, depth=2, size=8, seed=3, weight_bits=6, act_bits=6), 16, 0.8),
    (dict(width=32, depth=2, size=8, seed=4), 8, 0.5),
    (dict(width=8, depth=1, size=8, seed=5, weight_bits=16, act_bits=16, rotate=False), 1, 0.9),
    # Two-neuron jobs of one chunk (the registered "next neuron is the
    # last" flag set when the job starts) and one-beat jobs.
    (dict(width=2, depth=2, size=8, seed=7), 2, 0.7),
])
def test_every_beat_of_every_job(kw, lanes, credit_prob):
    plan = CorePlan(random_model(**kw), lanes=lanes, buffers=3)
    rng = np.random.default_rng(lanes)
    jobs = random_jobs(plan, rng, 7)
    out = run_jobs(plan, jobs, seed=lanes, credit_prob=credit_prob)
    want = [b for layer, vec in jobs for b in expected_beats(plan, layer, vec)]
    # Lanes past a layer's input width may carry anything (their weights are 0).
    for (_, got), exp, layer in zip(out["beats"], want, [l for l, v in jobs for _ in expected_beats(plan, l, v)]):
        n_in = plan.model.layers[layer].in_features
        c = exp["addr"] - plan.wbase[layer]
        valid_lanes = max(0, min(lanes, n_in - (c % plan.chunks[layer]) * lanes))
        assert {**got, "act": got["act"][:valid_lanes]} == {**exp, "act": exp["act"][:valid_lanes]}
    assert out["releases"] == [j % plan.buffers for j in range(len(jobs))]
    assert out["reserves"] == sum(plan.out_features[layer] for layer, _ in jobs)
    assert out["issues"] == len(want)


def test_job_slots_are_beats_or_the_vector_copy():
    """Jobs back to back with credit: each job's first beat follows the
    previous one's by max(beats, load_words + 2) cycles (the plan's job slot)."""
    plan = CorePlan(random_model(width=16, depth=3, size=8, seed=6), lanes=16, buffers=4)
    rng = np.random.default_rng(0)
    jobs = random_jobs(plan, rng, 6)
    out = run_jobs(plan, jobs, seed=0)
    firsts = [cycle for cycle, b in out["beats"] if b["addr"] == plan.wbase[b["tag"]]]
    assert len(firsts) == len(jobs)
    gaps = np.diff(firsts).tolist()
    assert gaps == [plan.job_slot(layer) for layer, _ in jobs[:-1]]


def test_accumulator_queue_order_and_credit():
    """Accumulators leave in order; ``credit`` is the registered
    ``level + in flight + margin < depth``, so with a consumer that stalls
    and a producer that only reserves while it has credit, nothing is lost."""
    plan = CorePlan(random_model(width=8, depth=2, size=8, seed=1), lanes=4)
    depth = plan.accumulator_queue_depth
    dut = AccumulatorQueue(plan)
    rng = np.random.default_rng(3)
    lo = -(1 << (plan.acc_bits - 1))

    async def bench(ctx):
        inflight = deque()        # cycles at which reserved accumulators arrive
        sent, got = [], []
        level = 0                 # words in the FIFO (its registered count)
        reserved = 0              # reserved, not yet pushed (the queue's own count)
        credit = 0
        for cycle in range(3000):
            assert ctx.get(dut.credit.credit) == credit, cycle
            reserve = bool(credit) and rng.random() < 0.6
            ctx.set(dut.credit.reserve, reserve)
            if reserve:
                inflight.append(cycle + int(rng.integers(3, 8)))
            push = bool(inflight) and inflight[0] <= cycle
            ctx.set(dut.push.valid, push)
            if push:
                inflight.popleft()
                entry = (int(rng.integers(lo, -lo)), int(rng.integers(0, plan.n_layers)))
                ctx.set(dut.push.payload, {"acc": entry[0], "tag": entry[1]})
                sent.append(entry)
            ctx.set(dut.pop.ready, rng.random() < 0.3)
            _, _, valid, ready, entry = await ctx.tick().sample(dut.pop.valid, dut.pop.ready, dut.pop.payload)
            pop = bool(valid and ready)
            if pop:
                got.append((int(entry.acc), int(entry.layer)))
                # The layer's facts, looked up on the way in.
                n = plan.out_features[int(entry.layer)]
                assert (entry.last_index, entry.single, entry.output, entry.next_rotated) == (
                    n - 1, n == 1, int(entry.layer) == plan.n_layers - 1, plan.next_rotated[int(entry.layer)])
            credit = int(level + reserved + CREDIT_MARGIN < depth)
            level += push - pop
            reserved += reserve - push
            assert level <= depth
        assert got == sent[:len(got)] and len(got) > 100

    run_sim(dut, [bench])
