"""The float32 golden model: its operation order, folding, pixel conversion,
and its distance from the float model in float64."""

import math

import numpy as np
import pytest

from dhq_rtl import float32_ref as ref
from dhq_rtl.errors import ModelImageError
from dhq_rtl.golden_float32 import (FloatGoldenModel, float64_render, float_core_parameters, float_pixels,
                                    lane_dot_with_bias)
from dhq_rtl.images import psnr
from dhq_rtl.synthetic import random_model


def _explicit_dot(w, b, x, lanes):
    """The order written out with the bit-level twins, one scalar at a time."""
    n_out, n_in = w.shape
    out = np.zeros(n_out, np.uint32)
    for k in range(n_out):
        acc = np.uint32(b[k])
        for c in range(0, n_in, lanes):
            prods = [ref.mul(w[k, j], x[j]) if j < n_in else np.uint32(0) for j in range(c, c + lanes)]
            while len(prods) > 1:
                nxt = [ref.add(prods[j], prods[j + 1]) for j in range(0, len(prods) - 1, 2)]
                prods = nxt + ([prods[-1]] if len(prods) % 2 else [])
            acc = ref.add(acc, prods[0])
        out[k] = acc
    return out


@pytest.mark.parametrize("n_out,n_in,lanes", [(3, 5, 1), (4, 7, 2), (2, 9, 4), (3, 16, 16), (2, 3, 8), (5, 6, 3)])
def test_dot_order_is_the_lanes_tree_and_accumulator(n_out, n_in, lanes):
    rng = np.random.default_rng(n_in * 10 + lanes)
    w = ref.to_bits(rng.normal(size=(n_out, n_in)).astype(np.float32))
    x = ref.to_bits(rng.normal(size=n_in).astype(np.float32) * np.float32(1e3) ** rng.integers(-2, 3, n_in))
    b = ref.to_bits(rng.normal(size=n_out).astype(np.float32))
    got = lane_dot_with_bias(w, b, x, lanes)
    assert np.array_equal(got, _explicit_dot(w, b, x, lanes))
    # = the units' lane_dot with the bias as the first addend
    no_bias = lane_dot_with_bias(w, np.zeros(n_out, np.uint32), x, lanes)
    assert np.array_equal(no_bias, ref.add(np.zeros(n_out, np.uint32), ref.lane_dot(w, x, lanes)))


def test_order_matters_so_the_golden_model_fixes_it():
    # Catastrophic cancellation: the tree order and the left-to-right order differ.
    w = ref.to_bits(np.array([[1.0, 1.0, 1.0, 1.0]], np.float32))
    x = ref.to_bits(np.array([1e8, 1.0, -1e8, 1.0], np.float32))
    zero = np.zeros(1, np.uint32)
    tree = ref.from_bits(lane_dot_with_bias(w, zero, x, 4))[0]      # (1e8 + 1) + (−1e8 + 1) = 0
    serial = ref.from_bits(lane_dot_with_bias(w, zero, x, 1))[0]    # ((1e8 + 1) − 1e8) + 1 = 1
    assert (tree, serial) == (0.0, 1.0)


def test_folded_parameters():
    m = random_model(width=8, depth=2, size=10, seed=1)
    params = float_core_parameters(m)
    s = m.omega0 / (2 * math.pi)
    w0, b0 = (ref.from_bits(p) for p in params[0])
    f0 = m.layers[0].float_weight.astype(np.float64)
    assert np.array_equal(w0[:, 0], (f0[:, 0] * s / 9).astype(np.float32))
    assert np.array_equal(w0[:, 1], (f0[:, 1] * s / 9).astype(np.float32))
    assert np.array_equal(b0, (m.layers[0].float_bias.astype(np.float64) * s).astype(np.float32))
    w1 = ref.from_bits(params[1][0])
    assert np.array_equal(w1, (m.layers[1].float_weight.astype(np.float64) * s).astype(np.float32))
    w2, b2 = (ref.from_bits(p) for p in params[2])
    assert np.array_equal(w2, (m.layers[2].float_weight.astype(np.float64) * 127.5).astype(np.float32))
    assert np.array_equal(b2, ((m.layers[2].float_bias.astype(np.float64) + 1) * 127.5 + 0.5).astype(np.float32))


def test_pixel_conversion():
    t = ref.to_bits(np.array([0.0, -0.0, -0.5, -3e38, 0.999, 1.0, 254.99998, 255.0, 255.5, 1e30, 77.5],
                             np.float32))
    t = np.concatenate([t, [ref.QNAN, ref.INF, ref.INF | ref.SIGN]]).astype(np.uint32)
    assert float_pixels(t, 8).tolist() == [0, 0, 0, 0, 0, 1, 254, 255, 255, 255, 77, 0, 255, 0]
    assert float_pixels(ref.to_bits(np.float32(70000.0)), 16).tolist() == 65535


def test_trace_layers_chain():
    m = random_model(width=8, depth=3, size=8, seed=2, channels=3)
    g = FloatGoldenModel(m, lanes=2)
    xs, ys = np.array([0, 7, 3]), np.array([0, 7, 5])
    steps = g.trace(xs, ys)
    assert ref.from_bits(steps[0]["input"]).tolist() == [[-7, -7], [7, 7], [-1, 3]]
    for a, b in zip(steps, steps[1:]):
        assert np.array_equal(b["input"], a["h"])
        assert np.array_equal(a["h"], ref.sin_turns(a["t"]))
    assert steps[-1]["pixel"].shape == (3, 3)


@pytest.mark.parametrize("kw", [dict(width=16, depth=3, size=32, seed=0),
                                dict(width=8, depth=2, size=24, seed=5, channels=3, rotate_first=True)])
def test_float32_model_agrees_with_float64(kw):
    """The float32 model differs from the float model in float64 only by
    rounding: at most one grey level anywhere, rarely; every lane count."""
    m = random_model(**kw)
    want, _ = float64_render(m)
    for lanes in (1, 2, 4, 16):
        got = FloatGoldenModel(m, lanes).render()
        diff = np.abs(got.astype(np.int64) - want)
        assert diff.max() <= 1 and np.mean(diff != 0) < 0.01
        assert psnr(want, got) > 60


def test_needs_float_parameters():
    m = random_model(width=8, depth=1, size=8, seed=1)
    for layer in m.layers:
        layer.float_weight = layer.float_bias = None
    with pytest.raises(ModelImageError, match="carries no float parameters .* re-export it"):
        FloatGoldenModel(m)
    with pytest.raises(ValueError, match="lanes must be a positive integer"):
        FloatGoldenModel(random_model(width=8, depth=1, size=8, seed=1), lanes=0)
