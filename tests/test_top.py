"""BoardTop's UART protocol, simulated end to end: a host-side UART sends the
commands and reads the answers, and every pixel of a render is compared with
the golden model."""

import dataclasses

import numpy as np
from amaranth.hdl import Elaboratable, Fragment, Module, Signal

from dhq_rtl.boards import get_board
from dhq_rtl.gateware.top import CMD_INFO, CMD_RENDER, BoardTop, info_bytes
from dhq_rtl.gateware.uart import UartRx, UartTx
from dhq_rtl.golden import GoldenModel
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim

DIVISOR = 5  # clock cycles per UART bit: a short bit keeps the simulation small


class _Pins:
    """A requested resource: ``.i``/``.o`` are signals, anything else a sub-resource."""

    def __init__(self, name):
        self._name = name
        self.i = Signal(name=f"{name}_i", init=1)   # an idle UART line is high
        self.o = Signal(name=f"{name}_o")

    def __getattr__(self, attr):
        sub = _Pins(f"{self._name}_{attr}")
        setattr(self, attr, sub)
        return sub


class _OnPlatform(Elaboratable):
    """Elaborates ``top`` with the stand-in platform (the simulator gives none)."""

    def __init__(self, top, platform):
        self.fragment = Fragment.get(top, platform)  # now: the resources exist from here on

    def elaborate(self, platform):
        return self.fragment


class _Platform:
    """Just enough of a platform for BoardTop on a board without PLL."""

    def __init__(self):
        self.resources = {}

    def request(self, name, number=0, **kwargs):
        return self.resources.setdefault((name, number), _Pins(f"{name}{number}"))


def _bench(model):
    # no PLL: the simulator's clock is the core clock; generic multipliers, since
    # the SB_MAC16 primitives are black boxes to the Python simulator (their
    # path is checked against yosys' cell models in tests/test_mac.py)
    board = dataclasses.replace(get_board("upduino_v3"), dsp="generic")
    top = BoardTop(model, board, lanes=4, baud=board.clock_hz(None) / DIVISOR)
    assert top.divisor == DIVISOR
    plat = _Platform()
    m = Module()
    m.submodules.top = _OnPlatform(top, plat)
    m.submodules.host_tx = host_tx = UartTx(DIVISOR)
    m.submodules.host_rx = host_rx = UartRx(DIVISOR)
    uart = plat.resources[("uart", 0)]
    m.d.comb += [uart.rx.i.eq(host_tx.tx), host_rx.rx.eq(uart.tx.o)]
    return m, host_tx, host_rx, top


def _talk(model, script, max_cycles):
    """Run ``script``: a list of ``(cycle, byte)`` sends; return every byte
    the board sent, with the cycle it arrived in."""
    m, host_tx, host_rx, top = _bench(model)
    got = []

    async def tb(ctx):
        pending = sorted(script)
        for cycle in range(max_cycles):
            due = pending and pending[0][0] <= cycle
            ctx.set(host_tx.data.valid, 1 if due else 0)
            if due:
                ctx.set(host_tx.data.payload, pending[0][1])
            _, _, ready, valid, byte = await ctx.tick().sample(host_tx.data.ready, host_rx.data.valid,
                                                               host_rx.data.payload)
            if due and ready:
                pending.pop(0)
            if valid:
                got.append((cycle, byte))
    run_sim(m, [tb])
    return got


def test_info_command_answers_the_model_header():
    model = random_model(width=4, depth=1, size=5, seed=2)
    got = _talk(model, [(10, CMD_INFO)], 9 * 10 * DIVISOR + 400)
    assert bytes(b for _, b in got) == info_bytes(model)
    # unknown commands are ignored
    assert _talk(model, [(10, ord("x")), (200, 0)], 1500) == []


def test_render_sends_every_pixel_as_the_golden_model_and_ignores_commands_meanwhile():
    model = random_model(width=4, depth=1, size=5, channels=3, seed=4)
    golden = GoldenModel(model).render().reshape(-1)
    n = golden.size                              # 5·5 pixels · 3 channels, one byte each
    # 'R', then an 'I' while rendering (ignored), then an 'I' after the render
    byte_cycles = 10 * DIVISOR
    after = 40 + n * byte_cycles + 2000
    got = _talk(model, [(10, CMD_RENDER), (10 + 3 * byte_cycles, CMD_INFO), (after, CMD_INFO)],
                after + 12 * byte_cycles + 400)
    pixels = np.array([b for c, b in got if c < after], dtype=np.int64)
    assert pixels.size == n, f"{pixels.size} bytes during the render, expected {n}"
    assert np.array_equal(pixels, golden), f"first difference at byte {np.argmax(pixels != golden)}"
    assert bytes(b for c, b in got if c >= after) == info_bytes(model)
