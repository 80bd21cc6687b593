"""Streaming integer fast Walsh–Hadamard transform (single-path delay feedback).

:class:`HadamardButterfly` is the gateware twin of
:func:`dhq_rtl.hadamard.fwht_int`: a vector ``x`` of ``n`` signed integers
enters as ``n`` consecutive stream beats (natural order, element 0 first) and
``H_n @ x`` (Sylvester order, ``hadamard_matrix(n) @ x``) leaves as ``n``
consecutive beats in natural order. The transform is exact: every stage adds
one bit, so the output is ``width + log2(n)`` bits wide and nothing is rounded.

Architecture
------------
A chain of ``log2(n)`` single-path delay-feedback stages, like a radix-2 SDF
FFT pipeline. Stage ``s`` combines the elements ``D = 2**s`` apart with one
adder and one subtractor and a delay line of ``D`` entries:

* first half of each block of ``2D`` elements: the inputs ``x[i]`` are pushed
  into the delay line while the differences of the previous block leave it;
* second half: ``x[i + D]`` meets ``x[i]`` from the delay line, the sum
  ``x[i] + x[i + D]`` goes out at once and the difference
  ``x[i] − x[i + D]`` goes into the delay line, to leave during the next first
  half.

The stage output is therefore again in natural order. The Hadamard stages
commute and the arithmetic is exact, so the result equals ``fwht_int``
bit for bit. A length-``n`` transform costs ``log2(n)`` add/sub pairs and
``n − 1`` delay-line entries instead of ``n·log2(n)`` adders.

The delay line is a small FIFO (capacity ``D``), not a lock-step shift
register: the differences of a block leave as soon as the output is ready,
without waiting for the next vector, so the last vector of a stream is
flushed by itself and any valid/ready stall anywhere is honoured. Delay
lines of at least ``min_ram_depth`` entries use a
:class:`~amaranth.lib.memory.Memory` with a synchronous read port (block RAM
on an FPGA), a circular buffer; shorter ones are a flip-flop shift register
read at slot 0, whose occupancy is a thermometer code. Either way the head of
the line comes from a register, so the adder and subtractor start at
flip-flops.

Every stage writes its result into a two-entry output buffer (one cycle), so
no adder chain spans two stages, and its input ``ready`` is a flip-flop
(computed from the next values of the stage's flags): no combinational path
runs from the block's ``o.ready`` through the chain of stages, and every
handshake decision is one or two LUTs of registered flags. The block's
``o.payload`` is a 2:1 mux of the last stage's two output registers.

Latency, throughput, widths
---------------------------
* Latency: ``n − 1 + log2(n)`` cycles from the first input beat of a vector to
  the first output beat of the same vector (stage ``s`` waits ``2**s`` beats
  for its partner plus one register), when neither side stalls.
* Throughput: one element per cycle, sustained across back-to-back vectors
  (``V`` vectors take ``V·n + latency`` cycles).
* Widths: input ``signed(width)``, output ``signed(width + log2(n))``.
* Storage: ``2**s`` entries of ``width + s + 1`` bits (plus the tag) in stage
  ``s``, plus two output registers of that width (one with ``always_ready``).

Stream payloads
---------------
``i.payload``: ``{"data": signed(width)}`` plus ``"tag": tag_shape``
when the tag is not empty. ``o.payload``: ``{"data": signed(width + log2(n))}``
plus the same tag. The tag is carried per element; an output element carries
the tag of the input beats of its vector (give every beat of a vector the
same tag).

With ``always_ready=True`` both streams are ``always_ready``: for a
consumer that takes every output beat. The stages still hand shake among
themselves, but with the last stage's output always taken no stage ever
holds its input back (every stage emits one result for every element it
takes: a sum in the second half of a block, a waiting difference in the
first half), so the first stage's ``ready`` is never low and the block
needs no input back-pressure. Its stages are built for that use: no
``ready``, no fill level, no second output register (the invariants "every
stage ready, no output buffer ever full" hold by construction), and each
stage's ``pop`` is a register computed a cycle early (the source gives
``i.valid`` a cycle ahead on ``i_valid_next``), so every delay-line and
output-register decision starts at a flip-flop. Latency and throughput are
the same as with back-pressure.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..hadamard import is_power_of_two
from .args import check_bool, check_int, check_tag_shape
from .layouts import tag_width, tagged_layout

__all__ = ["HadamardButterfly", "butterfly_layout", "delay_lines"]


def butterfly_layout(width, tag_shape=0):
    """Payload layout ``{"data": signed(width)[, "tag": tag_shape]}``."""
    return tagged_layout({"data": signed(width)}, tag_shape)


def delay_lines(n, width, tag_shape=0, min_ram_depth=16):
    """``[(stage, entries, entry_bits, in_ram)]``: the delay line of every
    stage of a length-``n`` butterfly with ``width``-bit inputs (stage ``s``:
    ``2**s`` entries of ``width + s + 1`` bits plus the tag, in a memory when
    ``2**s ≥ min_ram_depth``)."""
    return [(s, 1 << s, Shape.cast(butterfly_layout(width + s + 1, tag_shape)).width, (1 << s) >= min_ram_depth)
            for s in range(n.bit_length() - 1)]


class _SdfStage(wiring.Component):
    """One SDF stage: combines elements ``delay`` apart; input ``width`` bits,
    output ``width + 1`` bits, one registered output. Latency ``delay + 1``.

    Timing structure (what keeps every register-to-register path short):

    * ``i.ready`` is a register; ``pop`` and ``push`` are one LUT of
      registered flags (half, "differences pending", "delay line full",
      "output buffer full") and the input ``valid``; counter comparisons are
      registered flags computed one cycle early;
    * the head of the delay line is a register (flip-flop line: a shift
      register read at entry 0; RAM line: the synchronous read port, whose
      address is ``head`` or a precomputed ``head + 1``), so the adder and the
      subtractor start from flip-flops; their results pass one 2:1 mux before
      the output register or the delay line.
    """

    def __init__(self, delay, width, tag_shape, min_ram_depth, always_ready=False):
        self.delay = delay
        self.width = width
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.use_ram = delay >= min_ram_depth
        self.always_ready = always_ready
        ports = {
            "i": In(stream.Signature(butterfly_layout(width, tag_shape), always_ready=always_ready)),
            "o": Out(stream.Signature(butterfly_layout(width + 1, tag_shape), always_ready=always_ready)),
        }
        if always_ready:
            # ``i.valid`` and ``o.valid`` one cycle ahead.
            ports.update({"i_valid_next": In(1), "o_valid_next": Out(1)})
        super().__init__(ports)

    def elaborate(self, platform):
        if self.always_ready:
            return self._elaborate_free()
        m = Module()
        depth = self.delay
        f = self._flags()
        second, at_end, has_diff, last_diff = f.second, f.at_end, f.has_diff, f.last_diff
        # Fill level of the delay line, ``full`` = ``count == depth``.
        count = Signal(range(depth + 1))
        full = Signal()
        # Output buffer: two registers used in turn (a two-entry FIFO); the
        # stage may produce a result whenever one of them is free, so
        # ``ready`` is registered at every stage and no combinational path
        # runs through the chain of stages. ``obuf_full``: both entries hold
        # results not yet taken.
        obuf_full = Signal()
        # ``ready`` (= ``Mux(second, ~obuf_full, ~full | (has_diff &
        # ~obuf_full))``) is itself a register, computed from the next
        # values of those flags, so ``push`` is one LUT deep.
        ready = Signal(init=1)
        pop = Signal()
        push = Signal()
        m.d.comb += [
            pop.eq(~obuf_full & Mux(second, self.i.valid, has_diff)),
            self.i.ready.eq(ready),
            push.eq(self.i.valid & self.i.ready),
        ]
        out_payload = self._data_path(m, second, push, pop)

        # Next values of the flags ``ready`` depends on.
        second_n = Signal()
        full_n = Signal()
        has_diff_n = Signal()
        obuf_full_n = Signal()

        # Fill level and its registered comparison.
        m.d.comb += full_n.eq(Mux(push ^ pop, push & (count == depth - 1), full))
        m.d.sync += full.eq(full_n)
        with m.If(push ^ pop):
            m.d.sync += count.eq(Mux(push, count + 1, count - 1))

        # Position within the block (the data of every update below depends on
        # registers only; the handshake only enables it).
        m.d.comb += second_n.eq(second ^ (push & at_end))
        m.d.sync += second.eq(second_n)
        self._count_position(m, f, push)

        # Pending differences: all ``depth`` of them once the second half
        # ends; one fewer for every pop in the first half.
        end_block = Signal()   # last input of a block taken (second half: ready = ~obuf_full)
        diff_pop = Signal()    # a difference leaves (first half)
        m.d.comb += [
            end_block.eq(second & at_end & self.i.valid & ~obuf_full),
            diff_pop.eq(~second & has_diff & ~obuf_full),
            has_diff_n.eq(Mux(end_block | diff_pop, second | ~last_diff, has_diff)),
        ]
        m.d.sync += has_diff.eq(has_diff_n)
        self._count_differences(m, f, diff_pop)

        m.d.comb += obuf_full_n.eq(self._output_buffer(m, Mux(second, self.i.valid, has_diff), obuf_full,
                                                       out_payload, pop))
        m.d.sync += ready.eq(Mux(second_n, ~obuf_full_n, ~full_n | (has_diff_n & ~obuf_full_n)))
        return m

    def _elaborate_free(self):
        """The stage when every output is taken (``always_ready``): it
        never holds its input back (module docstring), so it has no
        ``ready``, no fill level and a single output register. ``push`` is
        the input ``valid``; ``pop`` is a register, computed from the next
        values of ``second`` and ``has_diff`` and the input's next ``valid``
        (``i_valid_next``), so the delay line's enables, its read address
        and the output register's enable start at a flip-flop."""
        m = Module()
        f = self._flags()
        second, at_end, has_diff, last_diff = f.second, f.at_end, f.has_diff, f.last_diff
        push = Signal()
        pop = Signal()
        m.d.comb += push.eq(self.i.valid)
        out_payload = self._data_path(m, second, push, pop)

        second_n = second ^ (push & at_end)
        self._count_position(m, f, push)
        end_block = second & at_end & self.i.valid
        diff_pop = ~second & has_diff
        has_diff_n = Mux(end_block | diff_pop, second | ~last_diff, has_diff)
        # pop = Mux(second, i.valid, has_diff), a cycle early.
        m.d.sync += [second.eq(second_n), has_diff.eq(has_diff_n),
                     pop.eq(Mux(second_n, self.i_valid_next, has_diff_n))]
        m.d.comb += self.o_valid_next.eq(pop)
        self._count_differences(m, f, diff_pop)
        # One output register: its result is taken in the next cycle.
        m.d.sync += self.o.valid.eq(pop)
        with m.If(pop):
            m.d.sync += self.o.payload.eq(out_payload)
        return m

    def _flags(self):
        """The registered flags both forms keep. Block position: ``second``
        = second half of a block of 2D inputs; ``at_end`` = the next input
        is the last of its half (registered ``index == depth - 1``).
        Differences of the previous block still in the delay line:
        ``has_diff``: some are left; ``last_diff``: the next one is the last
        (registered ``dsent == depth - 1``)."""
        depth = self.delay
        return SimpleNamespace(second=Signal(), index=Signal(range(depth)), at_end=Signal(init=depth == 1),
                               dsent=Signal(range(depth)), has_diff=Signal(), last_diff=Signal(init=depth == 1))

    def _data_path(self, m, second, push, pop):
        """The sum and difference of an input and its partner at the delay
        line's head, and the line itself; returns the stage's result.

        First half: inputs go into the delay line; the previous block's
        differences leave it, independently of the input. Second half: the
        line is full of this block's first half, the partner of every input
        is at its head; the sum leaves, the difference goes in."""
        entry = butterfly_layout(self.width + 1, self.tag_shape)
        x = self.i.payload
        head = Signal(entry)        # oldest entry of the delay line
        tail_in = Signal(entry)     # what enters the delay line this cycle
        out_payload = Signal(self.o.payload.shape())
        m.d.comb += [
            out_payload.data.eq(Mux(second, head.data + x.data, head.data)),
            tail_in.data.eq(Mux(second, head.data - x.data, x.data)),
        ]
        if self.tag_width:
            m.d.comb += [out_payload.tag.eq(Mux(second, x.tag, head.tag)), tail_in.tag.eq(x.tag)]
        if self.use_ram:
            self._ram_line(m, entry, head, tail_in, push, pop)
        else:
            self._ff_line(m, entry, head, tail_in, push, pop)
        return out_payload

    def _count_position(self, m, f, push):
        """The position within the half block, on every input taken (the
        data of the update depends on registers only; ``push`` only enables it)."""
        depth = self.delay
        with m.If(push):
            m.d.sync += [
                f.index.eq(Mux(f.at_end, 0, f.index + 1)),
                f.at_end.eq(Mux(f.at_end, depth == 1, f.index == depth - 2)),
            ]

    def _count_differences(self, m, f, diff_pop):
        """``dsent`` counts the differences sent, modulo ``depth`` (a power of
        two): it is enabled by ``diff_pop`` alone (one LUT)."""
        depth = self.delay
        with m.If(diff_pop):
            m.d.sync += [
                f.dsent.eq(f.dsent + 1),
                f.last_diff.eq(f.dsent == depth - 2 if depth > 1 else 1),
            ]

    def _output_buffer(self, m, offer, obuf_full, out_payload, pop):
        """The two-entry output buffer; returns the next value of ``obuf_full``.

        A result is produced exactly when an entry of the delay line is
        popped (``pop = ~obuf_full & offer``). Results are written straight
        from the adder into a free register (no mux on the adder's output);
        the read side selects one of the two registers. Flags are next-state
        equations of registered flags, each a couple of LUT levels deep (one
        of them the next stage's ``ready``)."""
        obuf_full_n = Signal()
        obuf = [Signal(self.o.payload.shape(), name=f"obuf{k}") for k in range(2)]
        obuf_nonempty = Signal()
        rd_sel = Signal()
        wr_sel = Signal()
        deq = self.o.valid & self.o.ready
        m.d.comb += [
            self.o.valid.eq(obuf_nonempty),
            self.o.payload.eq(Mux(rd_sel, obuf[1], obuf[0])),
            obuf_full_n.eq(~deq & (obuf_full | (obuf_nonempty & offer))),
        ]
        m.d.sync += [
            obuf_nonempty.eq(obuf_full | (~obuf_full & offer) | (obuf_nonempty & ~deq)),
            obuf_full.eq(obuf_full_n),
            rd_sel.eq(rd_sel ^ deq),
            wr_sel.eq(wr_sel ^ pop),
        ]
        for k, reg in enumerate(obuf):
            # A free register follows the result; when the result is popped,
            # the register at ``wr_sel`` becomes occupied and holds it.
            with m.If(~obuf_full & ~(obuf_nonempty & (rd_sel == k))):
                m.d.sync += reg.eq(out_payload)
        return obuf_full_n

    def _ff_line(self, m, entry, head, tail_in, push, pop):
        """Delay line in flip-flops: a shift register, oldest entry in slot 0.

        A pop shifts every slot down by one; a pushed entry lands in the first
        free slot. Free slots are loaded with the incoming entry whenever they
        would otherwise hold garbage, so each slot has one 2:1 data mux (next
        slot or incoming entry) and one enable."""
        depth = self.delay
        slots = [Signal(entry, name=f"slot{k}") for k in range(depth)]
        m.d.comb += head.eq(slots[0])
        # Only the last slot ever takes a difference (in the second half the
        # line is full, so the pushed entry lands there); the others take
        # inputs, sign-extended.
        x_entry = Signal(entry)
        m.d.comb += x_entry.data.eq(self.i.payload.data)
        if self.tag_width:
            m.d.comb += x_entry.tag.eq(self.i.payload.tag)
        # Occupancy as a thermometer code (``used[k]``: slot ``k`` holds an
        # entry), so every slot's enable and select is one LUT of ``pop``
        # and a flip-flop, with no counter comparison.
        used = Signal(depth)
        with m.If(push & ~pop):
            m.d.sync += used.eq(Cat(1, used[:-1]))
        with m.Elif(pop & ~push):
            m.d.sync += used.eq(used >> 1)
        for k, slot in enumerate(slots):
            if k == depth - 1:
                nxt = tail_in
            else:
                # After a pop, slot k takes slot k + 1 unless that one is free.
                nxt = Mux(~pop | ~used[k + 1], x_entry, slots[k + 1])
            with m.If(pop | ~used[k]):
                m.d.sync += slot.eq(nxt)

    def _ram_line(self, m, entry, head, tail_in, push, pop):
        """Delay line in a synchronous-read memory (block RAM), a circular
        buffer. The read port addresses the entry that is the head after this
        cycle (``head`` or the precomputed ``head + 1``); it needs no
        transparency: an entry is never read back in the cycle after it was
        written (``depth ≥ 2`` other beats separate a write from its use)."""
        depth = self.delay
        m.submodules.line = line = Memory(shape=entry, depth=depth, init=[])
        wr = line.write_port()
        rd = line.read_port()
        rd_ptr = Signal(ceil_log2(depth))
        rd_next = Signal(ceil_log2(depth), init=1)
        wr_ptr = Signal(ceil_log2(depth))
        m.d.comb += [
            head.eq(rd.data),
            rd.addr.eq(Mux(pop, rd_next, rd_ptr)),
            wr.addr.eq(wr_ptr),
            wr.data.eq(tail_in),
            wr.en.eq(push),
        ]
        with m.If(pop):
            m.d.sync += [rd_ptr.eq(rd_next), rd_next.eq(rd_next + 1)]
        with m.If(push):
            m.d.sync += wr_ptr.eq(wr_ptr + 1)


