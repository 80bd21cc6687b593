"""Per-channel scaler: accumulator → sine-table phase or pixel value.

:class:`ChannelScaler` is the gateware twin of
:func:`dhq_rtl.fixedpoint.phase_scale` (sine layers) and
:func:`dhq_rtl.fixedpoint.output_scale` (the output layer)::

    t = acc * mult[l][k] + bias[l][k]
    hidden layer l:  value = (t >> shift[l]) mod 2**phase_bits
    output layer:    value = clamp(t >> shift[l], 0, 2**pixel_bits - 1)

(``>>`` is the arithmetic, flooring shift). ``mult``/``bias`` are tables per
(layer, channel) read from the model image; ``shift`` is a constant per layer.
Each input beat names its ``layer`` and ``channel``.

Pipeline (one result per cycle; a stalled output stalls the whole pipeline,
``i.ready = ~o.valid | o.ready``):

1. table read: ``{mult, bias}`` at address ``Cat(channel, layer)`` from a
   ``lib.memory.Memory`` ROM (EBR on iCE40 unless ``table_memory="logic"``);
2. products: ``multiplier="logic"``: the ``mult_bits`` shift-add partial
   products ``mult[i] ? acc << i : 0`` (no DSP); ``"dsp"``: the products of
   the operands' 16-bit pieces (:func:`dsp_pieces`: the accumulator's
   pieces, the top one signed, times the multiplier's; two for a 17…32-bit
   accumulator), each a registered ``*`` (``dsp="generic"``) or an explicit
   ``SB_MAC16`` in 16×16 mode with its output register (``dsp="ice40"``,
   :func:`~.ice40_dsp.mul16x16`: the iCE40 builds infer no DSP);
3. registered adder tree over the partial products (shifted to their
   pieces' offsets) and the bias (``ceil_log2(items)`` levels:
   ``mult_bits + 1`` items for ``"logic"``, the pieces + 1 for ``"dsp"``);
4. per-layer constant shift;
5. wrap to ``phase_bits`` or clamp to ``pixel_bits``, into the output register.

Latency: :attr:`latency` cycles from input to output beat
(``4 + ceil_log2(items)``: 7 for an 8-bit ``"logic"`` multiplier, 6 for a
``"dsp"`` one with a 17…32-bit accumulator).
Throughput: one beat per cycle.

Widths: ``acc`` is ``signed(acc_width)`` (default: the widest
``ModelImage.accumulator_bits`` over the layers); ``t`` has the exact width
of ``[acc_min·M + B_min, acc_max·M + B_max]`` for the largest table
multiplier ``M`` and bias range, so nothing can overflow for any
``acc_width``-bit input.

Payloads:

* ``i.payload = {"acc": signed(acc_width), "layer": unsigned(layer_width),
  "channel": unsigned(channel_width)[, "tag": tag_shape]}``;
* ``o.payload = {"value": unsigned(value_width), "layer", "channel"[, "tag"]}``
  with ``value_width = max(phase_bits, pixel_bits)``; layer, channel and tag
  pass through. A ``(layer, channel)`` outside the model gives an undefined
  value.

With ``always_ready=True`` both streams are ``always_ready`` (no
back-pressure, no stall enable), for a consumer that takes every beat.

Loadable (``loadable=True``, what the core uses): layer 0's entries are
the identity (``mult = 1, bias = 0``: the core's layer-0 phases, already
made by the running sums, pass through unchanged with shift 0); the table has a write port
(``write``: ``en``, ``addr = Cat(channel, layer)``, ``data = Cat(mult,
bias)``; the model's tables are its initial contents) and each input beat
carries its layer's ``shift`` and whether it is the ``output`` layer (the
core reads both from its layer descriptors), so the same hardware scales any
model whose numbers fit the widths given: ``layers`` table rows of
``2**channel_width`` channels, ``mult_bits``-bit multipliers,
``bias_width``-bit biases, shifts up to ``max_shift`` (a barrel shifter
instead of the constant shifts: the shift's even part in stage 4, its last
bit in stage 5). Latency and throughput are the same.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..fixedpoint import output_scale, phase_scale, signed_bits
from ..model_image import ModelImage
from . import ice40_dsp
from .args import check_bool, check_int, check_tag_shape
from .layouts import tag_width, tagged_layout
from .ram import memory_attrs, read_port

__all__ = ["ChannelScaler", "scaler_in_layout", "scaler_out_layout", "scaler_reference", "scaler_table_words",
           "dsp_pieces"]

MULTIPLIER_KINDS = ("logic", "dsp")
TABLE_KINDS = ("bram", "logic")
#: What multiplies a ``"dsp"`` scaler's pieces: a registered ``*`` or an
#: explicit iCE40 ``SB_MAC16``.
DSP_KINDS = ("generic", "ice40")
#: Width of one piece (the 16×16 mode of ``SB_MAC16``).
PIECE_BITS = ice40_dsp.MAX_SINGLE_BITS


def _any_bits(value, start, stop):
    """OR of ``value[start:stop]`` (0 for an empty range)."""
    return value[start:stop].any() if stop > start else Const(0, 1)


def dsp_pieces(acc_width, mult_bits):
    """The 16×16 products of a ``"dsp"`` scaler: ``[(acc_offset, acc_width,
    acc_signed, mult_offset, mult_width), …]`` — the signed accumulator cut
    into 16-bit pieces from the LSB (only the top piece signed) times the
    unsigned multiplier's pieces. Their sum, each shifted by its two
    offsets, is ``acc · mult``; one ``SB_MAC16`` each on iCE40."""
    acc = [(o, min(PIECE_BITS, acc_width - o)) for o in range(0, acc_width, PIECE_BITS)]
    mult = [(o, min(PIECE_BITS, mult_bits - o)) for o in range(0, mult_bits, PIECE_BITS)]
    return [(ao, aw, ao + aw == acc_width, mo, mw) for ao, aw in acc for mo, mw in mult]


def scaler_in_layout(acc_width, layer_width, channel_width, tag_shape=0):
    return tagged_layout({"acc": signed(acc_width), "layer": unsigned(layer_width),
                          "channel": unsigned(channel_width)}, tag_shape)


def scaler_out_layout(value_width, layer_width, channel_width, tag_shape=0):
    return tagged_layout({"value": unsigned(value_width), "layer": unsigned(layer_width),
                          "channel": unsigned(channel_width)}, tag_shape)


def scaler_reference(model, layer, channel, acc):
    """Numpy twin: the ``value`` for accumulators ``acc`` of ``(layer, channel)``."""
    L = model.layers[layer]
    acc = np.asarray(acc, dtype=np.int64)
    channel = np.asarray(channel)
    if layer == len(model.layers) - 1:
        return output_scale(acc, L.mult[channel], L.bias[channel], L.shift, model.pixel_bits)
    return phase_scale(acc, L.mult[channel], L.bias[channel], L.shift, model.phase_bits)


def scaler_table_words(model, depth, channel_width, mult_bits, bias_width, *, first_identity=False):
    """The table's words for ``model``: ``Cat(mult, bias)`` (``mult_bits`` +
    ``bias_width`` bits, the bias two's complement) at address
    ``Cat(channel, layer)``; ``depth`` words, unused ones 0. With
    ``first_identity`` layer 0's entries are ``mult = 1, bias = 0`` (a value
    passes unchanged with shift 0: how the core sends layer 0's phases,
    made by the running sums, through the scaler)."""
    words = [0] * depth
    for li, L in enumerate(model.layers):
        for k in range(L.out_features):
            if li == 0 and first_identity:
                mult, bias = 1, 0
            else:
                mult, bias = int(L.mult[k]), int(L.bias[k])
            word = (mult & ((1 << mult_bits) - 1)) | ((bias & ((1 << bias_width) - 1)) << mult_bits)
            words[(li << channel_width) | k] = word
    return words


class ChannelScaler(wiring.Component):
    """Pipelined per-(layer, channel) ``acc·mult + bias``, shift, wrap/clamp.

    Parameters
    ----------
    model : ModelImage
        Source of the tables (every layer: ``mult``, ``bias``, ``shift``),
        ``phase_bits`` and ``pixel_bits``.
    acc_width : int or None
        Input accumulator width; default ``max(model.accumulator_bits(i))``.
    tag_shape : int or shape
        Shape of the pass-through ``tag`` field (an integer width, 0: none,
        or e.g. a ``data.StructLayout``).
    multiplier : ``"logic"`` (shift-add in LUTs) or ``"dsp"`` (16×16 pieces).
    dsp : what multiplies a ``"dsp"`` scaler's pieces: ``"generic"`` (a
        registered ``*``, any simulator) or ``"ice40"`` (``SB_MAC16``
        instances); the same values and cycles.
    table_memory : ``"bram"`` (Yosys ``ram_style = "block"``: EBR on iCE40,
        ``ceil((mult_bits + bias_width) / 16)`` blocks for up to 256 entries)
        or ``"logic"`` (Yosys decides; a small table becomes LUTs).
    always_ready : bool
        Streams without back-pressure (see the module docstring).
    loadable : bool
        Table write port, per-beat shift and output flag (module docstring).
    layers, channel_width, mult_bits, bias_width, max_shift : int or None
        The loadable scaler's sizes (default: the model's; at least those).
    quarter_fold : bool
        A sine layer's value comes out with its low ``phase_bits − 2`` bits
        inverted when bit ``phase_bits − 2`` is set: the quarter-wave mirror
        of a :class:`~.sine_lut.SineLUT` built with ``folded=True``, done in
        the output stage so that the table's read address is a register.
        The output layer's value is unchanged.
    """

    def __init__(self, model, *, acc_width=None, tag_shape=0, multiplier="logic", dsp="generic",
                 table_memory="bram", always_ready=False, loadable=False, layers=None, channel_width=None,
                 mult_bits=None, bias_width=None, max_shift=None, quarter_fold=False):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, not {type(model).__name__}")
        check_bool("quarter_fold", quarter_fold)
        if quarter_fold and model.phase_bits < 2:
            raise ValueError(f"quarter_fold needs phases of at least 2 bits, got {model.phase_bits}")
        self.quarter_fold = quarter_fold
        model.validate()
        if not isinstance(multiplier, str) or multiplier not in MULTIPLIER_KINDS:
            raise ValueError(f"multiplier must be one of {MULTIPLIER_KINDS}, got {multiplier!r}")
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        self.dsp = dsp
        if not isinstance(table_memory, str) or table_memory not in TABLE_KINDS:
            raise ValueError(f"table_memory must be one of {TABLE_KINDS}, got {table_memory!r}")
        self.table_memory = table_memory
        n = len(model.layers)
        min_acc = max(model.accumulator_bits(i) for i in range(n))
        if acc_width is None:
            acc_width = min_acc
        check_int("acc_width", acc_width, 2, 64)
        tag_shape = check_tag_shape(tag_shape)
        check_bool("always_ready", always_ready)
        self.model = model
        self.acc_width = acc_width
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.always_ready = always_ready
        self.multiplier = multiplier
        check_bool("loadable", loadable)
        self.loadable = loadable
        own = dict(layers=n, channel_width=max(1, ceil_log2(max(l.out_features for l in model.layers))),
                   mult_bits=max(l.mult_bits for l in model.layers),
                   bias_width=signed_bits(min(min(int(l.bias.min()) for l in model.layers), 0),
                                          max(max(int(l.bias.max()) for l in model.layers), 0)),
                   max_shift=max(l.shift for l in model.layers))
        given = dict(layers=layers, channel_width=channel_width, mult_bits=mult_bits, bias_width=bias_width,
                     max_shift=max_shift)
        for name, v in given.items():
            if v is not None:
                if not loadable:
                    raise ValueError(f"{name} is a parameter of a loadable scaler (loadable=True)")
                # At least 1; the caller (the core's plan) makes sure that the
                # layers it scales fit (layer 0's entries are never read there).
                check_int(name, v, 1 if name != "max_shift" else 0, 64)
                own[name] = v
        self.n_layers = own["layers"]
        self.layer_width = max(1, ceil_log2(self.n_layers))
        self.channel_width = own["channel_width"]
        self.mult_bits = own["mult_bits"]
        self.bias_width = own["bias_width"]
        self.max_shift = own["max_shift"]
        self.shift_width = max(1, self.max_shift.bit_length())
        self.value_width = max(model.phase_bits, model.pixel_bits)
        if loadable:
            mmax = (1 << self.mult_bits) - 1
            bmin, bmax = -(1 << (self.bias_width - 1)), (1 << (self.bias_width - 1)) - 1
        else:
            mmax = max(int(l.mult.max()) for l in model.layers)
            bmin = min(int(l.bias.min()) for l in model.layers)
            bmax = max(int(l.bias.max()) for l in model.layers)
        alo, ahi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
        self.t_width = signed_bits(min(alo * mmax, 0) + min(bmin, 0), max(ahi * mmax, 0) + max(bmax, 0))
        if self.t_width > 96:
            raise ValueError(f"acc·mult + bias needs {self.t_width} bits; acc_width {acc_width} is too wide")
        if multiplier == "dsp" and self.mult_bits > 2 * PIECE_BITS:
            raise ValueError(f"a dsp scaler takes multipliers of at most {2 * PIECE_BITS} bits, "
                             f"got {self.mult_bits}")
        self.pieces = dsp_pieces(acc_width, self.mult_bits) if multiplier == "dsp" else []
        n_items = (self.mult_bits if multiplier == "logic" else len(self.pieces)) + 1
        self.tree_levels = ceil_log2(n_items)
        self.latency = 3 + self.tree_levels + 1
        in_layout = scaler_in_layout(acc_width, self.layer_width, self.channel_width, tag_shape)
        members = {
            "i": In(stream.Signature(in_layout if not loadable else data.StructLayout(
                {**{k: f.shape for k, f in in_layout}, "shift": unsigned(self.shift_width), "output": unsigned(1)}),
                always_ready=always_ready)),
            "o": Out(stream.Signature(scaler_out_layout(self.value_width, self.layer_width,
                                                        self.channel_width, tag_shape),
                                      always_ready=always_ready)),
        }
        if loadable:
            members["write"] = In(wiring.Signature({
                "en": Out(1), "addr": Out(self.layer_width + self.channel_width),
                "data": Out(self.mult_bits + self.bias_width)}))
        super().__init__(members)

    def _table(self):
        depth = self.n_layers << self.channel_width
        return depth, scaler_table_words(self.model, depth, self.channel_width, self.mult_bits, self.bias_width,
                                         first_identity=self.loadable)

    def elaborate(self, platform):
        m = Module()
        mb, bw, tw = self.mult_bits, self.bias_width, self.t_width
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        if not self.always_ready:
            m.d.comb += self.i.ready.eq(en)

        depth, words = self._table()
        # (A loadable table is written only while no region is rendered: no
        # read meets a write.)
        m.submodules.table = mem = memory.Memory(
            shape=unsigned(mb + bw), depth=depth, init=words,
            attrs=memory_attrs(block_ram=self.table_memory == "bram"))
        if self.loadable:
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(self.write.en), wr.addr.eq(self.write.addr), wr.data.eq(self.write.data)]
        rd = read_port(m, mem, platform)
        m.d.comb += [rd.addr.eq(Cat(self.i.payload.channel, self.i.payload.layer)), rd.en.eq(en)]

        ctl_layout = data.StructLayout({"valid": 1, "layer": unsigned(self.layer_width),
                                        "channel": unsigned(self.channel_width),
                                        "tag": unsigned(self.tag_width),
                                        "shift": unsigned(self.shift_width), "output": 1})

        def stage(prev, name):
            c = Signal(ctl_layout, name=name)
            with m.If(en):
                m.d.sync += c.eq(prev)
            return c

        ctl0 = Signal(ctl_layout)
        m.d.comb += [ctl0.valid.eq(self.i.valid), ctl0.layer.eq(self.i.payload.layer),
                     ctl0.channel.eq(self.i.payload.channel)]
        if self.loadable:
            m.d.comb += [ctl0.shift.eq(self.i.payload.shift), ctl0.output.eq(self.i.payload.output)]
        else:
            m.d.comb += ctl0.output.eq(self.i.payload.layer == len(self.model.layers) - 1)
        if self.tag_width:
            m.d.comb += ctl0.tag.eq(self.i.payload.tag)

        # 1: table read; the accumulator waits beside it.
        ctl = stage(ctl0, "ctl_table")
        acc1 = Signal(signed(self.acc_width))
        with m.If(en):
            m.d.sync += acc1.eq(self.i.payload.acc)
        mult = rd.data[:mb]
        bias = rd.data[mb:].as_signed()

        # 2: partial products (or the product) and the bias, registered.
        items = []
        if self.multiplier == "logic":
            for b in range(mb):
                pp = Signal(signed(self.acc_width + b + 1), name=f"pp{b}")
                with m.If(en):
                    m.d.sync += pp.eq(Mux(mult[b], acc1 << b, 0))
                items.append(pp)
        else:
            items += self._piece_products(m, acc1, mult, en)
        b2 = Signal(signed(bw), name="bias2")
        with m.If(en):
            m.d.sync += b2.eq(bias)
        items.append(b2)
        ctl = stage(ctl, "ctl_prod")

        # 3: adder tree, one register per level; widths capped at t_width (exact).
        for t in range(self.tree_levels):
            nxt = []
            for j in range(0, len(items), 2):
                width = min(tw, max(len(x) for x in items[j:j + 2]) + 1)
                s = Signal(signed(width), name=f"sum{t}_{j // 2}")
                with m.If(en):
                    m.d.sync += s.eq(items[j] + items[j + 1] if j + 1 < len(items) else items[j])
                nxt.append(s)
            items = nxt
            ctl = stage(ctl, f"ctl_tree{t}")
        total = items[0]

        shifted = self._shift(m, en, total, ctl)
        ctl = stage(ctl, "ctl_shift")
        self._output(m, en, shifted, ctl)
        return m

    def _shift(self, m, en, total, ctl):
        """Stage 4; returns the shifted sum (registered)."""
        tw = self.t_width
        # Per-layer constant shift (arithmetic, flooring). The loadable
        # scaler's barrel shifter shifts by the even part of the shift here
        # and by its last bit in stage 5 (timing: one multiplexer level less
        # behind the shift register; floor(floor(t / 2**a) / 2**b) is
        # floor(t / 2**(a + b))).
        shifted = Signal(signed(tw), name="shifted")
        with m.If(en):
            if self.loadable:
                m.d.sync += shifted.eq(total >> Cat(0, ctl.shift[1:]))
            else:
                with m.Switch(ctl.layer):
                    for li, L in enumerate(self.model.layers):
                        with m.Case(li):
                            m.d.sync += shifted.eq(total >> L.shift)
        return shifted

    def _output(self, m, en, shifted, ctl):
        """Stage 5: the output register."""
        tw = self.t_width
        # Wrap (sine layers) or clamp (output layer).
        pb = self.model.pixel_bits
        pmax = (1 << pb) - 1
        # Clamp with the sign and an OR of the bits above the pixel's, not a
        # comparison (a carry chain as long as the sum: the fixed-model
        # build's critical path).
        negative = shifted[-1]
        above = _any_bits(shifted, pb, tw - 1)
        if self.loadable:
            # The last bit of the shift: the OR reads ``shifted`` itself, not
            # the shifted-by-one mux (one LUT level less). Shifted by one, the
            # bits above the pixel's are shifted[pb + 1:], the sign included,
            # which is 0 wherever ``above`` matters (not negative).
            shift_last = ctl.shift[0]
            above = _any_bits(shifted, pb + 1, tw - 1) | (~shift_last & _any_bits(shifted, pb, pb + 1))
            last = Signal(signed(tw), name="shifted_last")
            m.d.comb += last.eq(Mux(shift_last, shifted >> 1, shifted))
            shifted = last
        clamped = Mux(negative, 0, Mux(above, pmax, shifted[:pb]))
        k = self.model.phase_bits
        phase = shifted[:k]
        if self.quarter_fold and k > 2:
            phase = Cat(shifted[:k - 2] ^ shifted[k - 2].replicate(k - 2), shifted[k - 2:k])
        with m.If(en):
            m.d.sync += [
                self.o.valid.eq(ctl.valid),
                self.o.payload.value.eq(Mux(ctl.output, clamped, phase)),
                self.o.payload.layer.eq(ctl.layer),
                self.o.payload.channel.eq(ctl.channel),
            ]
            if self.tag_width:
                m.d.sync += self.o.payload.tag.eq(ctl.tag)

    def _piece_products(self, m, acc, mult, en):
        """The registered 16×16 piece products, each shifted to its place."""
        out = []
        for n, (ao, aw, a_signed, mo, mw) in enumerate(self.pieces):
            a = acc[ao:ao + aw]
            a = a.as_signed() if a_signed else a.as_unsigned()
            b = mult[mo:mo + mw]
            width = aw + mw
            if self.dsp == "ice40":
                o = ice40_dsp.mul16x16(m, a, b, ce=en, name=f"piece{n}", signed=a_signed, b_signed=False)
                p = o[:width].as_signed() if a_signed else o[:width]
            else:
                p = Signal(signed(width) if a_signed else unsigned(width), name=f"piece{n}")
                with m.If(en):
                    m.d.sync += p.eq(a * b)
            out.append(p << (ao + mo) if ao + mo else p)
        return out
