"""The float core's post-processing: pre-activations → sines, coordinates → buffers, outputs → pixels.

:class:`FloatPostProcessing` takes the vector arbiter's elements (the same
ports as :class:`~dhq_rtl.gateware.postprocess.PostProcessing`) and turns
each into what the next stage reads::

    element ─┬─ coordinate (vector 0) ───────────────────────────┬─► write (priority)
             ├─ hidden stage: phase t ─► Fp32Sine: sin(2π·t) ─────┘
             └─ output stage: value ─► FloatToPixel ─────────────────► pixels

* hidden stages: :class:`~.sine.Fp32Sine` (``sine_latency`` stages, one
  phase every ``sine_ii`` cycles): the only back-pressure of the chain.
  ``elements`` is paced: an element for the sine is taken only when the
  sine takes it (``elements.ready``); coordinates and output values are
  always taken;
* coordinates (vector 0 of a pixel, already float32) go straight into the
  activation buffers; a coordinate write has priority, the sine's output
  then waits a cycle (its ``o.ready``);
* the output stage: :class:`~.pixel.FloatToPixel` (latency 2), then the
  pixel queue.

The two routes into the buffers have different latencies, but every vector
takes one route whole and in order, and the buffers take one write per
cycle; ``path_done.direct`` strobes every write (the arbiter counts the
elements in flight; ``next_rotated`` is false everywhere, so no vector
waits for the other route to drain). Tags: ``{index, buffer, layer}``
(:func:`~dhq_rtl.gateware.core_streams.element_tag_layout`) through the sine.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..core_streams import element_layout, element_tag_layout, path_done_signature, pixel_value_layout, write_layout
from .pixel import FloatToPixel
from .sine import Fp32Sine

__all__ = ["FloatPostProcessing"]


class FloatPostProcessing(wiring.Component):
    """Sine, coordinate pass-through and pixel conversion (module docstring)."""

    def __init__(self, plan):
        self.plan = plan
        super().__init__({
            "elements": In(stream.Signature(element_layout(plan))),
            "write": Out(stream.Signature(write_layout(plan), always_ready=True)),
            "pixels": Out(stream.Signature(pixel_value_layout(plan), always_ready=True)),
            "path_done": Out(path_done_signature()),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        last = plan.n_layers - 1
        el = self.elements.payload
        to_sine, to_pixel, coord = Signal(), Signal(), Signal()
        m.d.comb += [
            coord.eq(self.elements.valid & el.coord),
            to_pixel.eq(~el.coord & (el.layer == last)),
            to_sine.eq(~el.coord & (el.layer != last)),
        ]
        m.submodules.sine = sine = Fp32Sine(latency=plan.sine_latency, ii=plan.sine_ii, dsp=plan.dsp,
                                            tag_shape=element_tag_layout(plan))
        m.d.comb += [
            self.elements.ready.eq(~to_sine | sine.i.ready),
            sine.i.valid.eq(self.elements.valid & to_sine),
            sine.i.payload.t.eq(el.value.acc),
            sine.i.payload.tag.index.eq(el.index),
            sine.i.payload.tag.buffer.eq(el.buffer),
            sine.i.payload.tag.layer.eq(el.layer),
            sine.o.ready.eq(~coord),
        ]
        w = self.write.payload
        with m.If(coord):
            m.d.comb += [self.write.valid.eq(1), w.value.eq(el.value.phase), w.index.eq(el.index),
                         w.buffer.eq(el.buffer), w.layer.eq(0)]
        with m.Elif(sine.o.valid):
            tag = sine.o.payload.tag
            m.d.comb += [self.write.valid.eq(1), w.value.eq(sine.o.payload.y), w.index.eq(tag.index),
                         w.buffer.eq(tag.buffer), w.layer.eq(tag.layer)]
        m.d.comb += self.path_done.direct.eq(self.write.valid)

        m.submodules.to_pixel = conv = FloatToPixel(plan.pixel_bits, tag_shape=plan.index_width)
        m.d.comb += [
            conv.i.valid.eq(self.elements.valid & to_pixel),
            conv.i.payload.t.eq(el.value.acc),
            conv.i.payload.tag.eq(el.index),
            self.pixels.valid.eq(conv.o.valid),
            self.pixels.payload.value.eq(conv.o.payload.pixel),
            self.pixels.payload.channel.eq(conv.o.payload.tag),
        ]
        return m
