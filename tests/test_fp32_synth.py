# amaranth: UnusedElaboratable=no
"""Synthesis of the FP32 units: the DSP and RAM mapping they are designed for.

iCE40 (Yosys ``synth_ice40 -dsp``): the multiplier's 24×24 mantissa product
is four ``SB_MAC16`` in 16×16 mode, explicit or inferred; the adder needs no
DSP; the sine with a shared multiplier (``ii=11``) one ``SB_MAC16`` and its
256-word table four ``SB_RAM40_4K``. ECP5 (``synth_ecp5``): the pieces map
to ``MULT18X18D``. ``bench/fp32_units.py`` measures LUTs, flip-flops and
Fmax; here only the structure is checked (a change that loses the DSP
mapping, or doubles a table, fails).
"""

import pytest

from dhq_rtl.gateware.float32 import Fp32Add, Fp32Mul, Fp32Sine
from dhq_rtl.synthesis import synth_ice40_cells
from dhq_rtl.synthesis import synth_ecp5_cells

pytestmark = pytest.mark.slow


def test_mul_ice40_four_sb_mac16(tmp_path):
    explicit = synth_ice40_cells(Fp32Mul(dsp="ice40"), workdir=tmp_path / "e")
    inferred = synth_ice40_cells(Fp32Mul(), workdir=tmp_path / "i")
    for cells in (explicit, inferred):
        assert cells["SB_MAC16"] == 4
        assert 0 < cells["SB_LUT4"] < 400
    no_dsp = synth_ice40_cells(Fp32Mul(), dsp=False, workdir=tmp_path / "n")
    assert "SB_MAC16" not in no_dsp and no_dsp["SB_LUT4"] > explicit["SB_LUT4"] + 1000


def test_add_ice40_logic_only(tmp_path):
    cells = synth_ice40_cells(Fp32Add(), workdir=tmp_path)
    assert "SB_MAC16" not in cells and "SB_RAM40_4K" not in cells
    assert 0 < cells["SB_LUT4"] < 1200


def test_sine_ice40_shared_multiplier(tmp_path):
    cells = synth_ice40_cells(Fp32Sine(dsp="ice40", ii=11), workdir=tmp_path)
    assert cells["SB_MAC16"] == 1
    assert cells["SB_RAM40_4K"] == 4          # 256 words × 62 bits: four 16-bit-wide blocks


def test_ecp5_mapping(tmp_path):
    mul = synth_ecp5_cells(Fp32Mul(), workdir=tmp_path / "m")
    assert mul["MULT18X18D"] == 4
    add = synth_ecp5_cells(Fp32Add(), workdir=tmp_path / "a")
    assert "MULT18X18D" not in add
    sine = synth_ecp5_cells(Fp32Sine(), workdir=tmp_path / "s")
    assert sine["MULT18X18D"] == 9
    assert sine.get("DP16KD", 0) >= 1
