# amaranth: UnusedElaboratable=no
"""PostProcessing against the fixed-point twin: every activation written and
every pixel channel, for vectors of every layer (phases, hidden
accumulators, output accumulators), rotated and direct paths."""

import numpy as np
import pytest

from dhq_rtl.export import sine_table
from dhq_rtl.fixedpoint import output_scale, phase_scale, requantize
from dhq_rtl.gateware.plan import CorePlan
from dhq_rtl.gateware.postprocess import PostProcessing
from dhq_rtl.hadamard import fwht_int
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim


def twin(plan, layer, values, coord):
    """``("write", [q_k])`` or ``("pixel", [channel values])`` for a vector of
    ``layer``'s outputs (``values``: accumulators, or phases when ``coord``)."""
    m = plan.model
    L = m.layers[layer]
    if layer == plan.n_layers - 1:
        return "pixel", output_scale(values, L.mult, L.bias, L.shift, m.pixel_bits).tolist()
    phase = values if coord else phase_scale(values, L.mult, L.bias, L.shift, m.phase_bits)
    nxt = m.layers[layer + 1]
    a = nxt.lut[phase]
    if nxt.rotate:
        a = requantize(fwht_int(a), nxt.req_mult, nxt.req_shift, nxt.act_bits)
    return "write", np.asarray(a).tolist()


def random_vectors(plan, rng, n):
    m = plan.model
    lo = -(1 << (plan.acc_bits - 1))
    out = []
    for _ in range(n):
        layer = int(rng.integers(0, plan.n_layers))
        size = plan.out_features[layer]
        if layer == 0:
            values = rng.integers(0, 1 << m.phase_bits, size)
        else:
            bound = m.accumulator_bits(layer)
            values = rng.integers(-(1 << (bound - 1)), 1 << (bound - 1), size)
            values = np.maximum(values, lo)
        out.append((layer, values, int(rng.integers(0, plan.buffers))))
    return out


def run(plan, vectors, seed, gap_prob=0.3):
    """Feed the vectors' elements (with gaps; a vector enters one path only
    when the other is empty, as the arbiter does) and collect the outputs."""
    dut = PostProcessing(plan)
    rng = np.random.default_rng(seed)
    got = {"write": [], "pixel": []}

    async def bench(ctx):
        queue = [(layer, values, buf, k) for layer, values, buf in vectors for k in range(len(values))]
        inside = {"direct": 0, "rotated": 0}
        pos, cycle = 0, 0
        while len(got["write"]) + len(got["pixel"]) < len(queue):
            cycle += 1
            assert cycle < 50_000
            ctx.set(dut.elements.valid, 0)
            if pos < len(queue) and rng.random() >= gap_prob:
                layer, values, buf, k = queue[pos]
                hidden = layer < plan.n_layers - 1
                path = "rotated" if plan.next_rotated[layer] else "direct"
                other = "direct" if path == "rotated" else "rotated"
                if k > 0 or not hidden or inside[other] == 0:
                    coord = layer == 0
                    value = {"phase": int(values[k])} if coord else {"acc": int(values[k])}
                    ctx.set(dut.elements.valid, 1)
                    ctx.set(dut.elements.payload, {"value": value, "coord": coord, "layer": layer, "index": k,
                                                  "buffer": buf})
                    inside[path] += hidden
                    pos += 1
            _, _, w_valid, w, p_valid, p, direct, rotated = await ctx.tick().sample(
                dut.write.valid, dut.write.payload, dut.pixels.valid, dut.pixels.payload,
                dut.path_done.direct, dut.path_done.rotated)
            assert not (direct and rotated)
            inside["direct"] -= direct
            inside["rotated"] -= rotated
            if w_valid:
                got["write"].append((int(w.layer), int(w.buffer), int(w.index), int(w.value)))
            if p_valid:
                got["pixel"].append((int(p.channel), int(p.value)))
        assert inside == {"direct": 0, "rotated": 0}

    run_sim(dut, [bench])
    return got


def check(plan, vectors, seed):
    got = run(plan, vectors, seed)
    want = {"write": [], "pixel": []}
    for layer, values, buf in vectors:
        kind, out = twin(plan, layer, values, coord=layer == 0)
        if kind == "write":
            want["write"] += [(layer, buf, k, v) for k, v in enumerate(out)]
        else:
            want["pixel"] += [(c, v) for c, v in enumerate(out)]
    assert got == want


@pytest.mark.parametrize("kw,lanes", [
    (dict(width=8, depth=3, size=8, seed=1, channels=3), 4),                 # rotated hidden layers
    (dict(width=16, depth=2, size=8, seed=2, rotate=False), 8),              # direct path only
    (dict(width=8, depth=2, size=8, seed=3, rotate_first=True, weight_bits=6, act_bits=6), 4),
    (dict(width=32, depth=2, size=8, seed=4), 16),                           # a delay line in RAM
    (dict(width=8, depth=2, size=8, seed=5, weight_bits=4, act_bits=4, rotate=False, act_midrise=True), 4),
])
def test_every_output_equals_the_twin(kw, lanes):
    plan = CorePlan(random_model(**kw), lanes=lanes, buffers=4)
    rng = np.random.default_rng(lanes)
    check(plan, random_vectors(plan, rng, 14), seed=lanes)


def test_mixed_paths_and_tables():
    """Rotated and direct layers alternate; one table is mid-rise (complemented)."""
    model = random_model(width=8, depth=3, size=10, seed=7)
    layer = model.layers[2]
    layer.rotate = False
    layer.lut_bits = layer.act_bits
    layer.lut = sine_table(model.phase_bits, 100.0, layer.act_bits, midrise=True)
    layer.req_mult, layer.req_shift = 1, 0
    model.validate()
    plan = CorePlan(model, lanes=4, buffers=3)
    assert plan.next_rotated[:3] == [True, False, True]
    check(plan, random_vectors(plan, np.random.default_rng(1), 16), seed=1)
