# amaranth: UnusedElaboratable=no
"""Requantizer against dhq_rtl.fixedpoint.requantize, every output compared."""

import numpy as np
import pytest
from amaranth.hdl import signed

from dhq_rtl.fixedpoint import requantize, signed_max
from dhq_rtl.gateware.requant import Requantizer, ShiftRequantizer
from dhq_rtl.synthesis import synth_ice40_cells

from tests.testbench import (ResetWrapper, field, reset_mid_stream, run_sim, stream_full_rate, stream_through,
                           tagged_beats)


def expected(xs, sels, pairs, out_bits):
    out = []
    for x, s in zip(xs, sels):
        mult, shift = pairs[s] if s < len(pairs) else pairs[0]
        out.append(int(requantize(x, mult, shift, out_bits)))
    return out


def stream(dut, xs, sels, rng, in_stall=0.3, out_stall=0.3):
    beats = tagged_beats(dut, [{"data": int(x), "sel": int(s)} for x, s in zip(xs, sels)])
    return stream_through(dut, beats, rng, in_stall, out_stall, drain=dut.latency + 3)


def tie_and_edge_inputs(in_width, pairs, out_bits):
    """For every pair: exact .5 ties (both signs), both saturation edges and
    their neighbours, the input extremes, zero and ±1."""
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    limit = signed_max(out_bits)
    xs, sels = [], []
    for k, (mult, shift) in enumerate(pairs):
        cand = {lo, hi, 0, 1, -1, lo + 1, hi - 1}
        if mult:
            half = (1 << (shift - 1)) if shift else 0
            for target in (limit, limit + 1, -limit, -limit - 1, 0, 1, -1, 3, -3):
                # x*mult nearest to the value that rounds onto the target, and the
                # exact tie target - 1/2 (= (2*target-1) * 2**(shift-1)).
                centre = target * (1 << shift)
                for t in (centre - half, centre - half - 1, centre + half - 1, centre + half, centre):
                    for x in (t // mult, t // mult + 1, -((-t) // mult)):
                        cand.add(x)
            if shift:
                # ties: x*mult ≡ 2**(shift-1) (mod 2**shift), found by search
                ties = [x for x in range(lo, hi + 1) if (x * mult) % (1 << shift) == half]
                for x in ties[:4] + ties[len(ties) // 2 - 2:len(ties) // 2 + 2] + ties[-4:]:
                    cand.add(x)
        for x in sorted(cand):
            if lo <= x <= hi:
                xs.append(x)
                sels.append(k)
    return xs, sels


PAIRS = [(1, s) for s in range(0, 15)] + [(3, 1), (5, 2), (255, 9), (200, 0), (65535, 22), (0, 3)]


def test_ties_edges_every_shift():
    in_width, out_bits = 14, 8
    dut = Requantizer(in_width, PAIRS, out_bits, tag_shape=6)
    xs, sels = tie_and_edge_inputs(in_width, PAIRS, out_bits)
    exp = expected(xs, sels, PAIRS, out_bits)
    # The set really holds ties and both saturation edges of the reference.
    assert any((x * PAIRS[s][0]) % (1 << PAIRS[s][1]) == 1 << (PAIRS[s][1] - 1)
               for x, s in zip(xs, sels) if PAIRS[s][1])
    limit = signed_max(out_bits)
    assert exp.count(limit) > 0 and exp.count(-limit) > 0
    rng = np.random.default_rng(3)
    got = stream(dut, xs, sels, rng)
    assert field(got, "data") == exp
    assert field(got, "tag") == [k % 64 for k in range(len(xs))]


@pytest.mark.parametrize("in_width, out_bits, pairs", [
    (8, 8, [(1, 0)]),                        # identity, single pair
    (18, 8, [(1, 7), (1, 11), (9, 8)]),      # butterfly-like widths
    (12, 4, [(77, 5), (255, 12), (1, 1), (2, 0)]),
    (1, 2, [(1, 0), (3, 1)]),
])
def test_random(in_width, out_bits, pairs):
    rng = np.random.default_rng(in_width * 31 + out_bits)
    dut = Requantizer(in_width, pairs, out_bits)
    n = 400
    xs = rng.integers(-(1 << (in_width - 1)), 1 << (in_width - 1), size=n)
    sels = rng.integers(0, 1 << dut.sel_width, size=n)   # includes out-of-range sel → pair 0
    got = stream(dut, xs, sels, rng, 0.3, 0.5)
    assert field(got, "data") == expected(xs, sels, pairs, out_bits)


def test_exhaustive_8_bit():
    """Every 8-bit input with every pair of a small set, no stalls."""
    pairs = [(1, 0), (1, 1), (1, 2), (1, 5), (3, 2), (25, 6)]
    dut = Requantizer(8, pairs, 4)
    xs = [x for x in range(-128, 128) for _ in pairs]
    sels = [k for _ in range(-128, 128) for k in range(len(pairs))]
    got = stream(dut, xs, sels, None, 0.0, 0.0)
    assert field(got, "data") == expected(xs, sels, pairs, 4)


def test_full_rate_latency():
    pairs = [(1, 4), (7, 3)]
    dut = Requantizer(12, pairs, 8)
    rng = np.random.default_rng(5)
    xs = rng.integers(-2048, 2048, size=50)
    sels = rng.integers(0, 2, size=50)
    result = {}

    async def tb(ctx):
        result["r"] = await stream_full_rate(ctx, dut.i, dut.o,
                                             [{"data": int(x), "sel": int(s)} for x, s in zip(xs, sels)], 50)

    run_sim(dut, [tb])
    accepted, emitted = result["r"]
    assert accepted == list(range(50))
    assert [c for c, _ in emitted] == list(range(dut.latency, dut.latency + 50))
    assert dut.latency == 3
    assert [int(p.data) for _, p in emitted] == expected(xs, sels, pairs, 8)


def test_reset_mid_stream_recovers():
    pairs = [(1, 3), (5, 4)]
    dut = Requantizer(10, pairs, 6)
    top = ResetWrapper(dut)
    rng = np.random.default_rng(9)
    xs = rng.integers(-512, 512, size=60)
    sels = rng.integers(0, 2, size=60)
    junk = [{"data": x, "sel": 1} for x in (511, -512, 300)]
    fresh = [{"data": int(x), "sel": int(s)} for x, s in zip(xs, sels)]
    got = reset_mid_stream(top, dut, junk, fresh, rng, expect_busy=True)
    assert field(got, "data") == expected(xs, sels, pairs, 6)


def test_ports_and_widths():
    dut = Requantizer(18, [(1, 7), (3, 2), (1, 0)], 8, tag_shape=2)
    assert dut.sel_width == 2
    members = dict(dut.i.payload.shape().members)
    assert members["data"] == signed(18) and members["sel"].width == 2
    assert dict(dut.o.payload.shape().members)["data"] == signed(8)
    assert Requantizer(8, [(1, 0)], 8).sel_width == 1


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((0, [(1, 0)], 8), {}, ValueError, "in_width"),
    ((8.0, [(1, 0)], 8), {}, TypeError, "in_width"),
    ((8, [(1, 0)], 1), {}, ValueError, "out_bits"),
    ((8, [(1, 0)], True), {}, TypeError, "out_bits"),
    ((8, [], 8), {}, ValueError, "at least one"),
    ((8, 5, 8), {}, TypeError, "pairs must be"),
    ((8, [(1, 0, 2)], 8), {}, TypeError, r"pairs\[0\]"),
    ((8, [(1, 0), (-1, 0)], 8), {}, ValueError, r"pairs\[1\] mult"),
    ((8, [(1, -1)], 8), {}, ValueError, r"pairs\[0\] shift"),
    ((8, [(1, 63)], 8), {}, ValueError, r"pairs\[0\] shift"),
    ((8, [(1.5, 0)], 8), {}, TypeError, r"pairs\[0\] mult"),
    ((8, [(1, 0)], 8), {"tag_shape": -2}, ValueError, "tag_shape"),
])
def test_constructor_validation(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Requantizer(*args, **kwargs)


def test_accepts_numpy_integers():
    dut = Requantizer(8, [(np.int64(3), np.int32(2))], 8)
    assert dut.pairs == [(3, 2)]


# ------------------------------------------------------- synthesis (Yosys)

@pytest.mark.slow
def test_requantizer_mult_one_needs_no_multiplier():
    # The exporter's requantizers are round-and-shift (mult = 1): no DSP.
    shifts = Requantizer(16, [(1, 5), (1, 7), (1, 0)], 8)
    cells = synth_ice40_cells(shifts)
    assert cells.get("SB_MAC16", 0) == 0
    assert 0 < cells.get("SB_LUT4", 0) < 200
    # A real scale multiplier costs one DSP with -dsp.
    scaled = synth_ice40_cells(Requantizer(16, [(1, 5), (77, 12)], 8))
    assert scaled.get("SB_MAC16", 0) == 1


# ShiftRequantizer: the per-beat shift of the loadable core.

def shift_inputs(in_width, max_shift, out_bits, rng, count=400):
    """Every shift: ties, both saturation edges and their neighbours, the
    input extremes; then random beats."""
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    limit = signed_max(out_bits)
    xs, shifts = [], []
    for shift in range(max_shift + 1):
        half = (1 << (shift - 1)) if shift else 0
        cand = {lo, hi, 0, 1, -1, lo + 1, hi - 1}
        for target in (limit, limit + 1, -limit, -limit - 1, 0, 1, -1):
            centre = target << shift
            cand.update(range(centre - half - 2, centre - half + 3))
            cand.update(range(centre + half - 2, centre + half + 3))
        for x in sorted(cand):
            if lo <= x <= hi:
                xs.append(x)
                shifts.append(shift)
    xs += [int(v) for v in rng.integers(lo, hi + 1, count)]
    shifts += [int(v) for v in rng.integers(0, max_shift + 1, count)]
    return xs, shifts


@pytest.mark.parametrize("in_width, out_bits, max_shift", [(17, 8, 7), (17, 4, 11), (6, 8, 3), (12, 6, 13), (9, 2, 4)])
def test_shift_requantizer_every_shift(in_width, out_bits, max_shift):
    rng = np.random.default_rng(in_width * 100 + out_bits * 10 + max_shift)
    xs, shifts = shift_inputs(in_width, max_shift, out_bits, rng)
    dut = ShiftRequantizer(in_width, out_bits, max_shift, tag_shape=3)
    beats = tagged_beats(dut, [{"data": x, "shift": s} for x, s in zip(xs, shifts)])
    got = stream_through(dut, beats, rng, 0.3, 0.3, drain=dut.latency + 3)
    assert field(got, "data") == [int(requantize(x, 1, s, out_bits)) for x, s in zip(xs, shifts)]
    assert field(got, "tag") == [b["tag"] for b in beats]


def test_shift_requantizer_exhaustive_small():
    """Every input of 7 bits at every shift 0…9 (past the input's width), to
    3 bits: the out-of-range flag of stage 2 and the edge test of stage 3
    against the reference on all of them."""
    in_width, out_bits, max_shift = 7, 3, 9
    xs = [x for s in range(max_shift + 1) for x in range(-64, 64)]
    shifts = [s for s in range(max_shift + 1) for _ in range(-64, 64)]
    rng = np.random.default_rng(7)
    dut = ShiftRequantizer(in_width, out_bits, max_shift)
    got = stream_through(dut, [{"data": x, "shift": s} for x, s in zip(xs, shifts)], rng, 0.0, 0.0,
                         drain=dut.latency + 3)
    assert field(got, "data") == [int(requantize(x, 1, s, out_bits)) for x, s in zip(xs, shifts)]
