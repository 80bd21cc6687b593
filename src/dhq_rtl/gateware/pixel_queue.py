"""Output pixels: channel values assembled into pixel words, then queued.

:class:`PixelQueue` collects the ``channels`` values of a pixel (channel ``c``
into bits ``[c·pixel_bits, (c+1)·pixel_bits)`` of the word), and when the
last channel has arrived puts the word into a :class:`~.fifo.FlagFIFO` of
``pixel_queue_depth`` words, from which the core's ``pixels`` stream reads.

``values`` is ``always_ready``: the core admits a pixel only while fewer than
``buffers − 1`` are in flight, and the queue holds ``buffers`` words, so it
never overflows. Latency: the word is offered on ``pixels`` 3 cycles after
its last channel value (register, FIFO write, FIFO output register);
throughput one pixel per cycle; back-pressure on ``pixels`` is honoured.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .core_streams import pixel_value_layout
from .descriptors import descriptor_init, descriptor_layout
from .fifo import FlagFIFO

__all__ = ["PixelQueue"]


class PixelQueue(wiring.Component):
    """Pixel assembly and output FIFO (module docstring)."""

    def __init__(self, plan):
        self.plan = plan
        self.channels = plan.channels
        super().__init__({
            "values": In(stream.Signature(pixel_value_layout(plan), always_ready=True)),
            "pixels": Out(stream.Signature(unsigned(plan.pixel_bits * self.channels))),
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        pb, channels = self.plan.pixel_bits, self.channels
        m.submodules.fifo = fifo = FlagFIFO(width=pb * channels, depth=self.plan.pixel_queue_depth,
                                            block_ram=self.plan.pixel_queue_block_ram)
        word = Signal(pb * channels)
        done = Signal()
        v = self.values.payload
        with m.If(self.values.valid):
            with m.Switch(v.channel):
                for c in range(channels):
                    with m.Case(c):
                        m.d.sync += word.word_select(c, pb).eq(v.value)
        m.d.sync += done.eq(self.values.valid & (v.channel == self.desc.last_channel))
        m.d.comb += [
            fifo.w_en.eq(done),
            fifo.w_data.eq(word),
            self.pixels.valid.eq(fifo.r_rdy),
            self.pixels.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.pixels.ready),
        ]
        return m
