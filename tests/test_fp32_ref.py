"""The FP32 twins (dhq_rtl.float32_ref) against numpy float32 and float64.

The multiply and add twins are step-by-step integer algorithms; here they
must equal numpy's correctly rounded float32 arithmetic (subnormals flushed,
NaNs canonical) on every vector of large random and corner sets. The sine
twin is checked for its exact range reduction, its symmetries and its error
bound against float64.
"""

import zlib

import numpy as np
import pytest

from dhq_rtl import float32_ref as ref

from tests import fp32_vectors as vec


def _check(op, twin, spec, a, b):
    got, want = twin(a, b), spec(a, b)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, (f"{op}: {bad.size} of {a.size} differ, first {a[bad[0]]:#010x} {op} "
                           f"{b[bad[0]]:#010x}: twin {got[bad[0]]:#010x}, numpy {want[bad[0]]:#010x}")


@pytest.mark.parametrize("op,twin,spec", [("mul", ref.mul, ref.mul_spec), ("add", ref.add, ref.add_spec)])
def test_twins_equal_numpy_on_random_sets(op, twin, spec):
    rng = np.random.default_rng(2024)
    n = 1_000_000
    _check(op, twin, spec, vec.random_bits(rng, n), vec.random_bits(rng, n))
    _check(op, twin, spec, vec.random_normal(rng, n), vec.random_normal(rng, n))
    # close exponents: every alignment and normalisation path
    a = vec.random_normal(rng, n, 1, 255)
    e = np.clip(((a >> 23) & 0xFF).astype(np.int64) + rng.integers(-30, 31, n), 1, 254)
    b = vec.pack(rng.integers(0, 2, n), e, rng.integers(0, vec.MANT, n))
    _check(op, twin, spec, a, b)


@pytest.mark.parametrize("gen", [vec.mul_ties, vec.mul_carries, vec.mul_range_edges])
def test_mul_twin_corner_classes(gen):
    a, b = gen(np.random.default_rng(7), 50_000)
    _check("mul", ref.mul, ref.mul_spec, a, b)


@pytest.mark.parametrize("gen", [vec.add_ties, vec.add_alignments, vec.add_cancellation, vec.add_carries])
def test_add_twin_corner_classes(gen):
    a, b = gen(np.random.default_rng(8), 50_000)
    _check("add", ref.add, ref.add_spec, a, b)


def test_specials_every_pair():
    a, b = vec.all_pairs(vec.specials())
    _check("mul", ref.mul, ref.mul_spec, a, b)
    _check("add", ref.add, ref.add_spec, a, b)


def f(x):
    return int(ref.to_bits(np.float32(x)))


@pytest.mark.parametrize("a,b,product,total", [
    (0, ref.INF, ref.QNAN, ref.INF),                              # 0·Inf is NaN, 0 + Inf is Inf
    (ref.INF, ref.INF | ref.SIGN, ref.INF | ref.SIGN, ref.QNAN),  # Inf − Inf is NaN
    (0x7F800001 | ref.SIGN, f(1), ref.QNAN, ref.QNAN),            # a signalling NaN: canonical quiet NaN
    (f(1.5), f(-1.5), f(-2.25), 0),                               # x + (−x) = +0
    (ref.SIGN, ref.SIGN, 0, ref.SIGN),                            # (−0)·(−0) = +0, (−0) + (−0) = −0
    (ref.SIGN, 0, ref.SIGN, 0),                                   # −0 + +0 = +0
    (1 | ref.SIGN, f(1), ref.SIGN, f(1)),                         # a subnormal is a signed zero
    (f(3.4e38), f(2), ref.INF, f(3.4e38)),                        # overflow: Inf
    (f(2.0 ** -126), f(0.5), 0, f(0.5)),                          # a subnormal product flushes
    (0x3F7FFFFF, ref.MIN_NORMAL, ref.MIN_NORMAL, 0x3F7FFFFF),     # (2 − 2**-23)·2**-127 rounds up to 2**-126
    (f(2.0 ** -126), f(-1.5 * 2.0 ** -126), ref.SIGN, ref.SIGN),  # tiny product and sum: −0
])
def test_documented_cases(a, b, product, total):
    assert int(ref.mul(a, b)) == product
    assert int(ref.add(a, b)) == total
    assert int(ref.mul_spec(a, b)) == product
    assert int(ref.add_spec(a, b)) == total


