"""A minimal 8N1 UART: transmitter and receiver with stream interfaces.

Both run at ``divisor`` clock cycles per bit (``divisor = round(f_clk /
baud)``, at least 4). :class:`UartTx` takes bytes from a stream (``ready`` is
high while idle; one byte takes ``10 · divisor`` cycles: start bit, 8 data
bits LSB first, stop bit). :class:`UartRx` synchronises the line with two
flip-flops, waits for a start bit, samples every bit in its middle and emits
each byte on a stream (``valid`` for one cycle per byte, no back-pressure: a
byte not taken is dropped, and a bad stop bit drops the byte). Both have a
``busy`` output (a byte is being sent / received).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .args import check_int

__all__ = ["UartTx", "UartRx", "uart_divisor"]


def uart_divisor(clk_hz, baud):
    """Clock cycles per bit; raises ``ValueError`` when the baud rate is too
    fast for the clock or the rounding error exceeds 2 %."""
    if baud <= 0 or clk_hz <= 0:
        raise ValueError("clock and baud rate must be positive")
    div = round(clk_hz / baud)
    if div < 4:
        raise ValueError(f"{baud} baud is too fast for a {clk_hz / 1e6:g} MHz clock")
    if abs(clk_hz / div - baud) / baud > 0.02:
        raise ValueError(f"{baud} baud cannot be made from {clk_hz / 1e6:g} MHz within 2 %")
    return div


def _check_divisor(divisor):
    check_int("divisor", divisor, 4)


class UartTx(wiring.Component):
    """8N1 transmitter. Ports: ``data`` (byte stream in), ``tx`` (line, idle high)."""

    data: In(stream.Signature(8))
    tx: Out(1, init=1)
    busy: Out(1)

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.divisor))
        bits = Signal(10)       # start, 8 data, stop: shifted out LSB first
        left = Signal(range(11))
        # Registered flags (timing): "no frame in flight" (left == 0) and
        # "the bit's last cycle" (count == divisor - 1), so that the
        # handshake and the shift enables are a LUT from registers.
        idle = Signal(init=1)
        bit_end = Signal()
        m.d.comb += [self.data.ready.eq(idle), self.busy.eq(~idle)]
        with m.If(self.data.valid & idle):
            m.d.sync += [bits.eq(Cat(0, self.data.payload, 1)), left.eq(10), count.eq(0), idle.eq(0),
                         bit_end.eq(0)]
        with m.Elif(~idle):
            m.d.sync += [count.eq(count + 1), bit_end.eq(count == self.divisor - 2)]
            with m.If(bit_end):
                m.d.sync += [count.eq(0), bit_end.eq(0), bits.eq(bits >> 1), left.eq(left - 1),
                             idle.eq(left == 1)]
        # The line idles high (the port's reset value) whenever no frame is in flight.
        with m.If(~idle):
            m.d.comb += self.tx.eq(bits[0])
        return m


class UartRx(wiring.Component):
    """8N1 receiver. Ports: ``rx`` (line), ``data`` (byte stream out, no back-pressure)."""

    rx: In(1, init=1)
    data: Out(stream.Signature(8))
    busy: Out(1)

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]
        count = Signal(range(self.divisor + self.divisor // 2 + 1))
        # Registered (timing): "the sample's cycle" (count == 0 in BITS),
        # set as the count reaches zero, so that the shift and the byte's
        # enables are a LUT from registers.
        sample = Signal()
        shift = Signal(8)
        nbit = Signal(range(9))
        m.d.sync += self.data.valid.eq(0)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(~line):
                    # First sample in the middle of data bit 0: 1.5 bit times.
                    m.d.sync += [count.eq(self.divisor + self.divisor // 2 - 1), sample.eq(0), nbit.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                m.d.sync += [count.eq(count - 1), sample.eq(count == 1)]
                with m.If(sample):
                    m.d.sync += [count.eq(self.divisor - 1), sample.eq(0)]
                    with m.If(nbit == 8):
                        with m.If(line):
                            m.d.sync += [self.data.valid.eq(1), self.data.payload.eq(shift)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [shift.eq(Cat(shift[1:], line)), nbit.eq(nbit + 1)]
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | ~line | ~sync1)
        return m
