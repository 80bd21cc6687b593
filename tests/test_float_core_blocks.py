# amaranth: UnusedElaboratable=no
"""The float core's own blocks against their numpy twins: the pixel
conversion, the coordinate generator (integer → float32), the MAC lanes."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator

from dhq_rtl import float32_ref as ref
from dhq_rtl.gateware.float32.coords import FloatCoordinates, int_to_float32
from dhq_rtl.gateware.float32.lanes import Fp32Lanes
from dhq_rtl.gateware.float32.pixel import FloatToPixel
from dhq_rtl.gateware.float32.plan import FloatCorePlan, FloatUnits
from dhq_rtl.golden_float32 import float_pixels, lane_dot_with_bias
from dhq_rtl.synthetic import random_model

from tests import fp32_vectors as vec
from tests.testbench import run_sim


# ------------------------------------------------------------ pixel conversion

def _pixel_inputs(rng):
    specials = np.array([0, ref.SIGN, 1, ref.MIN_NORMAL, ref.INF, ref.INF | ref.SIGN, ref.QNAN, 0x7F800001,
                         0xFFC00000], np.uint32)
    edges = ref.to_bits(np.array([0.5, 0.99999994, 1.0, 1.5, 2.0, 127.5, 254.99998, 255.0, 255.99998, 256.0,
                                  65535.99, 65536.0, -0.5, -1.0, -300.0, 3e38], np.float32))
    grid = ref.to_bits((np.arange(-40, 600, 0.25)).astype(np.float32))
    return np.concatenate([specials, edges, grid, vec.random_bits(rng, 2000), vec.random_normal(rng, 2000)])


@pytest.mark.parametrize("pixel_bits", [8, 1, 12, 16])
def test_float_to_pixel_every_output(pixel_bits):
    t = _pixel_inputs(np.random.default_rng(pixel_bits))
    dut = FloatToPixel(pixel_bits, tag_shape=4)
    got = {}

    async def tb(ctx):
        out = []
        for n in range(len(t) + dut.latency + 1):
            if n < len(t):
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, {"t": int(t[n]), "tag": n % 16})
            else:
                ctx.set(dut.i.valid, 0)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                out.append((n, int(payload.pixel), int(payload.tag)))
        got["out"] = out

    run_sim(dut, [tb])
    out = got["out"]
    assert [n for n, _, _ in out] == list(range(dut.latency, len(t) + dut.latency))
    want = float_pixels(t, pixel_bits)
    assert [p for _, p, _ in out] == want.tolist()
    assert [g for _, _, g in out] == [n % 16 for n in range(len(t))]


def test_float_to_pixel_arguments():
    with pytest.raises(ValueError, match="pixel_bits"):
        FloatToPixel(17)
    with pytest.raises(TypeError, match="tag_shape"):
        FloatToPixel(8, tag_shape="x")


# ------------------------------------------------------------ coordinates

class _Convert(Elaboratable):
    def __init__(self, width):
        self.value = Signal(signed(width))
        self.bits = Signal(32)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.bits.eq(int_to_float32(m, self.value))
        return m


def test_int_to_float32_every_14_bit_value():
    dut = _Convert(14)
    values = np.arange(-(1 << 13), 1 << 13)
    got = []

    async def tb(ctx):
        for v in values:
            ctx.set(dut.value, int(v))
            got.append(ctx.get(dut.bits))

    sim = Simulator(dut)          # combinational: no clock
    sim.add_testbench(tb)
    sim.run()
    assert np.array_equal(np.array(got, np.uint32), ref.to_bits(values.astype(np.float32)))
    with pytest.raises(ValueError, match="at most 24 bits"):
        _Convert(25).elaborate(None)


@pytest.mark.parametrize("size,regions", [(8, [(1, 2, 5, 5), (0, 0, 8, 1)]), (9, [(0, 0, 9, 2)]),
                                          (4096, [(4094, 4093, 4096, 4096)])])
def test_coordinates_walk_the_region(size, regions):
    model = random_model(width=4, depth=1, size=size, seed=1)
    dut = FloatCoordinates(FloatCorePlan(model))
    got = []

    async def tb(ctx):
        for x0, y0, x1, y1 in regions:
            ctx.set(dut.region, {"x0": x0, "y0": y0, "x1": x1, "y1": y1})
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            pixels = []
            for _ in range(40 * (x1 - x0) * (y1 - y0)):
                ready, done = ctx.get(dut.source.ready), ctx.get(dut.done)
                if done:
                    break
                ctx.set(dut.source.next, ready)
                await ctx.tick()
                ctx.set(dut.source.next, 0)
                elements = []
                while ready and len(elements) < 2:
                    _, _, valid, payload = await ctx.tick().sample(dut.source.phases.valid, dut.source.phases.payload)
                    if valid:
                        elements.append((int(payload.phase), int(payload.index), int(payload.last)))
                if ready:
                    pixels.append(elements)
            got.append(pixels)

    run_sim(dut, [tb])
    for (x0, y0, x1, y1), pixels in zip(regions, got):
        ys, xs = np.mgrid[y0:y1, x0:x1]
        ux = (2 * xs.ravel() - (size - 1)).astype(np.float32)
        uy = (2 * ys.ravel() - (size - 1)).astype(np.float32)
        want = [[(int(a), 0, 0), (int(b), 1, 1)] for a, b in zip(ref.to_bits(ux), ref.to_bits(uy))]
        assert pixels == want


# ------------------------------------------------------------ MAC lanes

def _job_beats(plan, stage, x, rng, stall):
    """The beats of one job of ``stage`` on input vectors ``x`` (one per
    pixel), chunk-major with the plan's slots, and random idle cycles."""
    P, C, n = plan.lanes, plan.chunks[stage], plan.out_features[stage]
    beats = []
    for v in x:
        pad = np.zeros(C * P, np.uint32)
        pad[:len(v)] = v
        waddr = plan.wbase[stage]
        for c in range(C):
            for k in range(plan.slots[stage]):
                while rng.random() < stall:
                    beats.append(None)
                if k >= n:
                    beats.append(None)
                    continue
                beats.append({"act": [int(a) for a in pad[c * P:(c + 1) * P]], "addr": waddr,
                              "bias_addr": plan.bias_base[stage] + k, "first": c == 0, "last": c == C - 1,
                              "tag": stage})
                waddr += 1
    return beats


