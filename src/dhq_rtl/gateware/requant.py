"""Streaming activation requantizer.

:class:`Requantizer` is the gateware twin of
:func:`dhq_rtl.fixedpoint.requantize`::

    q = saturate_signed(round_half_up(x * mult / 2**shift), out_bits)

where round half up means "add ``2**(shift-1)``, then shift right
arithmetically" (``shift == 0``: no rounding) and the saturation is to the
symmetric range ``±(2**(out_bits-1) − 1)``.

The core needs one ``(mult, shift)`` pair per layer; the constructor takes the
list of pairs and the ``sel`` field of each input beat picks one. The pairs are
constants, so each product is a multiplication by a constant (a multiply by 1
or by a power of two folds away in synthesis).

Pipeline (three registered stages, one element per cycle):

1. ``p = x * mult[sel]`` (constant products, selected by ``sel``);
2. ``r = p + 2**(shift[sel]-1)`` (0 where ``shift`` is 0);
3. ``q = saturate(r >> shift[sel])``.

Latency 3 cycles (input beat → output beat), throughput one element per
cycle; a stalled output stalls the whole pipeline (``i.ready`` is
``~o.valid | o.ready``).

Widths: input ``signed(in_width)``; internal
``signed_bits(-2**(in_width-1)·M, (2**(in_width-1)−1)·M + H)`` with ``M`` the
largest ``mult`` and ``H`` the largest rounding constant (exact, no overflow);
output ``signed(out_bits)``.

Payloads: ``i.payload = {"data": signed(in_width), "sel": unsigned(sel_width)
[, "tag": tag_shape]}`` with ``sel_width = max(1,
ceil_log2(len(pairs)))``; a ``sel`` beyond the list uses pair 0.
``o.payload = {"data": signed(out_bits)[, "tag": ...]}``; the tag passes
through unchanged. With ``always_ready=True`` both streams are
``always_ready`` (no back-pressure), for a consumer that takes every beat.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..fixedpoint import signed_bits, signed_max
from .args import check_bool, check_int, check_tag_shape
from .layouts import tag_width, tagged_layout

__all__ = ["Requantizer", "ShiftRequantizer", "requant_in_layout", "requant_out_layout"]

#: Largest shift accepted (the model image allows 48).
MAX_SHIFT = 62


def requant_in_layout(in_width, sel_width, tag_shape=0):
    return tagged_layout({"data": signed(in_width), "sel": unsigned(sel_width)}, tag_shape)


def requant_out_layout(out_bits, tag_shape=0):
    return tagged_layout({"data": signed(out_bits)}, tag_shape)


class Requantizer(wiring.Component):
    """Pipelined ``sat(round_half_up(x * mult / 2**shift), out_bits)``.

    Parameters
    ----------
    in_width : int
        Input width (signed), ``1 ≤ in_width ≤ 48``.
    pairs : sequence of (int, int)
        The ``(mult, shift)`` pairs, ``0 ≤ mult < 2**24``,
        ``0 ≤ shift ≤ 62``; ``sel = k`` selects ``pairs[k]``.
    out_bits : int
        Output width (signed, symmetric saturation), ``2 ≤ out_bits ≤ 32``.
    tag_shape : int or shape
        Shape of an optional tag passed through (an integer width, 0: none,
        or e.g. a ``data.StructLayout``).
    always_ready : bool
        Streams without back-pressure (see the module docstring).

    Ports ``i`` / ``o`` (stream), payloads as in the module docstring.
    Latency 3 cycles, throughput 1 element per cycle.
    """

    def __init__(self, in_width, pairs, out_bits, *, tag_shape=0, always_ready=False):
        check_int("in_width", in_width, 1, 48)
        check_int("out_bits", out_bits, 2, 32)
        tag_shape = check_tag_shape(tag_shape)
        check_bool("always_ready", always_ready)
        if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
            raise TypeError(f"pairs must be a sequence of (mult, shift) pairs, not {pairs!r}")
        pairs = list(pairs)
        if not pairs:
            raise ValueError("pairs must hold at least one (mult, shift) pair")
        checked = []
        for k, pair in enumerate(pairs):
            try:
                mult, shift = pair
            except (TypeError, ValueError):
                raise TypeError(f"pairs[{k}] must be a (mult, shift) pair, not {pair!r}") from None
            mult, shift = _as_int(mult), _as_int(shift)
            check_int(f"pairs[{k}] mult", mult, 0, (1 << 24) - 1)
            check_int(f"pairs[{k}] shift", shift, 0, MAX_SHIFT)
            checked.append((mult, shift))
        self.in_width = in_width
        self.pairs = checked
        self.out_bits = out_bits
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.always_ready = always_ready
        self.sel_width = max(1, ceil_log2(len(checked)))
        self.latency = 3
        big = max(m for m, _ in checked)
        half = max((1 << (s - 1)) if s else 0 for _, s in checked)
        self.work_width = signed_bits(-(1 << (in_width - 1)) * big, ((1 << (in_width - 1)) - 1) * big + half)
        super().__init__({
            "i": In(stream.Signature(requant_in_layout(in_width, self.sel_width, tag_shape),
                                     always_ready=always_ready)),
            "o": Out(stream.Signature(requant_out_layout(out_bits, tag_shape), always_ready=always_ready)),
        })

    def elaborate(self, platform):
        m = Module()
        ww = self.work_width
        nsel = len(self.pairs)
        limit = signed_max(self.out_bits)

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        if not self.always_ready:
            m.d.comb += self.i.ready.eq(advance)

        def select(sel, fn, target):
            # target = fn(pair) for the selected pair; out-of-range sel → pair 0
            with m.Switch(sel):
                for k, pair in enumerate(self.pairs[1:], start=1):
                    with m.Case(k):
                        m.d.comb += target.eq(fn(*pair))
                with m.Default():
                    m.d.comb += target.eq(fn(*self.pairs[0]))

        # Stage 1: constant products.
        x = self.i.payload.data
        product = Signal(signed(ww))
        select(self.i.payload.sel, lambda mult, shift: x * Const(mult, unsigned(max(1, mult.bit_length()))),
               product)
        valid1, p1, sel1 = Signal(), Signal(signed(ww)), Signal(range(nsel))
        sel_in = Signal(range(nsel))
        with m.If(self.i.payload.sel < nsel):
            m.d.comb += sel_in.eq(self.i.payload.sel)

        # Stage 2: rounding constant.
        half = Signal(signed(ww))
        select(sel1, lambda mult, shift: (1 << (shift - 1)) if shift else 0, half)
        valid2, r2, sel2 = Signal(), Signal(signed(ww)), Signal(range(nsel))

        # Stage 3: arithmetic shift and symmetric saturation.
        shifted = Signal(signed(ww))
        select(sel2, lambda mult, shift: r2 >> shift, shifted)
        q = Signal(signed(self.out_bits))
        with m.If(shifted > limit):
            m.d.comb += q.eq(limit)
        with m.Elif(shifted < -limit):
            m.d.comb += q.eq(-limit)
        with m.Else():
            m.d.comb += q.eq(shifted)

        with m.If(advance):
            m.d.sync += [
                valid1.eq(self.i.valid), p1.eq(product), sel1.eq(sel_in),
                valid2.eq(valid1), r2.eq(p1 + half), sel2.eq(sel1),
                self.o.valid.eq(valid2), self.o.payload.data.eq(q),
            ]
            if self.tag_width:
                tag1, tag2 = Signal(self.tag_width), Signal(self.tag_width)
                m.d.sync += [
                    tag1.eq(self.i.payload.tag), tag2.eq(tag1), self.o.payload.tag.eq(tag2),
                ]
        return m


def _as_int(v):
    # Accept numpy integers from a model image as well as Python ints.
    if hasattr(v, "dtype") and getattr(v, "shape", None) == () and v.dtype.kind in "iu":
        return int(v)
    return v


class ShiftRequantizer(wiring.Component):
    """Pipelined ``sat(round_half_up(x / 2**shift), out_bits)`` with the shift
    given per beat: the requantizer of a loadable core (multiplier 1, the only
    one the exporter makes; the shift of each layer comes from the layer
    descriptors, so the hardware does not fix it).

    Parameters: ``in_width`` (signed input, 1…48), ``out_bits`` (2…32),
    ``max_shift`` (0…62: the largest shift a beat may carry), ``tag_shape``,
    ``always_ready`` as for :class:`Requantizer`.

    Pipeline (three registered stages, like :class:`Requantizer`, so the two
    are interchangeable in a schedule), with the rounding done after the
    shift (``round_half_up(x / 2**s) = (x >> s) + x[s − 1]`` for ``s ≥ 1``),
    so no stage holds a wide adder:

    1. register ``x`` and ``shift``;
    2. ``y = x >> shift`` and the rounding bit ``x[shift − 1]`` (0 for a
       zero shift), with the sign folded into two flags the saturation test
       of stage 3 needs, and whether ``y`` is out of range whatever the
       rounding (a bit of ``x`` from ``shift + out_bits − 1`` up differs
       from the sign: per bit a constant comparison of ``shift``, beside the
       shifter);
    3. ``q = saturate(y + rounding bit)``: the sum leaves
       ``±(2**(out_bits−1) − 1)`` when stage 2 said so or ``y`` is one step
       off the edge with the rounding bit pushing it over (the low
       ``out_bits − 1`` bits against a constant); only the low ``out_bits``
       bits are added (a short carry chain).

    Latency 3 cycles, throughput one element per cycle. Widths: ``y`` has
    ``in_width`` bits.

    Payloads: ``i.payload = {"data": signed(in_width), "shift":
    unsigned(bits(max_shift))[, "tag"]}``; ``o.payload = {"data":
    signed(out_bits)[, "tag"]}``.
    """

    def __init__(self, in_width, out_bits, max_shift, *, tag_shape=0, always_ready=False):
        check_int("in_width", in_width, 1, 48)
        check_int("out_bits", out_bits, 2, 32)
        check_int("max_shift", max_shift, 0, MAX_SHIFT)
        tag_shape = check_tag_shape(tag_shape)
        check_bool("always_ready", always_ready)
        self.in_width = in_width
        self.out_bits = out_bits
        self.max_shift = max_shift
        self.shift_width = max(1, max_shift.bit_length())
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.always_ready = always_ready
        self.latency = 3
        self.work_width = max(in_width, max_shift) + 1
        layout = tagged_layout({"data": signed(in_width), "shift": unsigned(self.shift_width)}, tag_shape)
        super().__init__({
            "i": In(stream.Signature(layout, always_ready=always_ready)),
            "o": Out(stream.Signature(requant_out_layout(out_bits, tag_shape), always_ready=always_ready)),
        })

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        if not self.always_ready:
            m.d.comb += self.i.ready.eq(advance)
        valid1, x1, s1 = Signal(), Signal(signed(self.in_width)), Signal(self.shift_width)
        valid2 = Signal()
        y2, round2, near_hi2, near_lo2, over2 = self._shift_stage(m, x1, s1)
        q = self._saturate_stage(y2, round2, near_hi2, near_lo2, over2)
        with m.If(advance):
            m.d.sync += [
                valid1.eq(self.i.valid), x1.eq(self.i.payload.data), s1.eq(self.i.payload.shift),
                valid2.eq(valid1),
                self.o.valid.eq(valid2), self.o.payload.data.eq(q),
            ]
            if self.tag_width:
                tag1, tag2 = Signal(self.tag_width), Signal(self.tag_width)
                m.d.sync += [tag1.eq(self.i.payload.tag), tag2.eq(tag1), self.o.payload.tag.eq(tag2)]
        return m

    def _shift_stage(self, m, x1, s1):
        """Stage 2: registered ``y = x1 >> s1``, the rounding bit and the
        flags ``near_hi`` (rounding bit set, ``y ≥ 0``: ``y = limit`` would
        round over the top), ``near_lo`` (rounding bit clear, ``y < 0``:
        ``y = −limit − 1`` stays below the bottom) and ``over`` (``y`` is
        beyond ``±limit`` whatever the rounding: a bit of ``y`` from
        ``out_bits − 1`` up differs from the sign, that is a bit of ``x1``
        from ``s1 + out_bits − 1`` up; each such bit's test is a constant
        comparison of ``s1``, beside the shifter, so stage 3 keeps two
        LUT levels in front of its multiplexer: timing)."""
        # One shifter gives both: bit 0 of (x1 · 2) >> s1 is x1[s1 − 1], 0 for s1 = 0.
        both = Signal(signed(self.in_width + 1))
        m.d.comb += both.eq(Cat(Const(0, 1), x1).as_signed() >> s1)
        y2, round2 = Signal(signed(self.in_width), name="shifted2"), Signal(name="round2")
        near_hi2, near_lo2 = Signal(name="near_hi2"), Signal(name="near_lo2")
        over2 = Signal(name="over2")
        sign = x1[-1]
        edge = self.out_bits - 1
        over = Cat(*[(x1[j] ^ sign) & (s1 <= j - edge) for j in range(edge, len(x1) - 1)]).any()
        with m.If(~self.o.valid | self.o.ready):
            m.d.sync += [
                y2.eq(both[1:]), round2.eq(both[0]),
                near_hi2.eq(both[0] & ~sign), near_lo2.eq(~both[0] & sign), over2.eq(over),
            ]
        return y2, round2, near_hi2, near_lo2, over2

    def _saturate_stage(self, y2, round2, near_hi2, near_lo2, over2):
        """Stage 3 (combinational): ``saturate(y2 + round2)`` to
        ``±limit``, ``limit = 2**(out_bits−1) − 1``."""
        b = self.out_bits
        limit = signed_max(b)
        # y2 sign-extended to at least out_bits bits.
        y = y2 if len(y2) >= b else Cat(y2, y2[-1].replicate(b - len(y2)))
        sign = y2[-1]
        low = y[:b - 1]
        # |y| beyond the range (the bits from out_bits − 1 up differ from the
        # sign): registered in stage 2 (`over2`).
        out_of_range = over2
        # y = limit with the rounding bit set, or y = −limit − 1 without it.
        at_edge = (near_hi2 & (low == (1 << (b - 1)) - 1)) | (near_lo2 & (low == 0))
        total = y[:b] + round2      # exact in out_bits bits when nothing saturates
        return Mux(out_of_range | at_edge, Mux(sign, Const(-limit, signed(b)), Const(limit, signed(b))),
                   total[:b])