def test_spec_is_plain_numpy_for_normal_values():
    rng = np.random.default_rng(3)
    a, b = vec.random_normal(rng, 100_000), vec.random_normal(rng, 100_000)
    fa, fb = ref.from_bits(a), ref.from_bits(b)
    assert np.array_equal(ref.mul_spec(a, b), ref.to_bits(fa * fb))
    assert np.array_equal(ref.add_spec(a, b), ref.to_bits(fa + fb))


def test_flush_and_canonical_nan():
    u = np.array([0, 1, 0x807FFFFF, ref.MIN_NORMAL, 0x7F800001, 0xFFC00001, ref.INF], np.uint32)
    assert ref.flush(u).tolist() == [0, 0, ref.SIGN, ref.MIN_NORMAL, 0x7F800001, 0xFFC00001, ref.INF]
    assert ref.canonical_nan(u).tolist() == [0, 1, 0x807FFFFF, ref.MIN_NORMAL, ref.QNAN, ref.QNAN, ref.INF]
    with pytest.raises(TypeError, match="integers"):
        ref.flush(np.array([1.0]))
    with pytest.raises(ValueError, match="2\\*\\*32"):
        ref.mul([1 << 32], [0])


def test_tree_sum_order():
    rng = np.random.default_rng(4)
    x = ref.to_bits(rng.standard_normal((1000, 5)).astype(np.float32) * np.float32(1e3) ** rng.integers(-1, 2, (1000, 5)))
    want = ref.add(ref.add(ref.add(x[:, 0], x[:, 1]), ref.add(x[:, 2], x[:, 3])), x[:, 4])
    assert np.array_equal(ref.tree_sum(x), want)
    sequential = x[:, 0]
    for k in range(1, 5):
        sequential = ref.add(sequential, x[:, k])
    assert not np.array_equal(sequential, want)   # the order matters; the tree is the defined one
    assert np.array_equal(ref.tree_sum(x[:, :1]), x[:, 0])
    with pytest.raises(ValueError, match="at least one"):
        ref.tree_sum(np.zeros((3, 0), np.uint32))


def test_lane_dot_order():
    rng = np.random.default_rng(10)
    w = ref.to_bits(rng.standard_normal((3, 7)).astype(np.float32))
    x = ref.to_bits(rng.standard_normal((4, 7)).astype(np.float32))
    got = ref.lane_dot(w, x, 3)
    assert got.shape == (4, 3)
    for p in range(4):
        for k in range(3):
            prods = [ref.mul(w[k, j], x[p, j]) for j in range(7)] + [np.uint32(0), np.uint32(0)]
            beats = [ref.add(ref.add(prods[3 * b], prods[3 * b + 1]), prods[3 * b + 2]) for b in range(3)]
            want = ref.add(ref.add(beats[0], beats[1]), beats[2])
            assert int(got[p, k]) == int(want)
    np.testing.assert_allclose(ref.from_bits(got), ref.from_bits(x) @ ref.from_bits(w).T, rtol=1e-5, atol=1e-5)
    # one lane: a plain sequential sum; all lanes: one tree
    assert np.array_equal(ref.lane_dot(w, x, 1)[:, 0], ref.add(ref.add(ref.add(ref.add(ref.add(ref.add(
        ref.mul(w[0, 0], x[:, 0]), ref.mul(w[0, 1], x[:, 1])), ref.mul(w[0, 2], x[:, 2])), ref.mul(w[0, 3], x[:, 3])),
        ref.mul(w[0, 4], x[:, 4])), ref.mul(w[0, 5], x[:, 5])), ref.mul(w[0, 6], x[:, 6])))
    prods = ref.mul(w[None], x[:, None, :])                       # (4, 3, 7)
    padded = np.concatenate([prods, np.zeros((4, 3, 1), np.uint32)], axis=-1)
    assert np.array_equal(ref.lane_dot(w, x, 8), ref.tree_sum(padded))
    with pytest.raises(ValueError, match="chain"):
        ref.lane_dot(w, x[:, :5], 2)
    with pytest.raises(ValueError, match="lanes"):
        ref.lane_dot(w, x, 0)


# ------------------------------------------------------------------------ sine

def test_sine_table_is_deterministic():
    c0, c1, c2 = ref.sine_table()
    assert c0.shape == c1.shape == c2.shape == (256,)
    assert int(c0[0]) == round(np.pi / 2 * 2 ** 27)
    assert int(c1[0]) == 0                                   # h'(0) = 0
    assert [int(c.max()).bit_length() for c in (c0, c1, c2)] == [28, 21, 13]
    # pin the contents: a change of the table must be a deliberate one
    crc = zlib.crc32(np.concatenate([c0, c1, c2]).astype("<i8").tobytes())
    assert crc == 0xB8C1512D, f"sine table changed: crc {crc:#010x}"


