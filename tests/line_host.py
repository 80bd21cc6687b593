"""A host on a simulated UART line, for Amaranth testbenches of the board.

:class:`LineHost` drives a design's ``uart_rx`` bit by bit (8N1, ``divisor``
cycles a bit) and decodes its ``uart_tx`` the same way, one simulation
cycle per call of :meth:`LineHost.cycle`; :func:`exchange` sends frames and
collects the reply frames (:class:`dhq_rtl.protocol.FrameParser`).
"""

from collections import deque

from dhq_rtl.protocol import FrameParser

__all__ = ["LineHost", "exchange"]


class LineHost:
    def __init__(self, divisor):
        self.divisor = divisor
        self.out_bits = deque()          # line levels to drive, one per cycle
        self.parser = FrameParser()
        self.raw = bytearray()           # every byte received
        self._rx_state = None            # None: idle; else (cycles to next sample, bit index, value)
        self.cycles = 0

    def send(self, data):
        d = self.divisor
        for byte in bytes(data):
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                self.out_bits.extend([bit] * d)

    @property
    def sending(self):
        return bool(self.out_bits)

    def line_level(self):
        return self.out_bits.popleft() if self.out_bits else 1

    def sample(self, tx):
        """Decode the board's line; returns the frames completed."""
        self.cycles += 1
        d = self.divisor
        if self._rx_state is None:
            if tx == 0:
                self._rx_state = [d + d // 2 - 1, 0, 0]
            return []
        wait, nbit, value = self._rx_state
        if wait:
            self._rx_state[0] -= 1
            return []
        if nbit == 8:
            self._rx_state = None
            if tx:
                self.raw.append(value)
                return self.parser.feed(bytes([value]))
            return []
        self._rx_state = [d - 1, nbit + 1, value | (tx << nbit)]
        return []


async def exchange(ctx, dut, host, data, replies, max_cycles=2_000_000, until=None):
    """Send ``data`` and run until ``replies`` frames came back (or
    ``until(frames)`` says so); returns the frames."""
    host.send(data)
    frames = []
    for _ in range(max_cycles):
        ctx.set(dut.uart_rx, host.line_level())
        frames += host.sample(ctx.get(dut.uart_tx))
        await ctx.tick()
        if (until(frames) if until else len(frames) >= replies) and not host.sending:
            return frames
    raise AssertionError(f"{len(frames)} of {replies} replies after {max_cycles} cycles")
