"""Synthesis smoke tests (Yosys synth_ice40) for the butterfly, requantizer and sine LUT.

Each test synthesizes one typical configuration and checks the cell counts
against what the architecture promises (bench/blocks_datapath.py measures
more points and Fmax).
"""

from dhq_rtl.numerics import sine_table
from dhq_rtl.gateware.butterfly import HadamardButterfly
from dhq_rtl.gateware.requant import Requantizer
from dhq_rtl.gateware.sine_lut import SineLUT
from dhq_rtl.toolchain import synth_ice40_cells


def test_butterfly_64_is_sdf_sized():
    n, width, stages = 64, 8, 6
    cells = synth_ice40_cells(HadamardButterfly(n, width))
    luts = cells.get("SB_LUT4", 0)
    # A fully parallel transform has n·log2(n) = 384 adders of ~width+3 bits
    # (≥ 4000 LUTs); the SDF pipeline has log2(n) add/sub pairs plus control.
    assert 0 < luts < n * stages * (width + 3) // 4
    # The 16- and 32-entry delay lines sit in block RAM, the short ones in flip-flops.
    assert cells.get("SB_RAM40_4K", 0) == 2
    assert cells.get("SB_MAC16", 0) == 0


def test_sine_lut_quarter_wave_saves_ram():
    table = sine_table(10, 2000.0, 12)
    full = synth_ice40_cells(SineLUT([table], 12))
    quarter = synth_ice40_cells(SineLUT([table], 12, quarter_wave=True))
    # 1024 × 12 bits needs 3 EBRs (4 kbit each); 256 × 12 bits fits in one.
    assert full.get("SB_RAM40_4K", 0) == 3
    assert quarter.get("SB_RAM40_4K", 0) == 1
    for cells in (full, quarter):
        assert cells.get("SB_LUT4", 0) < 100
        assert cells.get("SB_MAC16", 0) == 0


def test_requantizer_mult_one_needs_no_multiplier():
    # The exporter's requantizers are round-and-shift (mult = 1): no DSP.
    shifts = Requantizer(16, [(1, 5), (1, 7), (1, 0)], 8)
    cells = synth_ice40_cells(shifts)
    assert cells.get("SB_MAC16", 0) == 0
    assert 0 < cells.get("SB_LUT4", 0) < 200
    # A real scale multiplier costs one DSP with -dsp.
    scaled = synth_ice40_cells(Requantizer(16, [(1, 5), (77, 12)], 8))
    assert scaled.get("SB_MAC16", 0) == 1
