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
    """One place-and-route run (no clock fallback: the test stays short) of
    the default model in its own envelope: weights in the SPRAMs, 8 lanes."""
    model, source = default_model, DEFAULT_MODEL_NAME
    board = get_board("icebreaker")
    report = build(model, board, tmp_path, source=source, log=lambda *a: None, fallback=False)
    data = check_build_outputs(tmp_path, report, "top.bin")
    res = data["resources"]
    # It fits: 8 lanes in dual 8×8 mode (4 SB_MAC16) and the scaler's 2, four SPRAMs.
    assert res["dsp"]["used"] == 6 and data["cells"].get("SB_MAC16") == 6
    assert res["spram"]["used"] == 4
    assert res["lc"]["used"] > 1000
    # The estimate was recorded against the real numbers.
    assert res["ebr"]["estimated"] is not None and "estimate_error_percent" in res["ebr"]
    assert abs(res["ebr"]["estimated"] - res["ebr"]["used"]) <= 3
    assert abs(res["lc"]["estimate_error_percent"]) <= 40
    perf = data["performance"]
    assert perf["cycles_per_pixel"] == 260 and perf["multiplier_efficiency"] >= 0.85
    env = data["envelope"]
    assert env["max_width"] == 32 and env["weights_in_spram"] and env["lanes"] == 8
    attempts = data["clock_attempts"]
    assert len(attempts) == 1
    assert attempts[-1]["clock_mhz"] == data["parameters"]["clock_mhz"] == perf["clock_mhz"]
    assert attempts[-1]["timing_met"] == data["timing_met"]
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


# ------------------------------------- a previous build is replaced only by a good one

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from dhq_rtl.build import main  # noqa: E402
from dhq_rtl.model_image import save  # noqa: E402

