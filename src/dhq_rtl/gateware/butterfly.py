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
:class:`~amaranth.lib.memory.Memory` with a synchronous, transparent read
port (block RAM on an FPGA); shorter ones use a Memory with an asynchronous
read port, which synthesis maps to flip-flops.

Every stage registers its output (one cycle), so no adder chain spans two
stages, and has a one-entry skid buffer behind that register, so its input
``ready`` comes from a flip-flop: no combinational path runs from the block's
``o.ready`` through the chain of stages.

Latency, throughput, widths
---------------------------
* Latency: ``n − 1 + log2(n)`` cycles from the first input beat of a vector to
  the first output beat of the same vector (stage ``s`` waits ``2**s`` beats
  for its partner plus one register), when neither side stalls.
* Throughput: one element per cycle, sustained across back-to-back vectors
  (``V`` vectors take ``V·n + latency`` cycles).
* Widths: input ``signed(width)``, output ``signed(width + log2(n))``.
* Storage: ``2**s`` entries of ``width + s + 1`` bits (plus the tag) in stage
  ``s``, plus two output registers (result and skid) of that width.

Stream payloads
---------------
``i.payload``: ``{"data": signed(width)}`` plus ``"tag": unsigned(tag_width)``
when ``tag_width > 0``. ``o.payload``: ``{"data": signed(width + log2(n))}``
plus the same tag. The tag is carried per element; an output element carries
the tag of the input beats of its vector (give every beat of a vector the
same tag).
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..hadamard import is_power_of_two

__all__ = ["HadamardButterfly", "butterfly_layout"]


def butterfly_layout(width, tag_width=0):
    """Payload layout ``{"data": signed(width)[, "tag": unsigned(tag_width)]}``."""
    fields = {"data": signed(width)}
    if tag_width:
        fields["tag"] = unsigned(tag_width)
    return data.StructLayout(fields)


def _check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"at least {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {bound}, got {value}")


