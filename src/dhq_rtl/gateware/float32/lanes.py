"""The float core's MAC lanes: ``lanes`` FP32 multipliers, an FP32 adder tree, an accumulator.

:class:`Fp32Lanes` is the float counterpart of :class:`~dhq_rtl.gateware.mac.MacArray`:
input-parallel, one beat of ``lanes`` float32 activations per cycle, the
matching weights read from on-chip memory. It computes, for every output
neuron ``k`` of a job (:mod:`.job_sequencer` issues the beats in chunk-major
order), exactly :func:`dhq_rtl.golden_float32.lane_dot_with_bias`::

    t_k = (…((b'_k + S_0) + S_1) + …) + S_{C−1},   S_c = tree(W'[k, chunk c] ⊙ h[chunk c])

Pipeline (always ready: the accumulator queue's credit guarantees that its
output is taken; every unit's ``o.ready`` is 1, so none ever stalls):

1. weight memory read (``lanes × 32``-bit words in chunk-major order, the
   rows of a stage's last chunk padded with +0), beside it the beat's
   control and activations registered; the weights registered once more
   (two cycles: a deep memory's read multiplexer is a path of its own),
   unless the plan's ``weight_register`` is false (one cycle);
2. ``lanes`` :class:`~.mul.Fp32Mul` (``mul_latency`` stages), the control
   in lane 0's tag;
3. ``log2(lanes)`` levels of :class:`~.add.Fp32Add` (``add_latency`` each),
   pairs ``(0, 1), (2, 3), …``: the order of :func:`~dhq_rtl.float32_ref.tree_sum`;
4. the accumulator memory read (one cycle): the beat's start value, the
   bias ``b'_k`` (a ``first`` beat, address ``bias_addr``) or the partial
   sum of the previous pass (the next entry of a ring of ``ring_depth``
   words: partial sums leave the adder in the order they are needed);
5. one :class:`~.add.Fp32Add`: start value + beat sum; a ``last`` beat's
   result is the output, any other goes back into the ring.

The accumulator memory is one ``32 × acc_memory_depth`` memory (the ring,
then every stage's biases), one read and one write port: a beat needs
either its bias or its partial sum, never both.

Latency: ``lanes_latency = 3 + mul_latency + log2(lanes)·add_latency +
add_latency`` cycles (one less without the weight register) from a beat to its sum (18 for one lane at the default
latencies). Throughput: one beat per cycle, as long as a neuron's beats are
at least ``acc_gap = add_latency + 2`` cycles apart (the sequencer's
passes). Payloads: ``i`` :func:`lanes_in_layout`, ``o``
:func:`~dhq_rtl.gateware.mac.mac_out_layout` (``acc``: the float32 bit
pattern of ``t_k``, ``tag``: the stage).
"""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..mac import mac_out_layout
from .add import Fp32Add
from .mul import Fp32Mul

__all__ = ["Fp32Lanes", "lanes_in_layout", "float_weight_rows", "accumulator_memory_init"]


def lanes_in_layout(plan):
    """A beat: ``act`` (``lanes`` float32 bit patterns), ``addr`` (weight
    row), ``bias_addr``, ``first``, ``last``, ``tag`` (the stage)."""
    return data.StructLayout({"act": data.ArrayLayout(unsigned(32), plan.lanes),
                              "addr": unsigned(plan.weight_addr_width), "bias_addr": unsigned(plan.bias_addr_width),
                              "first": unsigned(1), "last": unsigned(1), "tag": unsigned(plan.layer_width)})


def float_weight_rows(plan):
    """The weight memory's words: per stage ``s ≥ 1``, chunk ``c`` and neuron
    ``k`` (chunk-major), the ``lanes`` folded weights ``W'[k, c·lanes + l]``
    (+0 past the layer's input width) packed lane 0 first."""
    P = plan.lanes
    words = []
    for s in range(1, plan.n_layers):
        w, _ = plan.params[s - 1]
        n_out, n_in = w.shape
        C = plan.chunks[s]
        padded = np.zeros((n_out, C * P), np.uint32)
        padded[:, :n_in] = w
        for c in range(C):
            for k in range(n_out):
                words.append(sum(int(v) << (32 * l) for l, v in enumerate(padded[k, c * P:(c + 1) * P])))
    assert len(words) == plan.weight_rows
    return words


def accumulator_memory_init(plan):
    """The accumulator memory's initial words: the ring (zeros), then the
    biases ``b'`` of every stage at ``bias_base``."""
    words = [0] * plan.acc_memory_depth
    for s in range(1, plan.n_layers):
        _, b = plan.params[s - 1]
        words[plan.bias_base[s]:plan.bias_base[s] + len(b)] = [int(v) for v in b]
    return words


