# amaranth: UnusedElaboratable=no
"""Yosys and nextpnr on a small block: cell counts, out-of-context place and route."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dhq_rtl import synthesis
from dhq_rtl.gateware.ooc import ooc_harness


class _Mul(wiring.Component):
    a: In(8)
    b: In(8)
    o: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.eq(self.a.as_signed() * self.b.as_signed())
        return m


@pytest.mark.slow
def test_synth_and_pnr_small_multiplier(tmp_path):
    assert synthesis.synth_ice40_cells(_Mul(), dsp=True, workdir=tmp_path / "d")["SB_MAC16"] == 1
    no_dsp = synthesis.synth_ice40_cells(_Mul(), dsp=False, workdir=tmp_path / "l")
    assert "SB_MAC16" not in no_dsp and no_dsp["SB_LUT4"] > 20
    res = synthesis.synth_ice40(ooc_harness(_Mul()), workdir=tmp_path / "h")
    assert res.cells["SB_MAC16"] == 1
    rep = synthesis.pnr_ice40(res, freq_mhz=30)
    assert rep.used("ICESTORM_DSP") == 1
    assert rep.used("SB_IO") == 4  # si, so, clk, rst
    (clk, fmax), = rep.fmax.items()
    assert "clk" in clk and 30 < fmax < 1000


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_synth_rejects_non_elaboratable():
    with pytest.raises(TypeError, match="Elaboratable"):
        synthesis.synth_ice40_cells(42)
    with pytest.raises(ValueError, match="identifier"):
        synthesis.synth_ice40_cells(_Mul(), top_name="a b")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_ecp5_runs_check_their_arguments(tmp_path):
    with pytest.raises(TypeError, match="synth_ecp5 needs an Amaranth Elaboratable"):
        synthesis.synth_ecp5_cells(42)
    with pytest.raises(ValueError, match="identifier"):
        synthesis.synth_ecp5_cells(_Mul(), top_name="1x")
    with pytest.raises(ValueError, match="unknown ECP5 device 'huge'"):
        synthesis.pnr_ecp5(tmp_path / "top.json", device="huge")
    with pytest.raises(ValueError, match="unknown iCE40 device"):
        synthesis.pnr_ice40(tmp_path / "top.json", device="up9k")
