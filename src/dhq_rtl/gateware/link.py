"""The board's side of the host link's frames (:mod:`dhq_rtl.protocol`).

* :class:`Crc32Serial`: CRC-32 one bit a cycle (8 cycles a byte; a UART byte
  takes at least 40 cycles, so one unit keeps up with a link direction).
* :class:`FrameReceiver`: bytes from the UART receiver → frames. It hunts for
  :data:`~dhq_rtl.protocol.SYNC`, reads kind and length, hands every payload
  byte on as it arrives (``data``: the byte and its index; a command that
  carries data, a load chunk, is written to memory without a buffer), and
  at the end of the frame says whether it was good (``end``: CRC match,
  length within :data:`~dhq_rtl.protocol.MAX_PAYLOAD`). A frame that pauses
  for more than :data:`~dhq_rtl.protocol.IDLE_BYTE_TIMES` byte times ends as
  a bad one; after any frame the receiver hunts for ``SYNC`` again.
* :class:`FrameTransmitter`: sends one frame (``start`` with ``kind`` and
  ``length``): sync, kind, length, the payload pulled byte by byte from
  ``payload`` (a stream: the sender may take its time, e.g. a pixel the core
  has not finished), the CRC-32 computed on the way.

Latency and throughput are the UART's: one byte per ``10 · divisor``
cycles; the receiver's ``end`` comes the cycle after the last CRC byte (a
frame whose length is too long ends the cycle after its length's last
byte). The receiver needs its bytes at least 12 cycles apart (its CRC
unit's pace behind the registers on its way and the registered CRC byte it
compares with; a UART byte takes 10 · divisor ≥ 40 cycles); the transmitter offers a byte only when its CRC
unit is free, so it suits any consumer.
"""

from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import protocol
from .args import check_int
from .const_compare import at_least
from .one_hot import OneHotStates

__all__ = ["Crc32Serial", "FrameReceiver", "FrameTransmitter", "received_frame_signature", "crc_user_signature",
           "SharedCrc"]


class Crc32Serial(wiring.Component):
    """Bit-serial CRC-32 (zlib's: reflected, polynomial 0xEDB88320).

    Ports: ``clear`` (in: the register back to all ones), ``start`` and
    ``byte`` (in: shift ``byte`` in, LSB first, over the next 8 cycles),
    ``busy`` (out), ``value`` (out: the CRC of the bytes so far, the register
    XOR 0xFFFFFFFF; final 8 cycles after the last ``start``). ``clear``
    wins over ``start``; a ``start`` while ``busy`` is not allowed.
    Cost: 32 + 8 + 4 flip-flops and a few LUTs.
    """

    clear: In(1)
    start: In(1)
    byte: In(8)
    busy: Out(1)
    value: Out(32)

    def elaborate(self, platform):
        m = Module()
        reg = Signal(32, init=0xFFFFFFFF)
        # No reset (timing: the reset would join every enable of theirs):
        # `busy` (reset) guards them, they only count down to it.
        shift = Signal(8, reset_less=True)
        left = Signal(range(9), reset_less=True)
        busy = Signal()                 # left != 0, a register (timing: every user decides on it)
        m.d.comb += [self.busy.eq(busy), self.value.eq(~reg)]
        feedback = reg[0] ^ shift[0]
        with m.If(self.clear):
            m.d.sync += [reg.eq(0xFFFFFFFF), left.eq(0), busy.eq(0)]
        with m.Elif(self.start):
            m.d.sync += [shift.eq(self.byte), left.eq(8), busy.eq(1)]
        with m.Elif(busy):
            m.d.sync += [reg.eq((reg >> 1) ^ Mux(feedback, protocol.CRC32_POLY, 0)), shift.eq(shift >> 1),
                         left.eq(left - 1), busy.eq(left != 1)]
        return m


def crc_user_signature():
    """A user's side of a CRC unit: ``clear``, ``start``, ``byte`` (out),
    ``busy``, ``value`` (in); :class:`Crc32Serial`'s ports, flipped."""
    return wiring.Signature({"clear": Out(1), "start": Out(1), "byte": Out(8), "busy": In(1), "value": In(32)})


