"""A stand-in with the accelerator core's interface, for the simulation harness.

:class:`StandinCore` has exactly the signature of
:class:`dhq_rtl.gateware.core.InrCore` (``start``, ``region``, ``busy``,
``pixels``) but computes nothing: it reads the golden pixels of the model
from a ROM, spending ``cycles_per_pixel`` cycles on each. It lets the
simulation harness (export, compiled build, drivers, cycle bookkeeping,
back-pressure) be tested independently of the real datapath.

Timing: ``start`` in cycle 0 latches the region; the first pixel is valid
from cycle ``cycles_per_pixel + 1``; after each accepted pixel the next one
is valid ``cycles_per_pixel + 1`` cycles later. Throughput: one pixel per
``cycles_per_pixel + 1`` cycles without back-pressure. ``busy`` is high from
cycle 1 through the cycle in which the last pixel is accepted.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dhq_rtl.golden import GoldenModel
from dhq_rtl.model_image import ModelImage

__all__ = ["StandinCore", "region_layout"]


def region_layout(model):
    """The region layout of the core interface: ``x0 < x1 ≤ width``, ``y0 < y1 ≤ height``."""
    return data.StructLayout({
        "x0": range(model.width),
        "y0": range(model.height),
        "x1": range(model.width + 1),
        "y1": range(model.height + 1),
    })


class StandinCore(wiring.Component):
    """Golden pixels from a ROM, with the interface of ``InrCore``.

    ``lanes`` and ``dsp`` are accepted (and validated) for interface
    compatibility; they do not change the behaviour.
    """

    def __init__(self, model, *, lanes=16, dsp="generic", cycles_per_pixel=4):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, not {type(model).__name__}")
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if dsp not in ("generic", "ice40"):
            raise ValueError(f"dsp must be 'generic' or 'ice40', not {dsp!r}")
        if not isinstance(cycles_per_pixel, int) or cycles_per_pixel < 1:
            raise ValueError(f"cycles_per_pixel must be a positive integer, not {cycles_per_pixel!r}")
        self.model = model
        self.lanes = lanes
        self.cycles_per_pixel = cycles_per_pixel
        self.payload_bits = model.pixel_bits * model.channels
        super().__init__({
            "start": In(1),
            "region": In(region_layout(model)),
            "busy": Out(1),
            "pixels": Out(stream.Signature(unsigned(self.payload_bits))),
        })

    def _rom_init(self):
        m = self.model
        img = GoldenModel(m).render().astype(int)
        words = []
        for y in range(m.height):
            for x in range(m.width):
                word = 0
                for c in range(m.channels):
                    word |= int(img[y, x, c]) << (c * m.pixel_bits)
                words.append(word)
        return words

    def elaborate(self, platform):
        m = Module()
        model = self.model
        rom = Memory(shape=unsigned(self.payload_bits), depth=model.width * model.height,
                     init=self._rom_init())
        m.submodules.rom = rom
        rd = rom.read_port(domain="comb")

        region = Signal.like(self.region)
        x = Signal(range(model.width + 1))
        y = Signal(range(model.height + 1))
        wait = Signal(range(self.cycles_per_pixel + 1))

        m.d.comb += [
            rd.addr.eq(y * model.width + x),
            self.pixels.payload.eq(rd.data),
        ]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        region.eq(self.region),
                        x.eq(self.region.x0),
                        y.eq(self.region.y0),
                        wait.eq(self.cycles_per_pixel - 1),
                    ]
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += [self.busy.eq(1), self.pixels.valid.eq(1)]
                with m.If(self.pixels.ready):
                    m.d.sync += wait.eq(self.cycles_per_pixel - 1)
                    m.next = "WAIT"
                    with m.If(x == region.x1 - 1):
                        m.d.sync += [x.eq(region.x0), y.eq(y + 1)]
                        with m.If(y == region.y1 - 1):
                            m.next = "IDLE"
                    with m.Else():
                        m.d.sync += x.eq(x + 1)
        return m
