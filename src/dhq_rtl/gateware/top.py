"""Board top: clock (PLL), the core, the UART protocol to the host, LEDs.

Protocol (8N1 at ``baud``, default 1 000 000 baud):

* host sends ``b"I"`` → the board answers 8 bytes: ``b"DHQ"``, width (u16
  LE), height (u16 LE), channels (u8) — followed by one byte pixel_bits.
  (9 bytes in all.)
* host sends ``b"R"`` → the board renders the whole image and sends every
  pixel in raster order, ``channels`` values per pixel, one byte per value
  (two bytes, little-endian, when ``pixel_bits > 8``). A command that arrives
  while rendering is ignored.

LEDs: LED 0 (red on the iCEBreaker) is lit while rendering, LED 1 (green)
when the PLL is locked and the board is idle.

Clocking (:func:`ice40_pll_params`): iCE40 boards use ``SB_PLL40_PAD`` on
the board oscillator's pin; ECP5 boards ``EHXPLLL``; a board without PLL settings
runs from its default clock.
"""

import math

from amaranth.hdl import Cat, ClockDomain, Const, Elaboratable, Instance, Module, Signal

from .core import InrCore
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["BoardTop", "ice40_pll_params", "ecp5_pll_params", "pll_frequency_at_most", "CMD_INFO", "CMD_RENDER", "info_bytes"]

CMD_INFO = ord("I")
CMD_RENDER = ord("R")


def info_bytes(model):
    """The 9-byte answer to ``CMD_INFO`` for ``model``."""
    return (b"DHQ" + model.width.to_bytes(2, "little") + model.height.to_bytes(2, "little")
            + bytes([model.channels, model.pixel_bits]))


def _ice40_pll_settings(f_in_hz):
    """Every legal ``SB_PLL40`` setting ``(divr, divf, divq, filter_range, f_out_hz)``."""
    for divr in range(16):
        pfd = f_in_hz / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        fr = 1 if pfd < 17e6 else 2 if pfd < 26e6 else 3 if pfd < 44e6 else \
            4 if pfd < 66e6 else 5 if pfd < 101e6 else 6
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                yield divr, divf, divq, fr, vco / (1 << divq)


def _ecp5_pll_settings(f_in_hz):
    """Every ``EHXPLLL`` setting ``(clki_div, clkfb_div, clkop_div, f_out_hz)`` (VCO 400…800 MHz)."""
    for clki in range(1, 129):
        pfd = f_in_hz / clki
        if pfd < 10e6:
            break
        for fb in range(1, 81):
            f = pfd * fb
            if f > 400e6:
                break
            op_lo = max(1, math.ceil(400e6 / f))
            op_hi = min(128, math.floor(800e6 / f))
            if op_lo <= op_hi:
                yield clki, fb, op_lo, f


def _closest_setting(settings, f_out_hz, family, f_in_hz):
    """The first of ``settings`` (tuples ending in the output frequency) closest
    to ``f_out_hz``; ``ValueError`` if none is within 1 %."""
    best = min(settings, key=lambda setting: abs(setting[-1] - f_out_hz), default=None)
    if best is None or abs(best[-1] - f_out_hz) > 0.01 * f_out_hz:
        raise ValueError(f"the {family} PLL cannot make {f_out_hz / 1e6:g} MHz from {f_in_hz / 1e6:g} MHz")
    return best


def pll_frequency_at_most(pll, f_in_hz, f_max_hz):
    """The highest core clock (Hz) the ``pll`` kind (``"ice40"`` / ``"ecp5"``)
    makes from ``f_in_hz`` that is not above ``f_max_hz``; ``None`` if none."""
    gen = {"ice40": _ice40_pll_settings, "ecp5": _ecp5_pll_settings}.get(pll)
    if gen is None:
        raise ValueError(f"unknown PLL kind {pll!r}")
    freqs = [s[-1] for s in gen(f_in_hz) if s[-1] <= f_max_hz]
    return max(freqs) if freqs else None


