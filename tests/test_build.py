"""The iCEBreaker build of the default model: bitstream, reports, fit, DSPs.

Slow (a few minutes with YoWASP: synthesis and place-and-route), but part of
the default test run.
"""

import json
import subprocess
import sys

import pytest

from dhq_rtl.boards import get_board
from dhq_rtl.build import build, load_default_model, main
from dhq_rtl.errors import FitError


@pytest.mark.slow
def test_icebreaker_build_default_model(tmp_path):
    model, source = load_default_model()
    board = get_board("icebreaker")
    report = build(model, board, tmp_path, source=source, log=lambda *a: None)
    assert (tmp_path / "top.bin").stat().st_size > 100_000
    for name in ("top.rpt", "top.tim", "utilization.log"):
        assert (tmp_path / name).exists()
    data = json.loads((tmp_path / "utilization.json").read_text())
    assert data == json.loads(json.dumps(report))
    res = data["resources"]
    # It fits, with the DSPs in use (16 lanes in dual 8×8 mode = 8 SB_MAC16).
    for key, r in res.items():
        assert r["used"] <= r["available"], key
    assert res["dsp"]["used"] == 8
    assert data["cells"].get("SB_MAC16") == 8
    assert res["lc"]["used"] > 1000
    # The estimate was recorded against the real numbers.
    assert res["ebr"]["estimated"] is not None and "estimate_error_percent" in res["ebr"]
    assert abs(res["ebr"]["estimated"] - res["ebr"]["used"]) <= 3
    assert abs(res["lc"]["estimate_error_percent"]) <= 40
    perf = data["performance"]
    assert perf["cycles_per_pixel"] == 130 and perf["multiplier_efficiency"] >= 0.85
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
