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

Storage: a constant memory holding ``DX`` (address ``k``), ``DY``
(``2**kw + k``) and ``base`` (``2·2**kw + k``), one ``M``-bit value per read
(each step of the generator needs one of the three), and one
``2·2**kw``-entry memory of ``M = shift + K`` bits holding ``R`` (row start,
lower half) and ``T`` (current pixel, upper half): one memory with one
write port, so that it takes one block-RAM column (2 EBR for ``M ≤ 32``)
instead of two. A row's first pixel only updates ``R``; the pixel after it
reads ``R`` in place of ``T``.

Loading: the constants memory has a write port (``write``) and the number of
neurons is an input (``n_last`` = neurons − 1), so one generator serves any
first layer of at most ``max_neurons`` neurons whose running sums fit
``sum_bits`` bits. A model whose sums are narrower has its constants scaled
by ``2**(sum_bits − shift − K)`` (:func:`first_layer_constants`): the phase
is then always bits ``[sum_bits − K, sum_bits)`` of the sum, whatever the
model's shift (exact: only bits below the phase are added). The initial
contents and ``n_last`` are those of the model given to the constructor.

Interface:

* ``start`` (pulse, only while ``done``) samples ``region`` (a non-empty
  half-open pixel rectangle, :func:`region_layout`) and runs the region
  set-up:
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
* ``n_last`` (in) and ``write`` (in: ``en``, ``addr``, ``data``: the
  constants memory's write port, addresses as above).
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model_image import ModelImage
from .args import check_bool, check_int
from .one_hot import OneHotStates
from .ram import memory_attrs, read_port

__all__ = ["FirstLayerPhases", "first_layer_constants", "first_layer_entries", "region_layout", "phase_layout",
           "phase_source_signature"]


def _bits(n):
    """Bits of an unsigned counter that holds ``0 … n`` (at least 1)."""
    return max(1, int(n).bit_length())


def region_layout(width, height):
    """``{"x0", "y0", "x1", "y1"}``: a half-open pixel rectangle of an image of
    at most ``width`` × ``height`` pixels."""
    return data.StructLayout({
        "x0": unsigned(_bits(width - 1)), "y0": unsigned(_bits(height - 1)),
        "x1": unsigned(_bits(width)), "y1": unsigned(_bits(height)),
    })


def phase_layout(phase_bits, index_width):
    """One layer-0 phase: ``{"phase": unsigned(phase_bits), "index": neuron,
    "last": the pixel's last phase}``."""
    return data.StructLayout({"phase": unsigned(phase_bits), "index": unsigned(index_width),
                              "last": unsigned(1)})


def phase_source_signature(phase_bits, index_width):
    """The generator's side of the pixel request / phase interface (module docstring)."""
    return wiring.Signature({
        "ready": Out(1),
        "next": In(1),
        "phases": Out(stream.Signature(phase_layout(phase_bits, index_width), always_ready=True)),
    })


def first_layer_constants(model, sum_bits=None):
    """``(dx, dy, base, sum_bits)``: the per-neuron running-sum constants of
    layer 0 as non-negative Python ints modulo ``2**sum_bits`` (default: the
    model's own ``shift + phase_bits``; a wider ``sum_bits`` scales them so
    that the phase sits in the top ``phase_bits`` bits)."""
    layer = model.layers[0]
    own = layer.shift + model.phase_bits
    if sum_bits is None:
        sum_bits = own
    if sum_bits < own:
        raise ValueError(f"the first layer's running sums need {own} bits, more than {sum_bits}")
    scale = 1 << (sum_bits - own)
    w = layer.weight.astype(object)
    if layer.rotate:
        a, b = w[:, 0] + w[:, 1], w[:, 0] - w[:, 1]
    else:
        a, b = w[:, 0], w[:, 1]
    mod = 1 << sum_bits
    dx, dy, base = [], [], []
    for k in range(layer.out_features):
        mult, bias = int(layer.mult[k]), int(layer.bias[k])
        ak, bk = int(a[k]) * mult, int(b[k]) * mult
        dx.append((2 * ak * scale) % mod)
        dy.append((2 * bk * scale) % mod)
        base.append(((-(model.width - 1) * ak - (model.height - 1) * bk + bias) * scale) % mod)
    return dx, dy, base, sum_bits


def first_layer_entries(model, sum_bits, index_width):
    """The constants memory's contents for ``model`` (``3 << index_width``
    entries: DX, DY and base blocks of ``2**index_width``, unused entries 0)."""
    dx, dy, base, _ = first_layer_constants(model, sum_bits)
    block = 1 << index_width
    words = [0] * (3 * block)
    for k in range(len(dx)):
        words[k], words[block + k], words[2 * block + k] = dx[k], dy[k], base[k]
    return words


class FirstLayerPhases(wiring.Component):
    """Layer-0 phases of every pixel of a region, by running sums (see module doc).

    Parameters
    ----------
    model : ModelImage
        The first layer whose constants the memory starts with.
    max_neurons : int or None
        Most neurons a loaded first layer may have (default: the model's).
    sum_bits : int or None
        Width ``M`` of the running sums (default: the model's ``shift +
        phase_bits``; at least that).
    max_size : int or None
        Largest image width and height (default: the model's).
    consts_block_ram : bool
        The constants memory carries ``ram_style = "block"``: a memory that
        is never written (a fixed model's) is otherwise a ROM that synthesis
        may make of logic, a deep multiplexer in front of the sums.

    Widths: ``phase`` is ``model.phase_bits`` wide; the running sums are
    ``sum_bits`` bits. Throughput: one phase per cycle while a pixel is being
    emitted; latency 4 cycles from ``next`` to the first phase.
    """

    def __init__(self, model, *, max_neurons=None, sum_bits=None, max_size=None, consts_block_ram=False):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        check_bool("consts_block_ram", consts_block_ram)
        self.consts_block_ram = consts_block_ram
        model.validate()
        self.model = model
        n = model.layers[0].out_features
        own_bits = model.layers[0].shift + model.phase_bits
        self.max_neurons = n if max_neurons is None else max_neurons
        check_int("max_neurons", self.max_neurons, n)
        self.mod_bits = own_bits if sum_bits is None else sum_bits
        check_int("sum_bits", self.mod_bits, own_bits, 64)
        self.max_size = max(model.width, model.height) if max_size is None else max_size
        check_int("max_size", self.max_size, max(model.width, model.height), 4096)
        self.phase_shift = self.mod_bits - model.phase_bits
        self.cbits = _bits(self.max_size - 1)
        self.kw = _bits(self.max_neurons - 1)
        self.cw = max(2, (self.max_neurons + 1).bit_length())
        self.init = first_layer_entries(model, self.mod_bits, self.kw)
        super().__init__({
            "start": In(1),
            "region": In(region_layout(self.max_size, self.max_size)),
            "done": Out(1),
            "source": Out(phase_source_signature(model.phase_bits, self.kw)),
            "n_last": In(self.kw, init=n - 1),
            "write": In(wiring.Signature({"en": Out(1), "addr": Out(self.kw + 2), "data": Out(self.mod_bits)})),
        })

    def elaborate(self, platform):
        m = Module()
        M = self.mod_bits
        # (The constants are written only while no region is rendered: no
        # read meets a write.)
        m.submodules.consts = consts = Memory(shape=unsigned(M), depth=3 << self.kw, init=self.init,
                                              attrs=memory_attrs(block_ram=self.consts_block_ram))
        # R at address k, T at address k + 2**kw.
        m.submodules.smem = smem = Memory(shape=unsigned(M), depth=2 << self.kw, init=[])
        c_wr = consts.write_port()
        c_rd = read_port(m, consts, platform)
        m.d.comb += [c_wr.en.eq(self.write.en), c_wr.addr.eq(self.write.addr), c_wr.data.eq(self.write.data)]
        s_wr = smem.write_port()
        s_rd = smem.read_port(transparent_for=(s_wr,))

        # The registers that are loaded before they are read (at a region's
        # start, at its base, in READY) have no reset: a reset would take a
        # LUT level in front of each enable, from the high-fanout reset net.
        def loaded(name, shape=1):
            return Signal(shape, name=name, reset_less=True)

        region_shape = region_layout(self.max_size, self.max_size)
        cshape = unsigned(self.cbits)
        st = SimpleNamespace(
            region=loaded("region", region_shape),
            y=loaded("y", cshape), x=loaded("x", cshape),
            # the region's last column and row (x1 − 1, y1 − 1), registered with it
            x_end=loaded("x_end", cshape), y_end=loaded("y_end", cshape),
            finished=Signal(init=1),
            first_pixel=loaded("first_pixel"),   # next pixel is the region's first
            row_start=loaded("row_start"),       # next pixel starts a row
            t_from_r=loaded("t_from_r"),         # next pixel follows a row start: its T is still in R
            rd_t=loaded("rd_t"),                 # stage 1 reads T (not R); registered, set before EMIT
            block=loaded("block", 2),            # stage 1's constant: 0 DX, 1 DY, 2 base; set before use
            k=loaded("k", self.cw),              # step counter (restarted at a region's start)
            half=loaded("half"),                 # Horner: 0 = x half, 1 = y half of a bit
            bit=loaded("bit", range(self.cbits + 1)),
            issue=Signal(),         # stage 1 issues a step
            # 0 idle, 1 horner x, 6 horner y, 2 add base, 3 first pixel, 4 row start, 5 step
            mode=Signal(3),
            # Horner: x0 and y0 shifted left once per bit, the bit used at the top
            x_bits=loaded("x_bits", cshape), y_bits=loaded("y_bits", cshape),
            zero=Signal(),          # first Horner pass: R is taken as 0
        )
        self._datapath(m, st, c_rd, s_rd, s_wr)
        self._control(m, st)
        return m

    def _datapath(self, m, st, c_rd, s_rd, s_wr):
        """Stage 1 (addresses), stage 2 (operands, aligned with the memories'
        read data), stage 3 (one adder from flip-flops, the write and the
        outputs)."""
        M, K = self.mod_bits, self.model.phase_bits
        shift = self.phase_shift
        s2_valid = Signal()
        s2_k = Signal(self.kw)
        s2_mode = Signal(3)
        s2_xb = Signal()
        s2_yb = Signal()
        s2_zero = Signal()

        # The constant the step needs (stage 1 addressed it by mode).
        const = c_rd.data
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
                m.d.comb += [op_a.eq(Mux(s2_zero, 0, rv << 1)), op_b.eq(Mux(s2_xb, const, 0))]
            with m.Case(6):
                m.d.comb += [op_a.eq(rv), op_b.eq(Mux(s2_yb, const, 0))]
            with m.Case(2):
                m.d.comb += [op_a.eq(rv), op_b.eq(const)]
            with m.Case(3):
                m.d.comb += [op_a.eq(rv), op_b.eq(0)]
            with m.Case(4):
                m.d.comb += [op_a.eq(rv), op_b.eq(const)]
            with m.Case(5):
                m.d.comb += [op_a.eq(tv), op_b.eq(const)]
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
            phases.payload.last.eq(s3_k == self.n_last),
        ]
        # Stage 1: addresses, from registers only (timing: each read port
        # compares its address with its memory's write port's); the constant
        # by mode: DX (x Horner half, a step), DY (y Horner half, a row
        # start), base.
        m.d.comb += [c_rd.addr.eq(st.k[:self.kw] | (st.block << self.kw)),
                     s_rd.addr.eq(st.k[:self.kw] | (st.rd_t << self.kw))]
        m.d.sync += [s2_valid.eq(st.issue), s2_k.eq(st.k[:self.kw]), s2_mode.eq(st.mode),
                     s2_xb.eq(st.x_bits[-1]), s2_yb.eq(st.y_bits[-1]), s2_zero.eq(st.zero)]

    def _control(self, m, st):
        """The state machine (one flip-flop per state: IDLE, HORNER, BASE,
        GAP, READY, EMIT) and the registers it drives: Horner passes, the
        base, then one pixel per ``next``.

        Every register is written from a few named events (a state's
        flip-flop and one registered flag each, ``start`` a register of the
        core), not through a per-state multiplexer (timing: the restart of
        the step counter and the state changes are two LUT levels from
        registers)."""
        states = OneHotStates(m, ("IDLE", "HORNER", "BASE", "GAP", "READY", "EMIT"), init="IDLE", name="phases")
        on = SimpleNamespace(**{name.lower(): bit for name, bit in states.on.items()})
        ev = SimpleNamespace(
            go=self.start,          # a region starts (start comes only while done: IDLE or READY)
            # registered: the current state's step count ends in this cycle
            ending=Signal(name="ending"),
            # registered: the last Horner pass ends in this cycle (cleared at go)
            horner_end=Signal(name="horner_end", reset_less=True),
            pass_end=Signal(name="pass_end"),          # a Horner pass ends
            horner_done=Signal(name="horner_done"),    # the last Horner pass ends
            base_done=Signal(name="base_done"), gap_done=Signal(name="gap_done"),
            emit_done=Signal(name="emit_done"),
            emit_go=Signal(name="emit_go"),            # a pixel is requested
            counting=Signal(name="counting"),          # k counts
            restart=Signal(name="restart"),            # k restarts at 0
        )
        m.d.comb += [
            ev.pass_end.eq(on.horner & ev.ending),
            ev.horner_done.eq(on.horner & ev.horner_end),
            ev.base_done.eq(on.base & ev.ending),
            ev.gap_done.eq(on.gap & ev.ending),
            ev.emit_done.eq(on.emit & ev.ending),
            # (next only while ready, not finished: never with start)
            ev.emit_go.eq(on.ready & self.source.next),
            ev.counting.eq(~on.idle & ~on.ready),              # (HORNER, BASE, GAP or EMIT)
            ev.restart.eq(ev.go | ev.ending),                    # (ending only while counting)
            self.done.eq(on.idle | (on.ready & st.finished)),
            self.source.ready.eq(on.ready & ~st.finished),
        ]
        self._states(m, states, ev)
        self._step_counter(m, st, on, ev)
        self._horner(m, st, ev)
        self._raster(m, st, ev)
        self._read_addresses(m, st, on, ev)
        self._issue(m, st, on)

    def _states(self, m, states, ev):
        """The moves between the states."""
        with states.state("IDLE"):
            with m.If(ev.go):
                states.goto("HORNER")
        with states.state("HORNER"):
            with m.If(ev.horner_end):
                states.goto("BASE")
        with states.state("BASE"):
            with m.If(ev.ending):
                states.goto("GAP")
        with states.state("GAP"):
            with m.If(ev.ending):
                states.goto("READY")
        with states.state("READY"):
            with m.If(ev.go):
                states.goto("HORNER")
            with m.Elif(self.source.next):
                states.goto("EMIT")
        with states.state("EMIT"):
            with m.If(ev.ending):
                states.goto("READY")

    def _step_counter(self, m, st, on, ev):
        """The step counter k and its registered end flags.

        k counts up by one per cycle in HORNER, BASE, GAP and EMIT and
        restarts at 0 when its state ends. ``ending`` says the current state
        ends in this cycle: a HORNER pass at k == n + 1, BASE and EMIT at
        k == n − 1, GAP at k == 2; it is the comparison of k with ``limit``
        (the count before that, set as the state is entered) one cycle
        early, or, entering a state, whether its first cycle is its last
        (BASE and EMIT of one neuron)."""
        k = st.k
        n_last = self.n_last
        # n − 2 and n: n_last − 1 and n_last + 1, registered (n_last is a
        # descriptor: it changes only while no region is rendered), so that
        # each comparison below is with a register. "never" (all ones) is a
        # value k does not have when compared: at most n ≤ max_neurons <
        # 2**len(k) − 1 (k reaches n + 1 only in the cycle it restarts).
        never = (1 << len(k)) - 1
        n0 = n_last.init
        # n_m1 in two registered steps (timing: the subtraction and the
        # zero test are carry chains; one after the other they were the
        # default build's worst path), a cycle later than n_zero and n_p1.
        n_zero = Signal(init=n0 == 0)
        n_less = Signal(len(k), init=(n0 - 1) % (1 << len(k)))
        n_m1 = Signal(len(k), init=never if n0 == 0 else n0 - 1)   # never for one neuron
        n_p1 = Signal(len(k), init=n0 + 1)
        m.d.sync += [n_zero.eq(n_last == 0), n_less.eq(n_last - 1), n_m1.eq(Mux(n_zero, never, n_less)),
                     n_p1.eq(n_last + 1)]
        limit = Signal(len(k), init=never, reset_less=True)   # (loaded at a region's start)
        # The last Horner pass ends: the same for k == n + 1 in the last
        # pass, one comparison with a register that holds n + 1 in the last
        # pass and never in the others (bit and half change only at the end
        # of a pass and the target follows them one cycle later, n ≥ 1
        # cycles before it is compared with k: the flag is exact).
        horner_target = Signal(len(k), init=never)
        last_pass = st.half & ((st.bit == 1) | ((st.bit == self.cbits) & (self.cbits == 1)))
        m.d.sync += horner_target.eq(Mux(last_pass, n_p1, never))

        # The enable does not wait for the restart decision (every restart
        # but go is in a counting state).
        with m.If(ev.go | ev.counting):
            with m.If(ev.restart):
                m.d.sync += [k.eq(0), ev.horner_end.eq(0)]
            with m.Else():
                m.d.sync += [k.eq(k + 1), ev.horner_end.eq(k == horner_target)]
        # (No enable: low in IDLE and READY but for a pixel's first cycle.)
        # A state entered with one neuron ends in its first cycle (BASE after
        # the last Horner pass, EMIT); otherwise a counting state ends one
        # cycle after k == limit. (When a state ends, k is limit + 1, not
        # limit; go and emit_go come only while not counting.)
        m.d.sync += ev.ending.eq((n_zero & (ev.horner_done | ev.emit_go)) | (ev.counting & (k == limit)))
        with m.If(ev.go | ev.horner_done | ev.base_done | ev.emit_go):
            m.d.sync += limit.eq(Mux(ev.go, n_p1, Mux(ev.base_done, 1, n_m1)))

    def _horner(self, m, st, ev):
        """HORNER's registers. bit == cbits: first pass (R taken as 0); the
        pass's bit of x0 and y0 is the top of x_bits and y_bits. Each pass
        is followed by two idle cycles, so that its last write lands before
        the next pass reads (short vectors)."""
        half, bit = st.half, st.bit
        with m.If(ev.go):
            m.d.sync += [st.region.eq(self.region), bit.eq(self.cbits), half.eq(0),
                         st.x_end.eq(self.region.x1 - 1), st.y_end.eq(self.region.y1 - 1),
                         st.x_bits.eq(self.region.x0), st.y_bits.eq(self.region.y0)]
        with m.Elif(ev.pass_end):
            m.d.sync += half.eq(~half)
            with m.If(half & ~ev.horner_end):
                m.d.sync += [bit.eq(Mux(bit == self.cbits, self.cbits - 1, bit - 1)),
                             st.x_bits.eq(st.x_bits << 1), st.y_bits.eq(st.y_bits << 1)]

    def _raster(self, m, st, ev):
        """The raster position (set at BASE's end, moved at each pixel's
        end) and whether the region is finished."""
        region = st.region
        # Registered decisions of EMIT (timing): the pixel ends its row, the
        # row is the region's last (equalities with the last column and row,
        # no adder in front). x, y and the region change only outside EMIT,
        # and EMIT is always entered from READY, so the one-cycle-stale
        # flags are exact.
        x_last = Signal()
        y_last = Signal()
        m.d.sync += [x_last.eq(st.x == st.x_end), y_last.eq(st.y == st.y_end)]
        with m.If(ev.base_done):
            m.d.sync += [st.first_pixel.eq(1), st.row_start.eq(1), st.x.eq(region.x0), st.y.eq(region.y0)]
        with m.Elif(ev.emit_done):
            m.d.sync += [st.first_pixel.eq(0), st.t_from_r.eq(st.first_pixel | st.row_start)]
            with m.If(x_last):
                m.d.sync += [st.x.eq(region.x0), st.row_start.eq(1), st.y.eq(st.y + 1)]
            with m.Else():
                m.d.sync += [st.x.eq(st.x + 1), st.row_start.eq(0)]
        with m.If(ev.go):
            m.d.sync += st.finished.eq(0)
        with m.Elif(ev.emit_done & x_last & y_last):
            m.d.sync += st.finished.eq(1)

    def _read_addresses(self, m, st, on, ev):
        """Stage 1's read addresses, registered before they are used: the
        constants' block (DX: x Horner half, a step; DY: y Horner half, a
        row start; base) and whether a step reads T, from flags that are
        stable in READY. (One enable and one value each, no priority chain:
        go and base_done clear them, a pass's end sets the next pass's
        block, READY sets EMIT's.)"""
        in_ready = on.ready & ~ev.go
        with m.If(on.ready | ev.go | ev.base_done | ev.pass_end):
            m.d.sync += [st.block.eq(Mux(in_ready, ~st.first_pixel & st.row_start,
                                         Mux(on.horner, Mux(ev.horner_end, 2, ~st.half), 0))),
                         st.rd_t.eq(in_ready & ~st.first_pixel & ~st.row_start & ~st.t_from_r)]

    def _issue(self, m, st, on):
        """What stage 1 issues in each state."""
        with m.If(on.horner):
            m.d.comb += [st.issue.eq(st.k <= self.n_last), st.mode.eq(Mux(st.half, 6, 1)),
                         st.zero.eq((st.bit == self.cbits) & ~st.half)]
        with m.If(on.base):
            m.d.comb += [st.issue.eq(1), st.mode.eq(2)]
        with m.If(on.emit):
            m.d.comb += [st.issue.eq(1), st.mode.eq(Mux(st.first_pixel, 3, Mux(st.row_start, 4, 5)))]
