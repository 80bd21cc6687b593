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


class _Dsps(wiring.Component):
    """Two explicit SB_MAC16 instances: a dual 8×8 and a signed × unsigned 16×16."""
    a: In(8)
    b: In(8)
    c: In(16)
    o: Out(48)

    def elaborate(self, platform):
        from dhq_rtl.gateware import ice40_dsp
        m = Module()
        lo, hi = ice40_dsp.dual_mul8x8(m, self.a, self.b, self.b, self.a, ce=1, name="dual")
        wide = ice40_dsp.mul16x16(m, self.c, self.a, ce=1, name="wide", signed=True, b_signed=False)
        m.d.sync += self.o.eq(lo + hi + wide)
        return m


def _rtlil(dut):
    from amaranth.back import rtlil
    return rtlil.convert(dut, name="top")


def test_explicit_dsp_cells_are_read_from_the_rtlil():
    cells = synthesis.explicit_dsp_cells(_rtlil(_Dsps()))
    assert sorted(name for name, _, _ in cells) == ["dual", "wide"]
    by_name = {name: (params, clocked) for name, params, clocked in cells}
    assert by_name["dual"][0]["MODE_8x8"] == 1 and by_name["dual"][0]["TOP_8x8_MULT_REG"] == 1
    assert by_name["wide"][0]["PIPELINE_16x16_MULT_REG2"] == 1
    assert by_name["wide"][0]["A_SIGNED"] == 1 and by_name["wide"][0]["B_SIGNED"] == 0
    assert all(clocked for _, clocked in by_name.values())
    assert synthesis.explicit_dsp_cells(_rtlil(_Mul())) == []


def test_dsp_inference_is_refused_beside_explicit_instances():
    assert synthesis.ice40_synth(_rtlil(_Mul())) == "-dsp"
    assert synthesis.ice40_synth(_rtlil(_Dsps())) == ""
    assert synthesis.ice40_synth(_rtlil(_Mul()), dsp=False) == ""
    with pytest.raises(ValueError, match="rewrites the design's explicit SB_MAC16"):
        synthesis.ice40_synth(_rtlil(_Dsps()), dsp=True)


@pytest.mark.slow
def test_netlist_check_catches_rewritten_dsps(tmp_path):
    """Without -dsp the instances reach the netlist as written; a netlist
    made with -dsp (Yosys's ice40_dsp pass rewrites every SB_MAC16) is
    refused, naming the block and what changed."""
    from dhq_rtl.errors import ToolchainError
    text = _rtlil(_Dsps())
    good = synthesis.synth_ice40(text, workdir=tmp_path / "good")
    assert good.cells["SB_MAC16"] == 2
    synthesis.check_dsp_cells(text, good.netlist)
    bad = synthesis._synth(text, ["synth_ice40 -dsp -top top"], tmp_path / "bad", 600)
    with pytest.raises(ToolchainError, match=r"changed the DSP block \w+ \(MODE_8x8=0"):
        synthesis.check_dsp_cells(text, bad.netlist)
