"""ULX3S with an ECP5 LFE5U-85F: the board for larger models.

Clock: 25 MHz oscillator (G2) → ``EHXPLLL`` → core clock (default 50 MHz).
UART: the FTDI (FT231X) on the USB port, RX M1 / TX L4 (``uart_tx_enable``
L3 driven high). LEDs: LED 0 (rendering), LED 1 (idle, PLL locked).
Multipliers: Yosys ``synth_ecp5`` maps each product onto a MULT18X18D.
Synthesis: the build renames Amaranth's array-element wires (``x[k]``)
before ``synth_ecp5`` — their names clash with ABC9's per-bit names
(``dhq_rtl.build.ECP5_SCRIPT_AFTER_READ``; docs/RESULTS.md, "ECP5").
"""

from . import Board

BOARD = Board(
    name="ulx3s",
    description="Radiona ULX3S, Lattice ECP5 LFE5U-85F-6BG381C",
    family="ecp5",
    device="LFE5U-85F",
    platform_module="amaranth_boards.ulx3s",
    platform_class="ULX3S_85F_Platform",
    ref_hz=25e6,
    clock_resource="clk25",
    pll="ecp5",
    default_mhz=50.0,
    dsp="generic",
    default_lanes=32,
    budget={"lut": 83640, "ebr": 208, "dsp": 156, "pll": 4},
    ebr_bits=18432,
    spram_bits=0,
    pnr_names={"lut": "TRELLIS_COMB", "ebr": "DP16KD", "dsp": "MULT18X18D", "pll": "EHXPLLL"},
    uart_tx_enable="uart_tx_enable",
    leds=(("led", 0), ("led", 1)),
    pins="clk25 G2, uart rx M1 / tx L4 (FTDI), uart_tx_enable L3, led0 B2, led1 C2",
)
