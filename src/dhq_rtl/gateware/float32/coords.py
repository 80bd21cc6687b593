"""The float core's input: each pixel's coordinates ``(u_x, u_y)`` as float32.

:class:`FloatCoordinates` walks the pixels of a region in raster order, like
:class:`~dhq_rtl.gateware.coords.FirstLayerPhases` does for the integer core,
and gives the vector arbiter each pixel's vector 0: the centred integer
coordinates ``u_x = 2x − (W − 1)``, ``u_y = 2y − (H − 1)`` converted to
float32 (exactly: ``|u| < 2**13``). Their scale ``1/(W − 1)`` is folded
into layer 0's weights (:func:`dhq_rtl.golden_float32.float_core_parameters`),
so no division or multiplication happens here.

Interface (the same as the integer generator's): ``start`` (pulse) starts
the walk of ``region`` (a non-empty half-open rectangle: the core checks;
registered here at ``start``); ``done`` is high
when every pixel of the region has been requested; ``source`` (:func:`~dhq_rtl.gateware.core_streams.coord_source_signature`):
``ready`` while a pixel may be requested, a ``next`` pulse emits its two
elements on ``phases`` (``{phase: the float32 bits, index, last}``) 2 and 3
cycles later (one converter, used twice); ``ready`` is low from the cycle
after ``next`` until the second element is emitted.

:func:`int_to_float32` is the integer → float32 conversion (a
leading-one search and a shift; the twin is numpy's ``astype(float32)``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ... import float32_ref as ref
from ..coords import region_layout
from ..core_streams import coord_source_signature

__all__ = ["FloatCoordinates", "int_to_float32"]


def int_to_float32(m, value, name="conv"):
    """float32 bit pattern (combinational) of the signed integer ``value``
    (at most 24 significant bits, so the conversion is exact); 0 → +0."""
    width = len(value)
    sign = value[-1]
    mag = Signal(width, name=f"{name}_mag")
    if width > ref.FRAC_BITS + 1:
        raise ValueError(f"int_to_float32 converts at most {ref.FRAC_BITS + 1} bits exactly, got {width}")
    m.d.comb += mag.eq((value ^ sign.replicate(width)) + sign)      # |value|
    out = Signal(32, name=name)
    for p in range(width):             # the highest set bit wins (assigned last)
        with m.If(mag[p]):
            frac = (mag << (ref.FRAC_BITS - p))[:ref.FRAC_BITS]
            m.d.comb += out.eq(Cat(frac, Const(ref.BIAS + p, ref.EXP_BITS), sign))
    return out


class FloatCoordinates(wiring.Component):
    """Raster walk of a region and the float32 coordinates of each pixel (module docstring)."""

    def __init__(self, plan):
        self.plan = plan
        self.model = model = plan.model
        if max(model.width, model.height) > 1 << 13:
            raise ValueError("image sides above 8192 are not supported")
        super().__init__({
            "start": In(1),
            "region": In(region_layout(plan.max_size, plan.max_size)),
            "done": Out(1),
            "source": Out(coord_source_signature(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        model = self.model
        # The region's x0, x1 and y1, registered at start (the core's region
        # need only hold until the cycle after its start, as for the integer
        # generator; y0 is only needed then).
        region = Signal.like(self.region)
        x, y = Signal.like(region.x0), Signal.like(region.y0)
        finished = Signal(init=1)
        busy = Signal()
        step = Signal(2)               # 0: idle, 1: u_x is converted, 2: u_y is converted
        m.d.comb += [self.done.eq(finished), self.source.ready.eq(~finished & ~busy)]
        bits = max(model.width, model.height).bit_length() + 1
        ux, uy = Signal(signed(bits)), Signal(signed(bits))
        with m.If(self.start):
            m.d.sync += [region.x0.eq(self.region.x0), region.x1.eq(self.region.x1), region.y1.eq(self.region.y1),
                         x.eq(self.region.x0), y.eq(self.region.y0), finished.eq(0)]
        with m.Elif(self.source.next & self.source.ready):
            m.d.sync += [busy.eq(1), step.eq(1), ux.eq(2 * x - (model.width - 1)), uy.eq(2 * y - (model.height - 1))]
            with m.If(x + 1 == region.x1):
                m.d.sync += [x.eq(region.x0), y.eq(y + 1)]
                with m.If(y + 1 == region.y1):
                    m.d.sync += finished.eq(1)
            with m.Else():
                m.d.sync += x.eq(x + 1)
        # One converter for both elements: u_x in the cycle after next, u_y in the one after.
        phases = self.source.phases
        m.d.sync += phases.valid.eq(0)
        conv = int_to_float32(m, Mux(step == 1, ux, uy), "conv")
        with m.Switch(step):
            with m.Case(1):
                m.d.sync += [phases.valid.eq(1), phases.payload.phase.eq(conv), phases.payload.index.eq(0),
                             phases.payload.last.eq(0), step.eq(2)]
            with m.Case(2):
                m.d.sync += [phases.valid.eq(1), phases.payload.phase.eq(conv), phases.payload.index.eq(1),
                             phases.payload.last.eq(1), step.eq(0), busy.eq(0)]
        return m