def test_sine_exact_values():
    t = np.array([0.0, -0.0, 0.25, -0.25, 0.5, -0.5, 0.75, 1.0, -1.0, 1.25, 2.0 ** 21 + 0.75, 2.0 ** 24, 1e30],
                 np.float32)
    y = ref.sin_turns(ref.to_bits(t))
    assert ref.from_bits(y).tolist() == [0.0, -0.0, 1.0, -1.0, 0.0, -0.0, -1.0, 0.0, -0.0, 1.0, -1.0, 0.0, 0.0]
    assert (y >> 31).tolist() == [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0]   # a zero has the sign of t
    specials = np.array([1, 0x807FFFFF, ref.INF, ref.INF | ref.SIGN, ref.QNAN, 0xFF800001], np.uint32)
    assert ref.sin_turns(specials).tolist() == [0, ref.SIGN, ref.QNAN, ref.QNAN, ref.QNAN, ref.QNAN]


def test_sine_is_odd_and_periodic_exactly():
    rng = np.random.default_rng(5)
    t = ref.to_bits(np.exp2(rng.uniform(-30, 20, 200_000)).astype(np.float32))
    y = ref.sin_turns(t)
    assert np.array_equal(ref.sin_turns(t | np.uint32(ref.SIGN)), y ^ np.uint32(ref.SIGN))
    # whole turns are whole bits of t: adding them changes nothing
    base = rng.integers(0, 1 << 12, 100_000) / np.float32(1 << 12)
    turns = rng.integers(1, 1 << 10, 100_000)
    a, b = ref.to_bits((base).astype(np.float32)), ref.to_bits((base + turns).astype(np.float32))
    assert np.array_equal(ref.from_bits(b).astype(np.float64) - turns, ref.from_bits(a))   # exact sums
    assert np.array_equal(ref.sin_turns(a), ref.sin_turns(b))


def test_sine_error_bound():
    """At most 0.631 ULP (the maximum of the exhaustive sweep in
    bench/fp32_units.py --sine-error, docs/float32.md) on random phases of
    every binade the model uses."""
    rng = np.random.default_rng(6)
    t = ref.to_bits(np.exp2(rng.uniform(-40, 8, 1_000_000)).astype(np.float32))
    y = ref.sin_turns(t)
    err = ref.ulp_error(y, ref.sin_turns_reference(t))
    assert 0.5 < err.max() < 0.631
    assert np.all(np.abs(ref.from_bits(y)) <= 1.0)


def test_sine_reference_and_ulp_error():
    t = np.float32([0.1, 0.3, 1.7, -2.2, 1e-3])
    np.testing.assert_allclose(ref.sin_turns_reference(ref.to_bits(t)), np.sin(2 * np.pi * t.astype(np.float64)),
                               rtol=1e-12, atol=1e-15)
    one = ref.to_bits(np.float32([1.0, 1.0, 2.0 ** -130]))
    assert ref.ulp_error(one, [1.0, 1.0 + 2.0 ** -23, 2.0 ** -130]).tolist() == [0.0, 1.0, 0.0]
    assert ref.ulp_error(ref.to_bits(np.float32([0.75])), [0.75 + 2.0 ** -25]).tolist() == [0.5]


def test_smaller_sine_spec_is_coarser_but_exact_in_reduction():
    spec = ref.SineSpec(index_bits=6, h_bits=24)
    rng = np.random.default_rng(9)
    t = ref.to_bits(np.exp2(rng.uniform(-10, 6, 100_000)).astype(np.float32))
    err = ref.ulp_error(ref.sin_turns(t, spec), ref.sin_turns_reference(t))
    assert 0.7 < err.max() < 4
    assert ref.sin_turns(ref.to_bits(np.float32([0.25])), spec).tolist() == [0x3F800000]


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"index_bits": 3}, ValueError, "index_bits"),
    ({"index_bits": 11}, ValueError, "index_bits"),
    ({"index_bits": 8.0}, TypeError, "index_bits"),
    ({"h_bits": 21}, ValueError, "h_bits"),
    ({"h_bits": True}, TypeError, "h_bits"),
])
def test_sine_spec_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ref.SineSpec(**kwargs)


def test_sine_rejects_other_specs():
    with pytest.raises(TypeError, match="SineSpec"):
        ref.sin_turns(np.zeros(1, np.uint32), spec=(8, 27))
    with pytest.raises(TypeError, match="SineSpec"):
        ref.sine_table((8, 27))
