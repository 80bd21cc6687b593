# amaranth: UnusedElaboratable=no
"""The float core (InrCore, arith="fp32") against FloatGoldenModel.render:
every pixel of every region, bit for bit; its plan against the RTL."""

import numpy as np
import pytest

from dhq_rtl.errors import ModelImageError
from dhq_rtl.gateware.core import InrCore
from dhq_rtl.gateware.float32.plan import FloatCorePlan, FloatUnits
from dhq_rtl.golden_float32 import FloatGoldenModel
from dhq_rtl.synthetic import random_model

from tests.test_core import elaborated_memories, render


def check(model, regions, lanes=2, stall=0.3, seed=0, buffers=6, ii=1):
    dut = InrCore(model, lanes=lanes, buffers=buffers, arith="fp32", units=FloatUnits(sine_ii=ii))
    rng = np.random.default_rng(seed)
    results = render(dut, regions, rng, stall, max_cycles=300_000)
    golden = FloatGoldenModel(model, lanes)
    for region, (px, *_) in zip(regions, results):
        ref = golden.render(region=region).astype(np.int64)
        assert px.shape == ref.shape
        bad = np.argwhere(px != ref)
        assert bad.size == 0, f"region {region}: {len(bad)} wrong values, first at {bad[0]}"
    return dut, results


SMALL = [
    # (random_model arguments, lanes, sine ii, buffers, regions)
    (dict(width=8, depth=2, size=8, seed=3), 2, 1, 6, [(1, 2, 5, 5), (0, 0, 8, 2)]),
    # RGB, one lane, the iCE40 sine (ii 11), a model whose integer export rotates every layer
    (dict(width=8, depth=1, size=8, seed=1, channels=3, rotate=True, rotate_first=True), 1, 11, 6, [(0, 0, 5, 2)]),
    # rotation-free integer export, 4 lanes: 4 chunks per 16-wide input
    (dict(width=16, depth=2, size=16, seed=2, rotate=False), 4, 1, 6, [(3, 5, 11, 7)]),
    # one chunk per layer (lanes ≥ width): no partial sums at all
    (dict(width=8, depth=3, size=12, seed=4, weight_bits=6, act_bits=6), 16, 3, 6, [(0, 9, 12, 11)]),
    # odd width: a padded last chunk (+0 lanes), few buffers
    (dict(width=6, depth=2, size=9, seed=5, channels=2, rotate=False), 4, 1, 2, [(2, 0, 9, 2)]),
    (dict(width=12, depth=2, size=10, seed=6, rotate=False), 8, 5, 3, [(0, 0, 10, 2)]),
    # an odd image side: the centre column's coordinate is +0
    (dict(width=8, depth=2, size=9, seed=7), 2, 1, 4, [(3, 3, 6, 5)]),
]


@pytest.mark.parametrize("kw,lanes,ii,buffers,regions", SMALL, ids=[f"case{i}" for i in range(len(SMALL))])
def test_small_models_bit_exact_with_stalls(kw, lanes, ii, buffers, regions):
    check(random_model(**kw), regions, lanes=lanes, stall=0.3, seed=len(regions), buffers=buffers, ii=ii)


def test_empty_region_produces_nothing():
    model = random_model(width=8, depth=1, size=8, seed=1)
    _, results = check(model, [(3, 3, 3, 5), (0, 0, 2, 1)], lanes=2, stall=0.0)
    assert results[0][0].size == 0


def test_lane_counts_give_their_own_order():
    """The golden model's order depends on the lanes; each core equals its
    own, and on this model the orders give different pixels somewhere, so
    the comparison would catch a core summing in another order."""
    model = random_model(width=16, depth=2, size=16, seed=11, rotate=False)
    region = (0, 0, 16, 16)
    renders = {lanes: FloatGoldenModel(model, lanes).render(region) for lanes in (1, 2, 4, 16)}
    assert any(not np.array_equal(renders[1], renders[p]) for p in (2, 4, 16))


def test_default_model_patch(default_model):
    """The bundled model as the iCEBreaker build runs it: one lane, the
    sine at ii 11, every pixel of a patch exact."""
    check(default_model, [(60, 61, 64, 62)], lanes=1, stall=0.2, ii=11)


def test_default_model_patch_with_the_icebreaker_units(default_model):
    """The bundled model with the units and buffers the iCEBreaker build
    uses (FloatCorePlan.board_defaults: no optional register cuts but the
    adder's first, 3 buffers): every pixel of a patch exact."""
    from dhq_rtl.boards import get_board
    plan = FloatCorePlan.for_board(default_model, get_board("icebreaker"))
    dut = InrCore(default_model, plan=FloatCorePlan(default_model, lanes=1, buffers=plan.buffers, units=plan.units))
    region = (60, 61, 64, 62)
    (px, *_), = render(dut, [region], np.random.default_rng(1), 0.2, max_cycles=300_000)
    assert np.array_equal(px, FloatGoldenModel(default_model, 1).render(region=region).astype(np.int64))


