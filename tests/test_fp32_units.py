# amaranth: UnusedElaboratable=no
"""Fp32Mul, Fp32Add, Fp32Sine in simulation against their numpy twins.

Every output of every run is compared with the twin (dhq_rtl.float32_ref),
and for the multiplier and the adder the twin is compared with numpy's
float32 arithmetic on the same vectors. Bulk vectors stream at full rate
(which also checks throughput and latency); smaller sets stream with random
stalls on both sides and a tag, and across a reset.
"""

import random

import numpy as np
import pytest

from dhq_rtl import float32_ref as ref
from dhq_rtl.gateware.float32 import Fp32Add, Fp32Mul, Fp32Sine

from tests import fp32_vectors as vec
from tests.testbench import ResetWrapper, field, reset_mid_stream, run_sim, stream_full_rate, stream_through


def full_rate(dut, beats):
    """Stream ``beats`` back to back; check that one beat is taken every
    ``ii`` cycles and that the first result comes ``(latency − 1)·ii + 1``
    cycles after its input (``latency`` cycles for ``ii = 1``). Returns the
    output payloads."""
    res = {}

    async def tb(ctx):
        res["r"] = await stream_full_rate(ctx, dut.i, dut.o, beats, len(beats))

    run_sim(dut, [tb])
    accepted, emitted = res["r"]
    ii = getattr(dut, "ii", 1)
    assert np.all(np.diff(accepted) == ii), "input not taken once per initiation interval"
    assert emitted[0][0] - accepted[0] == (dut.latency - 1) * ii + 1
    assert len(emitted) == len(beats)
    return [p for _, p in emitted]


def ys(payloads):
    return np.array(field(payloads, "y"), dtype=np.uint32)


def assert_same(got, want, inputs):
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, (f"{bad.size} of {got.size} outputs differ; first: inputs "
                           f"{[f'{int(x[bad[0]]):#010x}' for x in inputs]} → {int(got[bad[0]]):#010x}, "
                           f"twin {int(want[bad[0]]):#010x}")


def mul_vectors(seed, n=400):
    rng = np.random.default_rng(seed)
    sets = [vec.all_pairs(vec.specials()), vec.mul_ties(rng, n), vec.mul_carries(rng, n),
            vec.mul_range_edges(rng, n), (vec.random_bits(rng, n), vec.random_bits(rng, n)),
            (vec.random_normal(rng, 2 * n), vec.random_normal(rng, 2 * n))]
    return np.concatenate([a for a, _ in sets]), np.concatenate([b for _, b in sets])


def add_vectors(seed, n=400):
    rng = np.random.default_rng(seed)
    sets = [vec.all_pairs(vec.specials()), vec.add_ties(rng, n), vec.add_alignments(rng, n),
            vec.add_cancellation(rng, n), vec.add_carries(rng, n),
            (vec.random_bits(rng, n), vec.random_bits(rng, n)),
            (vec.random_normal(rng, n), vec.random_normal(rng, n))]
    return np.concatenate([a for a, _ in sets]), np.concatenate([b for _, b in sets])


def binary_beats(a, b):
    return [{"a": int(x), "b": int(y)} for x, y in zip(a, b)]


# ------------------------------------------------------------------- multiply

def test_mul_every_class_full_rate():
    a, b = mul_vectors(1)
    want = ref.mul(a, b)
    assert_same(want, ref.mul_spec(a, b), (a, b))            # the twin is numpy's float32
    dut = Fp32Mul()
    assert dut.latency == 6 and dut.multipliers == 4 and dut.dsp_count == 0
    assert_same(ys(full_rate(dut, binary_beats(a, b))), want, (a, b))


@pytest.mark.parametrize("latency", [2, 4])
def test_mul_shorter_pipelines(latency):
    a, b = mul_vectors(2, n=60)
    dut = Fp32Mul(latency=latency)
    assert_same(ys(full_rate(dut, binary_beats(a[::3], b[::3]))), ref.mul(a[::3], b[::3]), (a[::3], b[::3]))


