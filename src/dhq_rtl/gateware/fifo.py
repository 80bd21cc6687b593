"""A synchronous first-word-fall-through FIFO whose handshake flags are registers.

:class:`FlagFIFO` has the port names of :class:`amaranth.lib.fifo.SyncFIFOBuffered`
(``w_data``/``w_en``/``w_rdy``, ``r_data``/``r_en``/``r_rdy``, ``level``) and
can replace it. Unlike that FIFO, every flag it drives is a flip-flop and
every flag it reads internally is a flip-flop too, so no comparator on an
occupancy counter sits between a register and ``r_rdy``, ``w_rdy`` or the
output-register enable:

* ``r_rdy`` is the valid bit of the output register (the read port's data
  register of the memory);
* the memory's not-empty flag is a register, updated from flags
  precomputed from the registered memory count (``count == 1``), selected by
  the push/pop strobes only;
* ``w_rdy`` is a register (``level < depth`` of the next cycle, precomputed
  from the registered level in the same way);
* ``level`` is a registered count of all words held (memory + output
  register).

Widths: ``w_data``/``r_data`` are ``width`` bits; ``level`` is
``range(depth + 1)``. Capacity: exactly ``depth`` words (``w_rdy`` is low
at ``level == depth``); the memory has ``depth`` entries, one more than the
words it can hold while the output register is full, so it never overflows.

Latency: a word written in cycle *t* is offered on ``r_data`` with ``r_rdy``
from cycle *t + 2* (memory write, then the read into the output register).
Throughput: one word per cycle in and out at the same time, sustained.
A write with ``w_rdy`` low and a read with ``r_rdy`` low are ignored.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .args import check_int
from .ram import memory_attrs, read_port

__all__ = ["FlagFIFO"]


class FlagFIFO(wiring.Component):
    """First-word-fall-through FIFO of ``depth`` words of ``width`` bits.

    Parameters
    ----------
    width : int
        Word width in bits, at least 1.
    depth : int
        Capacity in words, at least 1.
    block_ram : bool
        Ask synthesis for block RAM even for a small memory (its words are
        then no flip-flops; timing and behaviour are the same).
    """

    def __init__(self, *, width, depth, block_ram=False):
        check_int("FIFO width", width, 1)
        check_int("FIFO depth", depth, 1)
        self.width = width
        self.depth = depth
        self.block_ram = bool(block_ram)
        super().__init__({
            "w_data": In(width),
            "w_en": In(1),
            "w_rdy": Out(1, init=1),
            "r_data": Out(width),
            "r_en": In(1),
            "r_rdy": Out(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        # A read never meets a write of its word: the memory is read only
        # while it holds a word (rptr ≠ wptr, or it is full and takes none).
        m.submodules.mem = mem = Memory(shape=self.width, depth=D, init=[],
                                        attrs=memory_attrs(block_ram=self.block_ram))
        wr = mem.write_port()
        rd = read_port(m, mem, platform)

        wptr = Signal(range(D))
        rptr = Signal(range(D))
        mcount = Signal(range(D + 1))    # words in the memory
        mne = Signal()                   # registered: mcount != 0
        mone = Signal()                  # registered: mcount == 1

        push = Signal()
        pop = Signal()       # a word leaves the output register
        load = Signal()      # the output register takes a word from memory
        m.d.comb += [
            push.eq(self.w_en & self.w_rdy),
            pop.eq(self.r_en & self.r_rdy),
            load.eq((~self.r_rdy | self.r_en) & mne),
            wr.en.eq(push),
            wr.addr.eq(wptr),
            wr.data.eq(self.w_data),
            rd.en.eq(load),
            rd.addr.eq(rptr),
            self.r_data.eq(rd.data),
        ]

        def advance(ptr):
            if D == 1:
                return
            if D & (D - 1) == 0:
                m.d.sync += ptr.eq(ptr + 1)
            else:
                with m.If(ptr == D - 1):
                    m.d.sync += ptr.eq(0)
                with m.Else():
                    m.d.sync += ptr.eq(ptr + 1)

        with m.If(push):
            advance(wptr)
        with m.If(load):
            advance(rptr)

        # Every next state below is flat: the strobes (`push`, `load`,
        # `pop`, from the ports that arrive late) select between values
        # computed from registers alone, in one or two LUT levels.
        # Output register valid bit: loaded while the memory holds a word,
        # emptied by a read otherwise.
        m.d.sync += self.r_rdy.eq(mne | (self.r_rdy & ~self.r_en))

        # Memory count and its flags ("one more": push without load, "one
        # less": load without push; `mone` implies `mne`).
        mtwo = Signal()
        m.d.comb += mtwo.eq(mcount == 2)
        m.d.sync += [
            mne.eq(push | (mne & ~(load & mone))),
            mone.eq(Mux(push ^ load, Mux(push, ~mne, mtwo), mone)),
        ]
        with m.If(push ^ load):
            m.d.sync += mcount.eq(Mux(push, mcount + 1, mcount - 1))

        # Total level and the registered write-ready flag.
        with m.If(push ^ pop):
            m.d.sync += [self.level.eq(Mux(push, self.level + 1, self.level - 1)),
                         self.w_rdy.eq(~push | (self.level != D - 1))]
        return m