def test_plan_cycles_per_pixel_bound_the_rtl():
    """The plan's cycles per pixel (the busiest of the MAC lanes, the sine
    and the arbiter) is a lower bound of the RTL's steady rate and within
    10 % of it, on MAC-bound and sine-bound shapes."""
    for kw, lanes, ii in [(dict(width=16, depth=3, size=16, seed=1), 4, 1),
                          (dict(width=16, depth=2, size=16, seed=2), 16, 3),
                          (dict(width=8, depth=2, size=8, seed=3), 1, 11)]:
        model = random_model(**kw)
        dut, results = check(model, [(0, 0, 16, 2)] if model.width >= 16 else [(0, 0, 8, 4)], lanes=lanes,
                             stall=0.0, ii=ii)
        times = results[0][3]
        # Pixels leave in groups of the pixels in flight: whole groups, away
        # from the start (filling) and the end (draining, no new pixel enters).
        period = dut.plan.buffers - 1
        a, b = period, 5 * period
        assert b < len(times) - period
        measured = (times[b] - times[a]) / (b - a)
        bound = dut.plan.cycles_per_pixel()
        assert bound <= measured <= 1.10 * bound, (kw, lanes, ii, measured, bound)


@pytest.mark.parametrize("kw,lanes,buffers", [
    (dict(width=32, depth=3, size=128, seed=0), 1, 6),
    (dict(width=16, depth=2, size=64, seed=1, channels=3, rotate_first=True), 8, 4),
    (dict(width=64, depth=1, size=16, seed=2, rotate=False), 16, 2),
])
def test_elaborated_memories_are_the_plans(kw, lanes, buffers):
    core = InrCore(random_model(**kw), lanes=lanes, buffers=buffers, arith="fp32")
    planned = {(mem.path, mem.width, mem.depth, mem.undefined_collisions) for mem in core.plan.memories}
    assert len(planned) == len(core.plan.memories)
    assert elaborated_memories(core) == planned


def test_plan_numbers():
    model = random_model(width=32, depth=3, size=128, seed=0)
    plan = FloatCorePlan(model, lanes=1, units=FloatUnits(sine_ii=11))
    assert plan.n_layers == 5 and plan.out_features == [2, 32, 32, 32, 1]
    assert plan.chunks == [0, 2, 32, 32, 32] and plan.slots == [0, 32, 32, 32, 11]
    assert plan.mac_cycles_per_pixel() == 64 + 1024 + 1024 + 352
    assert plan.sine_cycles_per_pixel() == 96 * 11
    assert plan.macs_per_pixel() == 64 + 2048 + 32
    assert plan.weight_rows == 64 + 2048 + 32 and plan.acc_memory_depth == 32 + 97
    assert plan.lanes_latency == 3 + 6 + 9 and plan.dsp_blocks == 4 + 1
    wide = FloatCorePlan(model, lanes=16)
    assert wide.chunks == [0, 1, 2, 2, 2] and wide.slots == [0, 32, 32, 32, 11]
    assert wide.lanes_latency == 3 + 6 + 4 * 9 + 9 and wide.dsp_blocks == 16 * 4 + 9
    assert wide.last_lanes == [0, 2, 16, 16, 16]


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(arith="fp16"), ValueError, "arith must be one of"),
    (dict(arith="fp32", lanes=3), ValueError, "power of two"),
    (dict(arith="fp32", dsp="xilinx"), ValueError, "dsp"),
    (dict(arith="fp32", buffers=1), ValueError, "buffers"),
    (dict(arith="fp32", units="fast"), TypeError, "FloatUnits"),
    (dict(arith="fp32", units=FloatUnits(sine_ii=2)), ValueError, "sine_ii must be 1 or at least 3"),
    (dict(arith="fp32", units=FloatUnits(add_latency=12)), ValueError, r"add_latency must be in \[1, 9\]"),
    (dict(units=FloatUnits()), ValueError, "apply to arith='fp32' only"),
])
def test_constructor_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        InrCore(random_model(width=8, depth=1, size=8), **kwargs)


@pytest.mark.parametrize("name", ["link_timing_registers", "weight_register"])
def test_plan_knobs_are_bools(name):
    with pytest.raises(TypeError, match=f"{name} must be a bool"):
        FloatCorePlan(random_model(width=8, depth=1, size=8), **{name: 1})


def test_needs_the_float_model():
    model = random_model(width=8, depth=1, size=8)
    for layer in model.layers:
        layer.float_weight = layer.float_bias = None
    with pytest.raises(ModelImageError, match="carries no float parameters"):
        InrCore(model, arith="fp32")
    InrCore(model)       # the integer core does not need them
