"""MAC jobs: the job sequencer, and the accumulator queue behind the MAC array.

A *job* is one layer ``i ≥ 1`` of one pixel: for each output neuron ``k`` and
each chunk ``c`` of ``lanes`` inputs, one *beat* (``lanes`` activations and
the address of the matching weight row) goes into the
:class:`~.mac.MacArray`; the beat that ends a neuron's dot product carries
``last`` and the array emits the sum, tagged with the layer.

:class:`JobSequencer`

* takes the next ready vector from the ready queue (``jobs``) as soon as its
  staging registers are free, looks up the job's constants (first weight
  row, chunks and neurons: the layer descriptors) in advance, and copies
  the vector word by word through ``read`` into flip-flops (``load_words``
  reads; the buffer is released when the last word has been read) — or,
  with *direct reads* (``plan.direct``: a buffer word is one chunk of
  ``lanes`` activations), copies nothing: the running job reads its chunk
  from its buffer beat by beat, and the buffer is released with its last
  beat;
* starts the staged job in the cycle after the running job's last beat
  (the staged vector moves into the running job's vector register);
* issues one beat per cycle while the accumulator queue grants ``credit``.
  Every decision of the beat loop is a registered flag computed one beat
  ahead (this beat ends a neuron, the job's last neuron is running, the
  next neuron is the job's last, this beat is the job's last), and the
  start of a job (``take``) is one LUT of registers, for timing. The beat's chunk of activations is
  registered once more (aligned with the weight read address).

Timing: a job of ``b = out·chunks`` beats occupies the MAC array for
``max(b, load_words + 2)`` cycles when the next vector is ready in time
(staging, one read per word, the last word's write); with direct reads for
``b`` cycles (jobs back to back). ``beats`` is
``always_ready`` (the MAC array never stalls); ``issue`` is high in every
cycle a beat is issued (observation for efficiency measurements).

:class:`AccumulatorQueue`: the FIFO of finished dot products
(``accumulator_queue_depth`` entries of :func:`~.core_streams.accumulator_layout`:
the accumulator, its layer, and the layer's facts the arbiter decides on,
looked up on the way in) between the MAC
array and the vector arbiter, with a credit counter: ``credit`` (registered)
is high while the queue, the dot products in flight in the MAC array
(reserved by ``reserve`` when their last beat is issued) and a margin of 3
for the registered flag's staleness fit the depth. So the MAC array's output
is always taken (``push`` is ``always_ready``) and never overflows the queue.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .core_streams import (accumulator_layout, activation_read_signature, buffer_id_stream, credit_signature,
                           vector_ref_stream)
from .descriptors import descriptor_init, descriptor_layout, layer_field
from .fifo import FlagFIFO
from .lookup import lookup
from .mac import mac_in_layout, mac_out_layout

__all__ = ["JobSequencer", "AccumulatorQueue"]

#: Headroom of the accumulator queue's credit check: the credit flag is a
#: register (one cycle stale) and the array may have issued a last beat
#: in that cycle.
CREDIT_MARGIN = 3


class JobSequencer(wiring.Component):
    """Stages, loads and runs MAC jobs (module docstring).

    Ports: ``jobs`` (in, ready queue), ``read`` (activation buffer read port),
    ``release`` (out, buffers copied out), ``beats`` (out, to the MAC array),
    ``credit`` (accumulator queue credit), ``issue`` (out, observation),
    ``desc`` (in, the layer descriptors: ``wbase``, ``last_c``, ``last_k``);
    with direct reads ``late_act`` (out: the beat's chunk, the cycle after
    the beat).
    """

    def __init__(self, plan):
        self.plan = plan
        members = {
            "jobs": In(vector_ref_stream(plan)),
            "read": Out(activation_read_signature(plan)),
            "release": Out(buffer_id_stream(plan, always_ready=True)),
            "beats": Out(stream.Signature(self._beat_layout(), always_ready=True)),
            "credit": Out(credit_signature()),
            "issue": Out(1),
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
        }
        if plan.direct:
            # The beat's chunk, a cycle after the beat (the MAC array's late_act_data).
            members["late_act"] = Out(plan.lanes * plan.act_bits)
        super().__init__(members)

    def _beat_layout(self):
        plan = self.plan
        return mac_in_layout(plan.lanes, plan.act_bits, plan.weight_addr_width, plan.layer_width)

    def elaborate(self, platform):
        m = Module()
        # The staged job: its constants, looked up while it waits.
        nxt = Signal(self._job_layout())
        nxt_buf = Signal(self.plan.buffer_width)
        nxt_valid = Signal()
        take = Signal()
        stage = Signal()
        m.d.comb += [stage.eq(~nxt_valid | take), self.jobs.ready.eq(stage)]
        head = self.jobs.payload
        head_job = Signal.like(nxt)
        self._staged_job(m, head, head_job)
        with m.If(stage):
            m.d.sync += [nxt_valid.eq(self.jobs.valid), nxt_buf.eq(head.buffer), nxt.eq(head_job)]
        self._run(m, stage, take, nxt, nxt_valid, nxt_buf)
        return m

    def _job_layout(self):
        plan = self.plan
        return data.StructLayout({
            "layer": plan.layer_width,
            "wbase": plan.weight_addr_width,
            "last_c": plan.chunk_width,      # chunks per neuron − 1
            "last_k": plan.index_width,      # neurons − 1
            "c1": 1,                         # one chunk per neuron
            "k1": 1,                         # one neuron
            "k2": 1,                         # two neurons
        })

    def _staged_job(self, m, head, job):
        """``job`` (of :meth:`_job_layout`): the constants of the job of the
        ready queue's ``head``, from its layer descriptor; the neuron and
        chunk counts' flags come with the head (looked up when its vector
        was queued: no comparison behind the queue's read data)."""
        plan = self.plan
        layer = head.layer
        layers = [self.desc.layers[i] for i in range(plan.max_layers)]
        lookup(m, layer, [d.wbase for d in layers], job.wbase)
        lookup(m, layer, [d.last_c for d in layers], job.last_c)
        lookup(m, layer, [d.last_k for d in layers], job.last_k)
        m.d.comb += [job.layer.eq(layer), job.c1.eq(head.c1), job.k1.eq(head.k1), job.k2.eq(head.k2)]

    def _run(self, m, stage, take, nxt, nxt_valid, nxt_buf):
        """The staged job's vector copy (none with direct reads) and the running job's beats."""
        if self.plan.direct:
            # The staged job is ready as soon as it is staged: its chunks are
            # read from its buffer beat by beat.
            self._beats(m, nxt, nxt_valid, (None, nxt_valid), None, take, nxt_buf)
        else:
            staged, running = self._load(m, stage, nxt_buf)
            self._beats(m, nxt, nxt_valid, staged, running, take, nxt_buf)

    def _load(self, m, stage, nxt_buf):
        """Copy the staged vector word by word into flip-flops; returns
        ``(staged, running)``: the staged vector's register and its
        ``full`` flag, and the running job's vector register."""
        plan = self.plan
        words, ww = plan.load_words, plan.word_index_width
        word_bits = plan.act_word * plan.act_bits
        ld_run = Signal()
        ld_w = Signal(max(1, ww))
        rd_v, rd_last = Signal(), Signal()
        rd_w = Signal(max(1, ww))
        full = Signal()
        vector = Signal(plan.cpow * plan.lanes * plan.act_bits)
        running = Signal.like(vector)
        with m.If(stage):
            m.d.sync += [ld_run.eq(self.jobs.valid), ld_w.eq(0)]
        with m.Elif(ld_run):
            m.d.sync += ld_w.eq(ld_w + 1)
            with m.If(ld_w == words - 1):
                m.d.sync += ld_run.eq(0)
        m.d.comb += self.read.addr.buffer.eq(nxt_buf)
        if ww:
            m.d.comb += self.read.addr.word.eq(ld_w[:ww])
        # (While loading, the staged job cannot be taken: no `stage` then.)
        m.d.sync += [rd_v.eq(ld_run), rd_w.eq(ld_w), rd_last.eq(ld_run & (ld_w == words - 1))]
        with m.If(rd_v):
            if ww:
                with m.Switch(rd_w):
                    for w in range(words):
                        with m.Case(w):
                            m.d.sync += vector.word_select(w, word_bits).eq(self.read.data)
            else:
                m.d.sync += vector.eq(self.read.data)
        # The buffer is read for the last time now: give it back.
        m.d.comb += [self.release.valid.eq(rd_last), self.release.payload.eq(nxt_buf)]
        with m.If(rd_last):
            m.d.sync += full.eq(1)
        return (vector, full), running

    def _beats(self, m, nxt, nxt_valid, staged, running, take, nxt_buf):
        """The beat loop of the running job and the start of the staged one."""
        plan = self.plan
        vector, full = staged
        job_active = Signal()
        job = Signal.like(nxt)          # the running job's constants
        job_c = Signal(plan.chunk_width)
        c_rem = Signal(plan.chunk_width)     # chunks left in this neuron's dot product, minus one
        k_rem = Signal(plan.index_width)     # neurons left in this job, minus one
        waddr = Signal(plan.weight_addr_width)
        # Registered flags, computed one beat ahead: the current beat ends a
        # neuron's dot product (c_last), the job's last neuron is running
        # (k_last), the current beat is the job's last (j_last).
        c_last, k_last, j_last = Signal(), Signal(), Signal()
        issue, job_end = self.issue, Signal()
        c_one = Signal()          # c_rem == 1: the next beat ends the neuron
        k_one = Signal()          # registered: k_rem == 1, the next neuron is the job's last
        credit = self.credit.credit
        m.d.comb += [
            issue.eq(job_active & credit),
            job_end.eq(issue & j_last),
            # Flat in registers (one LUT level; it enables the job's
            # registers and, through `stage`, drives the ready queue's read).
            # `full` implies a staged job (a vector is only loaded for one,
            # and both are cleared by `take`), so `nxt_valid` need not be
            # asked here.
            take.eq(full & (~job_active | (credit & j_last))),
            c_one.eq(c_rem == 1),
            self.credit.reserve.eq(issue & c_last),
        ]
        # The job registers change on `take` or `issue` only (no priority on
        # `job_end`: after a job's last beat they are reloaded by the next
        # `take` before they are read again).
        m.d.sync += job_active.eq(take | (job_active & ~job_end))
        job_buf = Signal(plan.buffer_width)
        with m.If(take):
            if plan.direct:
                m.d.sync += job_buf.eq(nxt_buf)
            else:
                m.d.sync += [full.eq(0), running.eq(vector)]
            m.d.sync += [job.eq(nxt), job_c.eq(0), c_rem.eq(nxt.last_c), k_rem.eq(nxt.last_k),
                         waddr.eq(nxt.wbase), c_last.eq(nxt.c1), k_last.eq(nxt.k1), k_one.eq(nxt.k2),
                         j_last.eq(nxt.c1 & nxt.k1)]
        with m.Elif(issue):
            m.d.sync += [waddr.eq(waddr + 1), job_c.eq(job_c + 1), c_rem.eq(c_rem - 1)]
            with m.If(c_last):
                m.d.sync += [job_c.eq(0), c_rem.eq(job.last_c), k_rem.eq(k_rem - 1),
                             c_last.eq(job.c1), k_last.eq(k_one), k_one.eq(k_rem == 2),
                             j_last.eq(job.c1 & k_one)]
            with m.Else():
                m.d.sync += [c_last.eq(c_one), j_last.eq(c_one & k_last)]

        # Beat: the chunk of the job's vector is registered (1 cycle, aligned
        # with the weight read address), then goes into the MAC array. With
        # direct reads it is the buffer memory's read data (address this
        # cycle, data the next), and the buffer is released with the last beat.
        chunk = Signal(plan.lanes * plan.act_bits)
        if plan.direct:
            # The chunk's address is registered with the beat; the buffer
            # memory's data comes a cycle later, beside the weight row (the
            # MAC array's `late_act_data`).
            buf_q = Signal.like(job_buf)
            c_q = Signal.like(job_c)
            m.d.sync += [buf_q.eq(job_buf), c_q.eq(job_c)]
            m.d.comb += [self.read.addr.buffer.eq(buf_q), self.late_act.eq(self.read.data),
                         self.release.valid.eq(job_end), self.release.payload.eq(job_buf)]
            if plan.word_index_width:
                m.d.comb += self.read.addr.word.eq(c_q)
        else:
            m.d.sync += chunk.eq(running.word_select(job_c, plan.lanes * plan.act_bits) if plan.cpow > 1
                                 else running)
        beat = self.beats.payload
        m.d.sync += [
            self.beats.valid.eq(issue),
            beat.addr.eq(waddr),
            beat.first.eq(job_c == 0),
            beat.last.eq(c_last),
            beat.tag.eq(job.layer),
        ]
        m.d.comb += beat.act.eq(chunk)


