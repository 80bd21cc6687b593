"""Input-parallel multiply-accumulate array.

:class:`MacArray` computes dot products ``acc = Σ_j q[j]·W[k, j]`` over
weights held in on-chip memory, ``lanes`` products per cycle. It is
*input-parallel*: one input beat carries ``lanes`` activations and the
address of the memory word holding the matching ``lanes`` weights; the block
multiplies lane by lane, sums the products with a pipelined adder tree and
accumulates across beats. A beat with ``first`` set starts a new sum, a beat
with ``last`` set emits it. So a dot product of length ``n`` takes
``ceil(n / lanes)`` beats, whatever the number of output channels (an output
layer with one channel keeps every lane busy as well as a hidden layer).

:func:`layer_weight_rows` lays a layer's weight matrix out in that order.

Numpy twin (per emitted sum, wrapped to ``acc_width`` bits two's complement)::

    acc = wrap(Σ_beats Σ_lanes act[beat, lane] * weights[addr[beat], lane], acc_width)

With ``acc_width = ModelImage.accumulator_bits(i)`` and activations inside
the model's range the wrap never happens (the bound is proved for every
partial sum, since each is a sub-sum of ``Σ|W|·max|q|``).

Pipeline (every register advances together; a stalled output stalls the
whole pipeline, ``i.ready = ~o.valid | o.ready``):

1. weight memory read (synchronous read port of a ``lib.memory.Memory``);
2. ``lanes`` products, registered (``*``, shift-and-add in logic, or
   ``SB_MAC16`` registers);
3. ``ceil(log2(lanes))`` registered adder-tree levels;
4. accumulate; on ``last``, the sum goes to the output register.

Latency: ``3 + ceil(log2(lanes))`` cycles from the ``last`` beat being
accepted to ``o.valid`` (7 for 16 lanes). Throughput: one beat (``lanes``
MACs) per cycle, sustained.

Widths: activations ``signed(act_bits)``, weights ``signed(weight_bits)``,
products ``signed(act_bits + weight_bits)`` (exact), tree level ``t`` adds one
bit, accumulator and output ``signed(acc_width)``.

Payloads:

* ``i.payload``: ``{"act": ArrayLayout(signed(act_bits), lanes),
  "addr": unsigned(addr_width), "first": 1, "last": 1[, "tag":
  tag_shape]}`` with ``addr_width = max(1, ceil_log2(depth))``;
* ``o.payload``: ``{"acc": signed(acc_width)[, "tag": tag_shape]}``;
  the tag is the one of the ``last`` beat.

``always_ready=True`` is for a consumer that takes every output beat (the
core, whose accumulator queue reserves room before a dot product is
issued): both streams are then ``always_ready`` (``ready`` is the constant
1) and the pipeline has no stall enable.

A beat with neither ``first`` nor a preceding open sum adds to whatever the
accumulator holds (after reset: 0).

``dsp``:

* ``"generic"``: products with ``*`` (simulates anywhere; on iCE40 with
  ``synth_ice40 -dsp`` Yosys maps each multiply to one whole ``SB_MAC16``);
* ``"ice40"``: explicit ``SB_MAC16`` instances: lanes are paired into one DSP
  in dual 8×8 mode when ``act_bits ≤ 8`` and ``weight_bits ≤ 8`` (``ceil(lanes
  / 2)`` DSPs), otherwise one 16×16 DSP per lane (operands ≤ 16 bits). Not
  simulatable by Amaranth's simulator; verified against Yosys's
  ``cells_sim.v`` model with Verilator (``tests/test_mac.py``). Synthesize
  them without ``synth_ice40 -dsp`` (its ``ice40_dsp`` pass rewrites every
  ``SB_MAC16``: :func:`dhq_rtl.synthesis.ice40_synth`);
* ``"fabric"``: products in logic, no multiplier for synthesis to map to a
  DSP: each lane's product is the sum of ``weight_bits`` partial products
  (the activation ANDed with weight bit ``i``, shifted by ``i``; the sign
  bits' terms subtracted, two's complement, as inverted bits plus one
  constant: :func:`fabric_product`), added in a balanced tree of
  ``weight_bits − 1`` adders per lane (``act_bits + 1`` bits at the first
  level, wider at each level up, none wider than the product) and
  registered like the ``"generic"`` product. Same latency and pipeline, the
  same results bit for bit; the RTLIL has adders and no ``$mul`` cell
  (``tests/test_mac.py``).
  Cost per lane: those adders, no DSP (ECP5 LUTs per lane:
  :func:`dhq_rtl.estimate.fabric_product_luts`, calibrated on
  ``synth_ecp5`` with ``bench/fabric_products.py``).

``weight_memory``: ``"bram"`` (a ``lib.memory.Memory`` with the weights as
its initial contents; on iCE40 it lands in ``SB_RAM40_4K`` EBR,
``ceil(lanes·weight_bits / 16)`` blocks wide and ``ceil(depth / 256)``
deep) or ``"external"`` (the memory is outside the block, e.g. the
iCE40UP5K's SPRAMs: the ``weight_read`` port gives its ``addr`` and ``en``
and takes the row on ``data`` the cycle after, as a synchronous read port
does; ``weights`` then only sizes the address).

``writable=True`` gives the weight memory a write port (``write``: ``en``,
``addr``, ``data`` = the row's ``lanes`` weights, lane ``l`` in bits
``[l·weight_bits, (l+1)·weight_bits)``): the core's load path replaces the
weights of a loaded model; a write lands at the next clock edge.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from . import ice40_dsp
from .args import check_bool, check_int, check_tag_shape
from .layouts import tag_width, tagged_layout
from .ram import memory_attrs, read_port

__all__ = ["MacArray", "fabric_product", "mac_in_layout", "mac_out_layout", "layer_weight_rows", "weight_words",
           "mac_reference", "DSP_KINDS"]

#: How the products are made: ``*`` (``"generic"``), ``SB_MAC16`` instances
#: (``"ice40"``) or shift-and-add in logic (``"fabric"``).
DSP_KINDS = ("generic", "ice40", "fabric")
MEMORY_KINDS = ("bram", "external")


def mac_in_layout(lanes, act_bits, addr_width, tag_shape=0):
    return tagged_layout({"act": data.ArrayLayout(signed(act_bits), lanes), "addr": unsigned(addr_width),
                          "first": unsigned(1), "last": unsigned(1)}, tag_shape)


def mac_out_layout(acc_width, tag_shape=0):
    return tagged_layout({"acc": signed(acc_width)}, tag_shape)


def layer_weight_rows(weight, lanes):
    """Lay a weight matrix ``(out_features, in_features)`` out as memory words.

    Returns ``(rows, beats)``: ``rows`` has shape ``(out_features · beats,
    lanes)`` with ``beats = ceil(in_features / lanes)``; output channel ``k``'s
    dot product reads addresses ``k·beats … k·beats + beats − 1``, beat ``c``
    covering inputs ``c·lanes … c·lanes + lanes − 1`` (zero-padded past
    ``in_features``; the matching activations may be anything).
    """
    weight = np.asarray(weight, dtype=np.int64)
    if weight.ndim != 2:
        raise ValueError(f"weight must be a 2-D matrix, got shape {weight.shape}")
    n_out, n_in = weight.shape
    beats = -(-n_in // lanes)
    padded = np.zeros((n_out, beats * lanes), dtype=np.int64)
    padded[:, :n_in] = weight
    return padded.reshape(n_out * beats, lanes), beats


def weight_words(rows, weight_bits):
    """The memory words of weight ``rows`` (``(depth, lanes)``): lane ``l`` in
    bits ``[l·weight_bits, (l+1)·weight_bits)``, two's complement."""
    mask = (1 << weight_bits) - 1
    words = []
    for row in np.asarray(rows, dtype=np.int64):
        word = 0
        for lane, v in enumerate(row):
            word |= (int(v) & mask) << (lane * weight_bits)
        words.append(word)
    return words