class _SdfStage(wiring.Component):
    """One SDF stage: combines elements ``delay`` apart; input ``width`` bits,
    output ``width + 1`` bits, one registered output. Latency ``delay + 1``."""

    def __init__(self, delay, width, tag_width, min_ram_depth):
        self.delay = delay
        self.width = width
        self.tag_width = tag_width
        self.use_ram = delay >= min_ram_depth
        super().__init__({
            "i": In(stream.Signature(butterfly_layout(width, tag_width))),
            "o": Out(stream.Signature(butterfly_layout(width + 1, tag_width))),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.delay
        entry = butterfly_layout(self.width + 1, self.tag_width)

        m.submodules.line = line = Memory(shape=entry, depth=depth, init=[])
        wr = line.write_port()
        rd = line.read_port(transparent_for=(wr,)) if self.use_ram else line.read_port(domain="comb")

        ptr_bits = ceil_log2(depth)
        head = Signal(ptr_bits)          # oldest entry (read side)
        tail = Signal(ptr_bits)          # next free slot (write side)
        count = Signal(range(depth + 1))  # entries in the delay line
        ndiff = Signal(range(depth + 1))  # differences still to send (first half)
        second = Signal()                # in the second half of a block of 2D inputs
        index = Signal(range(depth))     # input position within the half

        push = Signal()
        pop = Signal()
        push_entry = Signal(entry)
        out_valid = Signal()
        out_payload = Signal(self.o.payload.shape())
        # Output skid buffer: the stage may load a result whenever the skid
        # register is empty, so ``ready`` is registered at every stage and no
        # combinational path runs through the whole chain of stages.
        skid_valid = Signal()
        skid_payload = Signal(self.o.payload.shape())
        can_load = Signal()
        m.d.comb += can_load.eq(~skid_valid)

        x = self.i.payload.data
        head_entry = rd.data
        with m.If(~second):
            # First half: inputs go into the delay line; the previous block's
            # differences leave it, independently of the input.
            m.d.comb += [
                out_valid.eq(ndiff != 0),
                out_payload.data.eq(head_entry.data),
                pop.eq(out_valid & can_load),
                self.i.ready.eq((count != depth) | pop),
                push.eq(self.i.valid & self.i.ready),
                push_entry.data.eq(x),
            ]
            if self.tag_width:
                m.d.comb += out_payload.tag.eq(head_entry.tag)
        with m.Else():
            # Second half: the delay line is full of this block's first half.
            m.d.comb += [
                out_valid.eq(self.i.valid),
                out_payload.data.eq(head_entry.data + x),
                self.i.ready.eq(can_load),
                pop.eq(self.i.valid & can_load),
                push.eq(self.i.valid & can_load),
                push_entry.data.eq(head_entry.data - x),
            ]
            if self.tag_width:
                m.d.comb += out_payload.tag.eq(self.i.payload.tag)
        if self.tag_width:
            m.d.comb += push_entry.tag.eq(self.i.payload.tag)

        m.d.comb += [
            wr.addr.eq(tail),
            wr.data.eq(push_entry),
            wr.en.eq(push),
        ]
        if self.use_ram:
            # Address the entry that will be the head after this cycle; the
            # transparent port shows a value written to it in the same cycle.
            m.d.comb += rd.addr.eq(head + pop)
        else:
            m.d.comb += rd.addr.eq(head)

        m.d.sync += [
            head.eq(head + pop),
            tail.eq(tail + push),
            count.eq(count + push - pop),
        ]
        with m.If(push):
            with m.If(index == depth - 1):
                m.d.sync += [index.eq(0), second.eq(~second)]
                with m.If(second):
                    m.d.sync += ndiff.eq(depth)
            with m.Else():
                m.d.sync += index.eq(index + 1)
        with m.If(pop & ~second):
            m.d.sync += ndiff.eq(ndiff - 1)

        load = out_valid & can_load
        with m.If(~self.o.valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid_payload), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.valid.eq(load), self.o.payload.eq(out_payload)]
        with m.Elif(load):
            m.d.sync += [skid_payload.eq(out_payload), skid_valid.eq(1)]
        return m


class HadamardButterfly(wiring.Component):
    """Streaming exact integer Walsh–Hadamard transform of length ``n``.

    Parameters
    ----------
    n : int
        Transform length, a power of two, ``2 ≤ n ≤ 4096``.
    width : int
        Input width in bits (signed two's complement), ``1 ≤ width ≤ 48``.
    tag_width : int
        Width of an optional per-element user tag carried to the output
        (0: no ``tag`` field).
    min_ram_depth : int
        Delay lines of at least this many entries use a synchronous-read
        memory (block RAM); shorter ones become flip-flops. At least 2.

    Ports: ``i`` (``In(stream.Signature(butterfly_layout(width, tag_width)))``),
    ``o`` (``Out(stream.Signature(butterfly_layout(width + log2(n), tag_width)))``).

    Latency ``n − 1 + log2(n)`` cycles (first input beat → first output beat),
    throughput one element per cycle, output width ``width + log2(n)``.
    """

    def __init__(self, n, width, *, tag_width=0, min_ram_depth=16):
        _check_int("n", n, 2, 4096)
        if not is_power_of_two(n):
            raise ValueError(f"n must be a power of two, got {n}")
        _check_int("width", width, 1, 48)
        _check_int("tag_width", tag_width, 0, 64)
        _check_int("min_ram_depth", min_ram_depth, 2)
        self.n = n
        self.stages = n.bit_length() - 1
        self.width = width
        self.out_width = width + self.stages
        self.tag_width = tag_width
        self.min_ram_depth = min_ram_depth
        self.latency = n - 1 + self.stages
        super().__init__({
            "i": In(stream.Signature(butterfly_layout(width, tag_width))),
            "o": Out(stream.Signature(butterfly_layout(self.out_width, tag_width))),
        })

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.i)
        for s in range(self.stages):
            stage = _SdfStage(1 << s, self.width + s, self.tag_width, self.min_ram_depth)
            m.submodules[f"stage{s}"] = stage
            wiring.connect(m, prev, stage.i)
            prev = stage.o
        wiring.connect(m, prev, wiring.flipped(self.o))
        return m
