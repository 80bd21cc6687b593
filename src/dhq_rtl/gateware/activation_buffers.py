"""Activation buffers of the core and the queue of vectors ready for a MAC job.

:class:`ActivationBuffers` holds ``buffers`` vectors of the hidden width in one
memory, ``act_word`` activations per word (``load_words`` words per vector;
on iCE40 a 32-bit word is 2 EBR however many buffers there are), with write
granularity one activation. A buffer holds the input vector of one layer of
one pixel; it is taken by the vector arbiter before the vector's first
element is written (``alloc``) and given back by the job sequencer once it
has copied the vector out (``release``).

Ports (``P`` = :class:`~.plan.CorePlan`):

* ``alloc`` (out stream of buffer numbers): the lowest free buffer. Valid
  and payload are registered from the free set, one cycle stale: safe,
  because only the arbiter takes buffers and after taking one it spends at
  least a cycle before asking again; a buffer just released is merely
  offered a cycle late. A transfer (``valid & ready``) takes the buffer.
* ``release`` (in stream of buffer numbers, ``always_ready``): frees a buffer.
* ``write`` (in stream of :func:`~.core_streams.write_layout`,
  ``always_ready``): one activation into ``(buffer, index)``. The write is
  registered (1 cycle), then lands in the memory; the vector's last element
  (``index`` equal to the layer's ``last_k`` descriptor) also puts ``(buffer, layer + 1)``
  and the flags of layer ``layer + 1``'s job into the ready queue.
* ``ready`` (out stream of :func:`~.core_streams.job_ref_layout`): the
  ready queue, a :class:`~.fifo.FlagFIFO` of ``ready_queue_depth`` entries
  (block RAM with direct reads, ``ready_queue_block_ram``; the job's flags
  ride along so that no lookup sits behind the RAM's read data)
  (a vector enters it 3 cycles after its last element is written: register,
  FIFO write, FIFO output register). It cannot overflow: it holds at most one
  entry per buffer.
* ``read`` (:func:`~.core_streams.activation_read_signature`, flipped): a
  synchronous read port, data one cycle after the address.
* ``desc`` (in): the layer descriptors (:mod:`.descriptors`).

Latency: a written element is readable from the cycle after next; throughput:
one write and one read per cycle. Widths: memory words ``act_word ·
act_bits`` bits, ``buffers · load_words`` words.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .core_streams import (activation_read_signature, buffer_id_stream, job_ref_layout, vector_ref_stream,
                           write_layout)
from .descriptors import descriptor_init, descriptor_layout
from .fifo import FlagFIFO
from .ram import memory_attrs, read_port

__all__ = ["ActivationBuffers"]


class ActivationBuffers(wiring.Component):
    """The core's activation buffers, their allocator and the ready queue
    (module docstring)."""

    def __init__(self, plan):
        self.plan = plan
        super().__init__({
            "alloc": Out(buffer_id_stream(plan)),
            "release": In(buffer_id_stream(plan, always_ready=True)),
            "write": In(stream.Signature(write_layout(plan), always_ready=True)),
            "ready": Out(vector_ref_stream(plan)),
            "read": In(activation_read_signature(plan)),
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        nb = plan.buffers
        m.submodules.activations = mem = Memory(shape=plan.act_word * plan.act_bits,
                                                depth=nb * plan.load_words, init=[], attrs=memory_attrs())
        self._allocator(m)
        self._writer(m, mem.write_port(granularity=plan.act_bits))
        # A buffer is read only once it is complete (offered on `ready`)
        # and written only while it is being filled: no read meets a write.
        rd = read_port(m, mem, platform)
        addr = self.read.addr
        m.d.comb += [
            rd.addr.eq(Cat(addr.word, addr.buffer) if plan.word_index_width else addr.buffer),
            self.read.data.eq(rd.data),
        ]
        return m

    def _allocator(self, m):
        nb = self.plan.buffers
        free = Signal(nb, init=(1 << nb) - 1)
        free_set = Signal(nb)
        offered = Signal(nb)            # one-hot: the buffer offered (alloc.payload), 0 when none
        m.d.comb += free_set.eq(Mux(self.release.valid, Const(1, nb) << self.release.payload, 0))
        # A transfer clears the offered buffer's bit: one LUT behind the
        # taker's `ready` per bit (timing: no decode of the payload there).
        m.d.sync += free.eq((free | free_set) & ~Mux(self.alloc.ready, offered, 0))
        # The lowest free buffer, registered (timing; see the module docstring).
        lowest = Signal(nb)
        m.d.comb += [lowest[b].eq(free[b] & ~free[:b].any() if b else free[b]) for b in range(nb)]
        lowest_id = Signal.like(self.alloc.payload)
        m.d.comb += lowest_id.eq(Cat(*[Cat(*[lowest[b] for b in range(nb) if b >> i & 1]).any()
                                       for i in range(len(lowest_id))]))
        m.d.sync += [offered.eq(lowest), self.alloc.valid.eq(free.any()), self.alloc.payload.eq(lowest_id)]

    def _writer(self, m, wr):
        plan = self.plan
        entry = Signal(job_ref_layout(plan))
        m.submodules.ready_queue = queue = FlagFIFO(width=len(entry.as_value()), depth=plan.ready_queue_depth,
                                                    block_ram=plan.ready_queue_block_ram)
        w = self.write.payload
        # Registered (timing), then written. Whether the element is its
        # vector's last is compared against every layer's last index before
        # the register (one flag per layer value, in parallel with the
        # post-processing's path selection of the layer) and selected by the
        # registered layer after it: two LUT levels from registers to the
        # ready queue's write.
        layers = 1 << len(w.layer)
        is_last = Signal(layers)        # per layer value: the element is that layer's last
        layer_q = Signal.like(w.layer)
        valid, last = Signal(), Signal()
        q = Signal.like(w.value)
        index = Signal(max(plan.index_width, plan.lane_index_width + plan.word_index_width))
        last_k = [self.desc.layers[i].last_k if i < plan.max_layers else 0 for i in range(layers)]
        m.d.sync += [is_last[i].eq(w.index == k) for i, k in enumerate(last_k)]
        m.d.sync += [valid.eq(self.write.valid), layer_q.eq(w.layer),
                     q.eq(w.value), index.eq(w.index), entry.buffer.eq(w.buffer), entry.layer.eq(w.layer + 1)]
        # The flags of the job of the next layer, per producing layer
        # (registered from the descriptors, which change only between
        # renders), selected by the element's layer with the entry.
        for flag, of_layer in (("c1", lambda d: d.last_c == 0), ("k1", lambda d: d.last_k == 0),
                               ("k2", lambda d: d.last_k == 1)):
            per_layer = Signal(layers, name=f"next_{flag}")
            m.d.sync += [per_layer[i].eq(of_layer(self.desc.layers[i + 1]) if i + 1 < plan.max_layers else 0)
                         for i in range(layers)]
            m.d.sync += getattr(entry, flag).eq(per_layer.bit_select(w.layer, 1))
        m.d.comb += last.eq(valid & is_last.bit_select(layer_q, 1))
        lr, ww = plan.lane_index_width, plan.word_index_width
        lane = index[:lr] if lr else Const(0, 1)
        m.d.comb += [
            wr.addr.eq(Cat(index[lr:lr + ww], entry.buffer) if ww else entry.buffer),
            wr.data.eq(Cat(*([q] * plan.act_word))),
            wr.en.eq(Mux(valid, Const(1, plan.act_word) << lane, 0)),
            queue.w_en.eq(last),
            queue.w_data.eq(entry),
            self.ready.valid.eq(queue.r_rdy),
            self.ready.payload.eq(queue.r_data),
            queue.r_en.eq(self.ready.ready),
        ]