def mac_reference(weights, beats, acc_width):
    """Numpy twin: the sums :class:`MacArray` emits for the beat sequence
    ``beats`` (dicts with ``act``, ``addr``, ``first``, ``last``), wrapped to
    ``acc_width`` bits. Returns a list of ``int``, one per ``last`` beat."""
    weights = np.asarray(weights, dtype=np.int64)
    out, acc = [], 0
    for b in beats:
        s = int(np.dot(np.asarray(b["act"], dtype=np.int64), weights[b["addr"]]))
        acc = (0 if b["first"] else acc) + s
        acc = _wrap(acc, acc_width)
        if b["last"]:
            out.append(acc)
    return out


def fabric_product(act, weight):
    """``act · weight`` (signed values of ``n`` and ``m`` bits) with adders
    only, exact in ``n + m`` bits (two's complement).

    Shift-and-add: row ``j`` is the activation's bits ANDed with weight bit
    ``j``, shifted by ``j``. In two's complement the sign bits weigh
    ``−2^(n−1)`` and ``−2^(m−1)``, so the bits ``a[n−1]·w[j]`` (``j < m−1``)
    and ``a[i]·w[m−1]`` (``i < n−1``) are subtracted (``a[n−1]·w[m−1]``,
    twice negative, is added). Each subtracted bit ``x`` is written
    ``¬x − 1`` and the ``−1`` s add up to the constant
    ``2^(n+m−1) + 2^(n−1) + 2^(m−1)`` (mod ``2^(n+m)``; Baugh–Wooley): every
    row is then an unsigned ``n``-bit value, no sign extension, and each
    adder of the balanced tree is only as wide as the rows it adds (``m −
    1`` adders; one more for the constant when ``n ≠ m``, otherwise it
    fills free bits of rows ``0`` and ``m − 1``).
    """
    n, m = len(act), len(weight)
    width = n + m
    rows = []
    for j in range(m):
        bits = [act[i] & weight[j] for i in range(n)]
        if j < m - 1:
            bits[n - 1] = ~bits[n - 1]
        else:
            bits[:n - 1] = [~b for b in bits[:n - 1]]
        rows.append([bits, j])
    rows[-1][0].append(Const(1, 1))             # 2^(n+m−1): bit n of row m−1
    extra = []
    if n == m:
        rows[0][0].append(Const(1, 1))          # 2^(n−1) + 2^(m−1) = 2^n: bit n of row 0
    else:
        extra.append((Const((1 << (n - 1)) + (1 << (m - 1)), width), 0))
    terms = [(Cat(*bits), offset) for bits, offset in rows] + extra
    while len(terms) > 1:
        terms = [_add_at(terms[j], terms[j + 1], width) if j + 1 < len(terms) else terms[j]
                 for j in range(0, len(terms), 2)]
    value, offset = terms[0]
    return Cat(Const(0, offset), value)[:width].as_signed() if offset else value[:width].as_signed()


