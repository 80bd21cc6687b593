"""Round to nearest even and the exponent range checks shared by the FP32 units.

Rounding is split over two register stages so that neither holds more than
one carry chain: :func:`round_step` adds the rounding increment to the
24-bit mantissa and, beside it, :func:`exponent_flags` prepares everything
the final selection needs for both outcomes of the rounding carry;
:func:`final_exponent` then picks with the carry (one LUT level).
"""

from amaranth.hdl import Mux, Signal

from ... import float32_ref as ref

__all__ = ["round_step", "exponent_flags", "final_exponent"]

_W = ref.FRAC_BITS + 1


def round_step(m, mant, guard, sticky, name="rounded"):
    """``mant`` (24 bits) rounded to nearest even given its guard and sticky
    bits: a 25-bit signal whose top bit is the carry out (then the low 24 bits
    are zero: the mantissa is ``2**23`` of the next binade)."""
    rounded = Signal(_W + 1, name=name)
    plus1 = Signal(_W + 1, name=f"{name}_plus1")
    # the increment starts from the register while the decision is made
    m.d.comb += [plus1.eq(mant + 1), rounded.eq(Mux(guard & (sticky | mant[0]), plus1, mant))]
    return rounded


def exponent_flags(e, e1=None):
    """For a signed exponent ``e`` (10 bits: −512…511) before the rounding
    carry: the low 8 bits of ``e`` and ``e + 1`` and whether each is ≥ 255
    (overflow) or ≤ 0 (underflow), a dict of Values. The checks are bit
    logic, not comparators, so they sit beside a carry chain in one stage;
    ``e1`` (``e + 1``) may be given when it is computed in parallel."""
    if e1 is None:
        e1 = e + 1
    e = e.as_signed()
    top = ref.EXP_BITS
    neg = e[-1]
    return {"e0": e[:top], "e1": e1[:top],
            "ovf0": ~neg & (e[top:-1].any() | e[:top].all()),
            "ovf1": ~neg & (e[top:-1].any() | e[1:top].all()),
            "unf0": neg | (e == 0),
            "unf1": neg}


def final_exponent(flags, carry):
    """``(exp, overflow, underflow)`` after the rounding ``carry`` from the
    values of :func:`exponent_flags`."""
    return (Mux(carry, flags["e1"], flags["e0"]), Mux(carry, flags["ovf1"], flags["ovf0"]),
            Mux(carry, flags["unf1"], flags["unf0"]))
