"""The float core's job sequencer: chunk-major beats for an accumulator with latency.

:class:`FloatJobSequencer` is the :class:`~dhq_rtl.gateware.job_sequencer.JobSequencer`
of the float core: the same ports, staging (the next ready vector's job
constants are looked up while the running job works) and credit, with a
different beat order and load, because the float accumulator's adder takes
``add_latency`` cycles (9) and float32 activations are four times as wide
as the integer core's:

* **Chunk-major order.** A job of stage ``s`` (:class:`~.plan.FloatCorePlan`)
  runs ``chunks[s]`` passes; pass ``c`` issues one beat per output neuron
  ``k`` (activations ``c·lanes … c·lanes + lanes − 1``, weight row ``wbase +
  c·out + k``: the address counts up by one per beat), so that beat ``(k, c
  + 1)`` follows beat ``(k, c)`` by a whole pass. A pass lasts ``slots[s]``
  slots: ``out`` when the job has one chunk, else at least ``acc_gap`` (the
  partial sum of ``(k, c)`` is back in the accumulator memory before ``(k,
  c + 1)`` reads it); slots past the last neuron issue nothing. A slot is
  spent in every cycle the accumulator queue grants ``credit``.
* **One chunk at a time.** A buffer word is one chunk (``act_word =
  lanes``). The staged job's chunk 0 is read as soon as the read port is
  free; the running job's chunk ``c + 1`` is read at the start of pass
  ``c`` (its read has priority) and replaces the current chunk when the
  pass ends. A chunk is masked when it is read: lanes past the layer's
  input width become +0 (the golden model pads with +0 inputs; the buffer
  holds stale values there). A buffer is released once its last chunk has
  been read.
* **Beats** (``always_ready``; the payload is the sequencer's registers
  and ``valid`` an AND of three of them): ``act`` (the chunk), ``addr``
  (weight row), ``bias_addr`` (the neuron's bias in the accumulator memory,
  meaningful on ``first``), ``first`` (pass 0), ``last`` (the last pass),
  ``tag`` (the stage). ``credit.reserve`` is raised with a ``last`` beat.

Timing: a job occupies the lanes for ``chunks·slots`` cycles when its chunk
0 was read in time (one read, two cycles, while the previous job runs).
"""

from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib import data

from ..job_sequencer import JobSequencer
from ..lookup import lookup
from .lanes import lanes_in_layout

__all__ = ["FloatJobSequencer"]


