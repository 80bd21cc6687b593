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
bits: guard, round, sticky):

1. ``swap``: unpack, flush, classify; order the operands by magnitude
   (31-bit compare) into ``big`` ≥ ``small``; ``d = e_big − e_small``;
2. ``align``: ``small``'s mantissa ``≪ X``, shifted right by ``min(d, W +
   X)`` with every lost bit ORed into bit 0 (sticky);
3. ``add``: ``S = Mb ± Ms`` (``W + X + 1 = 28`` bits, ``≥ 0``);
4. ``lzc``: leading zeros ``z`` of ``S`` (balanced tree);
5. ``shift``: ``S ≪ z``, exponent ``e_big + 1 − z``;
6. round to nearest even on bits 27…4 with guard bit 3 and sticky bits
   2…0; overflow, underflow, exact zero and the special classes select the
   output, which is registered.

A register can follow each of steps 1–5 (``latency`` 1…6; the default 6
registers all of them). Throughput: one sum per cycle; a stalled output
stalls the pipeline (``i.ready = ~o.valid | o.ready``).

Payloads: ``i.payload = {"a": unsigned(32), "b": unsigned(32)[, "tag"]}``,
``o.payload = {"y": unsigned(32)[, "tag"]}``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_int
from .bits import float32_view, leading_zeros, shift_right_sticky
from .mul import binary_in_layout, float_out_layout
from .pipeline import Pipeline, choose_cuts

__all__ = ["Fp32Add"]

_W = ref.FRAC_BITS + 1
_X = ref.ADD_EXTRA_BITS
_E = ref.EXP_BITS


class Fp32Add(wiring.Component):
    """float32 + float32 → float32, round to nearest even, flush to zero.

    Parameters
    ----------
    latency : int or None
        Register stages from input to output, 1…6 (``None``: 6).
    tag_width : int
        Width of the pass-through ``tag`` (0: none).
    """

    #: Optional register cuts, most useful first.
    CUTS = ("lzc", "add", "align", "swap", "shift")
    #: Register stages always present: the output.
    FIXED_STAGES = 1

    def __init__(self, *, latency=None, tag_width=0):
        check_int("tag_width", tag_width, 0, 64)
        self.cuts, self.latency = choose_cuts("Fp32Add", self.CUTS, latency, self.FIXED_STAGES)
        self.tag_width = tag_width
        super().__init__({
            "i": In(stream.Signature(binary_in_layout(tag_width))),
            "o": Out(stream.Signature(float_out_layout(tag_width))),
        })

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        pipe = Pipeline(m, en, self.cuts)

        # 1. unpack, flush, order by magnitude
        a, b = float32_view(self.i.payload.a), float32_view(self.i.payload.b)
        mag_a = Mux(a.exp == 0, 0, self.i.payload.a[:31])
        mag_b = Mux(b.exp == 0, 0, self.i.payload.b[:31])
        swap = mag_b > mag_a
        big = float32_view(Mux(swap, self.i.payload.b, self.i.payload.a))
        small = float32_view(Mux(swap, self.i.payload.a, self.i.payload.b))
        zb, zs = big.exp == 0, small.exp == 0
        ib = (big.exp == ref.EXP_MAX) & (big.frac == 0)
        i_s = (small.exp == ref.EXP_MAX) & (small.frac == 0)
        nb = (big.exp == ref.EXP_MAX) & (big.frac != 0)
        ns = (small.exp == ref.EXP_MAX) & (small.frac != 0)
        nan = nb | ns | (ib & i_s & (big.sign != small.sign))
        d = Signal(_E)
        m.d.comb += d.eq(big.exp - small.exp)
        v = {"valid": self.i.valid, "nan": nan, "inf": ib & ~nan, "sign": big.sign,
             "zero_sign": zb & zs & big.sign & small.sign, "sub": big.sign != small.sign,
             "exp": big.exp, "d": d,
             "mb": Mux(zb, 0, Cat(big.frac, Const(1, 1))), "ms": Mux(zs, 0, Cat(small.frac, Const(1, 1)))}
        if self.tag_width:
            v["tag"] = self.i.payload.tag
        v = pipe.cut("swap", v)

        # 2. align the smaller mantissa
        width = _W + _X
        d = v.pop("d")
        dc = Mux(d > width, width, d)
        ms = shift_right_sticky(Cat(Const(0, _X), v.pop("ms")), dc)
        v = pipe.cut("align", dict(v, Ms=ms, Mb=Cat(Const(0, _X), v.pop("mb"))))

        # 3. add or subtract
        s = Signal(width + 1)
        mb, ms = v.pop("Mb"), v.pop("Ms")
        m.d.comb += s.eq(Mux(v["sub"], mb - ms, mb + ms))
        v = pipe.cut("add", dict(v, s=s))

        # 4. leading zeros
        z, zero = leading_zeros(v["s"])
        v = pipe.cut("lzc", dict(v, z=z, exact_zero=zero))

        # 5. normalise
        sn = Signal(width + 1)
        m.d.comb += sn.eq(v.pop("s") << v["z"])
        e = Signal(signed(_E + 2))
        m.d.comb += e.eq(v.pop("exp") + 1 - v.pop("z"))
        v = pipe.cut("shift", dict(v, sn=sn, e=e))

        # 6. round, select, output register
        sn, e = v["sn"], v["e"]
        mant = sn[_X + 1:]
        guard = sn[_X]
        sticky = sn[:_X] != 0
        rounded = Signal(_W + 1)
        m.d.comb += rounded.eq(mant + (guard & (sticky | mant[0])))
        e_r = Signal(signed(_E + 2))
        m.d.comb += e_r.eq(e + rounded[_W])
        sign = v["sign"]
        y = Signal(32)
        with m.If(v["nan"]):
            m.d.comb += y.eq(ref.QNAN)
        with m.Elif(v["inf"] | (~v["exact_zero"] & (e_r >= ref.EXP_MAX))):
            m.d.comb += y.eq(Cat(Const(0, _W - 1), Const(ref.EXP_MAX, _E), sign))
        with m.Elif(v["exact_zero"]):
            m.d.comb += y.eq(Cat(Const(0, 31), v["zero_sign"]))
        with m.Elif(e_r <= 0):
            m.d.comb += y.eq(Cat(Const(0, 31), sign))
        with m.Else():
            m.d.comb += y.eq(Cat(rounded[:_W - 1], e_r[:_E], sign))

        with m.If(en):
            m.d.sync += [self.o.valid.eq(v["valid"]), self.o.payload.y.eq(y)]
            if self.tag_width:
                m.d.sync += self.o.payload.tag.eq(v["tag"])
        pipe.stages += 1
        assert pipe.stages == self.latency
        return m
