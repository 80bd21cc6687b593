"""UPduino v3 (iCE40UP5K-SG48).

Clock: the UP5K's internal 48 MHz oscillator (``SB_HFOSC``, the platform's
default clock; no PLL, so the core runs at 48 MHz). UART: the board's USB
chip is wired to the SPI flash only, so the accelerator's UART is on header
pins — connect a 3.3 V USB-serial adapter: FPGA RX = pin 4 (J1), FPGA TX =
pin 3 (J1). LEDs: RGB LED red (rendering) and green (idle).
"""

from amaranth.build import Attrs
from amaranth_boards.resources import UARTResource

from . import ICE40UP5K, Board

#: Resources the board file does not have: the UART on header pins.
RESOURCES = [
    UARTResource(0, rx="4", tx="3", attrs=Attrs(IO_STANDARD="SB_LVCMOS")),
]

BOARD = Board(
    **ICE40UP5K,
    name="upduino_v3",
    description="tinyVision.ai UPduino v3, Lattice iCE40UP5K-SG48",
    platform_module="amaranth_boards.upduino_v3",
    platform_class="UpduinoV3Platform",
    ref_hz=48e6,
    clock_resource="clk12",
    pll=None,
    default_mhz=48.0,
    default_lanes=16,
    leds=(("rgb_led", 0),),
    extra_resources="RESOURCES",
    pins="SB_HFOSC 48 MHz, uart rx 4 / tx 3 (header J1, external USB-serial), rgb_led r 41 / g 39",
)
