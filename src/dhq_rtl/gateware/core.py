"""The INR accelerator core: every pixel of a region through the whole MLP.

:class:`InrCore` generates the raster coordinates of a region itself, runs
every layer of a model image on each pixel and streams the pixels out, bit for
bit equal to :meth:`dhq_rtl.golden.GoldenModel.render`.

Architecture
------------
::

    coords (running sums, no multiplier) ─┐
                                          ├─► scaler ─► sine LUT ─┬─► butterfly ─► requant ─┐
    MAC array ─► acc FIFO ────────────────┘   (acc·M+B)>>s        └─► (not rotated) ────────┴─► activation buffers
        ▲                                          └─► output layer: clamp ─► pixel FIFO ─► ``pixels``
        └──────── ready queue (buffer, layer) ◄──────────────────────────────────────────────┘

* **Activation buffers.** ``buffers`` vectors of the hidden width, stored
  ``act_word`` values per word (the most that fit ``act_word_bits``, default
  32 bits: 2 EBR on iCE40 instead of one EBR per 16 bits of ``lanes``
  values; one memory, write granularity one activation). A buffer holds the
  input vector of one layer of one pixel. When a job is staged, its vector is
  copied word by word into flip-flops (``load_words`` reads) and the buffer
  is freed; the running job reads its chunk of ``lanes`` values from a
  second vector register (copied at the job's start), registered once more
  before the MAC array.
* **MAC array** (input parallel): a job is one layer of one pixel. For each
  output neuron ``k`` and each chunk ``c`` of ``lanes`` inputs, one word of the
  buffer and one word of the weight ROM are read, ``lanes`` products formed
  (``dsp="ice40"``: ``SB_MAC16`` in dual 8×8 mode, or 16×16 when operands are
  wider), summed by a registered adder tree and accumulated; the accumulator
  goes to a FIFO. One beat per cycle, ``out·ceil(in/lanes)`` beats per job.
* **Post-processing** takes whole vectors (one at a time, back to back) from
  the accumulator FIFO or from the coordinate generator: scaler → sine LUT →
  (Hadamard butterfly → requantizer when the next layer is rotated) → the
  buffer allocated for the vector; when its last element is written the
  ``(buffer, layer)`` pair enters the ready queue, from which the MAC array
  takes its next job. Output-layer accumulators become pixels instead.
* **Latency hiding.** Up to ``buffers − 1`` pixels are in flight; while the
  MAC array works on one pixel's layer the others are being post-processed,
  so the MAC array is idle only when no vector is ready, or when a job is
  shorter than the copy of the next job's vector (``load_words + 2`` cycles;
  the default model's 2-beat output-layer job takes 10 cycles). Pixels leave in raster order (jobs are served in readiness order).

Schedule and throughput
-----------------------
With ``C_i = ceil(in_i / lanes)``, the MAC array issues ``Σ_{i≥1} out_i·C_i``
beats per pixel (:meth:`CorePlan.beats_per_pixel`) and needs
``Σ_{i≥1} max(out_i·C_i, load_words + 2)`` cycles per pixel
(:meth:`CorePlan.cycles_per_pixel`, measured in ``tests/test_core.py``); the first layer
costs no MAC cycle at all (running sums in :mod:`.coords`). The ideal is
``MACs per pixel (layers ≥ 1) / lanes``; multiplier efficiency is their
ratio. Latency of one pixel (start → pixel) is a few hundred cycles; the
steady-state rate is what counts. Back-pressure on ``pixels`` is honoured
(a stalled sink stops new pixels from entering, nothing is lost).

Widths are all derived from the model image: activations ``max act_bits``,
weights ``max weight_bits``, accumulators ``max accumulator_bits`` (proven
bounds), scaler ``acc + mult_bits + 1`` bits, phases ``phase_bits``.
"""

import math

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..fixedpoint import signed_bits, signed_max
from ..model_image import ModelImage
from .args import check_int, is_int
from .butterfly import HadamardButterfly
from .coords import FirstLayerPhases
from .fifo import FlagFIFO
from .mac import MacArray, layer_weight_rows
from .scaler import ChannelScaler
from .requant import Requantizer
from .sine_lut import SineLUT, is_quarter_wave_symmetric

__all__ = ["InrCore", "CorePlan", "region_layout"]

DSP_KINDS = ("generic", "ice40")


def _bits(n):
    """Bits of an unsigned counter that holds ``0 … n`` (at least 1)."""
    return max(1, int(n).bit_length())


def _pow2_ceil(n):
    return 1 << max(0, (int(n) - 1).bit_length())