@pytest.mark.parametrize("lanes,stall,weight_register", [(1, 0.0, True), (2, 0.3, True), (4, 0.1, True),
                                                          (16, 0.2, True), (1, 0.2, False), (4, 0.0, False)])
def test_lanes_every_sum_in_order(lanes, stall, weight_register):
    """Jobs of every stage back to back (the ring of partial sums shared
    between them), idle slots and random gaps: every sum equals
    lane_dot_with_bias, in order, with its stage; the first sum of a
    one-chunk job comes lanes_latency cycles after its beat (one cycle
    sooner without the weight register)."""
    model = random_model(width=12, depth=2, size=8, seed=lanes, rotate=False)
    plan = FloatCorePlan(model, lanes=lanes, units=FloatUnits(), weight_register=weight_register)
    with_register = FloatCorePlan(model, lanes=lanes, units=FloatUnits())
    assert plan.lanes_latency == with_register.lanes_latency - (0 if weight_register else 1)
    rng = np.random.default_rng(lanes)
    beats, want = [], []
    for stage in (2, 1, 3, 2):
        w, b = plan.params[stage - 1]
        x = ref.to_bits(rng.uniform(-1, 1, size=(2, w.shape[1])).astype(np.float32))
        beats += _job_beats(plan, stage, x, rng, stall)
        want += [(int(t), stage) for row in lane_dot_with_bias(w, b, x, lanes) for t in row]
    dut = Fp32Lanes(plan)
    got = {}

    async def tb(ctx):
        out, first_beat = [], None
        for n in range(len(beats) + plan.lanes_latency + 2):
            beat = beats[n] if n < len(beats) else None
            ctx.set(dut.i.valid, beat is not None)
            if beat is not None:
                ctx.set(dut.i.payload, beat)
                first_beat = n if first_beat is None else first_beat
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                out.append((n, int(payload.acc) & 0xFFFFFFFF, int(payload.tag)))
        got["out"], got["first"] = out, first_beat

    run_sim(dut, [tb])
    assert [(t, s) for _, t, s in got["out"]] == want
    if plan.chunks[2] == 1:
        assert got["out"][0][0] - got["first"] == plan.lanes_latency
