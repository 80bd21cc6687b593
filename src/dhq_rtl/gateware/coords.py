"""Raster coordinate generator and the first layer as running sums.

The first layer of the INR maps the integer pixel coordinates to phases::

    ux = 2x − (W−1),  uy = 2y − (H−1)
    v  = (ux, uy)               or (ux + uy, ux − uy) when layer 0 is rotated
    acc_k   = W0[k] · v
    phase_k = floor((acc_k · mult_k + bias_k) / 2**shift) mod 2**K

Everything before the floor is linear in ``(x, y)``, so with the per-neuron
constants (all taken modulo ``2**(shift + K)``, which is exact because only
bits ``[shift, shift + K)`` survive)::

    t_k(x, y) = base_k + DX_k · x + DY_k · y

the generator walks the raster with additions only: ``t(x+1, y) = t(x, y) +
DX`` and ``t(x0, y+1) = t(x0, y) + DY``. The start of a region,
``base + DX·x0 + DY·y0``, is computed once per region by Horner's rule over the
bits of ``x0`` and ``y0`` (double and add, no multiplier). **The first layer
therefore uses no multiplier at all.**

Storage: a constant table ``(DX, DY, base)`` and one ``2·n``-entry memory
of ``M = shift + K`` bits holding ``R`` (row start, lower half) and ``T``
(current pixel, upper half): one memory with one write port, so that it
takes one block-RAM column (2 EBR for ``M ≤ 32``) instead of two. A row's
first pixel only updates ``R``; the pixel after it reads ``R`` in place of
``T``.

Interface:

* ``start`` (pulse) samples ``region`` (a half-open pixel rectangle,
  :func:`region_layout`) and runs the region set-up:
  ``(2·bits + 1) · (n + 2)`` cycles where ``bits`` is the coordinate width;
  ``done`` is high while no region is being walked.
* ``source`` (:func:`phase_source_signature`; no back-pressure: the consumer
  asks for one pixel at a time and must accept every phase it then gets):
  ``source.ready`` is high when a pixel may be requested; a ``source.next``
  pulse (only while ``ready``) emits the ``n`` phases of the next pixel of
  the region in raster order, one per cycle, on the ``always_ready`` stream
  ``source.phases`` (payload ``{phase, index, last}``), starting 4 cycles
  after ``next`` (the cycle in which ``next`` is high). ``ready`` is low
  from the cycle after ``next`` for ``n`` cycles (while the pixel's steps
  are issued).
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model_image import ModelImage

__all__ = ["FirstLayerPhases", "first_layer_constants", "region_layout", "phase_layout",
           "phase_source_signature", "running_sum_memories"]


def _bits(n):
    """Bits of an unsigned counter that holds ``0 … n`` (at least 1)."""
    return max(1, int(n).bit_length())


def region_layout(model):
    """``{"x0", "y0", "x1", "y1"}``: a half-open pixel rectangle of ``model``'s image."""
    return data.StructLayout({
        "x0": unsigned(_bits(model.width - 1)), "y0": unsigned(_bits(model.height - 1)),
        "x1": unsigned(_bits(model.width)), "y1": unsigned(_bits(model.height)),
    })


def phase_layout(model):
    """One layer-0 phase: ``{"phase": unsigned(phase_bits), "index": neuron,
    "last": the pixel's last phase}``."""
    return data.StructLayout({"phase": unsigned(model.phase_bits),
                              "index": unsigned(_bits(model.layers[0].out_features - 1)),
                              "last": unsigned(1)})


def phase_source_signature(model):
    """The generator's side of the pixel request / phase interface (module docstring)."""
    return wiring.Signature({
        "ready": Out(1),
        "next": In(1),
        "phases": Out(stream.Signature(phase_layout(model), always_ready=True)),
    })