class AccumulatorQueue(wiring.Component):
    """The accumulator FIFO with its credit counter (module docstring).

    Ports: ``push`` (in, ``always_ready``: the MAC array's output), ``pop``
    (out, :func:`~.core_streams.accumulator_layout` to the vector arbiter), ``credit`` (flipped
    :func:`~.core_streams.credit_signature`), ``desc`` (in, the layer descriptors).
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__({
            "push": In(stream.Signature(mac_out_layout(plan.acc_bits, plan.layer_width), always_ready=True)),
            "pop": Out(stream.Signature(accumulator_layout(plan))),
            "credit": In(credit_signature()),
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        depth = plan.accumulator_queue_depth
        entry = Signal(accumulator_layout(plan))
        m.submodules.fifo = fifo = FlagFIFO(width=len(entry.as_value()), depth=depth)
        inflight = Signal(range(depth + 1))   # dot products issued, not yet in the FIFO
        m.d.sync += [
            inflight.eq(inflight + self.credit.reserve - self.push.valid),
            self.credit.credit.eq(fifo.level + inflight + CREDIT_MARGIN < depth),
        ]
        layer = self.push.payload.tag
        layers = [self.desc.layers[i] for i in range(plan.max_layers)]
        lookup(m, layer, [d.last_k for d in layers], entry.last_index)
        lookup(m, layer, [d.last_k == 0 for d in layers], entry.single)
        m.d.comb += entry.output.eq(layer == self.desc.last_layer)
        lookup(m, layer, [layer_field(d, "next_rotated") for d in layers], entry.next_rotated)
        m.d.comb += [
            entry.acc.eq(self.push.payload.acc),
            entry.layer.eq(layer),
            fifo.w_en.eq(self.push.valid),
            fifo.w_data.eq(entry),
            self.pop.valid.eq(fifo.r_rdy),
            self.pop.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.pop.ready),
        ]
        return m
