"""Supported boards: one module per board, each defining ``BOARD``.

A :class:`Board` names the amaranth-boards platform class, the clocking (board
oscillator, PLL kind, default core clock), the pins the accelerator uses
(UART, LEDs) and the resource budget the fit check compares against.
``python -m dhq_rtl.build --board list`` prints them.
"""

import importlib
from dataclasses import dataclass, field

__all__ = ["Board", "BOARD_NAMES", "ICE40UP5K", "get_board", "all_boards"]

#: Board modules, the default first.
BOARD_NAMES = ("icebreaker", "upduino_v3", "ulx3s")


#: Facts of the iCE40UP5K device shared by every board that carries it:
#: resources, memory sizes, and nextpnr's names for them.
ICE40UP5K = dict(
    family="ice40",
    device="iCE40UP5K",
    dsp="ice40",
    budget={"lc": 5280, "ebr": 30, "spram": 4, "dsp": 8, "pll": 1},
    ebr_bits=4096,
    spram_bits=256 * 1024,
    pnr_names={"lc": "ICESTORM_LC", "ebr": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
               "dsp": "ICESTORM_DSP", "pll": "ICESTORM_PLL"},
)


@dataclass(frozen=True)
class Board:
    """One FPGA board as the build sees it."""

    name: str
    description: str
    family: str                 # "ice40" or "ecp5"
    device: str
    platform_module: str        # amaranth_boards module
    platform_class: str
    ref_hz: float               # board oscillator feeding the PLL
    clock_resource: str         # its platform resource
    pll: str | None             # "ice40", "ecp5" or None (platform default clock)
    default_mhz: float          # core clock the build targets by default
    dsp: str                    # InrCore dsp= ("ice40" or "generic"; "fabric": build --multipliers fabric)
    default_lanes: int
    #: Resources available: keys "lc", "ebr", "spram", "dsp", "pll" (iCE40)
    #: or "lut", "ebr", "dsp", "pll" (ECP5); values are counts.
    budget: dict = field(default_factory=dict)
    #: Size of one block RAM in bits and one SPRAM in bits (0: none).
    ebr_bits: int = 4096
    spram_bits: int = 0
    #: nextpnr utilization names for each budget key.
    pnr_names: dict = field(default_factory=dict)
    uart_tx_enable: str | None = None
    leds: tuple = (("led", 0), ("led", 1))
    extra_resources: str | None = None   # attribute of this module listing resources to add
    pins: str = ""

    def platform(self):
        mod = importlib.import_module(self.platform_module)
        plat = getattr(mod, self.platform_class)()
        if self.extra_resources:
            own = importlib.import_module(f"{__name__}.{self.name}")
            plat.add_resources(getattr(own, self.extra_resources))
        return plat

    def clock_hz(self, freq_hz=None):
        """The core clock: ``freq_hz`` if given and the board has a PLL, else the default."""
        if self.pll is None:
            return self.default_mhz * 1e6
        return float(freq_hz) if freq_hz else self.default_mhz * 1e6

    def request_leds(self, platform):
        out = []
        for name, number in self.leds:
            res = platform.request(name, number)
            if hasattr(res, "r"):            # an RGB LED: red, then green
                out += [res.r.o, res.g.o]
            else:
                out.append(res.o)
        return out


def get_board(name):
    """The :class:`Board` called ``name``; raises :class:`~dhq_rtl.errors.BoardError`."""
    from dhq_rtl.errors import BoardError
    if name not in BOARD_NAMES:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(BOARD_NAMES)} "
                         f"(see --board list)")
    mod = importlib.import_module(f"{__name__}.{name}")
    board = getattr(mod, "BOARD", None)
    if not isinstance(board, Board) or board.name != name:
        raise BoardError(f"board module {name} does not define BOARD = Board(name={name!r}, ...)")
    return board


def all_boards():
    return [get_board(n) for n in BOARD_NAMES]