class SharedCrc(wiring.Component):
    """One :class:`Crc32Serial` for several users (``users`` ports, each
    :func:`crc_user_signature` flipped): their ``clear`` and ``start``
    strobes are or-ed, ``byte`` is the first starting user's, and every user
    sees the unit's ``busy`` and ``value``. The board's link is half duplex
    (a command, then its answer), so its users take turns; should two
    overlap (a host that sends while the board answers), the CRCs they
    compute are wrong, their frames fail their checks and are sent again:
    wrong, never silently.

    ``registered`` (default true): the users' strobes and byte reach the
    unit through registers (timing); false: directly, a cycle earlier.
    """

    def __init__(self, users, *, registered=True):
        check_int("users", users, 1)
        self.users = users
        self.registered = _check_registered(registered)
        super().__init__({f"user{k}": In(crc_user_signature()) for k in range(users)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = Crc32Serial()
        ports = [getattr(self, f"user{k}") for k in range(self.users)]
        # The users' strobes and byte are registered on their way to the unit
        # (timing: the users' state machines end there); ``busy`` covers a
        # start on its way, so a user sees it the cycle after its start.
        clear, start, byte = Signal(), Signal(), Signal(8)
        late = "sync" if self.registered else "comb"
        for p in ports:
            m.d.comb += [p.busy.eq(unit.busy | (start if self.registered else 0)), p.value.eq(unit.value)]
        m.d[late] += [clear.eq(Cat(*[p.clear for p in ports]).any()),
                      start.eq(Cat(*[p.start for p in ports]).any())]
        for p in reversed(ports):
            with m.If(p.start):
                m.d[late] += byte.eq(p.byte)
        m.d.comb += [unit.clear.eq(clear), unit.start.eq(start), unit.byte.eq(byte)]
        return m


def _check_registered(registered):
    if not isinstance(registered, bool):
        raise TypeError(f"registered must be a bool, not {registered!r}")
    return registered


def received_frame_signature():
    """What :class:`FrameReceiver` reports (its ``frame`` port): ``begin``
    (the kind byte arrived; ``kind`` is valid from now until the next
    ``begin``), ``data`` (a payload byte: ``byte`` and its ``index``),
    ``end`` (the frame is over: ``good``, ``length``); ``in_frame``: the
    receiver is inside a frame (not hunting for ``SYNC``)."""
    return wiring.Signature({
        "in_frame": Out(1),
        "begin": Out(1), "kind": Out(8), "length": Out(16),
        "data": Out(1), "byte": Out(8), "index": Out(protocol.MAX_PAYLOAD.bit_length()),
        "end": Out(1), "good": Out(1),
    })


class _CrcUser(wiring.Component):
    """A frame block with a CRC unit of its own, or (``shared_crc``) a
    ``crc`` port to one outside (:class:`SharedCrc`)."""

    def __init__(self, members, shared_crc, registered):
        self.shared_crc = shared_crc
        self.registered = _check_registered(registered)
        if shared_crc:
            members["crc"] = Out(crc_user_signature())
        super().__init__(members)

    def _crc_unit(self, m):
        if self.shared_crc:
            return self.crc
        m.submodules.crc = crc = Crc32Serial()
        return crc


class FrameReceiver(_CrcUser):
    """Frames out of the UART receiver's bytes (module docstring).

    Parameters: ``divisor`` (clock cycles per UART bit, ≥ 4: the idle
    timeout is :data:`~dhq_rtl.protocol.IDLE_BYTE_TIMES` · 10 · ``divisor``
    cycles). Ports: ``rx`` (in, the byte stream of
    :class:`~.uart.UartRx`, no back-pressure; a byte stays on its payload
    until the next arrives, as the UART's register does), ``frame`` (out,
    :func:`received_frame_signature`); with ``shared_crc`` ``crc`` (out: the
    CRC unit is outside, :class:`SharedCrc`); ``registered`` (default
    true): the idle timeout's comparison, the CRC unit's byte and the CRC
    byte compared with are registers (timing); false: they are
    combinational (a stalled frame ends a cycle earlier).
    """

    def __init__(self, divisor, *, shared_crc=False, registered=True):
        check_int("divisor", divisor, 4)
        self.divisor = divisor
        self.timeout = protocol.IDLE_BYTE_TIMES * 10 * divisor
        super().__init__({
            "rx": In(stream.Signature(8, always_ready=True)),
            "frame": Out(received_frame_signature()),
        }, shared_crc, registered)

    def elaborate(self, platform):
        m = Module()
        crc = self._crc_unit(m)
        byte = self.rx.payload
        got = self.rx.valid
        fr = self.frame
        length = Signal(16)
        index = Signal(protocol.MAX_PAYLOAD.bit_length())
        left = Signal.like(index)              # payload bytes after this one
        crc_ok = Signal()                      # the CRC bytes so far equal the computed CRC's
        # Registered every cycle (timing): bytes come at least 12 cycles
        # apart, and `index`, `left` and the CRC change only when one
        # comes, so each is exact when the next byte arrives.
        expect = Signal(8)                     # the computed CRC's byte `index % 4`
        last = Signal()                        # left == 0
        late = "sync" if self.registered else "comb"
        m.d[late] += [expect.eq(crc.value.word_select(index[:2], 8)), last.eq(left == 0)]
        # The length's checks, registered in LEN1 and decided in LENGTH.
        too_long, empty = Signal(), Signal()
        idle = Signal(range(self.timeout + 1))
        in_frame = Signal()
        m.d.comb += [fr.length.eq(length), fr.byte.eq(byte), fr.index.eq(index), fr.in_frame.eq(in_frame)]
        # Cycles since the last byte (saturating): a frame starts with a
        # byte, so inside one this is the pause (timing: no other term in
        # the restart).
        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout):
            m.d.sync += idle.eq(idle + 1)
        # Registered (timing): the receiver has waited out its idle timeout.
        timed_out = Signal()
        m.d["sync" if self.registered else "comb"] += timed_out.eq(in_frame & (idle == self.timeout) & ~got)

        # A byte reaches the CRC unit a cycle after it came, its start from a
        # register (timing: the state's decoding ends there); the byte is
        # still on ``rx.payload`` then.
        crc_go = Signal()
        m.d.comb += [crc.start.eq(crc_go), crc.byte.eq(byte)]
        m.d[late] += crc_go.eq(0)

        def feed():
            m.d[late] += crc_go.eq(1)

        sync0, sync1 = protocol.SYNC
        fsm = OneHotStates(m, ["HUNT", "SYNC1", "KIND", "LEN0", "LEN1", "LENGTH", "PAYLOAD", "CRC", "CHECK"],
                           "HUNT", name="receiver")

        @contextmanager
        def on_byte():
            """Inside a frame: a byte that came (the body); a frame that
            stalled past the idle timeout ends (bad), the receiver hunts."""
            with m.If(timed_out):
                m.d.comb += fr.end.eq(1)
                fsm.goto("HUNT")
            with m.Elif(got):
                yield

        with fsm.state("HUNT"):
            m.d.sync += in_frame.eq(0)
            with m.If(got & (byte == sync0)):
                fsm.goto("SYNC1")
        with fsm.state("SYNC1"):
            with m.If(got):
                with m.If(byte == sync1):
                    m.d.comb += crc.clear.eq(1)
                    m.d.sync += in_frame.eq(1)
                    fsm.goto("KIND")
                with m.Elif(byte != sync0):
                    fsm.goto("HUNT")
        with fsm.state("KIND"), on_byte():
            feed()
            m.d.comb += fr.begin.eq(1)
            m.d.sync += fr.kind.eq(byte)
            fsm.goto("LEN0")
        with fsm.state("LEN0"), on_byte():
            feed()
            m.d.sync += length[:8].eq(byte)
            fsm.goto("LEN1")
        with fsm.state("LEN1"), on_byte():
            feed()
            m.d.sync += [length[8:].eq(byte), index.eq(0),
                         too_long.eq(at_least(Cat(length[:8], byte), protocol.MAX_PAYLOAD + 1)),
                         empty.eq(Cat(length[:8], byte) == 0)]
            fsm.goto("LENGTH")
        with fsm.state("LENGTH"):             # a cycle: the next byte is far away
            # The payload's count from the registered length (timing: not
            # from the byte that just came, through an adder).
            m.d.sync += left.eq(length - 1)
            with m.If(too_long):
                m.d.comb += fr.end.eq(1)
                fsm.goto("HUNT")
            with m.Elif(empty):
                fsm.goto("CRC")
            with m.Else():
                fsm.goto("PAYLOAD")
        with fsm.state("PAYLOAD"), on_byte():
            feed()
            m.d.comb += fr.data.eq(1)
            m.d.sync += [index.eq(index + 1), left.eq(left - 1)]
            with m.If(last):
                m.d.sync += index.eq(0)
                fsm.goto("CRC")
        with fsm.state("CRC"), on_byte():
            # Compared byte by byte (the unit finished long ago: its
            # last byte came before these four).
            match = byte == expect
            m.d.sync += [crc_ok.eq(Mux(index[:2] == 0, match, crc_ok & match)), index.eq(index + 1)]
            with m.If(index[:2] == 3):
                fsm.goto("CHECK")
        with fsm.state("CHECK"):
            m.d.comb += [fr.end.eq(1), fr.good.eq(crc_ok)]
            m.d.sync += in_frame.eq(0)
            fsm.goto("HUNT")
        return m


class FrameTransmitter(_CrcUser):
    """Sends one frame at a time (module docstring).

    Ports: ``start`` (in, pulse while not ``busy``: sample ``kind`` and
    ``length``), ``kind``, ``length`` (in), ``busy`` (out), ``payload`` (in
    stream of bytes: the frame's payload, exactly ``length`` bytes, taken as
    the UART can send them; ``index`` (out) numbers the byte asked for),
    ``tx`` (out byte stream to :class:`~.uart.UartTx`). ``shared_crc``:
    the CRC unit is outside (``crc`` port, :class:`SharedCrc`).
    ``registered`` (default true): the byte for the UART, the CRC unit's
    byte and start, the header's and the CRC's bytes pass registers, and
    whether a byte is taken is a register (timing); false: they are
    combinational (the frame's byte goes to the UART directly).
    """

    def __init__(self, *, shared_crc=False, registered=True):
        super().__init__({
            "start": In(1), "kind": In(8), "length": In(16), "busy": Out(1),
            "payload": In(stream.Signature(8)), "index": Out(protocol.MAX_PAYLOAD.bit_length()),
            "tx": Out(stream.Signature(8)),
        }, shared_crc, registered)

    def elaborate(self, platform):
        m = Module()
        crc = self._crc_unit(m)
        kind = Signal(8)
        length = Signal(16)
        index = Signal(protocol.MAX_PAYLOAD.bit_length())
        left = Signal.like(index)              # payload bytes after this one
        m.d.comb += self.index.eq(index)
        sync0, sync1 = protocol.SYNC
        # The byte for the UART passes a register (timing: the frame's byte
        # multiplexers end there, not in the UART's shift register); a byte
        # is taken into it while it is empty and the CRC unit is free (it
        # takes 9 cycles a byte; a UART takes 10·divisor ≥ 40, so it never
        # waits then).
        take = Signal()
        tx_valid = Signal()
        tx_byte = Signal(8)
        out_valid = Signal()
        # A sent byte reaches the CRC unit a cycle later, from registers
        # (timing: the frame's byte multiplexers end in a register, not in
        # the CRC unit's); no byte is taken meanwhile.
        crc_go, crc_byte, checked_byte = Signal(), Signal(8), Signal()
        late = "sync" if self.registered else "comb"      # without: the same, combinational
        m.d.comb += [crc.start.eq(crc_go), crc.byte.eq(crc_byte)]
        sent = tx_valid & take
        if self.registered:
            out_byte = Signal(8)
            m.d.comb += [self.tx.valid.eq(out_valid), self.tx.payload.eq(out_byte)]
            with m.If(self.tx.ready):
                m.d.sync += out_valid.eq(0)
            with m.If(sent):
                m.d.sync += [out_valid.eq(1), out_byte.eq(tx_byte)]
            # `take`: the register is empty and the CRC unit is free with no
            # byte on its way, registered: computed a cycle early from what
            # the register and the unit will be (timing: every decision on
            # a sent byte starts at a flip-flop).
            m.d.sync += [crc_go.eq(sent & checked_byte),
                         take.eq(~(out_valid & ~self.tx.ready) & ~crc.busy & ~crc_go & ~sent)]
            # The sent byte, for the CRC unit: `out_byte` took it with
            # `crc_go` (no copy of its own).
            m.d.comb += crc_byte.eq(out_byte)
        else:
            m.d.comb += [self.tx.valid.eq(tx_valid & ~crc.busy), self.tx.payload.eq(tx_byte),
                         take.eq(self.tx.ready & ~crc.busy), crc_byte.eq(tx_byte), crc_go.eq(sent & checked_byte)]
        # Registered (timing): the length is set long before LEN1, `left`
        # changes only when a byte is sent (a byte takes the CRC unit's 9
        # cycles at least).
        empty, last = Signal(), Signal()
        m.d.sync += [empty.eq(length == 0), last.eq(left == 0)]

        # The header's byte and the CRC's are registers set every cycle from
        # the state and `crc_index` (timing: the frame's byte is one of three
        # registers, not one of seven bytes). A byte sent, the next is taken
        # two cycles later at the earliest (`take`), when they follow; the
        # first, SYNC0's, is set with the start.
        head = Signal(8)
        crc_index = Signal(2)
        crc_sel = Signal(8)
        m.d[late] += crc_sel.eq(crc.value.word_select(crc_index, 8))
        fsm = OneHotStates(m, ["IDLE", "SYNC0", "SYNC1", "KIND", "LEN0", "LEN1", "PAYLOAD", "CRC"], "IDLE",
                           name="transmitter")
        on = fsm.on
        m.d.comb += [
            # A byte to send: in every state but IDLE, the payload's when it has one.
            tx_valid.eq(~on["IDLE"] & (~on["PAYLOAD"] | self.payload.valid)),
            tx_byte.eq(Mux(on["PAYLOAD"], self.payload.payload, Mux(on["CRC"], crc_sel, head))),
            checked_byte.eq(on["KIND"] | on["LEN0"] | on["LEN1"] | on["PAYLOAD"]),
            self.payload.ready.eq(on["PAYLOAD"] & take),
            self.busy.eq(~on["IDLE"] | out_valid),
        ]
        with fsm.state("IDLE"):
            with m.If(self.start):
                m.d.comb += crc.clear.eq(1)
                m.d.sync += [kind.eq(self.kind), length.eq(self.length), index.eq(0), crc_index.eq(0)]
                m.d[late] += head.eq(sync0)
                fsm.goto("SYNC0")
        with fsm.state("SYNC0"):
            m.d.sync += left.eq(length - 1)        # from the registered length (timing)
        for state, nxt, value in (("SYNC0", "SYNC1", sync0), ("SYNC1", "KIND", sync1),
                                  ("KIND", "LEN0", kind), ("LEN0", "LEN1", length[:8]), ("LEN1", None, length[8:])):
            with fsm.state(state):
                m.d[late] += head.eq(value)
                if nxt is not None:
                    with m.If(take):
                        fsm.goto(nxt)
        with fsm.state("LEN1"):
            with m.If(take):
                with m.If(empty):
                    fsm.goto("CRC")
                with m.Else():
                    fsm.goto("PAYLOAD")
        with fsm.state("PAYLOAD"):
            with m.If(sent):
                m.d.sync += [index.eq(index + 1), left.eq(left - 1)]
                with m.If(last):
                    m.d.sync += index.eq(0)
                    fsm.goto("CRC")
        with fsm.state("CRC"):
            with m.If(take):
                m.d.sync += crc_index.eq(crc_index + 1)
                with m.If(crc_index == 3):
                    fsm.goto("IDLE")
        return m
