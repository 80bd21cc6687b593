"""The post-processing chain: accumulators (and layer-0 phases) → activations or pixels.

:class:`PostProcessing` takes the vector arbiter's elements, one per cycle at
most, and turns each into what the next layer reads::

    element ─► ChannelScaler ─┬─► (output layer) pixel channel value ──────────────► pixels
               (acc·M+B)≫S    └─► SineLUT ─┬─► (next layer not rotated) ─────────────┬─► write
                                           └─► HadamardButterfly ─► Requantizer ─────┘

* :class:`~.scaler.ChannelScaler` (latency ``4 + ceil_log2(mult_bits + 1)``,
  8 for 8-bit multipliers): ``(acc·M + B) ≫ S``, wrapped to a phase or, for
  the output layer, clamped to a pixel channel. A layer-0 phase (already
  scaled by the running sums) goes through the same arithmetic: layer 0's
  table entries are the identity (``mult = 1, bias = 0``, shift 0), so it
  keeps its place in the stream;
* :class:`~.sine_lut.SineLUT` (latency 2): the table of the layer the
  vector feeds (identical tables stored once, a quarter of each);
* when the next layer is rotated: :class:`~.butterfly.HadamardButterfly`
  (latency ``n − 1 + log2 n``) and :class:`~.requant.ShiftRequantizer`
  (latency 3), then the saturation to the fed layer's ``act_bits``;
  otherwise the table value is the activation.

Every per-layer number (the scaler's shift, which layer is the output, the
table and its kind, rotation, the requantizer's shift and saturation) comes
from the layer descriptors (``desc``, :mod:`.descriptors`), and the scaler's
table and the sine tables have write ports (``scaler_write``,
``table_write``) on the core's configuration bus: the chain runs any model
of the plan's envelope.

Every block runs without back-pressure (``always_ready``): the arbiter
sends a vector into one path only when the other is empty, and the
activation buffers and the pixel queue take every beat. Tags are
:func:`~.core_streams.element_tag_layout` (``index``, ``buffer``,
``layer``) on the table and the requantizer, and
:func:`~.core_streams.vector_ref_layout` on the butterfly (whose output
index is counted afresh, vectors leaving it whole and in order).

Ports: ``elements`` (in), ``write`` (out, activations for the buffers),
``pixels`` (out, ``{value, channel}`` of the output layer), ``path_done``
(out: an element left the direct / rotated path), ``desc``,
``scaler_write``, ``table_write`` (in). Throughput one element
per cycle; latency from an element to its write ``scaler + 2 (+ butterfly +
3)`` cycles.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .butterfly import HadamardButterfly
from .core_streams import (element_layout, element_tag_layout, path_done_signature, pixel_value_layout,
                           scaler_tag_layout, vector_ref_layout, write_layout)
from .descriptors import descriptor_init, descriptor_layout, layer_field
from .lookup import lookup
from .plan import BUTTERFLY_MIN_RAM_DEPTH
from .requant import ShiftRequantizer
from .scaler import ChannelScaler
from .sine_lut import SineLUT

__all__ = ["PostProcessing"]


class PostProcessing(wiring.Component):
    """Scaler → sine table → (butterfly → requantizer) (module docstring)."""

    def __init__(self, plan):
        self.plan = plan
        # The write ports' sizes are the tables' (a fixed model's core has
        # no load sections and never enables them).
        scaler_entries = plan.max_layers << plan.scaler_channel_width
        scaler_bits = plan.scaler_mult_bits + plan.scaler_bias_bits
        table_entries = plan.stored_table_entries * plan.max_tables
        super().__init__({
            "elements": In(stream.Signature(element_layout(plan), always_ready=True)),
            "write": Out(stream.Signature(write_layout(plan), always_ready=True)),
            "pixels": Out(stream.Signature(pixel_value_layout(plan), always_ready=True)),
            "path_done": Out(path_done_signature()),
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
            "scaler_write": In(wiring.Signature({
                "en": Out(1), "addr": Out(range(scaler_entries)), "data": Out(scaler_bits)})),
            "table_write": In(wiring.Signature({
                "en": Out(1), "addr": Out(range(table_entries)), "data": Out(plan.lut_bits)})),
        })

    def elaborate(self, platform):
        m = Module()
        lut_out = self._scale_and_table(m)
        rotated = self._rotated_path(m, lut_out) if self.plan.rot_n else None
        self._merge(m, lut_out, rotated)
        return m

    def _per_layer(self, m, layer, field, shape):
        """The descriptor ``field`` of ``layer`` (combinational)."""
        value = Signal(shape, name=f"{field}_of_layer")
        lookup(m, layer, [layer_field(self.desc.layers[i], field) for i in range(self.plan.max_layers)], value)
        return value

    def _scale_and_table(self, m):
        """Scaler and sine table; returns the table's output stream, the
        direct path's valid and the rotated path's ``(valid of the next
        cycle, valid)`` (registers; without a rotated path, the direct
        valid from the table's output and no rotated valids)."""
        plan = self.plan
        m.submodules.scaler = scaler = ChannelScaler(
            plan.model, acc_width=plan.scaler_acc_bits, tag_shape=scaler_tag_layout(plan), always_ready=True,
            multiplier=plan.scaler_multiplier, dsp=plan.scaler_dsp, loadable=True, layers=plan.max_layers, channel_width=plan.scaler_channel_width,
            mult_bits=plan.scaler_mult_bits, bias_width=plan.scaler_bias_bits, max_shift=plan.envelope.max_shift,
            quarter_fold=True)
        wiring.connect(m, wiring.flipped(self.scaler_write), scaler.write)
        el = self.elements.payload
        m.d.comb += [
            scaler.i.valid.eq(self.elements.valid),
            # A layer-0 phase (zero above its bits) is the accumulator of an
            # identity entry with shift 0.
            scaler.i.payload.acc.eq(el.value.acc),
            scaler.i.payload.layer.eq(el.layer),
            scaler.i.payload.channel.eq(el.index),
            scaler.i.payload.shift.eq(self._per_layer(m, el.layer, "shift", plan.shift_width)),
            scaler.i.payload.output.eq(el.layer == self.desc.last_layer),
            scaler.i.payload.tag.buffer.eq(el.buffer),
            scaler.i.payload.tag.table.eq(self._per_layer(m, el.layer, "table", plan.table_width)),
            scaler.i.payload.tag.complement.eq(self._per_layer(m, el.layer, "complement", 1)),
        ]
        so = scaler.o.payload
        pixel = Signal()
        phase = Signal(plan.phase_bits)
        m.d.comb += [
            pixel.eq(so.layer == self.desc.last_layer),
            phase.eq(so.value[:plan.phase_bits]),
            self.pixels.valid.eq(scaler.o.valid & pixel),
            self.pixels.payload.value.eq(so.value[:plan.pixel_bits]),
            self.pixels.payload.channel.eq(so.channel),
        ]

        m.submodules.lut = lut = SineLUT(plan.tables, plan.lut_bits, quarter_wave=True,
                                         tag_shape=element_tag_layout(plan), always_ready=True,
                                         loadable=True, max_tables=plan.max_tables, folded=True)
        wiring.connect(m, wiring.flipped(self.table_write), lut.write)
        m.d.comb += [
            lut.i.valid.eq(scaler.o.valid & ~pixel),
            lut.i.payload.phase.eq(phase),
            lut.i.payload.sel.eq(so.tag.table),
            lut.i.payload.complement.eq(so.tag.complement),
            lut.i.payload.tag.index.eq(so.channel),
            lut.i.payload.tag.buffer.eq(so.tag.buffer),
            lut.i.payload.tag.layer.eq(so.layer),
        ]
        # Which path the table's output takes, decided at the table's input
        # and delayed alongside it (the table never stalls): each path's
        # valid is a register, and the rotated one is also known a cycle
        # ahead (the butterfly's ``i_valid_next``).
        if not plan.rot_n:
            return lut.o, lut.o.valid & ~self._per_layer(m, lut.o.payload.tag.layer, "next_rotated", 1), None
        to_rotated = self._per_layer(m, so.layer, "next_rotated", 1)
        direct = [lut.i.valid & ~to_rotated]
        rotated = [lut.i.valid & to_rotated]
        for k in range(1, lut.latency + 1):
            direct.append(Signal(name=f"direct_valid_{k}"))
            rotated.append(Signal(name=f"rotated_valid_{k}"))
            m.d.sync += [direct[k].eq(direct[k - 1]), rotated[k].eq(rotated[k - 1])]
        return lut.o, direct[-1], rotated[-2:]

    def _rotated_path(self, m, lut_out):
        """Butterfly (when the rotated width is ≥ 2), requantizer and the
        per-layer saturation; returns the requantized stream's valid and
        ``{value, index, buffer, layer}``."""
        plan = self.plan
        lut_o, _, (bf_valid_next, bf_valid) = lut_out
        bf_in = Signal(vector_ref_layout(plan))
        m.d.comb += [bf_in.buffer.eq(lut_o.payload.tag.buffer), bf_in.layer.eq(lut_o.payload.tag.layer)]
        if plan.rot_n >= 2:
            m.submodules.butterfly = bf = HadamardButterfly(plan.rot_n, plan.lut_bits,
                                                            tag_shape=vector_ref_layout(plan),
                                                            min_ram_depth=BUTTERFLY_MIN_RAM_DEPTH,
                                                            always_ready=True)
            m.d.comb += [bf.i.valid.eq(bf_valid), bf.i_valid_next.eq(bf_valid_next),
                         bf.i.payload.data.eq(lut_o.payload.data), bf.i.payload.tag.eq(bf_in)]
            bo_valid, bo_data, bo_tag, bo_width = bf.o.valid, bf.o.payload.data, bf.o.payload.tag, bf.out_width
        else:
            bo_valid, bo_data, bo_tag, bo_width = bf_valid, lut_o.payload.data, bf_in, plan.lut_bits
        # The butterfly's output vectors leave whole and in order: count their index.
        bo_index = Signal(plan.index_width)
        with m.If(bo_valid):
            m.d.sync += bo_index.eq(Mux(bo_index == plan.rot_n - 1, 0, bo_index + 1))
        m.submodules.requant = rq = ShiftRequantizer(bo_width, plan.requant_bits, plan.envelope.max_req_shift,
                                                     tag_shape=element_tag_layout(plan), always_ready=True)
        m.d.comb += [
            rq.i.valid.eq(bo_valid), rq.i.payload.data.eq(bo_data),
            rq.i.payload.shift.eq(self._per_layer(m, bo_tag.layer, "req_shift", plan.req_shift_width)),
            rq.i.payload.tag.index.eq(bo_index), rq.i.payload.tag.buffer.eq(bo_tag.buffer),
            rq.i.payload.tag.layer.eq(bo_tag.layer),
        ]
        # Per-layer saturation (the fed layer's act_bits, from its descriptor).
        q = Signal(signed(plan.act_bits))
        d = rq.o.payload.data
        limit = self._per_layer(m, rq.o.payload.tag.layer, "act_limit", plan.act_bits)
        m.d.comb += q.eq(Mux(d > limit, limit, Mux(d < -limit, -limit, d)))
        return rq.o.valid, q, rq.o.payload.tag

    def _merge(self, m, lut_out, rotated):
        """The direct path's and the rotated path's elements into ``write``
        (never both in one cycle: the arbiter keeps one path empty)."""
        lut_o, direct_valid, _ = lut_out
        w = self.write.payload
        with m.If(direct_valid):
            tag = lut_o.payload.tag
            m.d.comb += [self.write.valid.eq(1), w.value.eq(lut_o.payload.data), w.index.eq(tag.index),
                         w.buffer.eq(tag.buffer), w.layer.eq(tag.layer), self.path_done.direct.eq(1)]
        if rotated is not None:
            rq_valid, q, tag = rotated
            with m.Elif(rq_valid):
                m.d.comb += [self.write.valid.eq(1), w.value.eq(q), w.index.eq(tag.index),
                             w.buffer.eq(tag.buffer), w.layer.eq(tag.layer), self.path_done.rotated.eq(1)]
