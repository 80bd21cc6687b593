"""Board top: clock (PLL), the core, the host link, LEDs.

The board talks to the host over its UART (8N1 at ``baud``, default
:data:`DEFAULT_BAUD`) with the checked protocol of :mod:`dhq_rtl.protocol`
(frames with a CRC-32; info, status, a chunked and acknowledged load with a
committed whole-image CRC, render a region in checked pixel frames),
carried out by :class:`~.controller.BoardController` on the core
(:class:`~.core.InrCore`), which runs any model of its envelope
(:class:`~dhq_rtl.envelope.Envelope`) and starts with one model loaded
(``model``; its load image's CRC is what ``INFO`` reports until another is
installed). The float core (``arith="fp32"``) and an integer core built
for a fixed model (``fixed_model=True``) are on the same link with their
one model: ``INFO``, ``STATUS`` and ``RENDER`` as above, load commands
refused (``NACK FIXED_MODEL``; docs/float32.md, docs/loading.md).

LEDs: LED 0 (red on the iCEBreaker) is lit while rendering, LED 1 (green)
when the PLL is locked and the board is idle.

Clocking (:func:`ice40_pll_params`): iCE40 boards use ``SB_PLL40_PAD`` on
the board oscillator's pin; ECP5 boards ``EHXPLLL``; a board without PLL settings
runs from its default clock.
"""

import math

from amaranth.hdl import Cat, ClockDomain, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from .controller import BoardController
from .core import InrCore
from .args import check_bool
from .plan import CorePlan, board_lanes, fixed_model_lanes
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["BoardTop", "BoardDesign", "LinkedCore", "model_crc", "ice40_pll_params", "ecp5_pll_params", "pll_frequency_at_most", "DEFAULT_BAUD"]

#: The UART's default baud rate: 3 Mbaud, 16 clock cycles a bit at 48 MHz
#: (the iCEBreaker's FT2232H makes it exactly: 12 MHz / 4).
DEFAULT_BAUD = 3_000_000


#: The ``SB_PLL40`` output's legal range (iCE40 UltraPlus data sheet, sysCLOCK
#: PLL: f_OUT 16…275 MHz); slower than that, only the reference itself
#: (no PLL) is in specification.
ICE40_PLL_OUT_HZ = (16e6, 275e6)


def _ice40_pll_settings(f_in_hz):
    """Every legal ``SB_PLL40`` setting ``(divr, divf, divq, filter_range, f_out_hz)``;
    the reference itself (no PLL) is ``(None, None, None, None, f_in_hz)``."""
    yield None, None, None, None, f_in_hz
    lo, hi = ICE40_PLL_OUT_HZ
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
                if lo <= vco / (1 << divq) <= hi:
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


def _closest_setting(settings, f_out_hz, family, f_in_hz, rule=""):
    """The first of ``settings`` (tuples ending in the output frequency) closest
    to ``f_out_hz``; ``ValueError`` (ending in ``rule``) if none is within 1 %."""
    best = min(settings, key=lambda setting: abs(setting[-1] - f_out_hz), default=None)
    if best is None or abs(best[-1] - f_out_hz) > 0.01 * f_out_hz:
        raise ValueError(f"the {family} PLL cannot make {f_out_hz / 1e6:g} MHz from {f_in_hz / 1e6:g} MHz{rule}")
    return best


def pll_frequency_at_most(pll, f_in_hz, f_max_hz, baud=None):
    """The highest core clock (Hz) the ``pll`` kind (``"ice40"`` / ``"ecp5"``)
    makes from ``f_in_hz`` that is not above ``f_max_hz`` (and, with
    ``baud``, from which the UART divides that rate within 2 %); ``None``
    if none."""
    gen = {"ice40": _ice40_pll_settings, "ecp5": _ecp5_pll_settings}.get(pll)
    if gen is None:
        raise ValueError(f"unknown PLL kind {pll!r}")

    def uart_ok(f):
        try:
            return baud is None or uart_divisor(f, baud) > 0
        except ValueError:
            return False

    freqs = [s[-1] for s in gen(f_in_hz) if s[-1] <= f_max_hz and uart_ok(s[-1])]
    return max(freqs) if freqs else None


def ice40_pll_params(f_in_hz, f_out_hz):
    """Best ``SB_PLL40`` settings: ``(divr, divf, divq, filter_range, f_achieved_hz)``.

    ``f_out = f_in·(DIVF+1) / ((DIVR+1)·2**DIVQ)`` with the PFD in 10…133 MHz,
    the VCO in 533…1066 MHz and ``f_out`` in 16…275 MHz (iCE40 sysCLOCK PLL
    rules); ``f_in`` itself is the reference without the PLL, ``divr`` …
    ``filter_range`` None.
    Raises ``ValueError`` when no setting is within 1 % of ``f_out_hz``.
    """
    lo, hi = ICE40_PLL_OUT_HZ
    return _closest_setting(_ice40_pll_settings(f_in_hz), f_out_hz, "iCE40", f_in_hz,
                            f" (its output is {lo / 1e6:g}…{hi / 1e6:g} MHz, or the {f_in_hz / 1e6:g} MHz "
                            f"reference itself)")