class HadamardButterfly(wiring.Component):
    """Streaming exact integer Walsh–Hadamard transform of length ``n``.

    Parameters
    ----------
    n : int
        Transform length, a power of two, ``2 ≤ n ≤ 4096``.
    width : int
        Input width in bits (signed two's complement), ``1 ≤ width ≤ 48``.
    tag_shape : int or shape
        Shape of an optional per-element tag carried to the output (an
        integer width, 0: no ``tag`` field, or e.g. a ``data.StructLayout``).
    min_ram_depth : int
        Delay lines of at least this many entries use a synchronous-read
        memory (block RAM); shorter ones become flip-flops. At least 2.
    always_ready : bool
        Streams without back-pressure (see the module docstring).

    Ports: ``i`` (``In(stream.Signature(butterfly_layout(width, tag_shape)))``),
    ``o`` (``Out(stream.Signature(butterfly_layout(width + log2(n), tag_shape)))``);
    with ``always_ready``, also ``i_valid_next`` (``In(1)``): ``i.valid`` of
    the next cycle (the source knows it a cycle early), so that every
    stage's ``pop`` is a register.

    Latency ``n − 1 + log2(n)`` cycles (first input beat → first output beat),
    throughput one element per cycle, output width ``width + log2(n)``.
    """

    def __init__(self, n, width, *, tag_shape=0, min_ram_depth=16, always_ready=False):
        check_int("n", n, 2, 4096)
        if not is_power_of_two(n):
            raise ValueError(f"n must be a power of two, got {n}")
        check_int("width", width, 1, 48)
        tag_shape = check_tag_shape(tag_shape)
        check_int("min_ram_depth", min_ram_depth, 2)
        check_bool("always_ready", always_ready)
        self.n = n
        self.stages = n.bit_length() - 1
        self.width = width
        self.out_width = width + self.stages
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.min_ram_depth = min_ram_depth
        self.always_ready = always_ready
        self.latency = n - 1 + self.stages
        ports = {
            "i": In(stream.Signature(butterfly_layout(width, tag_shape), always_ready=always_ready)),
            "o": Out(stream.Signature(butterfly_layout(self.out_width, tag_shape), always_ready=always_ready)),
        }
        if always_ready:
            ports["i_valid_next"] = In(1)
        super().__init__(ports)

    def delay_lines(self):
        """``[(stage, entries, entry_bits, in_ram)]``: every stage's delay line."""
        return delay_lines(self.n, self.width, self.tag_shape, self.min_ram_depth)

    def elaborate(self, platform):
        m = Module()
        prev = None
        for s in range(self.stages):
            stage = _SdfStage(1 << s, self.width + s, self.tag_shape, self.min_ram_depth,
                              always_ready=self.always_ready)
            m.submodules[f"stage{s}"] = stage
            if prev is not None:
                wiring.connect(m, prev.o, stage.i)
            else:
                wiring.connect(m, wiring.flipped(self.i), stage.i)
            if self.always_ready:
                m.d.comb += stage.i_valid_next.eq(self.i_valid_next if prev is None else prev.o_valid_next)
            prev = stage
        wiring.connect(m, prev.o, wiring.flipped(self.o))
        return m
