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

1. unpack; classify zero (exponent field 0), Inf, NaN; ``e = ea + eb``;
2. the 24 × 24-bit mantissa product, split into 16-bit pieces
   (:mod:`.product`: 16×16, 16×8, 8×16, 8×8), each piece registered —
   in ``SB_MAC16`` DSPs with ``dsp="ice40"``;
3. sum of the pieces (48 bits);
4. normalise: ``top = p[47]``; mantissa ``p[23 + top : 47 + top]``,
   guard bit below, sticky = OR of the rest; exponent ``e − 127 + top``;
5. round to nearest even (+1 exponent on carry), then overflow, underflow
   (with the one case that rounds up to ``2**-126``: see the twin) and the
   special classes select the output, which is registered.

Latency: ``latency`` cycles (input beat accepted → output beat valid),
between 2 (the piece registers and the output register) and 4 (also a
register after the sum and after normalising: the default). Throughput: one
product per cycle. A stalled output stalls the pipeline (``i.ready =
~o.valid | o.ready``).

Payloads: ``i.payload = {"a": unsigned(32), "b": unsigned(32)[, "tag":
unsigned(tag_width)]}``, ``o.payload = {"y": unsigned(32)[, "tag"]}``; the
tag of an input beat comes out with its product.

``dsp``: ``"generic"`` (``*``, simulates anywhere; ECP5 maps the pieces to
``MULT18X18D``) or ``"ice40"`` (explicit ``SB_MAC16``; pieces with at most
``logic_max_area`` partial-product bits, e.g. the 8×8 one with
``logic_max_area=64``, stay in logic). :attr:`dsp_count` says how many DSPs
the iCE40 form instantiates (4 by default).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_int
from ..layouts import tagged_layout
from .bits import float32_view
from .pipeline import Pipeline, choose_cuts
from .product import DSP_KINDS, dsp_pieces, product_terms, sum_terms

__all__ = ["Fp32Mul", "binary_in_layout", "float_out_layout"]

_W = ref.FRAC_BITS + 1        # mantissa width with the hidden bit (24)
_E = ref.EXP_BITS


def binary_in_layout(tag_width=0):
    """Input payload of a two-operand FP32 unit: ``a``, ``b`` (bit patterns)."""
    return tagged_layout({"a": unsigned(32), "b": unsigned(32)}, tag_width)


def float_out_layout(tag_width=0):
    """Output payload of an FP32 unit: ``y`` (a bit pattern)."""
    return tagged_layout({"y": unsigned(32)}, tag_width)


class Fp32Mul(wiring.Component):
    """float32 × float32 → float32, round to nearest even, flush to zero.

    Parameters
    ----------
    latency : int or None
        Register stages from input to output, 2…4 (``None``: 4).
    dsp : ``"generic"`` or ``"ice40"``
    logic_max_area : int
        With ``dsp="ice40"``: pieces of at most this many partial-product
        bits are multiplied in logic (0: every piece in a DSP).
    tag_width : int
        Width of the pass-through ``tag`` (0: none).

    See the module docstring for the arithmetic, payloads and timing.
    """

    #: Optional register cuts, most useful first.
    CUTS = ("sum", "normalise")
    #: Register stages always present: the pieces and the output.
    FIXED_STAGES = 2

    def __init__(self, *, latency=None, dsp="generic", logic_max_area=0, tag_width=0):
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        check_int("logic_max_area", logic_max_area, 0, 256)
        check_int("tag_width", tag_width, 0, 64)
        self.cuts, self.latency = choose_cuts("Fp32Mul", self.CUTS, latency, self.FIXED_STAGES)
        self.dsp = dsp
        self.logic_max_area = logic_max_area
        self.tag_width = tag_width
        self.dsp_count = dsp_pieces(_W, _W, dsp, logic_max_area)
        super().__init__({
            "i": In(stream.Signature(binary_in_layout(tag_width))),
            "o": Out(stream.Signature(float_out_layout(tag_width))),
        })

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        pipe = Pipeline(m, en, self.cuts)

        a, b = float32_view(self.i.payload.a), float32_view(self.i.payload.b)
        za, zb = a.exp == 0, b.exp == 0
        ia, ib = (a.exp == ref.EXP_MAX) & (a.frac == 0), (b.exp == ref.EXP_MAX) & (b.frac == 0)
        na, nb = (a.exp == ref.EXP_MAX) & (a.frac != 0), (b.exp == ref.EXP_MAX) & (b.frac != 0)
        nan = na | nb | (ia & zb) | (ib & za)
        ctl = {"valid": self.i.valid, "sign": a.sign ^ b.sign, "nan": nan, "inf": (ia | ib) & ~nan,
               "zero": (za | zb) & ~nan & ~(ia | ib), "esum": a.exp + b.exp}
        if self.tag_width:
            ctl["tag"] = self.i.payload.tag

        # 2. mantissa product pieces (registered: DSP or fabric)
        terms = product_terms(m, Cat(a.frac, Const(1, 1)), Cat(b.frac, Const(1, 1)), en=en, dsp=self.dsp,
                              logic_max_area=self.logic_max_area, name="mant")
        ctl = pipe.stage("pieces", ctl)

        # 3. sum of the pieces
        p = Signal(2 * _W)
        m.d.comb += p.eq(sum_terms(terms))
        v = pipe.cut("sum", dict(ctl, p=p))

        # 4. normalise
        p = v.pop("p")
        top = p[-1]
        sh = _W - 1
        mant = Mux(top, p[sh + 1:], p[sh:-1])
        guard = Mux(top, p[sh], p[sh - 1])
        sticky = Mux(top, p[:sh] != 0, p[:sh - 1] != 0)
        e = Signal(signed(_E + 2))
        m.d.comb += e.eq(v.pop("esum") - ref.BIAS + top)
        v = pipe.cut("normalise", dict(v, mant=mant, guard=guard, sticky=sticky, e=e))

        # 5. round, select, output register
        mant, guard, sticky, e = v["mant"], v["guard"], v["sticky"], v["e"]
        rounded = Signal(_W + 1)
        m.d.comb += rounded.eq(mant + (guard & (sticky | mant[0])))
        carry = rounded[_W]
        e_r = Signal(signed(_E + 2))
        m.d.comb += e_r.eq(e + carry)
        up_to_min = (e == 0) & (mant[:_W - 1] == (1 << (_W - 1)) - 1)
        overflow = e_r >= ref.EXP_MAX
        underflow = (e_r <= 0) & ~up_to_min

        y = Signal(32)
        sign = v["sign"]
        with m.If(v["nan"]):
            m.d.comb += y.eq(ref.QNAN)
        with m.Elif(v["inf"] | (overflow & ~v["zero"])):
            m.d.comb += y.eq(Cat(Const(0, _W - 1), Const(ref.EXP_MAX, _E), sign))
        with m.Elif(v["zero"] | underflow):
            m.d.comb += y.eq(Cat(Const(0, 31), sign))
        with m.Elif(up_to_min):
            m.d.comb += y.eq(Cat(Const(0, _W - 1), Const(1, _E), sign))
        with m.Else():
            m.d.comb += y.eq(Cat(rounded[:_W - 1], e_r[:_E], sign))

        with m.If(en):
            m.d.sync += [self.o.valid.eq(v["valid"]), self.o.payload.y.eq(y)]
            if self.tag_width:
                m.d.sync += self.o.payload.tag.eq(v["tag"])
        pipe.stages += 1
        assert pipe.stages == self.latency
        return m
