"""Pipelined IEEE-754 binary32 adder.

:class:`Fp32Add` computes ``y = a + b`` of two float32 bit patterns, rounded
to nearest even; its numpy twin is :func:`dhq_rtl.float32_ref.add`, which
equals :func:`dhq_rtl.float32_ref.add_spec` (numpy's float32 sum with
subnormals flushed to zero on input and output, NaNs canonical)::

    y = flush(float32(flush(a) + flush(b)))

Number policy (``docs/float32.md``): a subnormal input is a signed zero; a
sum below ``2**-126`` is a zero with the sign of the larger operand (such a
sum is exact, so flushing it is the only deviation from IEEE); ``x + (−x)``
is +0, ``(−0) + (−0)`` is −0; a sum that rounds beyond the largest float is
±Inf; ``Inf − Inf`` and NaN inputs give the canonical quiet NaN
``0x7FC00000``; an Inf operand otherwise passes through. The unit needs no
multiplier.

Datapath (``W = 24`` mantissa bits with the hidden one, ``X = 3`` extra
bits: guard, round, sticky; every step at most one carry chain or a few
LUT levels, so that a register after each meets 48 MHz on the iCE40UP5K):

1. ``compare``: unpack, flush, classify both operands; compare the
   magnitudes (the 31 low bits: one subtraction); both exponent
   differences;
2. ``swap``: ``big`` ≥ ``small`` by magnitude; ``d = e_big − e_small``
   clamped to ``W + X``; the NaN, Inf and zero-sign cases;
3. ``align_hi``: ``small``'s mantissa ``≪ X`` shifted right by ``d`` rounded
   down to a multiple of 4, the bits shifted out ORed into a sticky bit;
4. ``align``: the remaining ``d mod 4``; the sticky bit ORed into bit 0;
5. ``add``: ``S = Mb ± Ms`` (28 bits, never negative);
6. ``norm_hi``: ``S`` shifted left by 16 and/or 8 where its top bits are
   zero (the leading-zero count ``z`` builds up bit by bit);
7. ``norm_lo``: by 4, 2, 1; mantissa = bits 27…4, guard = bit 3, sticky =
   OR of bits 2…0; beside it the exponent ``e_big + 1`` minus the shifts by
   16 and 8;
8. ``round``: round to nearest even; exponent ``e_big + 1 − z`` (and ``+ 1``)
   and its range checks (:mod:`.rounding`);
9. output register: overflow → ±Inf, ``e ≤ 0`` → ±0 (exact, see above),
   ``S == 0`` → ±0 by the zero sign rule, the special classes override.

A register can follow each of steps 1–8 (``latency`` 1…9; the default 9
registers all of them). Throughput: one sum per cycle; a stalled output
stalls the pipeline (``i.ready = ~o.valid | o.ready``).

Payloads: ``i.payload = {"a": unsigned(32), "b": unsigned(32)[, "tag"]}``,
``o.payload = {"y": unsigned(32)[, "tag"]}``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_tag_shape
from ..layouts import tag_width
from .bits import float32_view
from .mul import binary_in_layout, classify, float_out_layout
from .pipeline import Pipeline, choose_cuts
from .rounding import output_decisions, round_step, select_output

__all__ = ["Fp32Add"]

_W = ref.FRAC_BITS + 1
_X = ref.ADD_EXTRA_BITS
_E = ref.EXP_BITS
_S = _W + _X + 1                 # width of the sum (28)


def normalise_steps(m, value, shifts, name, lookahead=False):
    """Shift ``value`` left by each amount of ``shifts`` (largest first) where
    its top bits of that width are zero (after the earlier shifts). Returns
    the shifted value and, per amount, the bit saying whether it shifted (the
    bits of the leading-zero count).

    ``lookahead=False``: one zero test and one 2:1 multiplexer per amount, in
    sequence. ``lookahead=True``: each zero test looks at the original value
    (the slice chosen by the earlier decisions), then one shift by the sum
    follows; shorter for two amounts (16, 8), longer for three small ones."""
    w = len(value)
    flags = {}
    if not lookahead:
        for s in shifts:
            did = Signal(name=f"{name}_z{s}")
            m.d.comb += did.eq(value[-s:] == 0)
            nxt = Signal(w, name=f"{name}{s}")
            m.d.comb += nxt.eq(Mux(did, value << s, value))
            value = nxt
            flags[s] = did
        return value, flags
    done = []                                  # (amount, flag) of earlier steps
    for s in shifts:
        def test(k, offset):
            if k == len(done):
                return value[max(w - offset - s, 0):w - offset] == 0
            amount, flag = done[k]
            return Mux(flag, test(k + 1, offset + amount), test(k + 1, offset))
        flag = Signal(name=f"{name}_z{s}")
        m.d.comb += flag.eq(test(0, 0))
        flags[s] = flag
        done.append((s, flag))
    total = Signal(range(sum(shifts) + 1), name=f"{name}_shift")
    m.d.comb += total.eq(sum(flag * amount for amount, flag in done))
    out = Signal(w, name=name)
    m.d.comb += out.eq(value << total)
    return out, flags


class Fp32Add(wiring.Component):
    """float32 + float32 → float32, round to nearest even, flush to zero.

    Parameters
    ----------
    latency : int or None
        Register stages from input to output, 1…9 (``None``: 9).
    tag_shape : int or shape
        Shape of the pass-through ``tag`` (an integer width, 0: none, or e.g. a
        ``data.StructLayout`` naming what it holds).
    """

    #: Optional register cuts, most useful first.
    CUTS = ("round", "add", "compare", "norm_lo", "align", "norm_hi", "swap", "align_hi")
    #: Register stages always present: the output.
    FIXED_STAGES = 1

    def __init__(self, *, latency=None, tag_shape=0):
        tag_shape = check_tag_shape(tag_shape)
        self.cuts, self.latency = choose_cuts("Fp32Add", self.CUTS, latency, self.FIXED_STAGES)
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        super().__init__({
            "i": In(stream.Signature(binary_in_layout(tag_shape))),
            "o": Out(stream.Signature(float_out_layout(tag_shape))),
        })

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.i, self.o, cuts=self.cuts)

        # 1. unpack, classify, compare
        a, b = float32_view(self.i.payload.a), float32_view(self.i.payload.b)
        za, ia, na = classify(a)
        zb, ib, nb = classify(b)
        # Raw magnitudes order the operands correctly: a subnormal is below
        # every normal, and among zeros and subnormals (all flushed) the
        # order does not matter. The compare is one 32-bit subtraction.
        diff = Signal(32)
        m.d.comb += diff.eq(self.i.payload.a[:31] - self.i.payload.b[:31])
        v = {"valid": self.i.valid, "swap": diff[31], "d_ab": a.exp - b.exp, "d_ba": b.exp - a.exp,
             "a": self.i.payload.a, "b": self.i.payload.b, "za": za, "zb": zb, "ia": ia, "ib": ib,
             "na": na, "nb": nb}
        if self.tag_width:
            v["tag"] = self.i.payload.tag
        v = pipe.cut("compare", v)

        # 2. order by magnitude; special cases
        swap = v.pop("swap")
        a, b = float32_view(v.pop("a")), float32_view(v.pop("b"))
        za, zb, ia, ib, na, nb = (v.pop(k) for k in ("za", "zb", "ia", "ib", "na", "nb"))
        nan = na | nb | (ia & ib & (a.sign != b.sign))
        v.update(nan=nan, inf=(ia | ib) & ~nan, sub=a.sign != b.sign, zero_sign=za & zb & a.sign & b.sign)
        d = Mux(swap, v.pop("d_ba"), v.pop("d_ab"))[:_E]
        width = _W + _X
        mant_a = Mux(za, 0, Cat(a.frac, Const(1, 1)))
        mant_b = Mux(zb, 0, Cat(b.frac, Const(1, 1)))
        v = pipe.cut("swap", dict(
            v, sign=Mux(swap, b.sign, a.sign), exp=Mux(swap, b.exp, a.exp),
            d=Mux(d > width, width, d)[:5],
            mb=Cat(Const(0, _X), Mux(swap, mant_b, mant_a)), ms=Cat(Const(0, _X), Mux(swap, mant_a, mant_b))))

        # 3. align by the multiple of 4
        d, ms = v.pop("d"), v.pop("ms")
        coarse = d[2:]
        groups = [ms[k:k + 4] != 0 for k in range(0, width, 4)]
        lost_hi = 0
        for g, bit in enumerate(groups):
            lost_hi = lost_hi | (bit & (coarse > g))
        part = Signal(width)
        m.d.comb += part.eq(ms >> Cat(Const(0, 2), coarse))
        v = pipe.cut("align_hi", dict(v, part=part, fine=d[:2], lost_hi=lost_hi))

        # 4. align by the rest; sticky into bit 0
        part, fine = v.pop("part"), v.pop("fine")
        lost_lo = ((part[0] & (fine > 0)) | (part[1] & (fine > 1)) | (part[2] & (fine > 2)))
        ms = Signal(width)
        m.d.comb += ms.eq((part >> fine) | lost_lo | v.pop("lost_hi"))
        v = pipe.cut("align", dict(v, ms=ms))

        # 5. add or subtract
        s = Signal(_S)
        mb, ms = v.pop("mb"), v.pop("ms")
        sub = v["sub"]
        # one carry chain: mb − ms = mb + ~ms + 1 − 2**27 (never negative)
        raw = mb + (ms ^ sub.replicate(width)) + sub
        m.d.comb += s.eq(Cat(raw[:width], raw[width] & ~sub))
        v = pipe.cut("add", dict(v, s=s))

        # 6. normalise: 16, 8
        s = v.pop("s")
        s_hi, f_hi = normalise_steps(m, s, (16, 8), "norm_hi", lookahead=True)
        v = pipe.cut("norm_hi", dict(v, s=s_hi, z_hi=Cat(f_hi[8], f_hi[16]), exact_zero=s == 0))

        # 7. normalise: 4, 2, 1; the exponent minus the coarse shifts beside it
        sn, f_lo = normalise_steps(m, v.pop("s"), (4, 2, 1), "norm_lo")
        e_hi = Signal(signed(_E + 2))
        m.d.comb += e_hi.eq(v.pop("exp") + 1 - v.pop("z_hi") * 8)
        # e_hi ≤ 256; the range checks of e = e_hi − z_lo (z_lo ≤ 7) need
        # only these comparisons with constants
        near = {c: e_hi == c for c in (ref.EXP_MAX + 1, ref.EXP_MAX, ref.EXP_MAX - 1)}
        v = pipe.cut("norm_lo", dict(v, mant=sn[_X + 1:], guard=sn[_X], sticky=sn[:_X] != 0,
                                     z_lo=Cat(f_lo[1], f_lo[2], f_lo[4]), e_hi=e_hi,
                                     hi0=near[ref.EXP_MAX + 1], hi1=near[ref.EXP_MAX], hi2=near[ref.EXP_MAX - 1],
                                     neg=e_hi < 0, small=e_hi[3:] == 0))

        # 8. round; exponent (e and e + 1 side by side) and its range checks
        e_hi, z_lo = v.pop("e_hi"), v.pop("z_lo")
        e, e1 = Signal(signed(_E + 2)), Signal(signed(_E + 2))
        m.d.comb += [e.eq(e_hi - z_lo), e1.eq(e_hi + 1 - z_lo)]
        hi0, hi1, hi2, neg, small = (v.pop(k) for k in ("hi0", "hi1", "hi2", "neg", "small"))
        low = e_hi[:3]
        flags = {"e0": e[:_E], "e1": e1[:_E],
                 "ovf0": (hi0 & (z_lo <= 1)) | (hi1 & (z_lo == 0)),
                 "ovf1": (hi0 & (z_lo <= 2)) | (hi1 & (z_lo <= 1)) | (hi2 & (z_lo == 0)),
                 "unf0": neg | (small & (low <= z_lo)),
                 "unf1": neg | (small & (low < z_lo))}
        rounded = round_step(m, v.pop("mant"), v.pop("guard"), v.pop("sticky"))
        exact_zero, zero_sign = v.pop("exact_zero"), v.pop("zero_sign")
        decisions = output_decisions(flags, inf=v.pop("inf"), zero=exact_zero)
        v = pipe.cut("round", dict(v, rounded=rounded, e0=flags["e0"], e1=flags["e1"],
                                   sign=Mux(exact_zero, zero_sign, v.pop("sign")), **decisions))

        # 9. select, output register
        y = select_output(m, v, nan=v["nan"], sign=v["sign"])
        payload = {"y": y}
        if self.tag_width:
            payload["tag"] = v["tag"]
        pipe.output(v["valid"], payload)
        assert pipe.stages == self.latency
        return m
