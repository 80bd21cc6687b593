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
cycles; the receiver's ``end`` comes the cycle after the last CRC byte. The
receiver needs its bytes at least 9 cycles apart (its CRC unit's pace; a
UART byte takes 10 · divisor ≥ 40 cycles); the transmitter offers a byte
only when its CRC unit is free, so it suits any consumer.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import protocol
from .args import check_int

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
        shift = Signal(8)
        left = Signal(range(9))
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
    :class:`~.uart.UartRx`, no back-pressure), ``frame`` (out,
    :func:`received_frame_signature`); with ``shared_crc`` ``crc`` (out: the
    CRC unit is outside, :class:`SharedCrc`); ``registered`` (default
    true): the idle timeout's comparison is a register (timing); false: it
    ends the frame a cycle earlier.
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
        idle = Signal(range(self.timeout + 1))
        in_frame = Signal()
        m.d.comb += [fr.length.eq(length), fr.byte.eq(byte), fr.index.eq(index), fr.in_frame.eq(in_frame)]
        with m.If(got | ~in_frame):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout):
            m.d.sync += idle.eq(idle + 1)
        # Registered (timing): the receiver has waited out its idle timeout.
        timed_out = Signal()
        m.d["sync" if self.registered else "comb"] += timed_out.eq(in_frame & (idle == self.timeout) & ~got)

        def feed():
            m.d.comb += [crc.start.eq(1), crc.byte.eq(byte)]

        sync0, sync1 = protocol.SYNC
        with m.FSM(name="receiver"):
            with m.State("HUNT"):
                m.d.sync += in_frame.eq(0)
                with m.If(got & (byte == sync0)):
                    m.next = "SYNC1"
            with m.State("SYNC1"):
                with m.If(got):
                    with m.If(byte == sync1):
                        m.d.comb += crc.clear.eq(1)
                        m.d.sync += in_frame.eq(1)
                        m.next = "KIND"
                    with m.Elif(byte != sync0):
                        m.next = "HUNT"
            with m.State("KIND"):
                with m.If(timed_out):
                    m.d.comb += fr.end.eq(1)
                    m.next = "HUNT"
                with m.Elif(got):
                    feed()
                    m.d.comb += fr.begin.eq(1)
                    m.d.sync += fr.kind.eq(byte)
                    m.next = "LEN0"
            with m.State("LEN0"):
                with m.If(timed_out):
                    m.d.comb += fr.end.eq(1)
                    m.next = "HUNT"
                with m.Elif(got):
                    feed()
                    m.d.sync += length[:8].eq(byte)
                    m.next = "LEN1"
            with m.State("LEN1"):
                with m.If(timed_out):
                    m.d.comb += fr.end.eq(1)
                    m.next = "HUNT"
                with m.Elif(got):
                    feed()
                    m.d.sync += [length[8:].eq(byte), index.eq(0), left.eq(Cat(length[:8], byte) - 1)]
                    with m.If(Cat(length[:8], byte) > protocol.MAX_PAYLOAD):
                        m.d.comb += fr.end.eq(1)
                        m.next = "HUNT"
                    with m.Elif(Cat(length[:8], byte) == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(timed_out):
                    m.d.comb += fr.end.eq(1)
                    m.next = "HUNT"
                with m.Elif(got):
                    feed()
                    m.d.comb += fr.data.eq(1)
                    m.d.sync += [index.eq(index + 1), left.eq(left - 1)]
                    with m.If(left == 0):
                        m.d.sync += index.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                with m.If(timed_out):
                    m.d.comb += fr.end.eq(1)
                    m.next = "HUNT"
                with m.Elif(got):
                    # Compared byte by byte (the unit finished long ago: its
                    # last byte came before these four).
                    match = byte == crc.value.word_select(index[:2], 8)
                    m.d.sync += [crc_ok.eq(Mux(index[:2] == 0, match, crc_ok & match)), index.eq(index + 1)]
                    with m.If(index[:2] == 3):
                        m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += [fr.end.eq(1), fr.good.eq(crc_ok)]
                m.d.sync += in_frame.eq(0)
                m.next = "HUNT"
        return m


class FrameTransmitter(_CrcUser):
    """Sends one frame at a time (module docstring).

    Ports: ``start`` (in, pulse while not ``busy``: sample ``kind`` and
    ``length``), ``kind``, ``length`` (in), ``busy`` (out), ``payload`` (in
    stream of bytes: the frame's payload, exactly ``length`` bytes, taken as
    the UART can send them; ``index`` (out) numbers the byte asked for),
    ``tx`` (out byte stream to :class:`~.uart.UartTx`). ``shared_crc``:
    the CRC unit is outside (``crc`` port, :class:`SharedCrc`).
    ``registered`` (default true): the byte for the UART passes a register
    (timing); false: the frame's byte goes to the UART directly.
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
        if self.registered:
            out_byte = Signal(8)
            m.d.comb += [self.tx.valid.eq(out_valid), self.tx.payload.eq(out_byte)]
            with m.If(self.tx.ready):
                m.d.sync += out_valid.eq(0)
            m.d.comb += take.eq(~out_valid & ~crc.busy)
            with m.If(tx_valid & take):
                m.d.sync += [out_valid.eq(1), out_byte.eq(tx_byte)]
        else:
            m.d.comb += [self.tx.valid.eq(tx_valid & ~crc.busy), self.tx.payload.eq(tx_byte),
                         take.eq(self.tx.ready & ~crc.busy)]
        sent = tx_valid & take

        def send(value, *, checked=True, nxt=None):
            m.d.comb += [tx_valid.eq(1), tx_byte.eq(value)]
            with m.If(take):
                if checked:
                    m.d.comb += [crc.start.eq(1), crc.byte.eq(value)]
                if nxt is not None:
                    m.next = nxt

        with m.FSM(name="transmitter") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += crc.clear.eq(1)
                    m.d.sync += [kind.eq(self.kind), length.eq(self.length), index.eq(0)]
                    m.next = "SYNC0"
            with m.State("SYNC0"):
                m.d.sync += left.eq(length - 1)        # from the registered length (timing)
                send(Const(sync0, 8), checked=False, nxt="SYNC1")
            with m.State("SYNC1"):
                send(Const(sync1, 8), checked=False, nxt="KIND")
            with m.State("KIND"):
                send(kind, nxt="LEN0")
            with m.State("LEN0"):
                send(length[:8], nxt="LEN1")
            with m.State("LEN1"):
                send(length[8:])
                with m.If(take):
                    with m.If(length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [tx_valid.eq(self.payload.valid), tx_byte.eq(self.payload.payload),
                             self.payload.ready.eq(take)]
                with m.If(sent):
                    m.d.comb += [crc.start.eq(1), crc.byte.eq(self.payload.payload)]
                    m.d.sync += [index.eq(index + 1), left.eq(left - 1)]
                    with m.If(left == 0):
                        m.d.sync += index.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                send(crc.value.word_select(index[:2], 8), checked=False)
                with m.If(take):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index[:2] == 3):
                        m.d.sync += index.eq(0)
                        m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | out_valid)
        return m
