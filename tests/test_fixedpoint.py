import numpy as np

from dhq_rtl.fixedpoint import (output_scale, phase_scale, requantize, round_half_away, round_shift,
                                saturate_signed, signed_bits)


def test_round_shift_ties_go_up():
    # x / 4 with x = -6, -2, 2, 6 are exact ties at -1.5, -0.5, 0.5, 1.5
    assert round_shift(np.array([-6, -2, 2, 6]), 2).tolist() == [-1, 0, 1, 2]
    assert round_shift(np.array([-7, -5, 5, 7]), 2).tolist() == [-2, -1, 1, 2]
    assert round_shift(np.array([-3, 3]), 0).tolist() == [-3, 3]


def test_requantize_saturates_both_edges():
    assert requantize(np.array([1000, -1000, 127 * 4, -127 * 4, 127 * 4 + 2]), 1, 2, 8).tolist() == \
        [127, -127, 127, -127, 127]
    # symmetric range: -128 is never produced
    assert requantize(np.array([-128 * 8]), 1, 3, 8).tolist() == [-127]


def test_requantize_matches_float_definition():
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 20), 1 << 20, size=10000)
    for mult, shift in [(1, 0), (1, 5), (37, 9), (255, 14)]:
        ref = np.clip(np.floor(x * mult / 2.0 ** shift + (0.5 if shift else 0)), -127, 127)
        assert np.array_equal(requantize(x, mult, shift, 8), ref.astype(np.int64))


def test_phase_scale_wraps_modulo():
    acc = np.array([0, 1, -1, 1000])
    p = phase_scale(acc, 3, 5, 1, 4)
    assert p.tolist() == [((a * 3 + 5) >> 1) & 15 for a in acc.tolist()]


def test_output_scale_clamps():
    assert output_scale(np.array([-100, 0, 100, 10000]), 2, 0, 0).tolist() == [0, 0, 200, 255]


def test_signed_bits():
    assert signed_bits(-128, 127) == 8
    assert signed_bits(-129, 0) == 9
    assert signed_bits(0, 128) == 9
    assert signed_bits(0, 0) == 1


def test_round_half_away_is_symmetric():
    v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert round_half_away(v).tolist() == [-3, -2, -1, 1, 2, 3]
    assert np.array_equal(round_half_away(-v), -round_half_away(v))


def test_saturate_signed():
    assert saturate_signed(np.array([-9, 9]), 4).tolist() == [-7, 7]