def ice40_pll_params(f_in_hz, f_out_hz):
    """Best ``SB_PLL40`` settings: ``(divr, divf, divq, filter_range, f_achieved_hz)``.

    ``f_out = f_in·(DIVF+1) / ((DIVR+1)·2**DIVQ)`` with the PFD in 10…133 MHz
    and the VCO in 533…1066 MHz (iCE40 sysCLOCK PLL rules, as icepll uses).
    Raises ``ValueError`` when no setting is within 1 % of ``f_out_hz``.
    """
    return _closest_setting(_ice40_pll_settings(f_in_hz), f_out_hz, "iCE40", f_in_hz)


def ecp5_pll_params(f_in_hz, f_out_hz):
    """``EHXPLLL`` settings ``(clki_div, clkfb_div, clkop_div, f_achieved_hz)``
    with the VCO in 400…800 MHz and the PFD ≥ 10 MHz (ecppll's rules)."""
    return _closest_setting(_ecp5_pll_settings(f_in_hz), f_out_hz, "ECP5", f_in_hz)


class BoardTop(Elaboratable):
    """The accelerator on a board (see the module docstring).

    ``board``: a :class:`dhq_rtl.boards.Board`; ``freq_hz``: the core clock
    (the PLL output; ignored for boards without a PLL, which run at their
    default clock); ``arith``: the core's number format (``"int"`` or
    ``"fp32"``: the float core, its units as
    :meth:`~dhq_rtl.gateware.float32.plan.FloatCorePlan.for_board` chooses).
    """

    def __init__(self, model, board, *, lanes=None, freq_hz=None, baud=1_000_000, buffers=None, arith="int"):
        self.model = model
        self.board = board
        self.arith = arith
        self.lanes = (board.default_lanes if arith == "int" else 1) if lanes is None else lanes
        self.freq_hz = board.clock_hz(freq_hz)
        #: The clock the PLL really makes (the UART divisor, the timing
        #: constraint and the reports use it).
        if board.pll == "ice40":
            self.pll_hz = ice40_pll_params(board.ref_hz, self.freq_hz)[-1]
        elif board.pll == "ecp5":
            self.pll_hz = ecp5_pll_params(board.ref_hz, self.freq_hz)[-1]
        else:
            self.pll_hz = self.freq_hz
        self.baud = baud
        self.divisor = uart_divisor(self.pll_hz, baud)
        units = None
        if arith == "fp32":
            from .float32.plan import FloatCorePlan
            units, default_buffers = FloatCorePlan.board_defaults(board)
            buffers = default_buffers if buffers is None else buffers
        elif buffers is None:
            buffers = 6
        self.core = InrCore(model, lanes=self.lanes, dsp=board.dsp, buffers=buffers, arith=arith, units=units)

    def _clock(self, m, platform):
        b = self.board
        if b.pll is None:
            return Const(1, 1)      # platform default clock, no PLL
        m.domains.sync = cd = ClockDomain("sync")
        lock = Signal()
        pll_out = Signal()
        if b.pll == "ice40":
            # The oscillator pin is the PLL's own pad (pin 35 on the
            # iCEBreaker): SB_PLL40_PAD takes it directly, without the global
            # buffer that a plain input would get.
            pad = platform.request(b.clock_resource, 0, dir="-")
            divr, divf, divq, fr, _ = ice40_pll_params(b.ref_hz, self.freq_hz)
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=divr, p_DIVF=divf, p_DIVQ=divq, p_FILTER_RANGE=fr,
                i_PACKAGEPIN=pad.io, i_RESETB=Const(1, 1), i_BYPASS=Const(0, 1),
                o_PLLOUTGLOBAL=pll_out, o_LOCK=lock)
        elif b.pll == "ecp5":
            ref = platform.request(b.clock_resource, 0).i
            clki, fb, op, _ = ecp5_pll_params(b.ref_hz, self.freq_hz)
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=clki, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=op, p_CLKOP_CPHASE=op - 1,
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=fb,
                i_CLKI=ref, i_CLKFB=pll_out, i_RST=Const(0, 1), i_STDBY=Const(0, 1),
                i_PHASESEL0=Const(0, 1), i_PHASESEL1=Const(0, 1), i_PHASEDIR=Const(1, 1),
                i_PHASESTEP=Const(1, 1), i_PHASELOADREG=Const(1, 1), i_PLLWAKESYNC=Const(0, 1),
                i_ENCLKOP=Const(0, 1),
                o_CLKOP=pll_out, o_LOCK=lock,
                a_FREQUENCY_PIN_CLKI=str(b.ref_hz / 1e6), a_FREQUENCY_PIN_CLKOP=str(self.pll_hz / 1e6),
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2")
        else:
            raise ValueError(f"unknown PLL kind {b.pll!r}")
        m.d.comb += cd.clk.eq(pll_out)
        platform.add_clock_constraint(cd.clk, self.pll_hz)
        # Hold reset until the PLL has been locked for a while.
        m.domains.por = por = ClockDomain("por", reset_less=True)
        m.d.comb += por.clk.eq(pll_out)
        count = Signal(8)
        with m.If(~lock):
            m.d.por += count.eq(0)
        with m.Elif(count != 255):
            m.d.por += count.eq(count + 1)
        rst = Signal(init=1)
        m.d.por += rst.eq(count != 255)        # registered: the reset net fans out everywhere
        m.d.comb += cd.rst.eq(rst)
        return lock

    def elaborate(self, platform):
        m = Module()
        model, b = self.model, self.board
        lock = self._clock(m, platform)
        m.submodules.core = core = self.core
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        uart = platform.request("uart", 0)
        m.d.comb += [rx.rx.eq(uart.rx.i), uart.tx.o.eq(tx.tx)]
        if b.uart_tx_enable:
            m.d.comb += platform.request(b.uart_tx_enable, 0).o.eq(1)

        # Commands.
        info = info_bytes(model)
        sending_info = Signal()
        info_idx = Signal(range(len(info) + 1))
        with m.If(rx.data.valid & ~core.busy & ~sending_info):
            with m.If(rx.data.payload == CMD_RENDER):
                m.d.comb += [core.start.eq(1), core.region.x0.eq(0), core.region.y0.eq(0),
                             core.region.x1.eq(model.width), core.region.y1.eq(model.height)]
            with m.If(rx.data.payload == CMD_INFO):
                m.d.sync += [sending_info.eq(1), info_idx.eq(0)]

        # Pixels → bytes.
        pb, C = model.pixel_bits, model.channels
        nbytes = C * (1 if pb <= 8 else 2)
        values = []
        for c in range(C):
            v = core.pixels.payload[c * pb:(c + 1) * pb]
            values.append(v[:8])
            if pb > 8:
                values.append(v[8:])
        word = Signal(8 * nbytes)
        left = Signal(range(nbytes + 1))
        m.d.comb += core.pixels.ready.eq((left == 0) & ~sending_info)
        with m.If(core.pixels.valid & core.pixels.ready):
            m.d.sync += [word.eq(Cat(*values)), left.eq(nbytes)]
        info_byte = Signal(8)
        with m.Switch(info_idx):
            for j, byte in enumerate(info):
                with m.Case(j):
                    m.d.comb += info_byte.eq(byte)
        with m.If(sending_info):
            m.d.comb += [tx.data.valid.eq(1), tx.data.payload.eq(info_byte)]
            with m.If(tx.data.ready):
                m.d.sync += info_idx.eq(info_idx + 1)
                with m.If(info_idx == len(info) - 1):
                    m.d.sync += sending_info.eq(0)
        with m.Elif(left != 0):
            m.d.comb += [tx.data.valid.eq(1), tx.data.payload.eq(word[:8])]
            with m.If(tx.data.ready):
                m.d.sync += [word.eq(word >> 8), left.eq(left - 1)]

        # LEDs.
        leds = b.request_leds(platform)
        if len(leds) > 0:
            m.d.comb += leds[0].eq(core.busy)
        if len(leds) > 1:
            m.d.comb += leds[1].eq(lock & ~core.busy)
        return m
