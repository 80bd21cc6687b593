"""iCEBreaker (iCE40UP5K-SG48), the default board.

Clock: 12 MHz oscillator (pin 35) → ``SB_PLL40_PAD`` → core clock (default
48 MHz). UART: FTDI channel B, RX pin 6, TX pin 9. LEDs: red (pin 11,
rendering), green (pin 37, idle and PLL locked).
"""

from . import Board

BOARD = Board(
    name="icebreaker",
    description="1BitSquared iCEBreaker, Lattice iCE40UP5K-SG48",
    family="ice40",
    device="iCE40UP5K",
    platform_module="amaranth_boards.icebreaker",
    platform_class="ICEBreakerPlatform",
    ref_hz=12e6,
    clock_resource="clk12",
    pll="ice40",
    default_mhz=48.0,
    dsp="ice40",
    default_lanes=16,
    budget={"lc": 5280, "ebr": 30, "spram": 4, "dsp": 8, "pll": 1},
    ebr_bits=4096,
    spram_bits=256 * 1024,
    pnr_names={"lc": "ICESTORM_LC", "ebr": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
               "dsp": "ICESTORM_DSP", "pll": "ICESTORM_PLL"},
    leds=(("led", 0), ("led", 1)),
    pins="clk12 35, uart rx 6 / tx 9 (FTDI channel B), led_r 11, led_g 37",
)
