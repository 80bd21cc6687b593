"""float32 output value → pixel: ``clamp(floor(t), 0, 2**pixel_bits − 1)``.

:class:`FloatToPixel` is the gateware twin of
:func:`dhq_rtl.golden_float32.float_pixels`: the output layer's value ``t``
(already in pixel units, with the ``+ ½`` of round half up folded into the
bias) becomes an unsigned ``pixel_bits``-bit pixel:

* NaN, negative values (−0 and −Inf included), zeros, subnormals and
  values below 1 (exponent below 127) → 0;
* ``t ≥ 2**pixel_bits`` (exponent ``≥ 127 + pixel_bits``) and +Inf →
  ``2**pixel_bits − 1``;
* otherwise ``floor(t) = (2**23 + frac) ≫ (150 − exponent)``, which is
  below ``2**pixel_bits``: the top ``pixel_bits`` bits of the mantissa
  shifted right by ``126 + pixel_bits − exponent``.

Pipeline: stage 1 classifies and registers the shift amount; stage 2
shifts. Latency 2, one value per cycle, no back-pressure (``always_ready``).
Payloads: ``i = {t: unsigned(32), tag}``, ``o = {pixel: unsigned(pixel_bits),
tag}``.
"""

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..args import check_int, check_tag_shape
from ..layouts import tag_width, tagged_layout
from .bits import float32_view

__all__ = ["FloatToPixel"]


class FloatToPixel(wiring.Component):
    """float32 → ``pixel_bits``-bit pixel, floor and clamp (module docstring).

    Parameters: ``pixel_bits`` (1…16), ``tag_shape`` (the pass-through tag).
    """

    latency = 2

    def __init__(self, pixel_bits, *, tag_shape=0):
        check_int("pixel_bits", pixel_bits, 1, 16)
        tag_shape = check_tag_shape(tag_shape)
        self.pixel_bits = pixel_bits
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        super().__init__({
            "i": In(stream.Signature(tagged_layout({"t": unsigned(32)}, tag_shape), always_ready=True)),
            "o": Out(stream.Signature(tagged_layout({"pixel": unsigned(pixel_bits)}, tag_shape),
                                      always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        pb = self.pixel_bits
        t = float32_view(self.i.payload.t)
        top = (1 << pb) - 1
        nan = (t.exp == ref.EXP_MAX) & (t.frac != 0)
        # stage 1: the case and the shift. Only the top pixel_bits bits of
        # the mantissa can reach the result (a value below 2**pb has its
        # leading one at most pb − 1 places above the binary point).
        zero, full = Signal(), Signal()
        shift = Signal(range(pb))
        mant = Signal(pb)
        valid1 = Signal()
        tag1 = Signal(self.tag_width)
        m.d.sync += [
            valid1.eq(self.i.valid),
            zero.eq(nan | t.sign | (t.exp < ref.BIAS)),
            full.eq(t.exp >= ref.BIAS + pb),
            shift.eq(ref.BIAS + pb - 1 - t.exp),
            mant.eq(Cat(t.frac, Const(1, 1))[ref.FRAC_BITS + 1 - pb:]),
        ]
        if self.tag_width:
            m.d.sync += tag1.eq(self.i.payload.tag)
        # stage 2: shift and select
        value = Signal(pb)
        m.d.comb += value.eq((mant >> shift)[:pb])
        m.d.sync += [
            self.o.valid.eq(valid1),
            self.o.payload.pixel.eq(value),
        ]
        with m.If(zero):
            m.d.sync += self.o.payload.pixel.eq(0)
        with m.Elif(full):
            m.d.sync += self.o.payload.pixel.eq(top)
        if self.tag_width:
            m.d.sync += self.o.payload.tag.eq(tag1)
        return m
