"""The iCEBreaker build of the default model: bitstream, reports, fit, DSPs.

Slow (a few minutes with YoWASP: synthesis and place-and-route), but part of
the default test run.
"""

import subprocess
import sys

import pytest

from dhq_rtl.boards import get_board
from dhq_rtl.build import build
from dhq_rtl.errors import FitError
from dhq_rtl.firmware import DEFAULT_MODEL_NAME


@pytest.mark.slow
def test_icebreaker_build_default_model(tmp_path, default_model, check_build_outputs):
    model, source = default_model, DEFAULT_MODEL_NAME
    board = get_board("icebreaker")
    report = build(model, board, tmp_path, source=source, log=lambda *a: None)
    data = check_build_outputs(tmp_path, report, "top.bin")
    res = data["resources"]
    # It fits, with the DSPs in use (16 lanes in dual 8×8 mode = 8 SB_MAC16).
    assert res["dsp"]["used"] == 8
    assert data["cells"].get("SB_MAC16") == 8
    assert res["lc"]["used"] > 1000
    # The estimate was recorded against the real numbers.
    assert res["ebr"]["estimated"] is not None and "estimate_error_percent" in res["ebr"]
    assert abs(res["ebr"]["estimated"] - res["ebr"]["used"]) <= 3
    assert abs(res["lc"]["estimate_error_percent"]) <= 40
    perf = data["performance"]
    assert perf["cycles_per_pixel"] == 138 and perf["multiplier_efficiency"] >= 0.85
    # Every clock tried is recorded; the report describes the last one.
    attempts = data["clock_attempts"]
    assert 1 <= len(attempts) <= 2
    assert attempts[-1]["clock_mhz"] == data["parameters"]["clock_mhz"] == perf["clock_mhz"]
    assert attempts[-1]["timing_met"] == data["timing_met"]
    if len(attempts) == 2:
        assert not attempts[0]["timing_met"] and attempts[1]["clock_mhz"] <= attempts[0]["fmax_mhz"]
    assert data["clocks"] and all(c["fmax_mhz"] > 0 for c in data["clocks"].values())
    assert isinstance(data["timing_met"], bool)
    log = (tmp_path / "utilization.log").read_text()
    assert "% dev" in log and "multiplier efficiency" in log


def test_fit_error_stops_before_tools(tmp_path):
    from dhq_rtl.synthetic import random_model
    big = random_model(width=128, depth=4, size=64, seed=1)
    with pytest.raises(FitError, match="EBR"):
        build(big, get_board("icebreaker"), tmp_path, log=lambda *a: None)
    assert not (tmp_path / "top.il").exists()


def test_cli_one_line_errors(tmp_path):
    bad = tmp_path / "bad.dhq"
    bad.write_bytes(b"nonsense")
    for args, text in ((["--board", "nope"], "unknown board"), (["--model", str(bad)], "not a dhq_rtl model")):
        proc = subprocess.run([sys.executable, "-m", "dhq_rtl.build", *args], capture_output=True, text=True)
        assert proc.returncode == 2
        assert text in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_pll_fallback_frequency_is_the_fastest_at_or_below_fmax():
    from dhq_rtl.gateware.top import ecp5_pll_params, ice40_pll_params, pll_frequency_at_most
    for fmax in (41.83e6, 46.75e6, 48e6, 30.1e6):
        f = pll_frequency_at_most("ice40", 12e6, fmax)
        assert f <= fmax and ice40_pll_params(12e6, f)[-1] == f
        # Nothing the PLL makes lies in (f, fmax].
        finer = [pll_frequency_at_most("ice40", 12e6, fmax - d) for d in (0, 1)]
        assert finer[0] == f
    assert pll_frequency_at_most("ice40", 12e6, 41.83e6) == 41.25e6
    assert pll_frequency_at_most("ice40", 12e6, 1e6) is None
    f = pll_frequency_at_most("ecp5", 25e6, 61.3e6)
    assert f <= 61.3e6 and ecp5_pll_params(25e6, f)[-1] == f


def test_fallback_clock_leaves_a_margin_below_fmax():
    from dhq_rtl.boards import get_board
    from dhq_rtl.build import FALLBACK_MARGIN, fallback_clock_hz
    from dhq_rtl.gateware.top import pll_frequency_at_most

    icebreaker = get_board("icebreaker")
    for fmax in (44.25, 42.89, 38.25, 48.96):
        f = fallback_clock_hz(icebreaker, fmax)
        assert f <= fmax * (1 - FALLBACK_MARGIN) * 1e6
        assert f == pll_frequency_at_most("ice40", icebreaker.ref_hz, fmax * (1 - FALLBACK_MARGIN) * 1e6)
    assert fallback_clock_hz(icebreaker, 44.25, margin=0) == pll_frequency_at_most("ice40", 12e6, 44.25e6)
    assert fallback_clock_hz(get_board("upduino_v3"), 40.0) is None  # no PLL: no rebuild
    assert fallback_clock_hz(icebreaker, 0) is None