def running_sum_memories(model):
    """``{"rom": (width, depth), "smem": (width, depth)}``: the constant table
    ``(DX, DY, base)`` and the ``R``/``T`` running-sum memory of
    :class:`FirstLayerPhases` for ``model``."""
    n = model.layers[0].out_features
    mod_bits = model.layers[0].shift + model.phase_bits
    return {"rom": (3 * mod_bits, n), "smem": (mod_bits, 2 << _bits(n - 1))}


def first_layer_constants(model):
    """``(dx, dy, base, modulus_bits)``: the per-neuron running-sum constants
    of layer 0 as non-negative Python ints modulo ``2**modulus_bits``."""
    layer = model.layers[0]
    w = layer.weight.astype(object)
    if layer.rotate:
        a, b = w[:, 0] + w[:, 1], w[:, 0] - w[:, 1]
    else:
        a, b = w[:, 0], w[:, 1]
    mod_bits = layer.shift + model.phase_bits
    mod = 1 << mod_bits
    dx, dy, base = [], [], []
    for k in range(layer.out_features):
        mult, bias = int(layer.mult[k]), int(layer.bias[k])
        ak, bk = int(a[k]) * mult, int(b[k]) * mult
        dx.append((2 * ak) % mod)
        dy.append((2 * bk) % mod)
        base.append((-(model.width - 1) * ak - (model.height - 1) * bk + bias) % mod)
    return dx, dy, base, mod_bits


