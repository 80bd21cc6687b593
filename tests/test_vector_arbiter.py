# amaranth: UnusedElaboratable=no
"""VectorArbiter against models of its neighbours: whole vectors in order,
the right destination buffers, admissions, the path rule, and the cost of a
vector (what the plan's schedule counts)."""

from collections import deque

import numpy as np
import pytest

from dhq_rtl.gateware.plan import CorePlan
from dhq_rtl.gateware.vector_arbiter import VectorArbiter
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim

#: Cycles an element spends in each path of the modelled post-processing chain.
PATH_LATENCY = {"direct": 9, "rotated": 30}
#: The phase generator's latency from ``next`` to the first phase.
COORD_LATENCY = 4


def run(plan, acc_vectors, pixels, seed, *, acc_gap=0.3, alloc_prob=0.8, room_prob=0.9, max_cycles=30_000):
    """Drive the arbiter with ``acc_vectors`` (``(layer, accs)``, offered in
    order, elements with gaps) and ``pixels`` pixel requests; return the
    vectors it emitted (kind, layer, buffer, values, first cycle) and checks
    made along the way."""
    dut = VectorArbiter(plan)
    rng = np.random.default_rng(seed)
    n0 = plan.out_features[0]
    emitted = []

    async def bench(ctx):
        accs = deque((layer, k, int(v), k == len(vals) - 1) for layer, vals in acc_vectors
                     for k, v in enumerate(vals))
        free = deque(range(plan.buffers))
        inside = {"direct": deque(), "rotated": deque()}     # cycles at which elements leave
        phases = deque()              # (cycle, phase, index) the generator emits
        coord_ready_at = 0            # the generator is ready again from this cycle
        pixels_left = pixels
        taken_buffer = None
        current = None
        for cycle in range(max_cycles):
            if not accs and pixels_left == 0 and not phases and current is None and cycle > 10:
                break
            # Sources.
            head_valid = bool(accs) and rng.random() >= acc_gap
            ctx.set(dut.acc.valid, head_valid)
            if accs:
                layer, k, v, _ = accs[0]
                n = plan.out_features[layer]
                ctx.set(dut.acc.payload, {"acc": v, "layer": layer, "last_index": n - 1, "single": n == 1,
                                          "output": layer == plan.n_layers - 1,
                                          "next_rotated": plan.next_rotated[layer]})
            alloc = bool(free) and rng.random() < alloc_prob
            ctx.set(dut.alloc.valid, alloc)
            if free:
                ctx.set(dut.alloc.payload, free[0])
            ctx.set(dut.coords.ready, pixels_left > 0 and cycle >= coord_ready_at)
            ctx.set(dut.room, rng.random() < room_prob)
            ctx.set(dut.coords.phases.valid, 0)
            if phases and phases[0][0] == cycle:
                _, ph, idx = phases.popleft()
                ctx.set(dut.coords.phases.valid, 1)
                ctx.set(dut.coords.phases.payload, {"phase": ph, "index": idx, "last": idx == n0 - 1})
            for path in inside:
                ctx.set(getattr(dut.path_done, path), bool(inside[path]) and inside[path][0] <= cycle)
            _, _, acc_ready, alloc_ready, admit, request, el_valid, el = await ctx.tick().sample(
                dut.acc.ready, dut.alloc.ready, dut.admit, dut.coords.next, dut.elements.valid,
                dut.elements.payload)
            for path in inside:
                if inside[path] and inside[path][0] <= cycle:
                    inside[path].popleft()
            if alloc and alloc_ready:
                taken_buffer = free.popleft()
            if head_valid and acc_ready:
                accs.popleft()
            if request:
                assert pixels_left > 0 and cycle >= coord_ready_at, "a request while the generator is busy"
                pixels_left -= 1
                coord_ready_at = cycle + n0 + 1
                phases.extend((cycle + COORD_LATENCY + i, int(rng.integers(0, 1 << plan.phase_bits)), i)
                              for i in range(n0))
            if admit:
                assert alloc and alloc_ready, "an admission without a buffer"
            if el_valid:
                layer, coord, index = int(el.layer), int(el.coord), int(el.index)
                value = int(el.value.phase) if coord else int(el.value.acc)
                if current is None:
                    current = {"kind": "coord" if coord else "acc", "layer": layer, "buffer": int(el.buffer),
                               "values": [], "first": cycle, "admitted": admit}
                    hidden = layer < plan.n_layers - 1
                    if hidden:
                        path = "rotated" if plan.next_rotated[layer] else "direct"
                        other = "direct" if path == "rotated" else "rotated"
                        assert not inside[other], f"cycle {cycle}: {path} vector while the {other} path is busy"
                        assert taken_buffer is not None and int(el.buffer) == taken_buffer
                        free.append(taken_buffer)      # consumed later; reusable for the test
                        taken_buffer = None
                assert (layer, coord, index) == (current["layer"], current["kind"] == "coord",
                                                  len(current["values"]))
                current["values"].append(value)
                if layer < plan.n_layers - 1:
                    path = "rotated" if plan.next_rotated[layer] else "direct"
                    inside[path].append(cycle + PATH_LATENCY[path])
                if len(current["values"]) == plan.out_features[layer]:
                    emitted.append(current)
                    current = None
        assert not accs and pixels_left == 0 and current is None, "the arbiter stalled"

    run_sim(dut, [bench])
    return emitted


@pytest.mark.parametrize("kw,lanes,seed", [
    (dict(width=8, depth=2, size=8, seed=1), 4, 1),
    (dict(width=8, depth=3, size=8, seed=2, channels=3, rotate=False), 4, 2),
    (dict(width=16, depth=2, size=8, seed=3, rotate_first=True), 8, 3),
])
def test_vectors_whole_in_order_with_buffers_and_paths(kw, lanes, seed):
    plan = CorePlan(random_model(**kw), lanes=lanes, buffers=4)
    rng = np.random.default_rng(seed)
    lo = 1 << (plan.acc_bits - 1)
    acc_vectors = []
    for _ in range(10):
        layer = int(rng.integers(1, plan.n_layers))
        acc_vectors.append((layer, rng.integers(-lo, lo, plan.out_features[layer]).tolist()))
    emitted = run(plan, acc_vectors, pixels=6, seed=seed)
    got_acc = [(v["layer"], v["values"]) for v in emitted if v["kind"] == "acc"]
    assert got_acc == acc_vectors
    coords = [v for v in emitted if v["kind"] == "coord"]
    assert len(coords) == 6 and all(v["layer"] == 0 for v in coords)


def test_vector_costs():
    """Accumulator vectors whose elements are all waiting follow each other
    every ``n + 1`` cycles; pixels' phase vectors every ``n0 + 5`` cycles."""
    plan = CorePlan(random_model(width=8, depth=3, size=8, seed=4, rotate=False), lanes=4, buffers=6)
    vectors = [(1, list(range(8)))] * 5
    emitted = run(plan, vectors, pixels=0, seed=0, acc_gap=0.0, alloc_prob=1.0)
    assert np.diff([v["first"] for v in emitted]).tolist() == [plan.out_features[1] + 1] * 4
    emitted = run(plan, [], pixels=5, seed=0, alloc_prob=1.0, room_prob=1.0)
    assert np.diff([v["first"] for v in emitted]).tolist() == [plan.out_features[0] + 5] * 4
