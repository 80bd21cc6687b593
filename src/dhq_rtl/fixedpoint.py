"""Integer arithmetic primitives of the datapath (numpy, bit-exact).

These functions are the reference twins of the RTL blocks: each one computes
exactly what the corresponding gateware computes, on int64 arrays. See
``docs/datapath.md`` for where each one is used.
"""

import numpy as np


def signed_max(bits):
    """Largest value of the symmetric signed range of ``bits`` bits."""
    return (1 << (bits - 1)) - 1


def signed_bits(lo, hi):
    """Smallest two's-complement width that holds every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def floor_shift(x, shift):
    """``floor(x / 2**shift)``: an arithmetic right shift (shift ≥ 0)."""
    return np.right_shift(np.asarray(x, dtype=np.int64), shift)


def round_shift(x, shift):
    """``x / 2**shift`` rounded half up (toward +∞) for ``shift ≥ 1``.

    In hardware: add ``2**(shift-1)``, then shift right arithmetically.
    ``shift == 0`` returns ``x`` unchanged.
    """
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x.copy()
    return np.right_shift(x + (1 << (shift - 1)), shift)


def saturate(x, lo, hi):
    """Clamp to ``[lo, hi]``."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def saturate_signed(x, bits):
    """Clamp to the symmetric signed range ``±(2**(bits-1) - 1)``."""
    m = signed_max(bits)
    return saturate(x, -m, m)


def requantize(x, mult, shift, bits):
    """The activation requantizer: ``sat(round_half_up(x * mult / 2**shift))``.

    ``mult`` is an unsigned integer, ``shift ≥ 0``; the result is saturated to
    the symmetric signed range of ``bits`` bits. This is ``ref_requantize``,
    the twin of the requantizer gateware.
    """
    return saturate_signed(round_shift(np.asarray(x, dtype=np.int64) * int(mult), shift), bits)


def phase_scale(acc, mult, bias, shift, phase_bits):
    """Map an accumulator to a sine-table address.

    ``phase = floor((acc * mult + bias) / 2**shift) mod 2**phase_bits``.
    ``mult`` and ``bias`` broadcast against ``acc`` (per output channel).
    Dropping the high bits is the sine's periodicity: a full turn is
    ``2**phase_bits``.
    """
    t = np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    return np.bitwise_and(floor_shift(t, shift), (1 << phase_bits) - 1)


def output_scale(acc, mult, bias, shift, pixel_bits=8):
    """Map an output-layer accumulator to a pixel value.

    ``pixel = sat(floor((acc * mult + bias) / 2**shift), 0, 2**pixel_bits - 1)``;
    the bias carries the ``+0.5`` of round-half-up.
    """
    t = np.asarray(acc, dtype=np.int64) * np.asarray(mult, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    return saturate(floor_shift(t, shift), 0, (1 << pixel_bits) - 1)


def round_half_away(x):
    """Round to nearest, ties away from zero (used offline for table contents)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)
