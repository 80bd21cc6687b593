"""Bit-level helpers of the FP32 units: the float32 layout, leading-zero
count, right shift with a sticky bit.

All return combinational Amaranth values; the units decide where registers go.
"""

from amaranth.hdl import Cat, Const, Mux, unsigned
from amaranth.lib import data
from amaranth.utils import ceil_log2

from ... import float32_ref as ref

__all__ = ["FLOAT32", "float32_view", "leading_zeros", "shift_right_sticky"]

#: The fields of an IEEE-754 binary32 bit pattern, least significant first.
FLOAT32 = data.StructLayout({
    "frac": unsigned(ref.FRAC_BITS),
    "exp": unsigned(ref.EXP_BITS),
    "sign": unsigned(1),
})


def float32_view(value):
    """A :data:`FLOAT32` view of a 32-bit value (fields ``frac``, ``exp``, ``sign``)."""
    return data.View(FLOAT32, value)


def leading_zeros(value):
    """``(count, zero)``: the number of leading zeros of ``value`` (an
    unsigned Value of any width ``w``) and whether it is all zero (then
    ``count`` is meaningless). A balanced tree of ``ceil(log2 w)`` levels:
    each node takes the count of its upper half unless that half is zero.
    ``count`` is ``ceil_log2(w)`` bits wide."""
    w = len(value)
    n = 1 << ceil_log2(max(w, 2))
    # pad at the bottom with ones: the count of a non-zero value is unchanged
    padded = Cat(Const((1 << (n - w)) - 1, n - w), value) if n > w else value

    def node(v):
        if len(v) == 1:
            return Const(0, 0), ~v[0]
        half = len(v) // 2
        c_lo, z_lo = node(v[:half])
        c_hi, z_hi = node(v[half:])
        count = Cat(Mux(z_hi, c_lo, c_hi), z_hi)
        return count, z_hi & z_lo

    count, zero = node(padded)
    return count, value == 0


def shift_right_sticky(value, amount):
    """``value ≫ amount`` (same width as ``value``) with bit 0 ORed with
    every bit shifted out (the sticky bit of a rounding). ``amount`` may
    exceed the width: the result is then just the sticky bit."""
    w = len(value)
    shifted = (value >> amount)[:w]
    lost = Const(0, 1)
    for k in range(w):
        lost = lost | (value[k] & (amount > k))
    return shifted | lost