class FirstLayerPhases(wiring.Component):
    """Layer-0 phases of every pixel of a region, by running sums (see module doc).

    Widths: ``phase`` is ``model.phase_bits`` wide; the running sums are
    ``layer0.shift + phase_bits`` bits. Throughput: one phase per cycle while a
    pixel is being emitted; latency 4 cycles from ``next`` to the first phase.
    """

    def __init__(self, model):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        model.validate()
        self.model = model
        self.n = model.layers[0].out_features
        self.dx, self.dy, self.base, self.mod_bits = first_layer_constants(model)
        self.cbits = max(_bits(model.width - 1), _bits(model.height - 1))
        self.kw = _bits(self.n - 1)
        self.cw = max(2, (self.n + 1).bit_length())
        super().__init__({
            "start": In(1),
            "region": In(region_layout(model)),
            "done": Out(1),
            "source": Out(phase_source_signature(model)),
        })

    def elaborate(self, platform):
        m = Module()
        n, M = self.n, self.mod_bits
        consts = [d | (e << M) | (b << 2 * M) for d, e, b in zip(self.dx, self.dy, self.base)]
        m.submodules.rom = rom = Memory(shape=unsigned(3 * M), depth=n, init=consts)
        # R at address k, T at address k + 2**kw.
        m.submodules.smem = smem = Memory(shape=unsigned(M), depth=2 << self.kw, init=[])
        rom_rd = rom.read_port()
        s_wr = smem.write_port()
        s_rd = smem.read_port(transparent_for=(s_wr,))

        region = Signal(region_layout(self.model))
        st = SimpleNamespace(
            region=region,
            y=Signal.like(region.y0), x=Signal.like(region.x0),
            finished=Signal(init=1),
            first_pixel=Signal(),   # next pixel is the region's first
            row_start=Signal(),     # next pixel starts a row
            t_from_r=Signal(),      # next pixel follows a row start: its T is still in R
            rd_t=Signal(),          # stage 1 reads T (not R)
            k=Signal(self.cw),      # step counter
            half=Signal(),          # Horner: 0 = x half, 1 = y half of a bit
            bit=Signal(range(self.cbits + 1)),
            issue=Signal(),         # stage 1 issues a step
            # 0 idle, 1 horner x, 6 horner y, 2 add base, 3 first pixel, 4 row start, 5 step
            mode=Signal(3), xb=Signal(), yb=Signal(),
            zero=Signal(),          # first Horner pass: R is taken as 0
        )
        self._datapath(m, st, rom_rd, s_rd, s_wr)
        self._control(m, st)
        return m

    def _datapath(self, m, st, rom_rd, s_rd, s_wr):
        """Stage 1 (addresses), stage 2 (operands, aligned with the memories'
        read data), stage 3 (one adder from flip-flops, the write and the
        outputs)."""
        n, M, K = self.n, self.mod_bits, self.model.phase_bits
        shift = self.model.layers[0].shift
        s2_valid = Signal()
        s2_k = Signal(self.kw)
        s2_mode = Signal(3)
        s2_xb = Signal()
        s2_yb = Signal()
        s2_zero = Signal()

        dx = rom_rd.data[:M]
        dy = rom_rd.data[M:2 * M]
        base = rom_rd.data[2 * M:]
        rv = s_rd.data
        tv = s_rd.data
        # One two-input adder for every mode (timing: a multiplexer in front
        # of a single carry chain). Horner's step is split into an x half
        # (R = 2R + x_b·DX) and a y half (R = R + y_b·DY).
        op_a = Signal(M)
        op_b = Signal(M)
        new = Signal(M)
        with m.Switch(s2_mode):
            with m.Case(1):
                m.d.comb += [op_a.eq(Mux(s2_zero, 0, rv << 1)), op_b.eq(Mux(s2_xb, dx, 0))]
            with m.Case(6):
                m.d.comb += [op_a.eq(rv), op_b.eq(Mux(s2_yb, dy, 0))]
            with m.Case(2):
                m.d.comb += [op_a.eq(rv), op_b.eq(base)]
            with m.Case(3):
                m.d.comb += [op_a.eq(rv), op_b.eq(0)]
            with m.Case(4):
                m.d.comb += [op_a.eq(rv), op_b.eq(dy)]
            with m.Case(5):
                m.d.comb += [op_a.eq(tv), op_b.eq(dx)]
        # Stage 3: the operands are registered, the adder runs from flip-flops.
        s3_a, s3_b = Signal(M), Signal(M)
        s3_valid, s3_k, s3_mode = Signal(), Signal(self.kw), Signal(3)
        m.d.sync += [s3_a.eq(op_a), s3_b.eq(op_b), s3_valid.eq(s2_valid), s3_k.eq(s2_k), s3_mode.eq(s2_mode)]
        m.d.comb += new.eq(s3_a + s3_b)
        # Mode 3 (first pixel: T = R) writes nothing, mode 4 (row start)
        # writes R only, mode 5 (step) writes T.
        m.d.comb += [
            s_wr.addr.eq(s3_k | ((s3_mode == 5) << self.kw)),
            s_wr.data.eq(new),
            s_wr.en.eq(s3_valid & (s3_mode != 3)),
        ]
        phases = self.source.phases
        m.d.sync += [
            phases.valid.eq(s3_valid & (s3_mode >= 3) & (s3_mode <= 5)),
            phases.payload.phase.eq(new[shift:shift + K]),
            phases.payload.index.eq(s3_k),
            phases.payload.last.eq(s3_k == n - 1),
        ]
        # Stage 1: addresses.
        m.d.comb += [rom_rd.addr.eq(st.k), s_rd.addr.eq(st.k[:self.kw] | (st.rd_t << self.kw))]
        m.d.sync += [s2_valid.eq(st.issue), s2_k.eq(st.k[:self.kw]), s2_mode.eq(st.mode), s2_xb.eq(st.xb),
                     s2_yb.eq(st.yb), s2_zero.eq(st.zero)]

    def _control(self, m, st):
        """The step counter and the FSM: Horner passes, the base, then one
        pixel per ``next``."""
        n = self.n
        region, k, half, bit = st.region, st.k, st.half, st.bit
        # Registered decisions of EMIT (timing): the phase being issued is
        # the pixel's last, the pixel ends its row, the row is the region's
        # last. x, y and the region change only outside EMIT, and EMIT is
        # always entered from READY, so the one-cycle-stale flags are exact.
        x_last = Signal()
        y_last = Signal()
        m.d.sync += [x_last.eq(st.x + 1 == region.x1), y_last.eq(st.y + 1 == region.y1)]
        # Registered comparisons of the step counter k (timing): k counts up
        # by one per cycle in HORNER/BASE/GAP/EMIT and restarts at 0, so each
        # flag is computed from k + 1 (or set for k = 0 on a restart).
        at_n1 = Signal()      # k == n - 1
        at_np1 = Signal()     # k == n + 1
        at_2 = Signal()       # k == 2
        # The Horner pass being run is the last one (bit and half change only
        # at the end of a pass, n + 2 ≥ 3 cycles apart: the flag is exact).
        last_pass = Signal()
        m.d.sync += last_pass.eq(half & ((bit == 1) | ((bit == self.cbits) & (self.cbits == 1))))

        def k_step():
            m.d.sync += [k.eq(k + 1), at_n1.eq(k == n - 2) if n >= 2 else at_n1.eq(0),
                         at_np1.eq(k == n), at_2.eq(k == 1)]

        def k_zero():
            m.d.sync += [k.eq(0), at_n1.eq(n == 1), at_np1.eq(0), at_2.eq(0)]

        def begin():
            m.d.sync += [region.eq(self.region), bit.eq(self.cbits), half.eq(0), st.finished.eq(0)]
            k_zero()
            m.next = "HORNER"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    begin()
            with m.State("HORNER"):
                # bit == cbits: first pass (R taken as 0, bit index cbits-1).
                idx = Signal(range(self.cbits))
                m.d.comb += idx.eq(Mux(bit == self.cbits, self.cbits - 1, bit - 1))
                # Each pass is followed by two idle cycles, so that its last
                # write lands before the next pass reads (short vectors).
                m.d.comb += [st.issue.eq(k < n), st.mode.eq(Mux(half, 6, 1)),
                             st.zero.eq((bit == self.cbits) & ~half),
                             st.xb.eq(region.x0.bit_select(idx, 1)), st.yb.eq(region.y0.bit_select(idx, 1))]
                k_step()
                with m.If(at_np1):
                    k_zero()
                    m.d.sync += half.eq(~half)
                    with m.If(last_pass):
                        m.next = "BASE"
                    with m.Elif(half):
                        m.d.sync += bit.eq(Mux(bit == self.cbits, self.cbits - 1, bit - 1))
            with m.State("BASE"):
                m.d.comb += [st.issue.eq(1), st.mode.eq(2)]
                k_step()
                with m.If(at_n1):
                    k_zero()
                    m.d.sync += [st.first_pixel.eq(1), st.row_start.eq(1), st.x.eq(region.x0), st.y.eq(region.y0)]
                    m.next = "GAP"
            with m.State("GAP"):
                # Idle cycles so that the last write lands before the next read.
                k_step()
                with m.If(at_2):
                    k_zero()
                    m.next = "READY"
            with m.State("READY"):
                m.d.comb += [self.source.ready.eq(~st.finished), self.done.eq(st.finished)]
                with m.If(self.start):
                    begin()
                with m.Elif(self.source.next & ~st.finished):
                    m.next = "EMIT"
            with m.State("EMIT"):
                self._emit(m, st, k_step, k_zero, at_n1, x_last, y_last)

    def _emit(self, m, st, k_step, k_zero, at_n1, x_last, y_last):
        """EMIT: the ``n`` steps of one pixel, then the raster position moves on."""
        m.d.comb += [st.issue.eq(1),
                     st.mode.eq(Mux(st.first_pixel, 3, Mux(st.row_start, 4, 5))),
                     st.rd_t.eq(~st.first_pixel & ~st.row_start & ~st.t_from_r)]
        k_step()
        with m.If(at_n1):
            k_zero()
            m.d.sync += [st.first_pixel.eq(0), st.t_from_r.eq(st.first_pixel | st.row_start)]
            with m.If(x_last):
                m.d.sync += [st.x.eq(st.region.x0), st.row_start.eq(1), st.y.eq(st.y + 1)]
                with m.If(y_last):
                    m.d.sync += st.finished.eq(1)
            with m.Else():
                m.d.sync += [st.x.eq(st.x + 1), st.row_start.eq(0)]
            m.next = "READY"
