# amaranth: UnusedElaboratable=no
"""FirstLayerPhases (running-sum first layer) against the golden model's layer-0 phases."""

import numpy as np
import pytest

from dhq_rtl.gateware.coords import FirstLayerPhases, first_layer_constants
from dhq_rtl.golden import GoldenModel, pixel_coordinates
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim


def phases_of(model, regions, seed=0):
    dut = FirstLayerPhases(model)
    rng = np.random.default_rng(seed)
    out = []

    async def tb(ctx):
        for x0, y0, x1, y1 in regions:
            ctx.set(dut.region, {"x0": x0, "y0": y0, "x1": x1, "y1": y1})
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got = []
            for _ in range((x1 - x0) * (y1 - y0)):
                while not ctx.get(dut.source.ready):
                    await ctx.tick()
                while rng.random() < 0.3:      # the consumer asks at random times
                    await ctx.tick()
                ctx.set(dut.source.next, 1)
                await ctx.tick()
                ctx.set(dut.source.next, 0)
                vec = []
                for wait in range(50):
                    _, _, valid, beat = await ctx.tick().sample(dut.source.phases.valid, dut.source.phases.payload)
                    phase, index, last = beat.phase, beat.index, beat.last
                    if valid and not vec:
                        assert wait == 3, "the first phase comes 4 cycles after next"
                    if valid:
                        assert index == len(vec)
                        vec.append(phase)
                        if last:
                            break
                got.append(vec)
            while not ctx.get(dut.done):
                await ctx.tick()
            assert not ctx.get(dut.source.ready)
            out.append(np.array(got))

    run_sim(dut, [tb])
    return out


@pytest.mark.parametrize("kw,regions", [
    (dict(width=8, depth=1, size=8, seed=1), [(0, 0, 8, 2), (3, 5, 6, 8)]),
    (dict(width=4, depth=1, size=13, seed=2, rotate_first=True), [(12, 0, 13, 3), (5, 7, 9, 9)]),
    (dict(width=1, depth=1, size=5, seed=3, phase_bits=6), [(0, 0, 5, 5)]),
    # one-bit coordinates (a single Horner pass), one and two neurons
    (dict(width=1, depth=1, size=2, seed=5), [(0, 0, 2, 2), (1, 1, 2, 2)]),
    (dict(width=2, depth=1, size=2, seed=8), [(1, 0, 2, 2), (0, 0, 2, 2)]),
    # mid-rise first-layer weights (odd, up to ±15 at 4 bits)
    (dict(width=8, depth=1, size=10, seed=6, weight_bits=4, first_weight_midrise=True), [(0, 0, 10, 10)]),
    (dict(width=8, depth=1, size=9, seed=7, weight_bits=4, first_weight_midrise=True, rotate_first=True),
     [(2, 3, 9, 6)]),
])
def test_phases_equal_golden(kw, regions):
    model = random_model(**kw)
    golden = GoldenModel(model)
    for region, got in zip(regions, phases_of(model, regions)):
        xs, ys = pixel_coordinates(model.height, model.width, region)
        ref = golden.trace(xs, ys)[0]["phase"]
        np.testing.assert_array_equal(got, ref)


def test_constants_are_the_linear_form():
    model = random_model(width=8, depth=1, size=16, seed=4, rotate_first=True)
    dx, dy, base, bits = first_layer_constants(model)
    golden = GoldenModel(model)
    xs, ys = pixel_coordinates(16, 16)
    acc = golden.first_layer_input(xs, ys) @ model.layers[0].weight.T
    t = acc * model.layers[0].mult + model.layers[0].bias
    lin = (np.array(base)[None] + np.outer(xs, dx) + np.outer(ys, dy)) % (1 << bits)
    np.testing.assert_array_equal(lin, t % (1 << bits))


def test_rejects_non_model():
    with pytest.raises(TypeError, match="ModelImage"):
        FirstLayerPhases(None)