def ecp5_pll_params(f_in_hz, f_out_hz):
    """``EHXPLLL`` settings ``(clki_div, clkfb_div, clkop_div, f_achieved_hz)``
    with the VCO in 400…800 MHz and the PFD ≥ 10 MHz (ecppll's rules)."""
    return _closest_setting(_ecp5_pll_settings(f_in_hz), f_out_hz, "ECP5", f_in_hz)


def model_crc(plan):
    """The CRC-32 ``INFO`` reports for the model a core starts with: that of
    its load image (the integer core), or of its model image's bytes (a
    core whose model is fixed: the float core, an integer core with
    ``loadable`` false)."""
    import zlib

    from ..loader import image_crc, load_image
    from ..model_image import dumps
    if plan.loadable:
        return image_crc(load_image(plan))
    return zlib.crc32(dumps(plan.model))


class LinkedCore(wiring.Component):
    """The core with its host link: :class:`~.core.InrCore`,
    :class:`~.controller.BoardController` and the UART, without the board's
    clocking and pins (what :class:`BoardTop` puts on a board, and what the
    board's simulation runs: ``python -m dhq_rtl.host --port sim://BOARD``).

    Parameters: ``core`` (an :class:`~.core.InrCore`), ``divisor`` (clock
    cycles per UART bit), ``clock_hz`` (the core clock, for ``INFO``).
    Ports: ``uart_rx`` (in, the line from the host, idle high), ``uart_tx``
    (out), ``rendering`` (out), ``idle`` (out: nothing in flight, neither a
    command nor a byte on the line in either direction).
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    rendering: Out(1)
    idle: Out(1)

    def __init__(self, core, *, divisor, clock_hz):
        self.core = core
        self.plan = core.plan
        self.divisor = divisor
        #: The CRC of the model the core starts with (``INFO``): its load
        #: image's, or for a fixed model (the float core, ``fixed_model``) its
        #: model image's.
        self.model_crc = model_crc(core.plan)
        self.controller = BoardController(self.plan, divisor=divisor, clock_hz=clock_hz, model_crc=self.model_crc)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.controller = ctl = self.controller
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        m.d.comb += [ctl.rx.valid.eq(rx.data.valid), ctl.rx.payload.eq(rx.data.payload)]
        wiring.connect(m, ctl.tx, tx.data)
        wiring.connect(m, core.pixels, ctl.pixels)
        if self.plan.loadable:
            wiring.connect(m, ctl.staging, core.staging)
            wiring.connect(m, ctl.install, core.install)
        m.d.comb += [core.start.eq(ctl.start), core.region.eq(ctl.region), ctl.busy.eq(core.busy),
                     ctl.desc.eq(core.desc), self.rendering.eq(ctl.rendering),
                     self.idle.eq(ctl.idle & ~rx.busy & ~tx.busy)]
        return m


def board_core_shape(model, board, *, arith="int", envelope=None, lanes=None, buffers=None, fixed_model=False):
    """``(envelope, lanes)`` of the core a build for ``board`` makes: the
    integer core's envelope (default: the tightest around ``model`` for the
    board, :meth:`~dhq_rtl.envelope.Envelope.for_board`) and its lanes
    (:func:`~.plan.board_lanes`); the float core and an integer core with
    a fixed model (``fixed_model``; its lanes: :func:`~.plan.fixed_model_lanes`)
    have no envelope (``ValueError`` if one is given); the float core has by
    default the largest lane count whose estimate fits (1 when none does;
    the fit check says why)."""
    if fixed_model and arith == "int":
        if envelope is not None:
            raise ValueError("a fixed model has no envelope: the core runs that model only")
        return None, fixed_model_lanes(model, board, lanes)
    if arith == "fp32":
        if envelope is not None:
            raise ValueError("the float core has no envelope: its model is fixed")
        if lanes is None:
            from ..estimate import default_float_lanes
            lanes = default_float_lanes(model, board, buffers=buffers) or 1
        return None, lanes
    if envelope is None:
        from ..envelope import Envelope
        envelope = Envelope.for_board(model, board)
    return envelope, board_lanes(board, envelope, lanes)


class BoardDesign:
    """What a build for a board makes, before any platform is involved: the
    clock the PLL really makes (``pll_hz``), the UART ``divisor``, the core
    (``core``, ``plan``, ``envelope``) and the core with its host link
    (``linked``, a :class:`LinkedCore`). Arguments as for :class:`BoardTop`;
    the board's simulation (:mod:`dhq_rtl.rtlsim.board`) runs ``linked``.
    """

    def __init__(self, model, board, *, envelope=None, lanes=None, freq_hz=None, baud=DEFAULT_BAUD, buffers=None,
                 arith="int", fixed_model=False):
        from .core import ARITHMETICS
        if arith not in ARITHMETICS:
            raise ValueError(f"arith must be one of {ARITHMETICS}, got {arith!r}")
        check_bool("fixed_model", fixed_model)
        self.model = model
        self.board = board
        self.arith = arith
        envelope, lanes = board_core_shape(model, board, arith=arith, envelope=envelope, lanes=lanes,
                                           buffers=buffers, fixed_model=fixed_model)
        self.lanes = lanes
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
        if arith == "fp32":
            from .float32.plan import FloatCorePlan
            plan = FloatCorePlan.for_board(model, board, lanes=lanes, buffers=buffers)
        else:
            plan = CorePlan.for_board(model, board, lanes=lanes, buffers=6 if buffers is None else buffers,
                                      envelope=envelope, loadable=not fixed_model)
        self.core = InrCore(model, plan=plan)
        self.plan = self.core.plan
        self.envelope = self.plan.envelope
        self.linked = LinkedCore(self.core, divisor=self.divisor, clock_hz=self.pll_hz)
        #: The CRC of the model the board starts with (``INFO``).
        self.model_crc = self.linked.model_crc


class BoardTop(Elaboratable):
    """The accelerator on a board (see the module docstring).

    ``model``: the model image the board starts with; ``board``: a
    :class:`dhq_rtl.boards.Board`; ``envelope``: the models it runs (default:
    the tightest around ``model``); ``lanes`` (default: the envelope's, else
    the board's; the float core's: the largest whose estimate fits);
    ``freq_hz``: the core clock (the PLL output; ignored for boards without a
    PLL, which run at their default clock); ``baud``: the UART's rate;
    ``buffers``: activation buffers (default 6; the float core's: its board
    default); ``arith``: ``"int"`` (the loadable integer core) or ``"fp32"``
    (the float core of ``model``, its units as
    :meth:`~dhq_rtl.gateware.float32.plan.FloatCorePlan.for_board` chooses;
    no envelope: its model is fixed, the link answers load commands with
    ``NACK FIXED_MODEL``); ``fixed_model``: the integer core runs ``model``
    only (:class:`~.plan.CorePlan` ``loadable=False``: no envelope, no
    staging memory or installer, load commands refused like the float
    core's; the float core is always fixed). The attributes of
    :class:`BoardDesign` read through.
    """

    def __init__(self, model, board, **kwargs):
        self.design = BoardDesign(model, board, **kwargs)

    def __getattr__(self, name):
        if name == "design":
            raise AttributeError(name)
        return getattr(self.design, name)

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
            if divr is None:
                # The reference itself: no PLL, the pin's global buffer
                # (SB_GB_IO), nothing to wait for.
                m.submodules.ref_buffer = ref = io.Buffer("i", pad)
                m.d.comb += [pll_out.eq(ref.i), lock.eq(1)]
            else:
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
        # No clock constraint of our own: nextpnr derives the PLL output's
        # from the PLL's parameters (iCE40 and ECP5), the exact frequency
        # the board runs at; the reference pin's is the platform's. (A
        # constraint on this net named it after a submodule port that
        # synthesis flattens away, and nextpnr ignored it with a warning.)
        # Hold reset until the PLL has been locked for a while.
        m.domains.por = por = ClockDomain("por", reset_less=True)
        m.d.comb += por.clk.eq(pll_out)
        # LOCK is asynchronous to the clock it locks: two flip-flops bring it
        # in. ``held`` (the count has reached its end) is a register of its
        # own, so the counter's enable and clear are one LUT from flip-flops.
        lock_sync = Signal(2)
        m.d.por += lock_sync.eq(Cat(lock, lock_sync[0]))
        count = Signal(8)
        held = Signal()
        with m.If(~lock_sync[1]):
            m.d.por += [count.eq(0), held.eq(0)]
        with m.Elif(~held):
            m.d.por += [count.eq(count + 1), held.eq(count == 2 ** len(count) - 2)]
        rst = Signal(init=1)
        m.d.por += rst.eq(~held)        # registered: the reset net fans out everywhere
        m.d.comb += cd.rst.eq(rst)
        return lock

    def elaborate(self, platform):
        m = Module()
        b = self.board
        lock = self._clock(m, platform)
        m.submodules.linked = linked = self.linked
        uart = platform.request("uart", 0)
        m.d.comb += [linked.uart_rx.eq(uart.rx.i), uart.tx.o.eq(linked.uart_tx)]
        if b.uart_tx_enable:
            m.d.comb += platform.request(b.uart_tx_enable, 0).o.eq(1)
        # LEDs.
        leds = b.request_leds(platform)
        if len(leds) > 0:
            m.d.comb += leds[0].eq(linked.rendering)
        if len(leds) > 1:
            m.d.comb += leds[1].eq(lock & ~linked.rendering)
        return m
