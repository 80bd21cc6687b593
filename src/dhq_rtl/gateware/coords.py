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

Interface (valid-only, no back-pressure: the consumer asks for one pixel at a
time with ``next`` and must accept every phase it then emits):

* ``start`` (pulse) samples ``region`` (x0, y0, x1) and runs the region set-up:
  ``(2·bits + 1) · (n + 2)`` cycles where ``bits`` is the coordinate width. ``ready``
  is high when a pixel may be requested.
* ``next`` (pulse, only while ``ready``) emits the ``n`` phases of the next
  pixel of the region in raster order, one per cycle, on ``valid``/``phase``/
  ``index``/``last``, starting 3 cycles after ``next``.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model_image import ModelImage

__all__ = ["FirstLayerPhases", "first_layer_constants"]


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
    pixel is being emitted; latency 3 cycles from ``next`` to the first phase.
    """

    def __init__(self, model):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        model.validate()
        self.model = model
        self.n = model.layers[0].out_features
        self.dx, self.dy, self.base, self.mod_bits = first_layer_constants(model)
        self.xw = max(1, (model.width - 1).bit_length())
        self.yw = max(1, (model.height - 1).bit_length())
        self.cbits = max(self.xw, self.yw)
        self.kw = max(1, (self.n - 1).bit_length())
        self.cw = max(2, (self.n + 1).bit_length())
        super().__init__({
            "start": In(1),
            "x0": In(self.xw), "y0": In(self.yw), "x1": In(max(1, model.width.bit_length())), "y1": In(max(1, model.height.bit_length())),
            "done": Out(1),
            "ready": Out(1),
            "next": In(1),
            "valid": Out(1),
            "phase": Out(model.phase_bits),
            "index": Out(self.kw),
            "last": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, M, K = self.n, self.mod_bits, self.model.phase_bits
        shift = self.model.layers[0].shift

        consts = [d | (e << M) | (b << 2 * M) for d, e, b in zip(self.dx, self.dy, self.base)]
        m.submodules.rom = rom = Memory(shape=unsigned(3 * M), depth=n, init=consts)
        # R at address k, T at address k + 2**kw.
        m.submodules.smem = smem = Memory(shape=unsigned(M), depth=2 << self.kw, init=[])
        rom_rd = rom.read_port()
        s_wr = smem.write_port()
        s_rd = smem.read_port(transparent_for=(s_wr,))

        x0 = Signal.like(self.x0)
        y0 = Signal.like(self.y0)
        x1 = Signal.like(self.x1)
        y1 = Signal.like(self.y1)
        y = Signal.like(self.y0)
        finished = Signal(init=1)
        x = Signal.like(self.x0)
        first_pixel = Signal()   # next pixel is the region's first
        row_start = Signal()     # next pixel starts a row
        t_from_r = Signal()      # next pixel follows a row start: its T is still in R
        # Registered decisions of EMIT (timing): the phase being issued is
        # the pixel's last, the pixel ends its row, the row is the region's
        # last. x, y and x1, y1 change only outside EMIT, and EMIT is always
        # entered from READY, so the one-cycle-stale flags are exact.
        x_last = Signal()
        y_last = Signal()
        m.d.sync += [x_last.eq(x + 1 == x1), y_last.eq(y + 1 == y1)]
        rd_t = Signal()          # stage 1 reads T (not R)

        k = Signal(self.cw)
        half = Signal()          # Horner: 0 = x half, 1 = y half of a bit
        bit = Signal(range(self.cbits + 1))
        # Stage-2 control (aligned with the memories' read data).
        s2_valid = Signal()
        s2_k = Signal(self.kw)
        s2_mode = Signal(3)      # 0 idle, 1 horner x, 6 horner y, 2 add base, 3 first pixel, 4 row start, 5 step
        s2_xb = Signal()
        s2_yb = Signal()
        s2_zero = Signal()       # first Horner pass: R is taken as 0
        zero = Signal()
        mode = Signal(3)
        xb = Signal()
        yb = Signal()

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
        m.d.sync += [
            self.valid.eq(s3_valid & (s3_mode >= 3) & (s3_mode <= 5)),
            self.phase.eq(new[shift:shift + K]),
            self.index.eq(s3_k),
            self.last.eq(s3_k == n - 1),
        ]
        # Stage 1: addresses.
        issue = Signal()
        m.d.comb += [rom_rd.addr.eq(k), s_rd.addr.eq(k[:self.kw] | (rd_t << self.kw))]
        m.d.sync += [s2_valid.eq(issue), s2_k.eq(k[:self.kw]), s2_mode.eq(mode), s2_xb.eq(xb), s2_yb.eq(yb),
                     s2_zero.eq(zero)]

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
            m.d.sync += [x0.eq(self.x0), y0.eq(self.y0), x1.eq(self.x1), y1.eq(self.y1),
                         bit.eq(self.cbits), half.eq(0), finished.eq(0)]
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
                m.d.comb += [issue.eq(k < n), mode.eq(Mux(half, 6, 1)), zero.eq((bit == self.cbits) & ~half),
                             xb.eq(x0.bit_select(idx, 1)), yb.eq(y0.bit_select(idx, 1))]
                k_step()
                with m.If(at_np1):
                    k_zero()
                    m.d.sync += half.eq(~half)
                    with m.If(last_pass):
                        m.next = "BASE"
                    with m.Elif(half):
                        m.d.sync += bit.eq(Mux(bit == self.cbits, self.cbits - 1, bit - 1))
            with m.State("BASE"):
                m.d.comb += [issue.eq(1), mode.eq(2)]
                k_step()
                with m.If(at_n1):
                    k_zero()
                    m.d.sync += [first_pixel.eq(1), row_start.eq(1), x.eq(x0), y.eq(y0)]
                    m.next = "GAP"
            with m.State("GAP"):
                # Idle cycles so that the last write lands before the next read.
                k_step()
                with m.If(at_2):
                    k_zero()
                    m.next = "READY"
            with m.State("READY"):
                m.d.comb += [self.ready.eq(~finished), self.done.eq(finished)]
                with m.If(self.start):
                    begin()
                with m.Elif(self.next & ~finished):
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [issue.eq(1),
                             mode.eq(Mux(first_pixel, 3, Mux(row_start, 4, 5))),
                             rd_t.eq(~first_pixel & ~row_start & ~t_from_r)]
                k_step()
                with m.If(at_n1):
                    k_zero()
                    m.d.sync += [first_pixel.eq(0), t_from_r.eq(first_pixel | row_start)]
                    with m.If(x_last):
                        m.d.sync += [x.eq(x0), row_start.eq(1), y.eq(y + 1)]
                        with m.If(y_last):
                            m.d.sync += finished.eq(1)
                    with m.Else():
                        m.d.sync += [x.eq(x + 1), row_start.eq(0)]
                    m.next = "READY"
        return m
