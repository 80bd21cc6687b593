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
waits for the other route to drain). No tag travels through the sine: a
vector's ``(buffer, layer)`` waits in a small queue (``sine_vector_depth``
entries: every vector that can be in the sine at once) and the index of a
result is counted, the results of a vector leaving in order.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..core_streams import element_layout, path_done_signature, pixel_value_layout, vector_ref_layout, write_layout
from ..fifo import FlagFIFO
from ..lookup import lookup
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
        m.submodules.sine = sine = Fp32Sine(latency=plan.sine_latency, ii=plan.sine_ii, dsp=plan.dsp)
        m.d.comb += [
            self.elements.ready.eq(~to_sine | sine.i.ready),
            sine.i.valid.eq(self.elements.valid & to_sine),
            sine.i.payload.t.eq(el.value.acc),
            sine.o.ready.eq(~coord),
        ]
        out = self._sine_vectors(m, sine, el)
        w = self.write.payload
        with m.If(coord):
            m.d.comb += [self.write.valid.eq(1), w.value.eq(el.value.phase), w.index.eq(el.index),
                         w.buffer.eq(el.buffer), w.layer.eq(0)]
        with m.Elif(sine.o.valid):
            m.d.comb += [self.write.valid.eq(1), w.value.eq(sine.o.payload.y), w.index.eq(out.index),
                         w.buffer.eq(out.buffer), w.layer.eq(out.layer)]
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

    def _sine_vectors(self, m, sine, el):
        """Where the sine's results go, without a tag through its pipeline
        (its 19 stages would carry it): a vector's ``(buffer, layer)`` enters
        a queue with its first element and leaves with its last result; the
        results of a vector leave in order, so their index is counted.
        Returns ``{index, buffer, layer}`` of the result on ``sine.o``."""
        plan = self.plan
        ref = vector_ref_layout(plan)
        m.submodules.vectors = queue = FlagFIFO(width=ref.size, depth=plan.sine_vector_depth)
        entry = Signal(ref)
        m.d.comb += [entry.buffer.eq(el.buffer), entry.layer.eq(el.layer), queue.w_data.eq(entry),
                     queue.w_en.eq(sine.i.valid & sine.i.ready & (el.index == 0))]
        head = data.View(ref, queue.r_data)
        index = Signal(plan.index_width)
        last_index = Signal(plan.index_width)
        lookup(m, head.layer, [n - 1 for n in plan.out_features], last_index)
        done = Signal()
        m.d.comb += [done.eq(sine.o.valid & sine.o.ready), queue.r_en.eq(done & (index == last_index))]
        with m.If(done):
            m.d.sync += index.eq(Mux(index == last_index, 0, index + 1))
        out = Signal(data.StructLayout({"index": plan.index_width, "buffer": plan.buffer_width,
                                        "layer": plan.layer_width}))
        m.d.comb += [out.index.eq(index), out.buffer.eq(head.buffer), out.layer.eq(head.layer)]
        return out