def test_mul_stalls_and_tags():
    rng = np.random.default_rng(3)
    a, b = vec.mul_ties(rng, 150)
    a = np.concatenate([a, vec.random_normal(rng, 150)])
    b = np.concatenate([b, vec.random_normal(rng, 150)])
    dut = Fp32Mul(tag_shape=5)
    beats = [dict(p, tag=k % 32) for k, p in enumerate(binary_beats(a, b))]
    got = stream_through(dut, beats, random.Random(4), in_stall=0.3, out_stall=0.4)
    assert_same(ys(got), ref.mul(a, b), (a, b))
    assert field(got, "tag") == [k % 32 for k in range(len(beats))]


# ------------------------------------------------------------------------ add

def test_add_every_class_full_rate():
    a, b = add_vectors(5)
    want = ref.add(a, b)
    assert_same(want, ref.add_spec(a, b), (a, b))
    dut = Fp32Add()
    assert dut.latency == 9
    assert_same(ys(full_rate(dut, binary_beats(a, b))), want, (a, b))


@pytest.mark.parametrize("latency", [1, 5])
def test_add_shorter_pipelines(latency):
    a, b = add_vectors(6, n=60)
    dut = Fp32Add(latency=latency)
    assert_same(ys(full_rate(dut, binary_beats(a[::3], b[::3]))), ref.add(a[::3], b[::3]), (a[::3], b[::3]))


def test_add_stalls_and_tags():
    rng = np.random.default_rng(7)
    a, b = vec.add_cancellation(rng, 150)
    a = np.concatenate([a, vec.add_alignments(rng, 150)[0]])
    b = np.concatenate([b, vec.add_alignments(rng, 150)[1]])
    dut = Fp32Add(tag_shape=3)
    beats = [dict(p, tag=k % 8) for k, p in enumerate(binary_beats(a, b))]
    got = stream_through(dut, beats, random.Random(8), in_stall=0.4, out_stall=0.3)
    assert_same(ys(got), ref.add(a, b), (a, b))
    assert field(got, "tag") == [k % 8 for k in range(len(beats))]


def test_struct_tags_pass_through_every_unit():
    # A tag given as a StructLayout (as the core's parts give theirs) comes
    # out with its result, field by field.
    from amaranth.lib import data
    layout = data.StructLayout({"index": 5, "last": 1})
    rng = np.random.default_rng(17)
    a, b = vec.random_normal(rng, 40), vec.random_normal(rng, 40)
    tags = [{"index": k % 32, "last": k % 3 == 0} for k in range(40)]
    for dut, beats, want in ((Fp32Mul(tag_shape=layout), binary_beats(a, b), ref.mul(a, b)),
                             (Fp32Add(tag_shape=layout), binary_beats(a, b), ref.add(a, b)),
                             (Fp32Sine(tag_shape=layout), sine_beats(a), ref.sin_turns(a))):
        got = stream_through(dut, [dict(p, tag=t) for p, t in zip(beats, tags)], random.Random(3),
                             in_stall=0.2, out_stall=0.2)
        assert_same(ys(got), want, (a,))
        assert [(int(p.tag.index), int(p.tag.last)) for p in got] == [(t["index"], int(t["last"])) for t in tags]


def test_add_reset_mid_stream():
    rng = np.random.default_rng(9)
    dut = Fp32Add()
    a, b = vec.random_normal(rng, 100), vec.random_normal(rng, 100)
    got = reset_mid_stream(ResetWrapper(dut), dut, binary_beats(a[:20], b[:20]), binary_beats(a[20:], b[20:]),
                           random.Random(10), expect_busy=True)
    assert_same(ys(got), ref.add(a[20:], b[20:]), (a[20:], b[20:]))


# ----------------------------------------------------------------------- sine

def sine_beats(t):
    return [{"t": int(x)} for x in t]


def test_sine_every_class_full_rate():
    t = vec.sine_phases(np.random.default_rng(11), 1200)
    dut = Fp32Sine()
    assert dut.latency == 19 and dut.ii == 1 and dut.multipliers == 9
    assert dut.depth == 256 and dut.c_widths == (28, 21, 13)
    assert_same(ys(full_rate(dut, sine_beats(t))), ref.sin_turns(t), (t,))


