"""Comparisons with a constant as logic, not as a carry chain.

Yosys maps every ordered comparison (``<``, ``>=``, …) to an adder's carry
chain, also when one side is a constant. On the iCE40 a carry whose logic
cell has no sum to compute costs that cell all the same: a comparison of a
10-bit index with a small constant takes ten logic cells, where the same
test written as bit patterns (``below``: the value's bits above each set
bit of the bound equal the bound's, that bit clear) takes two or three
LUTs.
"""

from amaranth.hdl import Const, Value

__all__ = ["below", "at_least"]


def below(value, bound):
    """``value < bound`` for an unsigned ``value`` and an integer ``bound``,
    as an or of equality tests (one per set bit of ``bound``)."""
    value = Value.cast(value).as_unsigned()
    if not isinstance(bound, int):
        raise TypeError(f"bound must be an int, not {bound!r}")
    width = len(value)
    if bound <= 0:
        return Const(0, 1)
    if bound >= 1 << width:
        return Const(1, 1)
    # value < bound: at the highest bit where they differ, bound has a 1
    # and value a 0; above it they are equal.
    terms = []
    for i in range(width):
        if bound >> i & 1:
            term = ~value[i]
            if i + 1 < width:
                term = term & (value[i + 1:] == bound >> (i + 1))
            terms.append(term)
    out = terms[0]
    for t in terms[1:]:
        out = out | t
    return out


def at_least(value, bound):
    """``value >= bound`` (unsigned ``value``, integer ``bound``): ``~below``."""
    return ~below(value, bound)
