"""Pipelined IEEE-754 binary32 multiplier.

:class:`Fp32Mul` computes ``y = a · b`` of two float32 bit patterns, rounded
to nearest even; its numpy twin is :func:`dhq_rtl.float32_ref.mul`, which
equals :func:`dhq_rtl.float32_ref.mul_spec` (numpy's float32 product with
subnormals flushed to zero on input and output, NaNs canonical)::

    y = flush(float32(flush(a) · flush(b)))

Number policy (``docs/float32.md``): a subnormal input is a signed zero; a
result below ``2**-126`` after rounding is a zero of the product's sign; a
result that rounds beyond the largest float is ±Inf; ``0 · Inf`` and NaN
inputs give the canonical quiet NaN ``0x7FC00000``; Inf times a non-zero
number is ±Inf; the sign of every zero and infinity is the XOR of the input
signs.

Datapath (widths from :mod:`dhq_rtl.float32_ref`: 23 fraction bits, 8
exponent bits):

1. ``pieces`` (always registered): unpack; classify each operand (zero:
   exponent field 0, Inf, NaN); ``ea + eb``; the 24 × 24-bit mantissa
   product as four pieces
   (:mod:`.product`: 16×16, 16×8, 8×16, 8×8), each in its own registered
   multiplier — an ``SB_MAC16`` with ``dsp="ice40"``;
2. ``sum_mid``: the two middle pieces added; the exponent ``ea + eb − 127``
   for both outcomes of the normalisation; the special cases (NaN for a NaN
   operand or ``0 · Inf``, Inf, zero);
3. ``sum``: the 48-bit product ``p``;
4. ``normalise``: ``top = p[47]``; mantissa ``p[23 + top : 47 + top]``,
   guard bit below, sticky = OR of the rest; exponent ``e``;
5. ``round``: round to nearest even (:mod:`.rounding`), the exponent range
   checks beside it;
6. output register: overflow → ±Inf; ``e ≤ 0`` → ±0, except ``e == 0``
   before rounding with all 23 fraction bits set: that product is at least
   ``2**-126 − 2**-150``, which rounds to ``2**-126`` on the float32 grid
   with subnormals, so the result is ``±2**-126`` (as numpy's, flushed);
   the special classes override.

A register can follow each of steps 2–5 (``latency`` 2…6; the default 6
registers all of them). Throughput: one product per cycle; a stalled output
stalls the pipeline (``i.ready = ~o.valid | o.ready``).

Payloads: ``i.payload = {"a": unsigned(32), "b": unsigned(32)[, "tag":
tag_shape]}``, ``o.payload = {"y": unsigned(32)[, "tag"]}``; the
tag of an input beat comes out with its product.

``dsp``: ``"generic"`` (``*``, simulates anywhere; Yosys maps each piece to
one ``SB_MAC16`` on iCE40 with ``-dsp`` and to ``MULT18X18D`` on ECP5) or
``"ice40"`` (four explicit ``SB_MAC16`` in 16×16 mode, :attr:`dsp_count`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_tag_shape
from ..layouts import tag_width, tagged_layout
from .bits import float32_view
from .pipeline import Pipeline, choose_cuts
from .product import DSP_KINDS, Products, multipliers_needed, sum_terms
from .rounding import exponent_flags, output_decisions, round_step, select_output

__all__ = ["Fp32Mul", "binary_in_layout", "float_out_layout"]

_W = ref.FRAC_BITS + 1        # mantissa width with the hidden bit (24)
_E = ref.EXP_BITS


def binary_in_layout(tag_shape=0):
    """Input payload of a two-operand FP32 unit: ``a``, ``b`` (bit patterns)."""
    return tagged_layout({"a": unsigned(32), "b": unsigned(32)}, tag_shape)


def float_out_layout(tag_shape=0):
    """Output payload of an FP32 unit: ``y`` (a bit pattern)."""
    return tagged_layout({"y": unsigned(32)}, tag_shape)


def classify(x):
    """``(zero, inf, nan)`` of a :data:`~.bits.FLOAT32` view (zero: exponent
    field 0, i.e. zeros and the subnormals that flush to them)."""
    top = x.exp == ref.EXP_MAX
    frac_zero = x.frac == 0
    return x.exp == 0, top & frac_zero, top & ~frac_zero


class Fp32Mul(wiring.Component):
    """float32 × float32 → float32, round to nearest even, flush to zero.

    Parameters
    ----------
    latency : int or None
        Register stages from input to output, 2…6 (``None``: 6).
    dsp : ``"generic"`` or ``"ice40"``
    tag_shape : int or shape
        Shape of the pass-through ``tag`` (an integer width, 0: none, or e.g. a
        ``data.StructLayout`` naming what it holds).

    Attributes: ``latency``, ``dsp_count`` (``SB_MAC16`` instances).
    See the module docstring for the arithmetic, payloads and timing.
    """

    #: Optional register cuts, most useful first.
    CUTS = ("round", "normalise", "sum", "sum_mid")
    #: Register stages always present: the pieces and the output.
    FIXED_STAGES = 2

    def __init__(self, *, latency=None, dsp="generic", tag_shape=0):
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        tag_shape = check_tag_shape(tag_shape)
        self.cuts, self.latency = choose_cuts("Fp32Mul", self.CUTS, latency, self.FIXED_STAGES)
        self.dsp = dsp
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.multipliers, self.dsp_count = multipliers_needed([(_W, _W)], dsp=dsp)
        super().__init__({
            "i": In(stream.Signature(binary_in_layout(tag_shape))),
            "o": Out(stream.Signature(float_out_layout(tag_shape))),
        })

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.i, self.o, cuts=self.cuts)
        products = Products(m, pipe, dsp=self.dsp)

        # 1. unpack, classify, mantissa pieces
        a, b = float32_view(self.i.payload.a), float32_view(self.i.payload.b)
        za, ia, na = classify(a)
        zb, ib, nb = classify(b)
        v = {"valid": self.i.valid, "sign": a.sign ^ b.sign, "esum": a.exp + b.exp,
             "za": za, "ia": ia, "na": na, "zb": zb, "ib": ib, "nb": nb}
        if self.tag_width:
            v["tag"] = self.i.payload.tag
        terms = products.product("mant", Cat(a.frac, Const(1, 1)), Cat(b.frac, Const(1, 1)))
        products.finish()
        v = pipe.stage("pieces", v)
        (o00, p00), (o01, p01), (o10, p10), (o11, p11) = sorted(terms, key=lambda t: (t[0], len(t[1])))
        za, ia, na, zb, ib, nb = (v.pop(k) for k in ("za", "ia", "na", "zb", "ib", "nb"))
        nan = na | nb | (ia & zb) | (ib & za)
        v.update(nan=nan, inf=(ia | ib) & ~nan, zero=(za | zb) & ~(ia | ib | na | nb))

        # 2. middle pieces; the exponent for both normalisations
        mid = Signal(len(p01) + 1)
        m.d.comb += mid.eq(p01 + p10)
        esum = v.pop("esum")
        e_lo, e_hi = Signal(signed(_E + 2)), Signal(signed(_E + 2))
        m.d.comb += [e_lo.eq(esum - ref.BIAS), e_hi.eq(esum - (ref.BIAS - 1))]
        v = pipe.cut("sum_mid", dict(v, mid=mid, e_lo=e_lo, e_hi=e_hi,
                                     outer=sum_terms([(o00, p00), (o11, p11)])))

        # 3. the 48-bit product
        p = Signal(2 * _W)
        m.d.comb += p.eq(v.pop("outer") + (v.pop("mid") << o01))
        v = pipe.cut("sum", dict(v, p=p))

        # 4. normalise
        p = v.pop("p")
        top = p[-1]
        sh = _W - 1
        mant = Mux(top, p[sh + 1:], p[sh:-1])
        v = pipe.cut("normalise", dict(
            v, mant=mant, guard=Mux(top, p[sh], p[sh - 1]), sticky=Mux(top, p[:sh] != 0, p[:sh - 1] != 0),
            e=Mux(top, v.pop("e_hi"), v.pop("e_lo"))))

        # 5. round; exponent checks and output decisions beside it
        e = v.pop("e")
        mant = v.pop("mant")
        rounded = round_step(m, mant, v.pop("guard"), v.pop("sticky"))
        up_to_min = (e == 0) & (mant[:_W - 1] == (1 << (_W - 1)) - 1)
        flags = exponent_flags(e)
        decisions = output_decisions(flags, inf=v.pop("inf"), zero=v.pop("zero"), up_to_min=up_to_min)
        v = pipe.cut("round", dict(v, rounded=rounded, e0=flags["e0"], e1=flags["e1"], **decisions))

        # 6. select, output register
        y = select_output(m, v, nan=v["nan"], sign=v["sign"])
        payload = {"y": y}
        if self.tag_width:
            payload["tag"] = v["tag"]
        pipe.output(v["valid"], payload)
        assert pipe.stages == self.latency
        return m