def _add_at(x, y, width):
    """The sum of two unsigned terms ``(value, offset)`` (worth ``value ·
    2^offset``), cut to ``width`` bits: the bits of the lower term below the
    other's offset pass by the adder."""
    (xv, xo), (yv, yo) = sorted((x, y), key=lambda t: t[1])
    d = yo - xo
    if d >= len(xv):        # no overlap
        value = Cat(xv, Const(0, d - len(xv)), yv)
    else:
        value = Cat(xv[:d], xv[d:] + yv)
    return value[:max(1, width - xo)], xo


def _wrap(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class MacArray(wiring.Component):
    """``lanes``-wide pipelined multiply-accumulate over weights in memory.

    Parameters
    ----------
    weights : array of int, shape ``(depth, lanes)``
        Memory contents: word ``a`` holds the ``lanes`` signed weights read
        for an input beat with ``addr = a`` (see :func:`layer_weight_rows`).
    act_bits, weight_bits : int
        Signed widths of activations and weights (2…16 for ``"ice40"``, 2…32
        otherwise). Weights must fit ``signed(weight_bits)``.
    acc_width : int
        Accumulator / output width (use ``ModelImage.accumulator_bits``).
    tag_shape : int or shape
        Shape of the pass-through ``tag`` field (an integer width, 0: no
        field, or e.g. a ``data.StructLayout``).
    dsp : ``"generic"``, ``"ice40"`` or ``"fabric"`` (see the module docstring)
    weight_memory : ``"bram"`` or ``"external"``
    always_ready : bool
        Streams without back-pressure (see the module docstring).
    writable : bool
        A write port for the weight memory (see the module docstring).
    late_act : bool
        The beat's activations come on ``late_act_data`` the cycle after the
        beat (beside the weight row), not in its payload: no register for
        them in the array (an activation memory read with the beat's
        address, as the core's direct reads do; ``always_ready`` only).

    See the module docstring for payloads, latency and throughput.
    """

    def __init__(self, weights, *, act_bits, weight_bits, acc_width, tag_shape=0,
                 dsp="generic", weight_memory="bram", always_ready=False, writable=False, late_act=False):
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
            raise TypeError(f"weights must be a 2-D array of integers, not {type(weights).__name__}")
        w = np.asarray(weights)
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise ValueError(f"weights must be a non-empty 2-D array (depth, lanes), got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.integer):
            raise TypeError(f"weights must be integers, got dtype {w.dtype}")
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        if not isinstance(weight_memory, str) or weight_memory not in MEMORY_KINDS:
            raise ValueError(f"weight_memory must be one of {MEMORY_KINDS}, got {weight_memory!r}")
        max_op = ice40_dsp.MAX_SINGLE_BITS if dsp == "ice40" else 32
        check_int("act_bits", act_bits, 2, max_op, numpy=True)
        check_int("weight_bits", weight_bits, 2, max_op, numpy=True)
        check_int("acc_width", acc_width, 2, 64, numpy=True)
        tag_shape = check_tag_shape(tag_shape)
        check_bool("always_ready", always_ready)
        check_bool("writable", writable)
        check_bool("late_act", late_act)
        self.writable = writable
        self.late_act = late_act
        w = w.astype(np.int64)
        lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
        if w.min() < lo or w.max() > hi:
            raise ValueError(f"weights have values in [{w.min()}, {w.max()}], outside signed({weight_bits}) "
                             f"[{lo}, {hi}]")
        self.weights = w
        self.depth, self.lanes = w.shape
        self.act_bits = act_bits
        self.weight_bits = weight_bits
        self.acc_width = acc_width
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.always_ready = always_ready
        self.dsp = dsp
        self.weight_memory = weight_memory
        self.addr_width = max(1, ceil_log2(self.depth))
        self.product_width = act_bits + weight_bits
        self.tree_levels = ceil_log2(self.lanes)
        self.latency = 3 + self.tree_levels
        self.dual = dsp == "ice40" and act_bits <= ice40_dsp.MAX_DUAL_BITS and weight_bits <= ice40_dsp.MAX_DUAL_BITS
        if dsp == "ice40":
            self.dsp_count = -(-self.lanes // 2) if self.dual else self.lanes
        else:
            self.dsp_count = 0
        members = {
            "i": In(stream.Signature(mac_in_layout(self.lanes, act_bits, self.addr_width, tag_shape),
                                     always_ready=always_ready)),
            "o": Out(stream.Signature(mac_out_layout(acc_width, tag_shape), always_ready=always_ready)),
        }
        if writable:
            if weight_memory == "external":
                raise ValueError("an external weight memory is written outside the MAC array (writable=False)")
            members["write"] = In(wiring.Signature({"en": Out(1), "addr": Out(self.addr_width),
                                                    "data": Out(self.lanes * weight_bits)}))
        if weight_memory == "external":
            members["weight_read"] = Out(wiring.Signature({"addr": Out(self.addr_width), "en": Out(1),
                                                           "data": In(self.lanes * weight_bits)}))
        if late_act:
            if not always_ready:
                raise ValueError("late activations need a pipeline that never stalls (always_ready=True)")
            members["late_act_data"] = In(data.ArrayLayout(signed(act_bits), self.lanes))
        super().__init__(members)

    def _word_init(self):
        return weight_words(self.weights, self.weight_bits)

    def elaborate(self, platform):
        m = Module()
        P, wb = self.lanes, self.weight_bits
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        if not self.always_ready:
            m.d.comb += self.i.ready.eq(en)

        if self.weight_memory == "external":
            rd = self.weight_read
        else:
            # (Weights are written only while a model is loaded, when
            # nothing renders: no read meets a write.)
            m.submodules.weights = mem = memory.Memory(shape=unsigned(P * wb), depth=self.depth,
                                                       init=self._word_init(), attrs=memory_attrs(block_ram=True))
            if self.writable:
                wr = mem.write_port()
                m.d.comb += [wr.en.eq(self.write.en), wr.addr.eq(self.write.addr), wr.data.eq(self.write.data)]
            rd = read_port(m, mem, platform)
        m.d.comb += [rd.addr.eq(self.i.payload.addr), rd.en.eq(en)]

        # Control travelling beside the data: valid, first, last, tag.
        ctl_layout = data.StructLayout({"valid": 1, "first": 1, "last": 1, "tag": unsigned(self.tag_width)})
        ctl_in = Signal(ctl_layout)
        # A bubble never starts a sum (the accumulator's ``base`` relies on it).
        m.d.comb += [ctl_in.valid.eq(self.i.valid), ctl_in.first.eq(self.i.payload.first & self.i.valid),
                     ctl_in.last.eq(self.i.payload.last)]
        if self.tag_width:
            m.d.comb += ctl_in.tag.eq(self.i.payload.tag)

        # Stage 1: memory read; activations wait beside it.
        ctl1 = Signal(ctl_layout, name="ctl1")
        if self.late_act:
            # The activations come a cycle after their beat, beside the weights.
            act1 = self.late_act_data
            with m.If(en):
                m.d.sync += ctl1.eq(ctl_in)
        else:
            act1 = Signal(data.ArrayLayout(signed(self.act_bits), P), name="act1")
            with m.If(en):
                m.d.sync += [ctl1.eq(ctl_in), act1.eq(self.i.payload.act)]
        wts = [rd.data[l * wb:(l + 1) * wb].as_signed() for l in range(P)]

        # Stage 2: products (registered).
        ctl2 = Signal(ctl_layout, name="ctl2")
        with m.If(en):
            m.d.sync += ctl2.eq(ctl1)
        products = self._products(m, [act1[l] for l in range(P)], wts, en)

        # Stage 3: adder tree, one register per level.
        # ``upcoming``: the control the last stage sees after the next
        # ``en`` (the source of its register).
        level, ctl, upcoming = products, ctl2, ctl1
        for t in range(self.tree_levels):
            nxt = []
            for j in range(0, len(level), 2):
                width = self.product_width + t + 1
                s = Signal(signed(width), name=f"sum{t}_{j // 2}")
                with m.If(en):
                    m.d.sync += s.eq(level[j] + level[j + 1] if j + 1 < len(level) else level[j])
                nxt.append(s)
            c = Signal(ctl_layout, name=f"ctl_tree{t}")
            with m.If(en):
                m.d.sync += c.eq(ctl)
            level, ctl, upcoming = nxt, c, ctl
        total = level[0]

        # Stage 4: accumulate and emit. ``base`` is what this stage's beat
        # adds its sum to: 0 for a first beat, else the running sum —
        # registered a beat ahead from the upcoming beat's ``first``, so no
        # LUT sits between a register and the adder's carry chain. A bubble
        # (never first) holds the running sum in ``base`` itself.
        base = Signal(signed(self.acc_width))
        new = Signal(signed(self.acc_width))
        m.d.comb += new.eq(base + total)
        with m.If(en):
            m.d.sync += [base.eq(Mux(upcoming.first, 0, Mux(ctl.valid, new, base))),
                         self.o.valid.eq(ctl.valid & ctl.last), self.o.payload.acc.eq(new)]
            if self.tag_width:
                m.d.sync += self.o.payload.tag.eq(ctl.tag)
        return m

    def _products(self, m, acts, wts, en):
        P = self.lanes
        pw = self.product_width
        out = []
        if self.dsp == "generic":
            for l in range(P):
                p = Signal(signed(pw), name=f"prod{l}")
                with m.If(en):
                    m.d.sync += p.eq(acts[l] * wts[l])
                out.append(p)
        elif self.dsp == "fabric":
            for l in range(P):
                p = Signal(signed(pw), name=f"prod{l}")
                with m.If(en):
                    m.d.sync += p.eq(fabric_product(acts[l], wts[l]))
                out.append(p)
        elif self.dual:
            for j in range(0, P, 2):
                a_hi = acts[j + 1] if j + 1 < P else Const(0, signed(self.act_bits))
                b_hi = wts[j + 1] if j + 1 < P else Const(0, signed(self.weight_bits))
                lo, hi = ice40_dsp.dual_mul8x8(m, acts[j], wts[j], a_hi, b_hi, ce=en, name=f"dsp{j // 2}")
                out.append(lo[:pw].as_signed())
                if j + 1 < P:
                    out.append(hi[:pw].as_signed())
        else:
            for l in range(P):
                p = ice40_dsp.mul16x16(m, acts[l], wts[l], ce=en, name=f"dsp{l}")
                out.append(p[:pw].as_signed())
        return out