class Fp32Lanes(wiring.Component):
    """``lanes`` FP32 multiply-accumulate lanes over weights in memory (module docstring).

    Parameters: ``plan`` (a :class:`~.plan.FloatCorePlan`: lanes, units,
    DSP kind, the folded parameters and the memory layout).
    """

    def __init__(self, plan):
        self.plan = plan
        self.latency = plan.lanes_latency
        super().__init__({
            "i": In(stream.Signature(lanes_in_layout(plan), always_ready=True)),
            "o": Out(stream.Signature(mac_out_layout(plan.acc_bits, plan.layer_width), always_ready=True)),
        })

    def _control_layout(self):
        plan = self.plan
        return data.StructLayout({"first": 1, "last": 1, "layer": plan.layer_width,
                                  "bias_addr": plan.bias_addr_width})

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        P = plan.lanes
        m.submodules.weights = wmem = memory.Memory(shape=unsigned(32 * P), depth=plan.weight_rows,
                                                    init=float_weight_rows(plan), attrs={"ram_style": "block"})
        rd = wmem.read_port(domain="sync")
        beat = self.i.payload
        m.d.comb += rd.addr.eq(beat.addr)

        # 1. beside the weight read: the control and the activations; then
        # the weights (after the read multiplexer of a deep memory) and they
        # are registered once more, so that the multipliers start from
        # registers.
        ctl1 = Signal(self._control_layout())
        valid1 = Signal()
        act1 = Signal.like(beat.act)
        m.d.sync += [valid1.eq(self.i.valid), act1.eq(beat.act), ctl1.first.eq(beat.first),
                     ctl1.last.eq(beat.last), ctl1.layer.eq(beat.tag), ctl1.bias_addr.eq(beat.bias_addr)]
        if plan.weight_register:
            ctl = Signal.like(ctl1)
            valid2, act2, wts = Signal(), Signal.like(beat.act), Signal(32 * P)
            m.d.sync += [ctl.eq(ctl1), valid2.eq(valid1), act2.eq(act1), wts.eq(rd.data)]
        else:           # (plan.weight_register false: the multipliers take the read data)
            ctl, valid2, act2, wts = ctl1, valid1, act1, rd.data

        # 2. the products; 3. the adder tree.
        level = []
        for lane in range(P):
            mul = Fp32Mul(latency=plan.mul_latency, dsp=plan.dsp, tag_shape=self._control_layout() if lane == 0 else 0)
            m.submodules[f"mul{lane}"] = mul
            m.d.comb += [mul.i.valid.eq(valid2), mul.i.payload.a.eq(wts.word_select(lane, 32)),
                         mul.i.payload.b.eq(act2[lane]), mul.o.ready.eq(1)]
            if lane == 0:
                m.d.comb += mul.i.payload.tag.eq(ctl)
            level.append(mul.o)
        t = 0
        while len(level) > 1:
            nxt = []
            for j in range(0, len(level), 2):
                add = Fp32Add(latency=plan.add_latency, tag_shape=self._control_layout() if j == 0 else 0)
                m.submodules[f"tree{t}_{j // 2}"] = add
                m.d.comb += [add.i.valid.eq(level[j].valid), add.i.payload.a.eq(level[j].payload.y),
                             add.i.payload.b.eq(level[j + 1].payload.y), add.o.ready.eq(1)]
                if j == 0:
                    m.d.comb += add.i.payload.tag.eq(level[0].payload.tag)
                nxt.append(add.o)
            level, t = nxt, t + 1
        self._accumulate(m, level[0])
        return m

    def _accumulate(self, m, total):
        """4.–5.: the start value (bias or partial sum) and the accumulator
        adder; the output or the ring."""
        plan = self.plan
        ring_bits = (plan.ring_depth - 1).bit_length()
        m.submodules.acc_memory = amem = memory.Memory(shape=unsigned(32), depth=plan.acc_memory_depth,
                                                       init=accumulator_memory_init(plan),
                                                       attrs={"ram_style": "block"})
        rd = amem.read_port(domain="sync", transparent_for=())
        wr = amem.write_port()
        ctl = total.payload.tag
        rptr = Signal(ring_bits)
        wptr = Signal(ring_bits)
        m.d.comb += rd.addr.eq(Mux(ctl.first, ctl.bias_addr, rptr))
        with m.If(total.valid & ~ctl.first):
            m.d.sync += rptr.eq(rptr + 1)
        # the beat sum and its control wait one cycle for the read
        s = Signal(32)
        valid = Signal()
        tag = Signal(data.StructLayout({"last": 1, "layer": plan.layer_width}))
        m.d.sync += [s.eq(total.payload.y), valid.eq(total.valid), tag.last.eq(ctl.last), tag.layer.eq(ctl.layer)]
        m.submodules.accumulator = acc = Fp32Add(latency=plan.add_latency, tag_shape=tag.shape())
        m.d.comb += [acc.i.valid.eq(valid), acc.i.payload.a.eq(rd.data), acc.i.payload.b.eq(s),
                     acc.i.payload.tag.eq(tag), acc.o.ready.eq(1)]
        out_tag = acc.o.payload.tag
        m.d.comb += [
            self.o.valid.eq(acc.o.valid & out_tag.last),
            self.o.payload.acc.eq(acc.o.payload.y),
            self.o.payload.tag.eq(out_tag.layer),
            wr.en.eq(acc.o.valid & ~out_tag.last),
            wr.addr.eq(wptr),
            wr.data.eq(acc.o.payload.y),
        ]
        with m.If(wr.en):
            m.d.sync += wptr.eq(wptr + 1)
