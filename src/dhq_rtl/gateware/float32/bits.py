"""The float32 bit layout as an Amaranth struct view."""

from amaranth.hdl import unsigned
from amaranth.lib import data

from ... import float32_ref as ref

__all__ = ["FLOAT32", "float32_view"]

#: The fields of an IEEE-754 binary32 bit pattern, least significant first.
FLOAT32 = data.StructLayout({
    "frac": unsigned(ref.FRAC_BITS),
    "exp": unsigned(ref.EXP_BITS),
    "sign": unsigned(1),
})


def float32_view(value):
    """A :data:`FLOAT32` view of a 32-bit value (fields ``frac``, ``exp``, ``sign``)."""
    return data.View(FLOAT32, value)