from tests.fake_toolchain import install  # noqa: E402
from tests.safety_checks import assert_refused, digests, fill_disk, run_cli, under_a_file  # noqa: E402


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The fake tools, a tiny model file and an empty build folder path."""
    from dhq_rtl.synthetic import random_model
    install(tmp_path / "tools", monkeypatch)
    model = tmp_path / "tiny.dhq"
    save(random_model(size=8, width=8, depth=1, seed=0), model)
    return {"model": model, "out": tmp_path / "build", "argv": ["--model", str(model), "--lanes", "4",
                                                                "--out", str(tmp_path / "build")]}


def _attempts(folder):
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("attempt-"))


def _files(folder):
    """Digests of the files directly in ``folder`` (the published build, not the attempts)."""
    return digests(*(p for p in folder.iterdir() if p.is_file()))


def test_fake_build_publishes_and_cleans_up(fake, capsys):
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert code == 0, err
    folder = fake["out"]
    assert (folder / "top.bin").read_bytes() == b"fake bitstream "
    report = json.loads((folder / "utilization.json").read_text())
    assert report["timing_met"] and "top.bin" in report["files"] and "utilization.json" in report["files"]
    assert report["parameters"]["toolchain"] == "system"      # DHQ_TOOLCHAIN is honoured
    assert _attempts(folder) == []
    assert f"bitstream {folder.resolve() / 'top.bin'}" in out


@pytest.mark.parametrize("board_name", ["icebreaker", "ulx3s"])
def test_fake_float_build_reports_the_arithmetic(fake, capsys, board_name):
    """``--arith fp32``: the float core's build on each board, its default
    lanes (the largest that fit), its units in the parameters, the
    arithmetic in utilization.json and the log."""
    from dhq_rtl.estimate import default_float_lanes
    from dhq_rtl.gateware.float32.plan import FloatCorePlan
    from dhq_rtl.model_image import load
    board = get_board(board_name)
    argv = ["--model", str(fake["model"]), "--arith", "fp32", "--board", board_name, "--out", str(fake["out"])]
    code, out, err = run_cli(main, argv, capsys)
    assert code == 0, err
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["arith"] == "fp32" and report["parameters"]["arith"] == "fp32"
    p = report["parameters"]
    lanes = default_float_lanes(load(fake["model"]), board)
    units, buffers = FloatCorePlan.board_defaults(board)
    assert lanes and (p["lanes"], p["sine_ii"], p["buffers"]) == (lanes, units.sine_ii, buffers)
    assert (p["mul_latency"], p["add_latency"], p["sine_latency"]) == \
        (units.mul_latency, units.add_latency, units.sine_latency)
    assert report["performance"]["first_layer"].startswith("a float32 MAC job")
    assert "float core (IEEE-754 binary32)" in (fake["out"] / "utilization.log").read_text()
    assert f"{board_name} (fp32)" in out


def test_float_build_refusals(fake, capsys, tmp_path):
    """A model image without float parameters, and a lane count that does
    not fit: one line each, before any tool runs."""
    from dhq_rtl.model_image import load
    bare = load(fake["model"])
    for layer in bare.layers:
        layer.float_weight = layer.float_bias = None
    old = tmp_path / "old.dhq"
    save(bare, old)
    for argv, needle in ((["--model", str(old), "--arith", "fp32"], "carries no float parameters"),
                         (["--model", str(fake["model"]), "--arith", "fp32", "--lanes", "2"],
                          "DSP needs 9 of 8 (over by 1)")):
        before = digests(tmp_path)
        assert_refused(run_cli(main, [*argv, "--out", str(fake["out"])], capsys), needle)
        assert digests(tmp_path) == before and not fake["out"].exists()


@pytest.mark.parametrize("tool", ["yosys", "nextpnr-ice40", "icepack"])
def test_failed_build_keeps_the_previous_build(fake, capsys, monkeypatch, tool):
    folder = fake["out"]
    assert run_cli(main, fake["argv"], capsys)[0] == 0
    (folder / "my-notes.txt").write_text("kept")
    before = _files(folder) | digests(fake["model"])
    monkeypatch.setenv("FAKE_FAIL", tool)
    monkeypatch.setenv("FAKE_TAG", "new")
    result = run_cli(main, fake["argv"], capsys)
    assert_refused(result, "build failed", f"the previous build in {folder} is unchanged")
    assert _files(folder) | digests(fake["model"]) == before
    (attempt,) = _attempts(folder)
    assert f"logs in {attempt}" in result[2][0]          # where the failed attempt's logs are
    assert (attempt / "top.rpt").exists()


def test_failed_first_build_names_its_logs(fake, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "yosys")
    result = run_cli(main, fake["argv"], capsys)
    assert_refused(result, "build failed", "ERROR: synthesis failed on purpose", "logs in")
    assert "unchanged" not in result[2][0]
    (attempt,) = _attempts(fake["out"])
    assert (attempt / "top.rpt").exists() and not (fake["out"] / "top.bin").exists()


def test_a_placement_nextpnr_cannot_legalise_is_placed_again_denser(fake, capsys, monkeypatch):
    """nextpnr-ice40 failing to legalise its placement (at the utilisation
    limit) is run once more with the heap placer's density raised; the
    report says so. A second failure is the build's error."""
    import json
    monkeypatch.setenv("FAKE_LEGALISE", "once")
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert code == 0, err
    assert "could not legalise the placement" in out and "--placer-heap-beta 0.95" in out
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["parameters"]["placement_retry"] is True
    monkeypatch.setenv("FAKE_LEGALISE", "always")
    assert_refused(run_cli(main, fake["argv"], capsys), "build failed", "Unable to find legal placement")
    monkeypatch.delenv("FAKE_LEGALISE")
    assert run_cli(main, fake["argv"], capsys)[0] == 0
    assert json.loads((fake["out"] / "utilization.json").read_text())["parameters"]["placement_retry"] is False