class FloatJobSequencer(JobSequencer):
    """Stages, loads and runs the float core's jobs (module docstring)."""

    def _beat_layout(self):
        return lanes_in_layout(self.plan)

    def _job_layout(self):
        plan = self.plan
        slot_bits = max(plan.index_width, plan.acc_gap.bit_length())
        return data.StructLayout({
            "layer": plan.layer_width,
            "wbase": plan.weight_addr_width,
            "bbase": plan.bias_addr_width,
            "last_c": plan.chunk_width,      # chunks − 1
            "last_k": plan.index_width,      # neurons − 1
            "last_slot": slot_bits,          # slots per pass − 1
            "mask": plan.lanes,              # valid lanes of the last chunk
            "c1": 1,                         # one chunk
            "c2": 1,                         # two chunks
            "slot1": 1,                      # one slot per pass
        })

    def _staged_job(self, m, head, job):
        """The staged job's constants from the ready queue's ``head``'s layer."""
        self._job_constants(m, head.layer, job)

    def _job_constants(self, m, layer, job):
        plan = self.plan
        S = plan.n_layers
        lookup(m, layer, plan.wbase, job.wbase)
        lookup(m, layer, plan.bias_base, job.bbase)
        lookup(m, layer, [max(c - 1, 0) for c in plan.chunks], job.last_c)
        lookup(m, layer, [n - 1 for n in plan.out_features], job.last_k)
        lookup(m, layer, [max(plan.slots[s] - 1, 0) for s in range(S)], job.last_slot)
        lookup(m, layer, [(1 << plan.last_lanes[s]) - 1 for s in range(S)], job.mask)
        m.d.comb += [job.layer.eq(layer), job.c1.eq(job.last_c == 0), job.c2.eq(job.last_c == 1),
                     job.slot1.eq(job.last_slot == 0)]

    def _run(self, m, stage, take, nxt, nxt_valid, nxt_buf):
        """The running job: its passes and slots, counted down, every
        decision a register computed a slot ahead (timing, as in the integer
        sequencer): the slot is the pass's last (``slot_last``), a neuron is
        issued in it (``issuing``), the pass is the job's first or last, the
        next pass is the last (``pre_last``)."""
        plan = self.plan
        job_layer = Signal(plan.layer_width)
        job = Signal.like(nxt)               # the running job's constants, looked up from its layer
        self._job_constants(m, job_layer, job)
        job_buf = Signal(plan.buffer_width)
        job_active = Signal()
        c = Signal(plan.chunk_width)         # the running pass (its chunk)
        c_rem = Signal(plan.chunk_width)     # passes after this one
        slot_rem = Signal(len(job.last_slot))
        k_rem = Signal(plan.index_width)
        slot_last, issuing, first_pass, last_pass, pre_last = (Signal(name=n) for n in (
            "slot_last", "issuing", "first_pass", "last_pass", "pre_last"))
        cur = Signal(plan.lanes * 32)        # the running pass's chunk
        fetched = Signal.like(cur)           # chunk c + 1, read ahead
        first_chunk = Signal.like(cur)       # the staged job's chunk 0
        first_ready = Signal()
        advance, issue, pass_end, job_end = Signal(), self.issue, Signal(), Signal()
        m.d.comb += [
            advance.eq(job_active & self.credit.credit),
            issue.eq(advance & issuing),
            pass_end.eq(advance & slot_last),
            job_end.eq(pass_end & last_pass),
            take.eq(first_ready & (~job_active | job_end)),
            self.credit.reserve.eq(issue & last_pass),
        ]
        want = self._reads(m, stage, take, nxt, nxt_buf, job, job_buf, c, pre_last, pass_end, fetched,
                           first_chunk, first_ready)
        waddr = Signal(plan.weight_addr_width)
        baddr = Signal(plan.bias_addr_width)

        def start_pass(last_slot, last_k, slot1):
            m.d.sync += [slot_rem.eq(last_slot), k_rem.eq(last_k), slot_last.eq(slot1), issuing.eq(1)]

        with m.If(take):
            m.d.sync += [job_active.eq(1), job_layer.eq(nxt.layer), job_buf.eq(nxt_buf), c.eq(0), c_rem.eq(nxt.last_c),
                         first_pass.eq(1), last_pass.eq(nxt.c1), pre_last.eq(nxt.c2), cur.eq(first_chunk),
                         waddr.eq(nxt.wbase), baddr.eq(nxt.bbase), want.eq(~nxt.c1)]
            start_pass(nxt.last_slot, nxt.last_k, nxt.slot1)
        with m.Elif(job_end):
            m.d.sync += job_active.eq(0)
        with m.Elif(pass_end):
            m.d.sync += [c.eq(c + 1), c_rem.eq(c_rem - 1), first_pass.eq(0), last_pass.eq(pre_last),
                         pre_last.eq(c_rem == 2), cur.eq(fetched), want.eq(~pre_last)]
            start_pass(job.last_slot, job.last_k, job.slot1)
        with m.Elif(advance):
            m.d.sync += [slot_rem.eq(slot_rem - 1), slot_last.eq(slot_rem == 1)]
            with m.If(issuing):
                m.d.sync += [k_rem.eq(k_rem - 1), issuing.eq(k_rem != 0)]
        with m.If(issue):
            m.d.sync += waddr.eq(waddr + 1)
            with m.If(first_pass):
                m.d.sync += baddr.eq(baddr + 1)
        with m.If(take):
            m.d.sync += [waddr.eq(nxt.wbase), baddr.eq(nxt.bbase)]

        # The beat is the running state itself (registers, no copy: the
        # lanes register it beside their weight read).
        beat = self.beats.payload
        m.d.comb += [
            self.beats.valid.eq(issue),
            beat.act.eq(cur),
            beat.addr.eq(waddr),
            beat.bias_addr.eq(baddr),
            beat.first.eq(first_pass),
            beat.last.eq(last_pass),
            beat.tag.eq(job_layer),
        ]

    def _reads(self, m, stage, take, nxt, nxt_buf, job, job_buf, c, pre_last, pass_end, fetched, first_chunk,
               first_ready):
        """The activation-buffer read port: the running job's next chunk
        (first), else the staged job's chunk 0; the releases. Returns the
        running job's ``want`` flag (its next chunk is to be read)."""
        plan = self.plan
        ww = plan.word_index_width
        want = Signal()                      # running job: read chunk c + 1 now
        pending = Signal()                   # staged job: chunk 0 not read yet
        run_rd, pf_rd = Signal(), Signal()
        m.d.comb += [run_rd.eq(want), pf_rd.eq(pending & ~want)]
        with m.If(stage):
            m.d.sync += pending.eq(self.jobs.valid)
        with m.Elif(pf_rd):
            m.d.sync += pending.eq(0)
        with m.If(run_rd & ~take & ~pass_end):
            m.d.sync += want.eq(0)
        m.d.comb += self.read.addr.buffer.eq(Mux(run_rd, job_buf, nxt_buf))
        if ww:
            m.d.comb += self.read.addr.word.eq(Mux(run_rd, c + 1, 0))
        # The read's data comes a cycle later: what it was, and whether it
        # was its job's last chunk (then the buffer goes back). The running
        # job reads chunk c + 1 in pass c, the last one when the next pass
        # is the last (pre_last).
        rd_run, rd_pf, rd_last, rd_mask = Signal(), Signal(), Signal(), Signal(plan.lanes)
        rd_buf = Signal(plan.buffer_width)
        last = Mux(run_rd, pre_last, nxt.c1)
        m.d.sync += [
            rd_run.eq(run_rd), rd_pf.eq(pf_rd), rd_last.eq(last),
            rd_mask.eq(Mux(last, Mux(run_rd, job.mask, nxt.mask), (1 << plan.lanes) - 1)),
            rd_buf.eq(Mux(run_rd, job_buf, nxt_buf)),
        ]
        word = self.read.data & _spread(rd_mask, plan.lanes)
        with m.If(rd_run):
            m.d.sync += fetched.eq(word)
        with m.If(rd_pf):
            m.d.sync += [first_chunk.eq(word), first_ready.eq(1)]
        with m.Elif(take):
            m.d.sync += first_ready.eq(0)
        m.d.comb += [self.release.valid.eq((rd_run | rd_pf) & rd_last), self.release.payload.eq(rd_buf)]
        return want


def _spread(mask, lanes):
    """A ``32·lanes``-bit mask: all ones in the lanes whose bit of ``mask`` is set."""
    return Cat(*[mask[l].replicate(32) for l in range(lanes)])