@pytest.mark.parametrize("ii,latency,multipliers", [(11, None, 1), (3, 5, 9), (5, 12, 3)])
def test_sine_shared_multipliers(ii, latency, multipliers):
    rng = np.random.default_rng(ii)
    t = vec.sine_phases(rng, 80)[::3]
    dut = Fp32Sine(ii=ii, latency=latency)
    assert dut.multipliers == multipliers
    assert_same(ys(full_rate(dut, sine_beats(t))), ref.sin_turns(t), (t,))


def test_sine_minimum_latency():
    t = vec.sine_phases(np.random.default_rng(12), 200)[::2]
    dut = Fp32Sine(latency=5)
    assert_same(ys(full_rate(dut, sine_beats(t))), ref.sin_turns(t), (t,))


def test_sine_smaller_spec():
    spec = ref.SineSpec(index_bits=6, h_bits=24)
    t = vec.sine_phases(np.random.default_rng(13), 200)[::2]
    dut = Fp32Sine(spec, latency=10)
    assert dut.depth == 64
    assert_same(ys(full_rate(dut, sine_beats(t))), ref.sin_turns(t, spec), (t,))


@pytest.mark.parametrize("ii", [1, 4])
def test_sine_stalls_and_tags(ii):
    rng = np.random.default_rng(14 + ii)
    t = vec.sine_phases(rng, 150)[-250:]
    dut = Fp32Sine(ii=ii, tag_shape=4)
    beats = [dict(p, tag=k % 16) for k, p in enumerate(sine_beats(t))]
    got = stream_through(dut, beats, random.Random(ii), in_stall=0.3, out_stall=0.5,
                         drain=(dut.latency + 4) * ii)
    assert_same(ys(got), ref.sin_turns(t), (t,))
    assert field(got, "tag") == [k % 16 for k in range(len(beats))]


def test_sine_reset_mid_stream_shared():
    rng = np.random.default_rng(15)
    dut = Fp32Sine(ii=4, latency=5)       # short enough to have a result waiting when the reset comes
    t = vec.sine_phases(rng, 60)[-60:]
    got = reset_mid_stream(ResetWrapper(dut), dut, sine_beats(t[:25]), sine_beats(t[25:]), random.Random(16),
                           expect_busy=True)
    assert_same(ys(got), ref.sin_turns(t[25:]), (t[25:],))


# ----------------------------------------------------------- constructor checks

@pytest.mark.parametrize("cls,kwargs,exc,match", [
    (Fp32Mul, {"latency": 1}, ValueError, "latency"),
    (Fp32Mul, {"latency": 7}, ValueError, "latency"),
    (Fp32Mul, {"latency": 3.0}, TypeError, "latency"),
    (Fp32Mul, {"dsp": "ecp5"}, ValueError, "dsp"),
    (Fp32Mul, {"tag_shape": -1}, ValueError, "tag_shape"),
    (Fp32Add, {"latency": 0}, ValueError, "latency"),
    (Fp32Add, {"latency": 10}, ValueError, "latency"),
    (Fp32Add, {"tag_shape": "4"}, TypeError, "tag_shape"),
    (Fp32Sine, {"spec": (8, 27)}, TypeError, "SineSpec"),
    (Fp32Sine, {"latency": 4}, ValueError, "latency"),
    (Fp32Sine, {"latency": 20}, ValueError, "latency"),
    (Fp32Sine, {"ii": 2}, ValueError, "ii"),
    (Fp32Sine, {"ii": 0}, ValueError, "ii"),
    (Fp32Sine, {"ii": True}, TypeError, "ii"),
    (Fp32Sine, {"dsp": None}, ValueError, "dsp"),
])
def test_constructor_validation(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(**kwargs)


def test_dsp_counts():
    assert Fp32Mul(dsp="ice40").dsp_count == 4
    assert Fp32Sine(dsp="ice40").dsp_count == 9
    assert Fp32Sine(dsp="ice40", ii=11).dsp_count == 1
    assert Fp32Sine(dsp="ice40", ii=7).dsp_count == 2