def region_layout(model):
    """``{"x0", "y0", "x1", "y1"}``: a half-open pixel rectangle of ``model``'s image."""
    return data.StructLayout({
        "x0": unsigned(_bits(model.width - 1)), "y0": unsigned(_bits(model.height - 1)),
        "x1": unsigned(_bits(model.width)), "y1": unsigned(_bits(model.height)),
    })


class CorePlan:
    """Everything about the core that follows from the model and the
    parameters, computed without elaborating anything (used by the core, the
    fit estimator and the reports)."""

    def __init__(self, model, lanes=16, dsp="generic", buffers=6, act_word_bits=32):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        if not is_int(lanes):
            raise TypeError(f"lanes must be an integer, not {lanes!r}")
        if lanes < 1 or lanes & (lanes - 1) or lanes > 256:
            raise ValueError(f"lanes must be a power of two in [1, 256], got {lanes}")
        if dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        check_int("buffers", buffers, 2)
        check_int("act_word_bits", act_word_bits, 1)
        model.validate()
        self.model = m = model
        self.lanes = P = lanes
        self.dsp = dsp
        self.buffers = buffers
        L = len(m.layers)
        self.n_layers = L
        mac = m.layers[1:]
        rot_widths = {l.in_features for l in mac if l.rotate}
        if len(rot_widths) > 1:
            raise ValueError(f"rotated layers of different input widths {sorted(rot_widths)} are not supported")
        self.rot_n = rot_widths.pop() if rot_widths else 0
        self.act_bits = max(l.act_bits for l in mac)
        self.weight_bits = max(l.weight_bits for l in mac)
        self.acc_bits = max(m.accumulator_bits(i) for i in range(1, L))
        self.mult_bits = max(l.mult_bits for l in mac)
        self.lut_bits = max(l.lut_bits for l in mac)
        self.chunks = [0] + [math.ceil(l.in_features / P) for l in mac]
        self.cpow = _pow2_ceil(max(self.chunks[1:]))
        self.vec_max = max(l.in_features for l in mac)
        # Activation buffers: `act_word` activations per memory word (the
        # largest power of two that fits act_word_bits, at least 1); a job's
        # whole input vector (cpow·lanes activations, `load_words` words) is
        # copied into flip-flops before the job starts.
        self.act_word_bits = act_word_bits
        vp = self.cpow * P
        r = 1
        while r * 2 * self.act_bits <= act_word_bits and r * 2 <= vp:
            r *= 2
        self.act_word = r
        self.load_words = vp // r
        self.out_max = max(l.out_features for l in m.layers)
        # Weight ROM: one row of `lanes` weights per (layer, neuron, chunk).
        self.wbase = [0] * L
        rows = 0
        for i in range(1, L):
            self.wbase[i] = rows
            rows += m.layers[i].out_features * self.chunks[i]
        self.weight_rows = rows
        # Scaler constants: one entry per output neuron of each MAC layer.
        self.obase = [0] * L
        n = 0
        for i in range(1, L):
            self.obase[i] = n
            n += m.layers[i].out_features
        self.scale_rows = n
        bias_lo = min(int(l.bias.min()) for l in mac)
        bias_hi = max(int(l.bias.max()) for l in mac)
        self.bias_bits = signed_bits(min(bias_lo, 0), max(bias_hi, 0))
        # Sine tables of layers 1…L-1, identical ones stored once.
        self.tables, self.table_of = [], [0] * L
        for i in range(1, L):
            lut = m.layers[i].lut
            for t, tab in enumerate(self.tables):
                if np.array_equal(tab, lut):
                    self.table_of[i] = t
                    break
            else:
                self.table_of[i] = len(self.tables)
                self.tables.append(lut)
        self.quarter_wave = all(is_quarter_wave_symmetric(t) for t in self.tables)
        # DSP mapping.
        self.dual = self.act_bits <= 8 and self.weight_bits <= 8
        if dsp == "ice40" and (self.act_bits > 16 or self.weight_bits > 16):
            raise ValueError("SB_MAC16 multiplies at most 16×16 bits")
        self.multipliers = P
        self.dsp_blocks = (P + 1) // 2 if self.dual else P

    # ---------------------------------------------------------- performance
    def job_cycles(self, i):
        """MAC-array beats of layer ``i`` (≥ 1) of one pixel."""
        return self.model.layers[i].out_features * self.chunks[i]

    def job_slot(self, i):
        """Cycles the MAC array spends on layer ``i`` of one pixel: its beats,
        or, for a job shorter than the copy of the next job's input vector
        (``load_words + 2`` cycles from the job's start: staging, one read
        per word, the last word's write), that copy."""
        return max(self.job_cycles(i), self.load_words + 2)

    def beats_per_pixel(self):
        """MAC-array beats per pixel (each beat: ``lanes`` multiplier slots)."""
        return sum(self.job_cycles(i) for i in range(1, self.n_layers))

    def cycles_per_pixel(self):
        """Steady-state cycles per pixel (MAC-bound schedule, including the
        cycles in which a short job waits for the next input vector)."""
        return sum(self.job_slot(i) for i in range(1, self.n_layers))

    def macs_per_pixel(self):
        """Multiplications per pixel done by the MAC array (layer 0 is free)."""
        return self.model.macs_per_pixel(include_first=False)

    def ideal_cycles_per_pixel(self):
        return self.macs_per_pixel() / self.multipliers

    def efficiency(self, cycles_per_pixel=None):
        """MACs issued per cycle ÷ multipliers available."""
        c = self.cycles_per_pixel() if cycles_per_pixel is None else cycles_per_pixel
        return self.macs_per_pixel() / (self.multipliers * c)

    def summary(self):
        return {
            "lanes": self.lanes, "multipliers": self.multipliers, "dsp_blocks": self.dsp_blocks,
            "dual_8x8": self.dual, "buffers": self.buffers,
            "activation_word": self.act_word, "vector_load_cycles": self.load_words + 2,
            "beats_per_pixel": self.beats_per_pixel(),
            "macs_per_pixel": self.macs_per_pixel(),
            "first_layer_macs_per_pixel": 0,
            "first_layer": "running sums (additions only, no multiplier)",
            "cycles_per_pixel": self.cycles_per_pixel(),
            "ideal_cycles_per_pixel": self.ideal_cycles_per_pixel(),
            "multiplier_efficiency": self.efficiency(),
        }


