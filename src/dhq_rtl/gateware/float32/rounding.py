"""Round to nearest even and the exponent range checks shared by the FP32 units.

Rounding is split over two register stages so that neither holds more than
one carry chain: :func:`round_step` adds the rounding increment to the
24-bit mantissa and, beside it, :func:`exponent_flags` prepares everything
the final selection needs for both outcomes of the rounding carry;
:func:`output_decisions` settles, still in the rounding stage, what the
result is for either carry, so that :func:`select_output` only picks with
the carry.
"""

from amaranth.hdl import Cat, Mux, Signal

from ... import float32_ref as ref

__all__ = ["round_step", "exponent_flags", "output_decisions", "select_output"]

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


def output_decisions(flags, *, inf, zero, up_to_min=None):
    """What the output is for either value of the rounding carry, decided in
    the rounding stage so that the output stage only selects: ``inf0/1``
    (±Inf: an Inf operand or an overflow), ``zero0/1`` (±0: a zero result or
    an underflow), ``min0/1`` (``±2**-126``: an underflow that rounds up to
    the smallest normal on the grid with subnormals; only the multiplier has
    such a case, ``up_to_min``). A NaN overrides all of them."""
    utm = 0 if up_to_min is None else up_to_min
    out = {}
    for c in "01":
        ovf, unf = flags[f"ovf{c}"], flags[f"unf{c}"]
        out[f"inf{c}"] = inf | (~zero & ovf)
        out[f"zero{c}"] = ~inf & (zero | (unf & ~utm))
        out[f"min{c}"] = ~inf & ~zero & unf & utm
    return out


def select_output(m, v, *, nan, sign, name="y"):
    """The output bit pattern from the registered rounding stage ``v``
    (``rounded``, ``e0``, ``e1`` and the values of :func:`output_decisions`)."""
    rounded = v["rounded"]
    carry = rounded[_W]
    is_inf = Mux(carry, v["inf1"], v["inf0"])
    is_zero = Mux(carry, v["zero1"], v["zero0"])
    is_min = Mux(carry, v["min1"], v["min0"])
    frac = Mux(is_inf | is_zero | is_min, 0, rounded[:_W - 1])
    exp = Mux(is_inf, ref.EXP_MAX, Mux(is_zero, 0, Mux(is_min, 1, Mux(carry, v["e1"], v["e0"]))))
    y = Signal(32, name=name)
    m.d.comb += y.eq(Mux(nan, ref.QNAN, Cat(frac, exp, sign)))
    return y
