"""iCEBreaker (iCE40UP5K-SG48), the default board.

Clock: 12 MHz oscillator (pin 35) → ``SB_PLL40_PAD`` → core clock (default
48 MHz). UART: FTDI channel B, RX pin 6, TX pin 9. LEDs: red (pin 11,
rendering), green (pin 37, idle and PLL locked).
"""

from . import ICE40UP5K, Board

BOARD = Board(
    **ICE40UP5K,
    name="icebreaker",
    description="1BitSquared iCEBreaker, Lattice iCE40UP5K-SG48",
    platform_module="amaranth_boards.icebreaker",
    platform_class="ICEBreakerPlatform",
    ref_hz=12e6,
    clock_resource="clk12",
    pll="ice40",
    default_mhz=48.0,
    default_lanes=16,
    leds=(("led", 0), ("led", 1)),
    pins="clk12 35, uart rx 6 / tx 9 (FTDI channel B), led_r 11, led_g 37",
)
