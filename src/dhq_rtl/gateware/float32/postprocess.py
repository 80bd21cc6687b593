"""The float core's post-processing: pre-activations → sines, coordinates → buffers, outputs → pixels.

:class:`FloatPostProcessing` takes the vector arbiter's elements (the same
ports as :class:`~dhq_rtl.gateware.postprocess.PostProcessing`) and turns
each into what the next stage reads::

    element ─┬─ coordinate (vector 0) ───────────────────────────┬─► write (priority)
             ├─ hidden stage: phase t ─► Fp32Sine: sin(2π·t) ─────┘
             └─ output stage: value ─► FloatToPixel ─────────────────► pixels

* hidden stages: :class:`~.sine.Fp32Sine` (``sine_latency`` stages, one
  phase every ``sine_ii`` cycles) behind a queue of ``sine_skid`` elements:
  the only back-pressure of the chain. ``elements.ready`` is a register,
  low while the queue is full (then every element waits); the elements of
  vector 0 (coordinates), which the arbiter cannot hold, are always taken;
* coordinates (vector 0 of a pixel, already float32) go into the
  activation buffers a cycle later (registered); a coordinate write has
  priority, the sine's output then waits a cycle (its ``o.ready``, that
  register);
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
        # A coordinate is registered, then written; the sine's result waits
        # while one is (its ready is that register: no path from the arbiter
        # into the sine's pipeline enable).
        coord_q = Signal(data.StructLayout({"valid": 1, "value": 32, "index": plan.index_width,
                                            "buffer": plan.buffer_width}))
        m.d.sync += [coord_q.valid.eq(coord), coord_q.value.eq(el.value.phase), coord_q.index.eq(el.index),
                     coord_q.buffer.eq(el.buffer)]
        m.submodules.sine = sine = Fp32Sine(latency=plan.sine_latency, ii=plan.sine_ii, dsp=plan.dsp)
        m.d.comb += sine.o.ready.eq(~coord_q.valid)
        head = self._skid(m, sine, el, to_sine)
        out = self._sine_vectors(m, sine, head)
        w = self.write.payload
        with m.If(coord_q.valid):
            m.d.comb += [self.write.valid.eq(1), w.value.eq(coord_q.value), w.index.eq(coord_q.index),
                         w.buffer.eq(coord_q.buffer), w.layer.eq(0)]
        with m.Elif(sine.o.valid):
            m.d.comb += [self.write.valid.eq(1), w.value.eq(sine.o.payload.y), w.index.eq(out.index),
                         w.buffer.eq(out.buffer), w.layer.eq(out.layer)]
        m.d.comb += self.path_done.direct.eq(self.write.valid)

        m.submodules.to_pixel = conv = FloatToPixel(plan.pixel_bits, tag_shape=plan.index_width)
        m.d.comb += [
            conv.i.valid.eq(self.elements.valid & self.elements.ready & to_pixel),
            conv.i.payload.t.eq(el.value.acc),
            conv.i.payload.tag.eq(el.index),
            self.pixels.valid.eq(conv.o.valid),
            self.pixels.payload.value.eq(conv.o.payload.pixel),
            self.pixels.payload.channel.eq(conv.o.payload.tag),
        ]
        return m

    def _skid(self, m, sine, el, to_sine):
        """The sine's input queue (timing: ``elements.ready`` is a register,
        so the arbiter's accumulator queue never waits on the sine's
        pipeline enable combinationally). It holds ``sine_skid`` elements
        (one when the sine takes a phase at most every other cycle, else
        two, for full rate); every element waits while it is full. Returns
        the head element (``value``, ``index``, ``buffer``, ``layer``)."""
        plan = self.plan
        depth = plan.sine_skid
        layout = data.StructLayout({"t": 32, "index": plan.index_width, "buffer": plan.buffer_width,
                                    "layer": plan.layer_width})
        regs = [Signal(layout, name=f"skid{j}") for j in range(depth)]
        count = Signal(range(depth + 1))
        entry = Signal(layout)
        m.d.comb += [entry.t.eq(el.value.acc), entry.index.eq(el.index), entry.buffer.eq(el.buffer),
                     entry.layer.eq(el.layer)]
        push, pop = Signal(), Signal()
        full = Signal()                       # registered: count == depth
        m.d.comb += [
            self.elements.ready.eq(~full),
            push.eq(self.elements.valid & to_sine & ~full),
            sine.i.valid.eq(count != 0),
            sine.i.payload.t.eq(regs[0].t),
            pop.eq(sine.i.valid & sine.i.ready),
        ]
        m.d.sync += [count.eq(count + push - pop), full.eq(count + push - pop == depth)]
        # The queue shifts towards regs[0]; a new element lands behind the others.
        for j in range(depth):
            keep, fill = regs[j + 1] if j + 1 < depth else regs[j], count - pop == j
            with m.If(push & fill):
                m.d.sync += regs[j].eq(entry)
            with m.Elif(pop):
                m.d.sync += regs[j].eq(keep)
        return regs[0]

    def _sine_vectors(self, m, sine, el):
        """Where the sine's results go, without a tag through its pipeline
        (its stages would carry it): a vector's ``(buffer, layer, last
        index)`` enters a queue with its first element (``el``: the element
        entering the sine) and leaves it with its first result, into
        registers that serve the rest of its results; the results of a
        vector leave in order, so their index is counted. Every decision is
        a register (``cont``: the next result continues the current
        vector). Returns ``{index, buffer, layer}`` of the result on
        ``sine.o``."""
        plan = self.plan
        entry_layout = data.StructLayout({"buffer": plan.buffer_width, "layer": plan.layer_width,
                                          "last_index": plan.index_width})
        m.submodules.vectors = queue = FlagFIFO(width=entry_layout.size, depth=plan.sine_vector_depth)
        entry = Signal(entry_layout)
        lookup(m, el.layer, [n - 1 for n in plan.out_features], entry.last_index)
        m.d.comb += [entry.buffer.eq(el.buffer), entry.layer.eq(el.layer), queue.w_data.eq(entry),
                     queue.w_en.eq(sine.i.valid & sine.i.ready & (el.index == 0))]
        head = data.View(entry_layout, queue.r_data)
        cur = Signal(entry_layout)
        cont = Signal()                       # the next result belongs to the vector in cur
        index = Signal(plan.index_width)      # its index
        rem = Signal(plan.index_width)        # results of cur after the next one
        done = Signal()
        m.d.comb += [done.eq(sine.o.valid & sine.o.ready), queue.r_en.eq(done & ~cont)]
        with m.If(done):
            with m.If(cont):
                m.d.sync += [index.eq(index + 1), rem.eq(rem - 1), cont.eq(rem != 0)]
            with m.Else():
                m.d.sync += [cur.eq(head), index.eq(1), rem.eq(head.last_index - 1),
                             cont.eq(head.last_index != 0)]
        out = Signal(data.StructLayout({"index": plan.index_width, "buffer": plan.buffer_width,
                                        "layer": plan.layer_width}))
        m.d.comb += [out.index.eq(Mux(cont, index, 0)), out.buffer.eq(Mux(cont, cur.buffer, head.buffer)),
                     out.layer.eq(Mux(cont, cur.layer, head.layer))]
        return out
