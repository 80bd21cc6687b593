"""Pipelined float32 sine of a phase in turns: ``y = sin(2π·t)``.

:class:`Fp32Sine` is the gateware twin of :func:`dhq_rtl.float32_ref.sin_turns`
(bit for bit); ``docs/float32.md`` gives the algorithm and its measured error
(at most 0.62 ULP against ``sin(2π·t)`` over every float32 phase of
magnitude below 64, default parameters). The model's sine layers compute
``sin(ω0·z)``; with ``t = z·ω0/2π`` (a multiply, or folded into the weights
and bias) the phase is in turns, and the periodic part of the range
reduction is exact: the turns are whole bits of ``t``'s mantissa.

Algorithm (``k = spec.index_bits``, ``H = spec.h_bits``, ``F = H + 2``
fraction bits of the reduced argument, ``D = F − k``):

1. ``reduce``: unpack; for ``|t| ≥ 1/4`` (exponent ``e ≥ 125``) shift the
   24-bit mantissa left by ``min(e − 125, 25)`` and keep 25 bits: ``4|t| mod
   4`` with 23 fraction bits; for ``|t| < 1/4`` shift it right instead into
   the fixed-point ``r = 4|t|`` (``F`` fraction bits, truncated);
2. ``fold``: quadrant ``q`` (2 bits) and fraction ``f``; the reduced argument
   is ``R = f`` or ``2**23 − f`` (quarter turns, exact), negative result for
   ``q ≥ 2``;
3. ``lzc``: leading zeros of ``R``;
4. normalise: ``r = mr·2**(er − 23)`` with a 24-bit mantissa ``mr``, and
   the fixed-point ``r`` whose top ``k`` fraction bits address the table;
5. ``table``: one synchronous ROM read (``2**k`` words of ``C0``, ``C1``,
   ``C2``: :func:`dhq_rtl.float32_ref.sine_table`);
6. ``p1``: ``C2 · δ2`` (registered pieces); ``u``: ``C1 + round(p1 ≫ (H + 2 − 2k))``;
7. ``p2``: ``u · δ`` (registered pieces); ``h``: ``H = C0 − round(p2 ≫ (D + 2))``
   ≈ ``sin(π r/2)/r · 2**H``;
8. ``p3``: ``mr · H`` (registered pieces, the 24 × (H+1)-bit product);
   ``psum``: their sum;
9. round to nearest even into the output register; Inf/NaN → the canonical
   NaN, ±0 and subnormal inputs → ±0, ``r = 0`` → ±0 (sign of ``t``), ``r =
   1`` → ±1.

Latency: ``latency`` cycles, 5 (the ROM read, three product registers and
the output register) … 12 (a register after every step: the default).
Throughput: one sine per cycle; a stalled output stalls the pipeline.

Widths (default ``k = 8``, ``H = 27``): ROM words of 28 + 21 + 13 bits;
products 13 × 13, 22 × 21 and 24 × 28 bits. With ``dsp="ice40"`` every
16-bit piece of more than ``logic_max_area`` partial-product bits is an
``SB_MAC16`` (:attr:`dsp_count`); ``"generic"`` uses ``*``.

Payloads: ``i.payload = {"t": unsigned(32)[, "tag"]}``, ``o.payload =
{"y": unsigned(32)[, "tag"]}``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_int
from ..layouts import tagged_layout
from .bits import float32_view, leading_zeros
from .mul import float_out_layout
from .pipeline import Pipeline, choose_cuts
from .product import DSP_KINDS, dsp_pieces, product_terms, sum_terms

__all__ = ["Fp32Sine", "sine_in_layout"]

_W = ref.FRAC_BITS + 1
_E = ref.EXP_BITS
_Q0 = ref.BIAS - 2          # exponent of 1/4: from here on the phase is reduced


def sine_in_layout(tag_width=0):
    """Input payload of :class:`Fp32Sine`: ``t`` (a bit pattern, in turns)."""
    return tagged_layout({"t": unsigned(32)}, tag_width)


class Fp32Sine(wiring.Component):
    """``sin(2π·t)`` for a float32 phase ``t`` in turns.

    Parameters
    ----------
    spec : :class:`dhq_rtl.float32_ref.SineSpec`
        Table size and precision (default: 256 segments, ``h`` to 27 bits).
    latency : int or None
        Register stages from input to output, 5…12 (``None``: 12).
    dsp : ``"generic"`` or ``"ice40"``
    logic_max_area : int
        With ``dsp="ice40"``: product pieces of at most this many
        partial-product bits stay in logic.
    tag_width : int
        Width of the pass-through ``tag`` (0: none).
    """

    CUTS = ("psum", "h", "u", "reduce", "lzc", "fold", "p2sum")
    FIXED_STAGES = 5

    def __init__(self, spec=ref.DEFAULT_SINE, *, latency=None, dsp="generic", logic_max_area=0, tag_width=0):
        if not isinstance(spec, ref.SineSpec):
            raise TypeError(f"spec must be a dhq_rtl.float32_ref.SineSpec, not {type(spec).__name__}")
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        check_int("logic_max_area", logic_max_area, 0, 256)
        check_int("tag_width", tag_width, 0, 64)
        self.cuts, self.latency = choose_cuts("Fp32Sine", self.CUTS, latency, self.FIXED_STAGES)
        self.spec = spec
        self.dsp = dsp
        self.logic_max_area = logic_max_area
        self.tag_width = tag_width
        c0, c1, c2 = ref.sine_table(spec)
        self.table = (c0, c1, c2)
        self.c_widths = tuple(max(1, int(c.max()).bit_length()) for c in (c0, c1, c2))
        self.u_width = int(c1.max() + c2.max()).bit_length()
        self.depth = 1 << spec.index_bits
        self.dsp_count = (dsp_pieces(self.c_widths[2], spec.delta2_bits, dsp, logic_max_area)
                          + dsp_pieces(self.u_width, spec.delta1_bits, dsp, logic_max_area)
                          + dsp_pieces(_W, spec.h_bits + 1, dsp, logic_max_area))
        super().__init__({
            "i": In(stream.Signature(sine_in_layout(tag_width))),
            "o": Out(stream.Signature(float_out_layout(tag_width))),
        })

    def _rom_init(self):
        w0, w1, _ = self.c_widths
        return [int(a) | (int(b) << w0) | (int(c) << (w0 + w1)) for a, b, c in zip(*self.table)]

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        k, H, F, D = spec.index_bits, spec.h_bits, spec.r_bits, spec.delta_bits
        w0, w1, w2 = self.c_widths
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        pipe = Pipeline(m, en, self.cuts)

        # 1. unpack and shift
        t = float32_view(self.i.payload.t)
        e = t.exp
        mant = Cat(t.frac, Const(1, 1))
        big = e >= _Q0
        sh = Mux(e >= _Q0 + 25, 25, e - _Q0)[:5]
        x = Signal(25)
        m.d.comb += x.eq(mant << sh)
        amt = Mux(e + F >= _Q0 - 1, (_Q0 - 1) - e, F)[:ceil_bits(F)]
        small_fix = Signal(F)
        m.d.comb += small_fix.eq(Cat(Const(0, F - _W), mant) >> amt)
        er_small = Signal(signed(_E + 2))
        m.d.comb += er_small.eq(e - _Q0)
        v = {"valid": self.i.valid, "sign": t.sign, "nan": e == ref.EXP_MAX, "zero_in": e == 0, "big": big,
             "x": x, "small_fix": small_fix, "m": mant, "er_small": er_small}
        if self.tag_width:
            v["tag"] = self.i.payload.tag
        v = pipe.cut("reduce", v)

        # 2. quadrant and folded argument
        x = v.pop("x")
        q, f = x[_W - 1:], x[:_W - 1]
        r23 = Signal(_W)
        m.d.comb += r23.eq(Mux(q[0], (1 << (_W - 1)) - f, f))
        big = v["big"]
        v = pipe.cut("fold", dict(v, r23=r23, flip=big & q[1], one=big & q[0] & (f == 0),
                                  zero_r=big & ~q[0] & (f == 0)))

        # 3. leading zeros of R
        lz, _ = leading_zeros(v["r23"])
        v = pipe.cut("lzc", dict(v, lz=lz))

        # 4. mantissa/exponent of r and its fixed-point form; table address
        r23, lz = v.pop("r23"), v.pop("lz")
        mr = Signal(_W)
        m.d.comb += mr.eq(Mux(v["big"], r23 << lz, v.pop("m")))
        er = Signal(signed(_E + 2))
        m.d.comb += er.eq(Mux(v["big"], -lz, v.pop("er_small")))
        rfix = Signal(F)
        m.d.comb += rfix.eq(Mux(v["big"], r23 << (F - (_W - 1)), v.pop("small_fix")))
        ctl = {key: v[key] for key in v if key not in ("big",)}

        # 5. table read (synchronous ROM)
        m.submodules.table = rom = memory.Memory(shape=unsigned(w0 + w1 + w2), depth=self.depth,
                                                 init=self._rom_init())
        rd = rom.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(rfix[D:]), rd.en.eq(en)]
        v = pipe.stage("table", dict(ctl, mr=mr, er=er, delta=rfix[:D]))
        c0, c1, c2 = rd.data[:w0], rd.data[w0:w0 + w1], rd.data[w0 + w1:]

        # 6. curvature term and slope sum
        d2 = spec.delta2_bits
        delta = v["delta"]
        t1 = product_terms(m, c2, delta[D - d2:], en=en, dsp=self.dsp, logic_max_area=self.logic_max_area,
                           name="p1")
        v = pipe.stage("p1", dict(v, c0=c0, c1=c1))
        u = Signal(self.u_width)
        m.d.comb += u.eq(v.pop("c1") + ((sum_terms(t1) + (1 << (d2 - 1))) >> d2))
        v = pipe.cut("u", dict(v, u=u))

        # 7. slope times offset; h
        s1 = spec.delta1_bits + spec.guard_bits
        t2 = product_terms(m, v.pop("u"), v.pop("delta")[D - spec.delta1_bits:], en=en, dsp=self.dsp,
                           logic_max_area=self.logic_max_area, name="p2")
        v = pipe.stage("p2", v)
        p2 = Signal(self.u_width + spec.delta1_bits)
        m.d.comb += p2.eq(sum_terms(t2))
        v = pipe.cut("p2sum", dict(v, p2=p2))
        h = Signal(H + 1)
        m.d.comb += h.eq(v.pop("c0") - ((v.pop("p2") + (1 << (s1 - 1))) >> s1))
        v = pipe.cut("h", dict(v, h=h))

        # 8. r times h
        t3 = product_terms(m, v.pop("mr"), v.pop("h"), en=en, dsp=self.dsp, logic_max_area=self.logic_max_area,
                           name="p3")
        v = pipe.stage("p3", v)
        p = Signal(_W + H + 1)
        m.d.comb += p.eq(sum_terms(t3))
        v = pipe.cut("psum", dict(v, p=p))

        # 9. round, select, output register
        p = v["p"]
        top = p[_W + H]
        mant = Mux(top, p[H + 1:H + 1 + _W], p[H:H + _W])
        guard = Mux(top, p[H], p[H - 1])
        sticky = Mux(top, p[:H] != 0, p[:H - 1] != 0)
        rounded = Signal(_W + 1)
        m.d.comb += rounded.eq(mant + (guard & (sticky | mant[0])))
        exp = Signal(signed(_E + 2))
        m.d.comb += exp.eq(v["er"] + ref.BIAS + top + rounded[_W])
        out_sign = v["sign"] ^ v["flip"]
        y = Signal(32)
        with m.If(v["nan"]):
            m.d.comb += y.eq(ref.QNAN)
        with m.Elif(v["zero_in"] | v["zero_r"]):
            m.d.comb += y.eq(Cat(Const(0, 31), v["sign"]))
        with m.Elif(v["one"]):
            m.d.comb += y.eq(Cat(Const(0, _W - 1), Const(ref.BIAS, _E), out_sign))
        with m.Else():
            m.d.comb += y.eq(Cat(rounded[:_W - 1], exp[:_E], out_sign))

        with m.If(en):
            m.d.sync += [self.o.valid.eq(v["valid"]), self.o.payload.y.eq(y)]
            if self.tag_width:
                m.d.sync += self.o.payload.tag.eq(v["tag"])
        pipe.stages += 1
        assert pipe.stages == self.latency
        return m


def ceil_bits(n):
    """Bits of an unsigned value up to ``n``."""
    return max(1, int(n).bit_length())