def test_interrupted_build_keeps_the_previous_build(fake, capsys, monkeypatch):
    from amaranth.build import run as amaranth_run

    folder = fake["out"]
    assert run_cli(main, fake["argv"], capsys)[0] == 0
    before = _files(folder)

    def interrupted(self, root="build", **kwargs):
        (Path(root) / "top.il").write_text("half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(amaranth_run.BuildPlan, "execute_local", interrupted)
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert code == 130 and err == ["interrupted"]
    assert f"interrupted; the previous build in {folder} is unchanged; the unfinished attempt is in" in out
    assert _files(folder) == before


def test_timing_failure_does_not_replace_a_build_that_met_timing(fake, capsys, monkeypatch):
    folder = fake["out"]
    assert run_cli(main, fake["argv"], capsys)[0] == 0
    before = _files(folder)
    monkeypatch.setenv("FAKE_FMAX", "30")
    monkeypatch.setenv("FAKE_TAG", "slow")
    code, out, err = run_cli(main, fake["argv"] + ["--fixed-clock"], capsys)
    assert code == 1
    (attempt,) = _attempts(folder)
    assert f"which met timing, is kept; this build is in {attempt}" in out
    assert _files(folder) == before and (attempt / "top.bin").read_bytes() == b"fake bitstream slow"
    # One that fails timing replaces one that failed timing, though.
    folder2 = folder.parent / "build2"
    argv2 = fake["argv"][:-1] + [str(folder2), "--fixed-clock"]
    assert run_cli(main, argv2, capsys)[0] == 1
    monkeypatch.setenv("FAKE_TAG", "slow again")
    assert run_cli(main, argv2, capsys)[0] == 1
    assert (folder2 / "top.bin").read_bytes() == b"fake bitstream slow again" and _attempts(folder2) == []


def test_fallback_without_room_for_the_margin_takes_the_clock_at_or_below_fmax(fake, capsys, monkeypatch):
    """A core whose fmax leaves no PLL clock the UART can use 5 % below it
    (12.28 MHz: the float core on the UP5K) is rebuilt at the fastest clock
    at or below its fmax, 12 MHz, not left at the clock it failed."""
    monkeypatch.setenv("FAKE_FMAX", "12.28")
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert "rebuilding at 12 MHz, the fastest clock the board makes at or below the achieved fmax" in out
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert [a["clock_mhz"] for a in report["clock_attempts"]] == [48.0, 12.0]
    monkeypatch.setenv("FAKE_FMAX", "11.5")     # nothing at or below: no rebuild
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert "rebuilding" not in out
    assert [a["clock_mhz"] for a in json.loads((fake["out"] / "utilization.json").read_text())["clock_attempts"]] \
        == [48.0]


def test_files_of_the_previous_build_that_the_new_one_lacks_go(fake, capsys, monkeypatch):
    folder = fake["out"]
    monkeypatch.setenv("FAKE_FMAX", "30")       # fails timing twice: the first attempt's log is kept
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert code == 1 and (folder / "top.attempt1.tim").exists()
    (folder / "my-notes.txt").write_text("not a build file")
    monkeypatch.setenv("FAKE_FMAX", "60")
    assert run_cli(main, fake["argv"], capsys)[0] == 0
    assert not (folder / "top.attempt1.tim").exists()
    assert (folder / "my-notes.txt").read_text() == "not a build file"
    report = json.loads((folder / "utilization.json").read_text())
    assert report["timing_met"] and len(report["clock_attempts"]) == 1


def test_full_disk_while_writing_the_reports_keeps_the_previous_build(fake, capsys, monkeypatch):
    folder = fake["out"]
    assert run_cli(main, fake["argv"], capsys)[0] == 0
    before = _files(folder) | digests(fake["model"])
    fill_disk(monkeypatch, room=100, under=folder)
    result = run_cli(main, fake["argv"], capsys)
    assert_refused(result, "cannot write", "No space left on device", f"the previous build in {folder} is unchanged")
    assert _files(folder) | digests(fake["model"]) == before


def test_bad_out_is_refused_before_any_work(fake, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "holder"
    inside.mkdir()
    model_in_folder = inside / "top.bin"
    model_in_folder.write_bytes(fake["model"].read_bytes())
    cases = [
        (["--model", str(fake["model"]), "--out", str(fake["model"])], "is a file, not a folder"),
        (["--out", str(under_a_file(tmp_path))], "is a file, not a folder"),
        (["--out", ""], "the path is empty"),
        (["--model", str(model_in_folder), "--out", str(inside)], "is the same file as --model"),
    ]
    for argv, needle in cases:
        before = digests(tmp_path)
        assert_refused(run_cli(main, argv + ["--lanes", "4"], capsys), needle)
        assert digests(tmp_path) == before and not _attempts(inside)


@pytest.mark.parametrize("argv, needle", [
    (["--freq", "nan"], "--freq must be a positive number"),
    (["--freq", "inf"], "--freq must be a positive number"),
    (["--freq", "0"], "--freq must be a positive number"),
    (["--freq", "-5"], "--freq must be a positive number"),
    (["--freq", "1000"], "PLL cannot make 1000 MHz"),
    (["--freq", "500"], "its output is 16…275 MHz, or the 12 MHz reference itself"),
    (["--freq", "14"], "PLL cannot make 14 MHz"),
    (["--board", "upduino_v3", "--freq", "40"], "has no PLL and always runs at 48 MHz"),
    (["--lanes", "3"], "--lanes must be a power of two"),
    (["--lanes", "0"], "--lanes must be a power of two"),
    (["--seed", "-1"], "--seed must be an integer"),
    (["--baud", "0"], "--baud must be a positive integer"),
    (["--baud", "20000000"], "too fast"),
])
def test_options_the_board_cannot_honour_are_refused(fake, capsys, argv, needle):
    before = digests(fake["model"])
    assert_refused(run_cli(main, ["--model", str(fake["model"]), "--out", str(fake["out"]), *argv], capsys),
                   needle)
    assert not fake["out"].exists() and digests(fake["model"]) == before


def test_a_clock_slower_than_the_pll_makes_is_the_reference_itself(fake, capsys):
    # Below the PLL's 16 MHz the only in-specification clock is the
    # 12 MHz reference: its pin's global buffer, no PLL, no lock to wait for.
    code, out, err = run_cli(main, [*fake["argv"], "--freq", "12"], capsys)
    assert code == 0, err
    il = next(fake["out"].glob("*.il")).read_text()
    assert "SB_PLL40" not in il and "SB_GB_IO" in il
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["parameters"]["clock_mhz"] == 12


def test_toolchain_selection(fake, capsys, monkeypatch):
    from amaranth.build import run as amaranth_run

    monkeypatch.setenv("DHQ_TOOLCHAIN", "bogus")
    assert_refused(run_cli(main, fake["argv"], capsys), "DHQ_TOOLCHAIN='bogus' is not understood")
    monkeypatch.setenv("DHQ_TOOLCHAIN", "system")
    monkeypatch.setenv("YOSYS", str(fake["out"].parent / "no-such-yosys"))
    assert_refused(run_cli(main, fake["argv"], capsys), "no-such-yosys", "not found")
    assert not fake["out"].exists()                      # a missing tool is found before any work

    def stop(self, root="build", **kwargs):
        raise RuntimeError("not run in this test")

    monkeypatch.setattr(amaranth_run.BuildPlan, "execute_local", stop)
    code, out, err = run_cli(main, fake["argv"] + ["--toolchain", "yowasp"], capsys)   # the option wins
    assert code == 2 and "tools: yowasp" in out


def test_report_names_every_layers_bits_and_the_recipe(fake, capsys):
    """utilization.json and the summary say each layer's bits and the recipe that chose them."""
    from dhq_rtl.model_image import load
    model = load(fake["model"])
    model.meta["recipe"] = "first-wide"
    save(model, fake["model"])
    code, out, err = run_cli(main, fake["argv"], capsys)
    assert code == 0, err
    info = json.loads((fake["out"] / "utilization.json").read_text())["model"]
    assert info["recipe"] == "first-wide"
    assert info["layer_bits"] == [{"weight": l.weight_bits, "input": l.act_bits if i else None}
                                  for i, l in enumerate(model.layers)]
    assert f"model bits: {info['bits_text']}" in out and "(recipe first-wide)" in info["bits_text"]


def test_fabric_multipliers_build_records_the_kind(fake, capsys):
    """``--multipliers fabric``: the integer core's MAC products in logic on
    the ULX3S; the kind in utilization.json and the summary, no DSP in the
    estimate; the default is the board's DSP kind, as before."""
    argv = fake["argv"] + ["--board", "ulx3s"]
    code, out, err = run_cli(main, argv + ["--multipliers", "fabric"], capsys)
    assert code == 0, err
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["parameters"]["multipliers"] == "fabric" and report["parameters"]["dsp"] == "fabric"
    assert report["resources"]["dsp"]["estimated"] == 0
    assert "MAC products: in fabric logic" in out
    code, out, err = run_cli(main, argv, capsys)
    assert code == 0, err
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["parameters"]["multipliers"] == "dsp" and report["parameters"]["dsp"] == "generic"
    assert report["resources"]["dsp"]["estimated"] == 4 and "MAC products" not in out


def test_fabric_multipliers_refusals(fake, capsys, tmp_path):
    """The float core refuses ``--multipliers fabric`` (one line, before any
    tool); an unknown kind is an argparse error."""
    before = digests(tmp_path)
    assert_refused(run_cli(main, ["--model", str(fake["model"]), "--arith", "fp32", "--board", "ulx3s",
                                  "--multipliers", "fabric", "--out", str(fake["out"])], capsys),
                   "--multipliers fabric applies to the integer core's MAC array")
    assert digests(tmp_path) == before and not fake["out"].exists()
    code, out, err = run_cli(main, fake["argv"] + ["--multipliers", "luts"], capsys)
    assert code == 2 and any("invalid choice: 'luts'" in line for line in err)


def test_board_for_multipliers():
    from dhq_rtl.build import board_for_multipliers
    from dhq_rtl.errors import DhqError
    ice = get_board("icebreaker")
    assert board_for_multipliers(ice, "dsp") is ice
    assert board_for_multipliers(ice, "fabric").dsp == "fabric" and ice.dsp == "ice40"
    with pytest.raises(DhqError, match="must be one of dsp, fabric"):
        board_for_multipliers(ice, "luts")
    with pytest.raises(DhqError, match="float core"):
        board_for_multipliers(ice, "fabric", arith="fp32")
