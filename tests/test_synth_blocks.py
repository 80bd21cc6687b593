"""Synthesis smoke tests: the MAC array and the scaler map to the iCE40 cells
they are designed for (a change that silently loses DSP or EBR inference, or
that lets the shift-add scaler creep into a DSP, fails here)."""

import numpy as np
import pytest

from dhq_rtl import toolchain
from dhq_rtl.gateware.mac import MacArray
from dhq_rtl.gateware.scaler import ChannelScaler
from dhq_rtl.synthetic import random_model

pytestmark = pytest.mark.slow


def _weights(depth=64, lanes=16, bits=8, seed=0):
    m = (1 << (bits - 1)) - 1
    return np.random.default_rng(seed).integers(-m, m + 1, size=(depth, lanes))


def test_mac_ice40_dual_8x8_uses_half_the_dsps(tmp_path):
    """16 lanes of 8×8 with explicit SB_MAC16s in dual mode: exactly 8 DSPs;
    the 64×128-bit weight ROM sits in 8 EBRs (16 bits wide each)."""
    cells = toolchain.synth_ice40_cells(
        MacArray(_weights(), act_bits=8, weight_bits=8, acc_width=20, dsp="ice40"), workdir=tmp_path)
    assert cells["SB_MAC16"] == 8
    assert cells["SB_RAM40_4K"] == 8
    assert cells["SB_LUT4"] < 600


def test_mac_generic_infers_one_dsp_per_multiply(tmp_path):
    """Yosys `synth_ice40 -dsp` maps each inferred 8×8 multiply to a whole
    SB_MAC16 (no dual packing); without -dsp none at all."""
    w = _weights(depth=16, lanes=4)
    dsp = toolchain.synth_ice40_cells(MacArray(w, act_bits=8, weight_bits=8, acc_width=20), workdir=tmp_path / "d")
    assert dsp["SB_MAC16"] == 4
    lut = toolchain.synth_ice40_cells(MacArray(w, act_bits=8, weight_bits=8, acc_width=20), dsp=False,
                                      workdir=tmp_path / "l")
    assert "SB_MAC16" not in lut and lut["SB_LUT4"] > dsp["SB_LUT4"] + 4 * 40


def test_mac_ice40_16x16_mode(tmp_path):
    """Operands wider than 8 bits: one 16×16 SB_MAC16 per lane."""
    cells = toolchain.synth_ice40_cells(
        MacArray(_weights(depth=8, lanes=3, bits=12), act_bits=11, weight_bits=12, acc_width=28, dsp="ice40"),
        workdir=tmp_path)
    assert cells["SB_MAC16"] == 3


def test_scaler_logic_uses_no_dsp_and_dsp_option_does(tmp_path):
    model = random_model(width=16, depth=3, channels=3, seed=1)
    logic = toolchain.synth_ice40_cells(ChannelScaler(model, multiplier="logic"), workdir=tmp_path / "l")
    assert "SB_MAC16" not in logic
    assert logic["SB_RAM40_4K"] >= 1
    assert any(k.startswith("SB_DFF") for k in logic)
    dsp = toolchain.synth_ice40_cells(ChannelScaler(model, multiplier="dsp"), workdir=tmp_path / "d")
    assert dsp.get("SB_MAC16", 0) >= 1
    assert dsp["SB_LUT4"] < logic["SB_LUT4"]
