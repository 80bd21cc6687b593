"""Pipelined float32 sine of a phase in turns: ``y = sin(2π·t)``.

:class:`Fp32Sine` is the gateware twin of :func:`dhq_rtl.float32_ref.sin_turns`
(bit for bit); ``docs/float32.md`` gives the algorithm and its measured
error: at most 0.631 ULP from ``sin(2π·t)`` over every float32 phase
(default ``spec``). The model's sine layers compute ``sin(ω0·z)``; with ``t = z·ω0/2π``
(a multiply, or folded into the weights and bias) the phase is in turns, and
the periodic part of the range reduction is exact: whole turns are whole
bits of ``t``'s mantissa.

Algorithm (``k = spec.index_bits``, ``H = spec.h_bits``, ``F = H + 2``
fraction bits of the reduced argument, ``D = F − k``):

1. ``unpack``: shift amounts; classes (zero/subnormal, Inf/NaN);
2. ``shift_hi``, ``shift``: for ``|t| ≥ 1/4`` (exponent ``e ≥ 125``) the
   24-bit mantissa shifted left by ``e − 125``, 25 bits kept: ``4|t| mod 4``
   with 23 fraction bits; for ``|t| < 1/4`` shifted right into the
   fixed-point ``r = 4|t|`` (``F`` fraction bits, truncated); each shift by
   the multiple of 4 first, then by the rest;
3. ``fold``: quadrant ``q`` and fraction ``f``; the reduced argument (quarter
   turns, exact) is ``R = f`` or ``2**23 − f``; negative result for ``q ≥ 2``;
4. ``norm_hi``, ``normalise``: ``R`` shifted up to its leading one (16, 8,
   then 4, 2, 1): ``r = mr·2**(er − 23)`` with a 24-bit mantissa ``mr``; the
   fixed-point ``r`` (``F`` fraction bits) whose top ``k`` bits address the
   table;
5. ``table``: one synchronous ROM read, ``2**k`` words of ``C0``, ``C1``,
   ``C2`` (:func:`dhq_rtl.float32_ref.sine_table`);
6. ``p1``: ``C2 · δ2``; ``u``: ``C1 + round(p1 / 2**(H + 2 − 2k))``;
7. ``p2``: ``u · δ``; ``p2_mid``, ``p2sum``: its pieces added; ``h``:
   ``h = C0 − round(p2 / 2**(D + 2))`` ≈ ``sin(π r/2)/r · 2**H``;
8. ``p3``: ``mr · h`` (24 × (H + 1) bits); ``p3_mid``, ``psum``: added;
9. ``pnorm``: mantissa, guard and sticky bits, exponent ``er + 127 + top``;
   ``round``: round to nearest even;
10. output register: Inf/NaN → the canonical NaN; ±0 and subnormal inputs
    → ±0; ``r = 0`` → ±0 (the sign of ``t``); ``r = 1`` → ±1.

Latency: ``latency`` register stages, 5 (the ROM read, the three products
and the output register) … 19 (a register after every step: the default);
a result is valid ``(latency − 1)·ii + 1`` cycles after its phase was
accepted (``latency`` cycles for ``ii = 1``). With
``ii = 1`` a window is one cycle and every 16×16 piece of the three products
has its own multiplier (9 for the default widths: the ``dsp_count``
``SB_MAC16`` of ``dsp="ice40"``); with ``ii = N ≥ 3`` the unit accepts one
phase every ``N`` cycles and the pieces share ``ceil(9 / (N − 2))``
multipliers (:mod:`.product`): 1 for ``N = 11``, which is what a core that
needs one sine per output neuron can afford on the iCE40UP5K. A stalled
output stalls the pipeline.

Widths (default ``k = 8``, ``H = 27``): ROM words of 28 + 21 + 13 bits (four
``SB_RAM40_4K``); products 13 × 13, 22 × 21 and 24 × 28 bits.

Payloads: ``i.payload = {"t": unsigned(32)[, "tag"]}``, ``o.payload =
{"y": unsigned(32)[, "tag"]}``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_int, check_tag_shape
from ..layouts import tag_width, tagged_layout
from .add import normalise_steps
from .bits import float32_view
from .mul import float_out_layout
from .pipeline import Pipeline, choose_cuts
from .product import DSP_KINDS, Products, multipliers_needed
from .rounding import round_step

__all__ = ["Fp32Sine", "sine_in_layout", "sum_pieces", "sine_geometry"]

_W = ref.FRAC_BITS + 1
_E = ref.EXP_BITS
_Q0 = ref.BIAS - 2          # exponent of 1/4: from here on the phase is reduced


def sine_in_layout(tag_shape=0):
    """Input payload of :class:`Fp32Sine`: ``t`` (a bit pattern, in turns)."""
    return tagged_layout({"t": unsigned(32)}, tag_shape)


def sum_pieces(m, pipe, v, terms, label):
    """Add the pieces ``terms`` of one product (see :mod:`.product`) in at
    most two steps with an optional cut ``<label>_mid`` between: pieces that
    do not overlap are concatenated into rows, the last two rows added first.
    Returns ``(v, total)`` (``v`` as after the cut)."""
    rows = []
    for off, value in sorted(terms, key=lambda t: (t[0], -len(t[1]))):
        for row in rows:
            if row[1] <= off:
                row[1] = off + len(value)
                row[2] = row[2] | (value << off)
                break
        else:
            rows.append([off, off + len(value), value << off])
    rows = [r[2] for r in rows]
    if len(rows) > 2:
        width = max(len(r) for r in rows[-2:]) + 1
        tail = Signal(width, name=f"{label}_tail")
        m.d.comb += tail.eq(rows[-2] + rows[-1])
        v = pipe.cut(f"{label}_mid", dict(v, **{f"{label}_row{j}": r for j, r in enumerate(rows[:-2])},
                                          **{f"{label}_tail": tail}))
        rows = [v.pop(f"{label}_row{j}") for j in range(len(rows) - 2)] + [v.pop(f"{label}_tail")]
    total = rows[0]
    for r in rows[1:]:
        total = total + r
    return v, total


def sine_geometry(spec=ref.DEFAULT_SINE, *, ii=1, dsp="generic"):
    """What an :class:`Fp32Sine` of these parameters builds, without building
    it (for plans and estimates): ``c_widths`` (the ROM fields ``C0``, ``C1``,
    ``C2``), ``u_width``, ``depth`` (ROM words; the ROM is ``sum(c_widths)``
    bits wide), ``multipliers`` and ``dsp_count``."""
    c0, c1, c2 = ref.sine_table(spec)
    c_widths = tuple(max(1, int(c.max()).bit_length()) for c in (c0, c1, c2))
    u_width = int(c1.max() + c2.max()).bit_length()
    shapes = [(c_widths[2], spec.delta2_bits), (u_width, spec.delta1_bits), (_W, spec.h_bits + 1)]
    multipliers, dsp_count = multipliers_needed(shapes, ii=ii, dsp=dsp)
    return {"c_widths": c_widths, "u_width": u_width, "depth": 1 << spec.index_bits,
            "multipliers": multipliers, "dsp_count": dsp_count}


class Fp32Sine(wiring.Component):
    """``sin(2π·t)`` for a float32 phase ``t`` in turns.

    Parameters
    ----------
    spec : :class:`dhq_rtl.float32_ref.SineSpec`
        Table size and precision (default: 256 segments, ``h`` to 27 bits).
    latency : int or None
        Register stages from input to output, 5…19 (``None``: 19).
    ii : int
        Initiation interval: cycles per phase, 1 or at least 3.
    dsp : ``"generic"`` or ``"ice40"``
    tag_shape : int or shape
        Shape of the pass-through ``tag`` (an integer width, 0: none, or e.g. a
        ``data.StructLayout`` naming what it holds).

    Attributes: ``latency`` (register stages), ``multipliers``,
    ``dsp_count``, ``depth`` (ROM words), ``c_widths`` (ROM fields).
    """

    CUTS = ("round", "pnorm", "psum", "h", "u", "p2sum", "normalise", "fold", "shift", "unpack",
            "norm_hi", "shift_hi", "p3_mid", "p2_mid")
    FIXED_STAGES = 5

    def __init__(self, spec=ref.DEFAULT_SINE, *, latency=None, ii=1, dsp="generic", tag_shape=0):
        if not isinstance(spec, ref.SineSpec):
            raise TypeError(f"spec must be a dhq_rtl.float32_ref.SineSpec, not {type(spec).__name__}")
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        check_int("ii", ii, 1, 64)
        if ii == 2:
            raise ValueError("ii must be 1 or at least 3 (the shared multipliers need two spare cycles)")
        tag_shape = check_tag_shape(tag_shape)
        self.cuts, self.latency = choose_cuts("Fp32Sine", self.CUTS, latency, self.FIXED_STAGES)
        self.spec = spec
        self.ii = ii
        self.dsp = dsp
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        geometry = sine_geometry(spec, ii=ii, dsp=dsp)
        self.table = ref.sine_table(spec)
        self.c_widths = geometry["c_widths"]
        self.u_width = geometry["u_width"]
        self.depth = geometry["depth"]
        self.multipliers, self.dsp_count = geometry["multipliers"], geometry["dsp_count"]
        super().__init__({
            "i": In(stream.Signature(sine_in_layout(tag_shape))),
            "o": Out(stream.Signature(float_out_layout(tag_shape))),
        })

    def _rom_init(self):
        w0, w1, _ = self.c_widths
        return [int(a) | (int(b) << w0) | (int(c) << (w0 + w1)) for a, b, c in zip(*self.table)]

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.i, self.o, cuts=self.cuts, ii=self.ii)
        v = self._reduce(m, pipe)
        v = self._interpolate(m, pipe, v)
        self._result(m, pipe, v)
        assert pipe.stages == self.latency
        return m

    def _reduce(self, m, pipe):
        """Steps 1–4: the argument reduced to a quadrant and a folded
        argument, normalised (``mr``, ``lz``), and its fixed-point form
        (``rfix``) for the table."""
        F = self.spec.r_bits

        # 1. unpack: shift amounts
        t = float32_view(self.i.payload.t)
        e = t.exp
        # Shift amounts: 5 bits, and a flag for 32 or more (then everything is
        # shifted out; 25…31 left of 25 bits or F…31 right of F bits clear the
        # value by themselves). The amount of the path not taken (negative)
        # does not matter.
        sh, amt = (e - _Q0)[:_E], ((_Q0 - 1) - e)[:_E]
        v = {"valid": self.i.valid, "sign": t.sign, "nan": e == ref.EXP_MAX, "zero_in": e == 0, "big": e >= _Q0,
             "m": Cat(t.frac, Const(1, 1)), "sh": sh[:5], "sh_kill": sh[5:] != 0,
             "amt": amt[:5], "amt_kill": amt[5:] != 0, "er_small": (e - _Q0).as_signed()}
        if self.tag_width:
            v["tag"] = self.i.payload.tag
        v = pipe.cut("unpack", v)

        # 2. the two shifts
        # 2a. shifts by the multiples of 4
        mant, sh, amt = v["m"], v.pop("sh"), v.pop("amt")
        x4, s4 = Signal(25), Signal(F)
        m.d.comb += [x4.eq(mant << Cat(Const(0, 2), sh[2:])),
                     s4.eq(Cat(Const(0, F - _W), mant) >> Cat(Const(0, 2), amt[2:]))]
        v = pipe.cut("shift_hi", dict(v, x4=x4, s4=s4, sh_lo=sh[:2], amt_lo=amt[:2]))

        # 2b. the rest; |t| < 1/4: the folded argument is the mantissa itself
        # (q = 0, and the fold below puts the leading one back)
        x, small_fix = Signal(25), Signal(F)
        mant = v.pop("m")
        m.d.comb += [x.eq(Mux(v["big"], Mux(v.pop("sh_kill"), 0, v.pop("x4") << v.pop("sh_lo")), mant[:_W - 1])),
                     small_fix.eq(Mux(v.pop("amt_kill"), 0, v.pop("s4") >> v.pop("amt_lo")))]
        v = pipe.cut("shift", dict(v, x=x, small_fix=small_fix))

        # 3. quadrant and folded argument
        x = v.pop("x")
        q, f = x[_W - 1:], x[:_W - 1]
        # R = 2**23 − f for odd q: its low 23 bits are −f, its top bit says f = 0
        # (for |t| < 1/4 the top bit is the mantissa's leading one)
        big = v["big"]
        f_zero = f == 0
        r23 = Signal(_W)
        m.d.comb += r23.eq(Cat(Mux(q[0], -f, f)[:_W - 1], (q[0] & f_zero) | ~big))
        v = pipe.cut("fold", dict(v, r23=r23, flip=big & q[1], one=big & q[0] & f_zero,
                                  zero_r=big & ~q[0] & f_zero))

        # 4. normalise R; fixed-point r; table address
        r23 = v.pop("r23")
        n_hi, f_hi = normalise_steps(m, r23, (16, 8), "rnorm_hi", lookahead=True)
        v = pipe.cut("norm_hi", dict(v, n_hi=n_hi, z16=f_hi[16], z8=f_hi[8],
                                     rfix_big=r23 << (F - (_W - 1))))
        n_lo, f_lo = normalise_steps(m, v.pop("n_hi"), (4, 2, 1), "rnorm_lo")
        lz = Cat(f_lo[1], f_lo[2], f_lo[4], v.pop("z8"), v.pop("z16"))
        big = v["big"]
        mr = n_lo
        rfix = Signal(F)
        m.d.comb += rfix.eq(Mux(big, v.pop("rfix_big"), v.pop("small_fix")))
        return pipe.cut("normalise", dict(v, mr=mr, lz=lz, rfix=rfix))

    def _interpolate(self, m, pipe, v):
        """Steps 5–8: the table's coefficients, the quadratic interpolation
        ``h`` and its product with the normalised argument (``p``)."""
        spec = self.spec
        H, D = spec.h_bits, spec.delta_bits
        w0, w1, w2 = self.c_widths
        products = Products(m, pipe, dsp=self.dsp)

        # 5. table read; the biased exponent of r beside it
        rfix = v.pop("rfix")
        m.submodules.table = rom = memory.Memory(shape=unsigned(w0 + w1 + w2), depth=self.depth,
                                                 init=self._rom_init())
        rd = rom.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(rfix[D:]), rd.en.eq(pipe.en)]
        e_base = Signal(signed(_E + 2))      # er + 127 (er = −lz, or e − 125 for |t| < 1/4)
        m.d.comb += e_base.eq(Mux(v.pop("big"), ref.BIAS - v.pop("lz"), v.pop("er_small") + ref.BIAS))
        v = pipe.stage("table", dict(v, delta=rfix[:D], e_base=e_base))
        c0, c1, c2 = rd.data[:w0], rd.data[w0:w0 + w1], rd.data[w0 + w1:]

        # 6. curvature term, slope sum
        d2 = spec.delta2_bits
        # round(x / 2**s) = floor(x / 2**s) + bit s−1 of x: the +1 is chosen
        # between two operands computed a stage earlier, one carry chain remains
        t1 = products.product("p1", c2, v["delta"][D - d2:])
        v = pipe.stage("p1", dict(v, c0=c0, c1=c1, c1p=c1 + 1))
        v, p1 = sum_pieces(m, pipe, v, t1, "p1")
        u = Signal(self.u_width)
        c1, c1p = v.pop("c1"), v.pop("c1p")
        m.d.comb += u.eq(Mux(p1[d2 - 1], c1p, c1) + (p1 >> d2))
        v = pipe.cut("u", dict(v, u=u))

        # 7. slope times offset; h
        s1 = spec.delta1_bits + spec.guard_bits
        t2 = products.product("p2", v.pop("u"), v.pop("delta")[D - spec.delta1_bits:])
        v = pipe.stage("p2", dict(v, c0m=v["c0"] - 1))
        v, p2 = sum_pieces(m, pipe, v, t2, "p2")
        p2r = Signal(self.u_width + spec.delta1_bits)
        m.d.comb += p2r.eq(p2)
        v = pipe.cut("p2sum", dict(v, p2=p2r))
        h = Signal(H + 1)
        p2, c0, c0m = v.pop("p2"), v.pop("c0"), v.pop("c0m")
        m.d.comb += h.eq(Mux(p2[s1 - 1], c0m, c0) - (p2 >> s1))
        v = pipe.cut("h", dict(v, h=h))

        # 8. r times h
        t3 = products.product("p3", v.pop("mr"), v.pop("h"))
        products.finish()
        v = pipe.stage("p3", v)
        v, p = sum_pieces(m, pipe, v, t3, "p3")
        pr = Signal(_W + H + 1)
        m.d.comb += pr.eq(p)
        return pipe.cut("psum", dict(v, p=pr))

    def _result(self, m, pipe, v):
        """Steps 9–10: the product normalised and rounded to binary32, the
        special cases selected, the output register."""
        H = self.spec.h_bits

        # 9. mantissa, guard, sticky, exponent; round
        p = v.pop("p")
        top = p[_W + H]
        exp = Signal(signed(_E + 2))
        m.d.comb += exp.eq(v.pop("e_base") + top)
        v = pipe.cut("pnorm", dict(v, mant=Mux(top, p[H + 1:H + 1 + _W], p[H:H + _W]),
                                   guard=Mux(top, p[H], p[H - 1]), sticky=Mux(top, p[:H] != 0, p[:H - 1] != 0),
                                   exp=exp))
        exp = v.pop("exp")
        rounded = round_step(m, v.pop("mant"), v.pop("guard"), v.pop("sticky"))
        v = pipe.cut("round", dict(v, rounded=rounded, e0=exp[:_E], e1=(exp + 1)[:_E]))

        # 10. select, output register
        rounded = v["rounded"]
        out_sign = v["sign"] ^ v["flip"]
        y = Signal(32)
        with m.If(v["nan"]):
            m.d.comb += y.eq(ref.QNAN)
        with m.Elif(v["zero_in"] | v["zero_r"]):
            m.d.comb += y.eq(Cat(Const(0, 31), v["sign"]))
        with m.Elif(v["one"]):
            m.d.comb += y.eq(Cat(Const(0, _W - 1), Const(ref.BIAS, _E), out_sign))
        with m.Else():
            m.d.comb += y.eq(Cat(rounded[:_W - 1], Mux(rounded[_W], v["e1"], v["e0"]), out_sign))
        payload = {"y": y}
        if self.tag_width:
            payload["tag"] = v["tag"]
        pipe.output(v["valid"], payload)