def _switch(m, sel, cases, target, default=0):
    """``target = cases[sel]`` (comb) for a list of constants or expressions."""
    with m.Switch(sel):
        for j, v in enumerate(cases):
            with m.Case(j):
                m.d.comb += target.eq(v)
        with m.Default():
            m.d.comb += target.eq(default)


class InrCore(wiring.Component):
    """Whole-image INR inference core (see the module docstring).

    Parameters
    ----------
    model : ModelImage
        The integer model (any depth, widths, bit widths, rotate flags).
    lanes : int
        Multipliers of the MAC array (power of two, 1…256).
    dsp : "generic" | "ice40"
        ``generic``: plain ``*``; ``ice40``: ``SB_MAC16`` instances.
    buffers : int
        Activation buffers (≥ 2); up to ``buffers − 1`` pixels in flight.
    act_word_bits : int
        Width of the activation-buffer memory word (≥ 1; activations per word:
        the largest power of two that fits, at least one).

    Ports: ``start`` (pulse, samples ``region``), ``region``, ``busy``,
    ``pixels`` (stream of ``pixel_bits · channels`` bits, channel ``c`` in
    bits ``[c·pixel_bits, (c+1)·pixel_bits)``, raster order of the region).
    A ``start`` while ``busy`` is ignored. An empty region (``x1 ≤ x0`` or
    ``y1 ≤ y0``) produces no pixel.
    """

    def __init__(self, model, *, lanes=16, dsp="generic", buffers=6, act_word_bits=32):
        self.plan = CorePlan(model, lanes=lanes, dsp=dsp, buffers=buffers, act_word_bits=act_word_bits)
        self.model = model
        self.lanes = lanes
        self.dsp = dsp
        self.buffers = buffers
        super().__init__({
            "start": In(1),
            "region": In(region_layout(model)),
            "busy": Out(1),
            "pixels": Out(stream.Signature(unsigned(model.pixel_bits * model.channels))),
        })
        #: Observation only (not a port): high in every cycle in which the MAC
        #: array issues a beat (``lanes`` multiplier slots); simulations count
        #: it to measure multiplier efficiency.
        self.mac_issue = Signal()

    def elaborate(self, platform):
        m = Module()
        plan, model = self.plan, self.model
        layers = model.layers
        L = plan.n_layers
        P, NB = plan.lanes, plan.buffers
        ab, wb, accw = plan.act_bits, plan.weight_bits, plan.acc_bits
        K, pb, C = model.phase_bits, model.pixel_bits, model.channels
        lw = _bits(L - 1)
        bw = _bits(NB - 1)
        kw = _bits(plan.out_max - 1)
        cw = _bits(plan.cpow - 1)
        last_layer = L - 1

        # ------------------------------------------------------------ memories
        R, Wv = plan.act_word, plan.load_words
        lr = (R - 1).bit_length()
        ww = (Wv - 1).bit_length()
        Vp = plan.cpow * P
        act_mem = Memory(shape=unsigned(R * ab), depth=NB * Wv, init=[])
        m.submodules.act_mem = act_mem
        act_wr = act_mem.write_port(granularity=ab)
        act_rd = act_mem.read_port()

        wrows = np.concatenate([layer_weight_rows(layers[i].weight, P)[0] for i in range(1, L)])
        m.submodules.mac = mac = MacArray(wrows, act_bits=ab, weight_bits=wb, acc_width=accw, tag_width=lw,
                                          dsp=self.dsp)


        # ------------------------------------------------------------ control state
        active = Signal()            # a region is being rendered
        outstanding = Signal(range(NB + 1))
        free = Signal(NB, init=(1 << NB) - 1)
        free_set = Signal(NB)
        free_clr = Signal(NB)
        m.d.sync += free.eq((free | free_set) & ~free_clr)

        # Lowest free buffer, registered (timing). One cycle stale, which is
        # safe: only the arbiter takes buffers, and after taking one it spends
        # at least one cycle outside IDLE, by which time this has caught up;
        # a buffer that has just been freed is merely offered a cycle late.
        alloc_ok = Signal()
        alloc_id = Signal(bw)
        for b in reversed(range(NB)):
            with m.If(free[b]):
                m.d.sync += [alloc_ok.eq(1), alloc_id.eq(b)]
        with m.If(free == 0):
            m.d.sync += alloc_ok.eq(0)

        # Ready queue of (buffer, layer) vectors that a MAC job may consume.
        m.submodules.readyq = readyq = FlagFIFO(width=bw + lw, depth=NB)
        # Accumulators of MAC jobs: (acc, layer).
        acc_depth = _pow2_ceil(plan.out_max + 4)
        m.submodules.accq = accq = FlagFIFO(width=accw + lw, depth=acc_depth)
        # Finished pixels.
        m.submodules.outq = outq = FlagFIFO(width=pb * C, depth=NB)

        m.d.comb += [
            self.pixels.payload.eq(outq.r_data),
            self.pixels.valid.eq(outq.r_rdy),
            outq.r_en.eq(self.pixels.ready),
        ]
        accepted = Signal()
        m.d.comb += accepted.eq(self.pixels.valid & self.pixels.ready)

        # ------------------------------------------------------------ coordinates
        m.submodules.coords = coords = FirstLayerPhases(model)
        # The start command and the region are registered first (timing).
        begin = Signal()
        start_q = Signal()
        reg = Signal(region_layout(model))
        m.d.comb += begin.eq(self.start & ~self.busy)
        m.d.sync += start_q.eq(begin)
        empty = Signal()          # registered with the region (timing)
        with m.If(begin):
            m.d.sync += [reg.eq(self.region),
                         empty.eq((self.region.x1 <= self.region.x0) | (self.region.y1 <= self.region.y0))]
        m.d.comb += [
            coords.start.eq(start_q & ~empty),
            coords.x0.eq(reg.x0), coords.y0.eq(reg.y0), coords.x1.eq(reg.x1), coords.y1.eq(reg.y1),
        ]
        m.d.comb += self.busy.eq(active | start_q)
        admit = Signal()
        m.d.sync += outstanding.eq(outstanding + admit - accepted)
        with m.If(start_q & ~empty):
            m.d.sync += active.eq(1)
        with m.Elif(coords.done & (outstanding == 0)):
            m.d.sync += active.eq(0)

        # ------------------------------------------------------------ per-layer tables
        def const_of(values, shape):
            return [Const(int(v), shape) for v in values]

        rot = [bool(l.rotate) for l in layers]
        out_feat = [l.out_features for l in layers]

        # ------------------------------------------------------------ MAC array
        job_active = Signal()
        job_buf = Signal(bw)
        job_layer = Signal(lw)
        job_c = Signal(cw)
        c_rem = Signal(cw)       # chunks left in this neuron's dot product, minus one
        k_rem = Signal(kw)       # neurons left in this job, minus one
        waddr = Signal(mac.addr_width)

        inflight = Signal(range(acc_depth + 1))   # accumulators issued, not yet in the FIFO
        # Registered (timing): one cycle stale, hence the margin of 2 more.
        credit = Signal()
        m.d.sync += credit.eq(accq.level + inflight + 3 < acc_depth)

        # The next job waits in registers (loaded from the ready queue as soon
        # as they are free), with its constants looked up in advance, so that
        # it starts in the cycle after the current job's last beat.
        nxt_valid = Signal()
        nxt_buf = Signal(bw)
        nxt_layer = Signal(lw)
        nxt_wbase = Signal.like(waddr)
        nxt_last_c = Signal(cw)
        nxt_last_k = Signal(kw)
        nxt_c1 = Signal()         # the next job has one chunk per neuron
        nxt_k1 = Signal()         # the next job has one neuron
        head_wbase = Signal.like(waddr)
        head_last_c = Signal(cw)
        head_last_k = Signal(kw)
        head_l = readyq.r_data[bw:]
        _switch(m, head_l, plan.wbase, head_wbase)
        _switch(m, head_l, [plan.chunks[i] - 1 if i else 0 for i in range(L)], head_last_c)
        _switch(m, head_l, [out_feat[i] - 1 for i in range(L)], head_last_k)
        take = Signal()
        # The staged job is replaced from the ready queue when empty or taken.
        stage = Signal()
        m.d.comb += [stage.eq(~nxt_valid | take), readyq.r_en.eq(stage)]
        # Its input vector is copied word by word into `shd` (flip-flops); the
        # buffer is free as soon as the last word has been read.
        ld_run = Signal()
        ld_w = Signal(max(1, ww))
        rd_v, rd_last = Signal(), Signal()
        rd_w = Signal(max(1, ww))
        shd_full = Signal()
        shd = Signal(Vp * ab)
        cur = Signal(Vp * ab)     # the running job's input vector
        with m.If(stage):
            m.d.sync += [nxt_valid.eq(readyq.r_rdy), ld_run.eq(readyq.r_rdy), ld_w.eq(0),
                         nxt_buf.eq(readyq.r_data[:bw]), nxt_layer.eq(head_l),
                         nxt_wbase.eq(head_wbase), nxt_last_c.eq(head_last_c), nxt_last_k.eq(head_last_k),
                         nxt_c1.eq(head_last_c == 0), nxt_k1.eq(head_last_k == 0)]
        with m.Elif(ld_run):
            m.d.sync += ld_w.eq(ld_w + 1)
            with m.If(ld_w == Wv - 1):
                m.d.sync += ld_run.eq(0)
        m.d.comb += act_rd.addr.eq(Cat(ld_w[:ww], nxt_buf) if ww else nxt_buf)
        # (While loading, the staged job cannot be taken: no `stage` then.)
        m.d.sync += [rd_v.eq(ld_run), rd_w.eq(ld_w), rd_last.eq(ld_run & (ld_w == Wv - 1))]
        with m.If(rd_v):
            if ww:
                with m.Switch(rd_w):
                    for w in range(Wv):
                        with m.Case(w):
                            m.d.sync += shd.word_select(w, R * ab).eq(act_rd.data)
            else:
                m.d.sync += shd.eq(act_rd.data)
        with m.If(rd_last):
            m.d.sync += shd_full.eq(1)
            m.d.comb += free_set.eq(Const(1, NB) << nxt_buf)   # buffer read for the last time now
        with m.If(take):
            m.d.sync += [shd_full.eq(0), cur.eq(shd)]

        # Every decision of the beat loop is a registered flag (timing): the
        # current beat ends a neuron's dot product (c_last), the job's last
        # neuron is running (k_last), the current beat is the job's last
        # (j_last); they are computed one beat ahead from registers only.
        issue = self.mac_issue
        beat_first = Signal()
        c_last = Signal()
        k_last = Signal()
        j_last = Signal()
        job_c1 = Signal()         # the running job has one chunk per neuron
        job_last_c = Signal(cw)
        m.d.comb += [
            issue.eq(job_active & credit),
            beat_first.eq(job_c == 0),
        ]
        beat_last = c_last
        job_end = Signal()
        m.d.comb += [
            job_end.eq(issue & j_last),
            take.eq(nxt_valid & shd_full & (~job_active | job_end)),
        ]
        c_one = Signal()          # c_rem == 1: the next beat ends the neuron
        k_one = Signal()          # k_rem == 1: the next neuron is the job's last
        m.d.comb += [c_one.eq(c_rem == 1), k_one.eq(k_rem == 1)]
        with m.If(take):
            m.d.sync += [job_active.eq(1), job_buf.eq(nxt_buf), job_layer.eq(nxt_layer),
                         job_c.eq(0), c_rem.eq(nxt_last_c), k_rem.eq(nxt_last_k), waddr.eq(nxt_wbase),
                         job_last_c.eq(nxt_last_c), job_c1.eq(nxt_c1),
                         c_last.eq(nxt_c1), k_last.eq(nxt_k1), j_last.eq(nxt_c1 & nxt_k1)]
        with m.Elif(job_end):
            m.d.sync += job_active.eq(0)
        with m.Elif(issue):
            m.d.sync += [waddr.eq(waddr + 1), job_c.eq(job_c + 1), c_rem.eq(c_rem - 1)]
            with m.If(c_last):
                m.d.sync += [job_c.eq(0), c_rem.eq(job_last_c), k_rem.eq(k_rem - 1),
                             c_last.eq(job_c1), k_last.eq(k_one), j_last.eq(job_c1 & k_one)]
            with m.Else():
                m.d.sync += [c_last.eq(c_one), j_last.eq(c_one & k_last)]

        # Beat: the chunk of the job's vector is registered (1 cycle, aligned
        # with the weight read address), then goes into the MAC array.
        beat_act = Signal(P * ab)
        m.d.sync += beat_act.eq(cur.word_select(job_c, P * ab) if plan.cpow > 1 else cur)
        m.d.sync += [
            mac.i.valid.eq(issue),
            mac.i.payload.addr.eq(waddr),
            mac.i.payload.first.eq(beat_first),
            mac.i.payload.last.eq(beat_last),
            mac.i.payload.tag.eq(job_layer),
        ]
        for j in range(P):
            m.d.comb += mac.i.payload.act[j].eq(beat_act[j * ab:(j + 1) * ab].as_signed())
        push = Signal()
        m.d.comb += [
            mac.o.ready.eq(1),
            push.eq(mac.o.valid),
            accq.w_en.eq(push),
            accq.w_data.eq(Cat(mac.o.payload.acc, mac.o.payload.tag)),
        ]
        m.d.sync += inflight.eq(inflight + (issue & beat_last) - push)

        # ------------------------------------------------------------ vector arbiter
        it_valid = Signal()
        it_coord = Signal()
        it_layer = Signal(lw)
        it_k = Signal(kw)
        it_dest = Signal(bw)
        it_val = Signal(signed(max(accw, K + 1)))
        vec_layer = Signal(lw)
        vec_dest = Signal(bw)
        vec_k = Signal(kw)
        # Registered (timing): the element taken next is the vector's last.
        vec_rem = Signal(kw)      # elements left after the next one
        vec_end = Signal()
        head_last_n = Signal(kw)
        _switch(m, accq.r_data[accw:], [out_feat[i] - 1 for i in range(L)], head_last_n)

        # Elements of vectors headed for the butterfly / for the direct path.
        rot_cnt = Signal(range(4 * plan.vec_max + 64))
        dir_cnt = Signal(range(4 * plan.vec_max + 64))
        rot_inc = Signal()
        dir_inc = Signal()
        rot_dec = Signal()
        dir_dec = Signal()
        m.d.sync += [rot_cnt.eq(rot_cnt + rot_inc - rot_dec), dir_cnt.eq(dir_cnt + dir_inc - dir_dec)]

        head_layer = accq.r_data[accw:]
        head_next_rot = Signal()
        _switch(m, head_layer, [rot[i + 1] if i + 1 < L else 0 for i in range(L)], head_next_rot)
        vec_next_rot = Signal()
        _switch(m, vec_layer, [rot[i + 1] if i + 1 < L else 0 for i in range(L)], vec_next_rot)
        # Registered (timing) and conservative: "empty now" is known one cycle
        # late when the last element leaves, never claimed while one enters.
        rot_zero, dir_zero = Signal(init=1), Signal(init=1)
        m.d.sync += [rot_zero.eq((rot_cnt == 0) & ~rot_inc), dir_zero.eq((dir_cnt == 0) & ~dir_inc)]
        path_ok_head = Mux(head_next_rot, dir_zero, rot_zero)
        path_ok_coord = dir_zero if rot[1] else rot_zero

        # Registered (timing): may a new pixel enter? Stale by one cycle only
        # right after an admission, when the arbiter is busy anyway.
        coord_ok = Signal()
        m.d.sync += coord_ok.eq(active & coords.ready & (outstanding < NB - 1) & ~admit)
        # The request for the next pixel's phases is registered (timing: the
        # arbiter's decision does not run into the generator's control).
        coord_next = Signal()
        m.d.sync += coord_next.eq(0)
        m.d.comb += coords.next.eq(coord_next)
        with m.FSM(name="arbiter"):
            with m.State("IDLE"):
                with m.If(accq.r_rdy):
                    with m.If(head_layer == last_layer):
                        m.d.sync += [vec_layer.eq(head_layer), vec_k.eq(0), vec_rem.eq(head_last_n),
                                     vec_end.eq(head_last_n == 0)]
                        m.next = "MAC"
                    with m.Elif(alloc_ok & path_ok_head):
                        m.d.comb += free_clr.eq(Const(1, NB) << alloc_id)
                        m.d.sync += [vec_layer.eq(head_layer), vec_k.eq(0), vec_dest.eq(alloc_id),
                                     vec_rem.eq(head_last_n), vec_end.eq(head_last_n == 0)]
                        m.next = "MAC"
                with m.Elif(coord_ok & alloc_ok & path_ok_coord):
                    m.d.comb += [free_clr.eq(Const(1, NB) << alloc_id), admit.eq(1)]
                    m.d.sync += coord_next.eq(1)
                    m.d.sync += [vec_layer.eq(0), vec_dest.eq(alloc_id)]
                    m.next = "COORD"
            with m.State("MAC"):
                m.d.comb += accq.r_en.eq(1)
                with m.If(accq.r_rdy):
                    m.d.comb += [it_valid.eq(1), it_val.eq(accq.r_data[:accw].as_signed())]
                    m.d.sync += [vec_k.eq(vec_k + 1), vec_rem.eq(vec_rem - 1), vec_end.eq(vec_rem == 1)]
                    with m.If(vec_end):
                        m.next = "IDLE"
                m.d.comb += [it_coord.eq(0), it_layer.eq(vec_layer), it_k.eq(vec_k), it_dest.eq(vec_dest)]
            with m.State("COORD"):
                m.d.comb += [it_valid.eq(coords.valid), it_coord.eq(1), it_val.eq(coords.phase),
                             it_layer.eq(0), it_k.eq(coords.index), it_dest.eq(vec_dest)]
                with m.If(coords.valid & coords.last):
                    m.next = "IDLE"
        with m.If(it_valid & (it_layer != last_layer)):
            m.d.comb += [rot_inc.eq(vec_next_rot), dir_inc.eq(~vec_next_rot)]

        # ------------------------------------------------------------ scaler
        # Accumulators become phases / pixels; layer-0 phases (already scaled
        # by the running sums) ride along in the tag so that every vector
        # keeps its place in the stream.
        stag_w = 1 + K + bw
        m.submodules.scaler = scaler = ChannelScaler(model, acc_width=accw, tag_width=stag_w)
        m.d.comb += [
            scaler.i.valid.eq(it_valid),
            scaler.i.payload.acc.eq(Mux(it_coord, 0, it_val[:accw].as_signed())),
            scaler.i.payload.layer.eq(it_layer),
            scaler.i.payload.channel.eq(it_k),
            scaler.i.payload.tag.eq(Cat(it_coord, it_val[:K], it_dest)),
            scaler.o.ready.eq(1),
        ]
        so = scaler.o.payload
        sc_valid = scaler.o.valid
        sc_coord = so.tag[0]
        sc_layer = so.layer
        sc_k = so.channel
        sc_dest = so.tag[1 + K:]
        sc_pixel = Signal()
        sc_phase = Signal(K)
        sc_pix = so.value[:pb]
        m.d.comb += [
            sc_pixel.eq(~sc_coord & (sc_layer == last_layer)),
            sc_phase.eq(Mux(sc_coord, so.tag[1:1 + K], so.value[:K])),
        ]

        # ------------------------------------------------------------ pixel collector
        pix_word = Signal(pb * C)
        pix_done = Signal()
        with m.If(sc_valid & sc_pixel):
            with m.Switch(sc_k):
                for c in range(C):
                    with m.Case(c):
                        m.d.sync += pix_word.word_select(c, pb).eq(sc_pix)
        m.d.sync += pix_done.eq(sc_valid & sc_pixel & (sc_k == C - 1))
        m.d.comb += [outq.w_en.eq(pix_done), outq.w_data.eq(pix_word)]

        # ------------------------------------------------------------ sine LUT
        tag_w = kw + bw + lw
        m.submodules.lut = lut = SineLUT(plan.tables, plan.lut_bits, quarter_wave=plan.quarter_wave,
                                         tag_width=tag_w)
        lut_sel = Signal(lut.sel_width)
        _switch(m, sc_layer, [plan.table_of[i + 1] if i + 1 < L else 0 for i in range(L)], lut_sel)
        m.d.comb += [
            lut.i.valid.eq(sc_valid & ~sc_pixel),
            lut.i.payload.phase.eq(sc_phase),
            lut.i.payload.sel.eq(lut_sel),
            lut.i.payload.tag.eq(Cat(sc_k, sc_dest, sc_layer)),
            lut.o.ready.eq(1),
        ]
        lo_k = lut.o.payload.tag[:kw]
        lo_dest = lut.o.payload.tag[kw:kw + bw]
        lo_layer = lut.o.payload.tag[kw + bw:]
        lo_rot = Signal()
        _switch(m, lo_layer, [rot[i + 1] if i + 1 < L else 0 for i in range(L)], lo_rot)

        # ------------------------------------------------------------ rotated path
        wr_valid = Signal()
        wr_q = Signal(signed(ab))
        wr_k = Signal(kw)
        wr_dest = Signal(bw)
        wr_layer = Signal(lw)   # layer that produced the vector (next layer = wr_layer + 1)
        rq_valid = Signal()
        rq_q = Signal(signed(ab))
        rq_k = Signal(kw)
        rq_dest = Signal(bw)
        rq_layer = Signal(lw)
        if plan.rot_n:
            n = plan.rot_n
            rot_pairs = [(int(layers[i + 1].req_mult), int(layers[i + 1].req_shift)) if i + 1 < L else (1, 0)
                         for i in range(L)]
            rq_bits = max(layers[i].act_bits for i in range(1, L) if rot[i])
            bf_in = Signal(signed(plan.lut_bits))
            bf_valid = Signal()
            bf_tag = Signal(bw + lw)
            m.d.comb += [bf_valid.eq(lut.o.valid & lo_rot), bf_in.eq(lut.o.payload.data),
                         bf_tag.eq(Cat(lo_dest, lo_layer))]
            if n >= 2:
                m.submodules.butterfly = bf = HadamardButterfly(n, plan.lut_bits, tag_width=bw + lw)
                m.d.comb += [
                    bf.i.valid.eq(bf_valid), bf.i.payload.data.eq(bf_in), bf.i.payload.tag.eq(bf_tag),
                    bf.o.ready.eq(1),
                ]
                bo_valid, bo_data, bo_tag = bf.o.valid, bf.o.payload.data, bf.o.payload.tag
                bo_width = bf.out_width
            else:
                bo_valid, bo_data, bo_tag, bo_width = bf_valid, bf_in, bf_tag, plan.lut_bits
            bo_k = Signal(kw)
            with m.If(bo_valid):
                m.d.sync += bo_k.eq(Mux(bo_k == n - 1, 0, bo_k + 1))
            m.submodules.requant = rq = Requantizer(bo_width, rot_pairs, rq_bits, tag_width=tag_w)
            m.d.comb += [
                rq.i.valid.eq(bo_valid), rq.i.payload.data.eq(bo_data),
                rq.i.payload.sel.eq(bo_tag[bw:]),
                rq.i.payload.tag.eq(Cat(bo_k, bo_tag)),
                rq.o.ready.eq(1),
            ]
            r_k = rq.o.payload.tag[:kw]
            r_dest = rq.o.payload.tag[kw:kw + bw]
            r_layer = rq.o.payload.tag[kw + bw:]
            # Per-layer saturation when the rotated layers differ in act_bits.
            r_q = Signal(signed(ab))
            m.d.comb += r_q.eq(rq.o.payload.data)
            with m.Switch(r_layer):
                for i in range(L - 1):
                    if rot[i + 1] and layers[i + 1].act_bits < rq_bits:
                        lim = signed_max(layers[i + 1].act_bits)
                        d = rq.o.payload.data
                        with m.Case(i):
                            m.d.comb += r_q.eq(Mux(d > lim, lim, Mux(d < -lim, -lim, d)))
            m.d.comb += [rq_valid.eq(rq.o.valid), rq_q.eq(r_q), rq_k.eq(r_k), rq_dest.eq(r_dest),
                         rq_layer.eq(r_layer)]

        # ------------------------------------------------------------ buffer write
        with m.If(lut.o.valid & ~lo_rot):
            m.d.comb += [wr_valid.eq(1), wr_q.eq(lut.o.payload.data), wr_k.eq(lo_k), wr_dest.eq(lo_dest),
                         wr_layer.eq(lo_layer), dir_dec.eq(1)]
        with m.Elif(rq_valid):
            m.d.comb += [wr_valid.eq(1), wr_q.eq(rq_q), wr_k.eq(rq_k), wr_dest.eq(rq_dest),
                         wr_layer.eq(rq_layer), rot_dec.eq(1)]
        wr_last_k = Signal(kw)
        _switch(m, wr_layer, [out_feat[i] - 1 for i in range(L)], wr_last_k)
        # Registered (timing), then written; the vector's last element also
        # puts (buffer, next layer) into the ready queue.
        w_valid, w_last = Signal(), Signal()
        w_q, w_k, w_dest, w_next = Signal(signed(ab)), Signal(kw), Signal(bw), Signal(lw)
        m.d.sync += [w_valid.eq(wr_valid), w_last.eq(wr_valid & (wr_k == wr_last_k)), w_q.eq(wr_q),
                     w_k.eq(wr_k), w_dest.eq(wr_dest), w_next.eq(wr_layer + 1)]
        wk = Signal(max(kw, lr + ww))
        m.d.comb += wk.eq(w_k)
        lane = wk[:lr] if lr else Const(0, 1)
        m.d.comb += [
            act_wr.addr.eq(Cat(wk[lr:lr + ww], w_dest) if ww else w_dest),
            act_wr.data.eq(Cat(*([w_q] * R))),
            act_wr.en.eq(Mux(w_valid, Const(1, R) << lane, 0)),
            readyq.w_en.eq(w_last),
            readyq.w_data.eq(Cat(w_dest, w_next)),
        ]
        return m
