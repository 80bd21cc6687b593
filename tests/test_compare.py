"""``python -m dhq_rtl.compare``: the table's arithmetic, reuse of builds,
refusals, the JSON, the "does not fit" row, and the models derived from one
float fit. Builds run with the fake tools (tests/fake_toolchain.py); the
activity simulation is replaced by fixed figures except in the slow test."""

import json
from pathlib import Path

import numpy as np
import pytest

from dhq_rtl import compare
from dhq_rtl.compare import main
from dhq_rtl.model_image import load, save
from dhq_rtl.synthetic import random_model

from tests.fake_toolchain import install
from tests.safety_checks import assert_refused, run_cli, under_a_file

#: The stand-in simulation's figures: (cycles per pixel, mJ per image) per core.
SIM = {"fp32": (2000.0, 30.0), "int": (100.0, 3.0)}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Fake tools, a W8A8 and a W6A6 model of one 8×8 target, a picture,
    and a stand-in for the activity simulation that counts its calls."""
    from dhq_rtl.images import save_png
    install(tmp_path / "tools", monkeypatch)
    w8 = tmp_path / "w8.dhq"
    w6 = tmp_path / "w6.dhq"
    save(random_model(size=8, width=16, depth=1, seed=0, rotate=False), w8)
    save(random_model(size=8, width=16, depth=1, seed=1, weight_bits=6, act_bits=6, rotate=False), w6)
    picture = tmp_path / "target.png"
    save_png(np.random.default_rng(0).integers(0, 256, (8, 8, 1), dtype=np.uint8), picture)
    calls = []

    def simulate(core, lanes, clock_hz, patch, log):
        calls.append(core.folder)
        cpp, mj = SIM[core.arith]
        return {"region": [0, 0, 8, 8], "cycles_per_pixel": cpp, "energy_mj": mj,
                "energy_relative_only": core.board.family == "ecp5", "energy_clock_mhz": clock_hz / 1e6,
                "simulator": {}}
    monkeypatch.setattr(compare, "_simulate", simulate)
    out = tmp_path / "out"
    argv = ["--model", str(w8), "--model", str(w6), "--bits", "w8a8", "w6a6", "--image", str(picture),
            "--out", str(out), "--json", str(tmp_path / "c.json")]
    return {"w8": w8, "w6": w6, "picture": picture, "out": out, "argv": argv, "calls": calls,
            "json": tmp_path / "c.json", "tmp": tmp_path}


def _run(setup, capsys, *extra):
    code, out, err = run_cli(main, setup["argv"] + list(extra), capsys)
    assert code == 0, err
    return json.loads(setup["json"].read_text()), out, err


def test_ratios_are_computed_from_the_measured_values(setup, capsys, monkeypatch):
    """Every ratio is the row's measured value over the FP32 row's, every
    change 100·(ratio − 1); PSNR is a difference; latency is cycles × pixels
    / clock; the table prints them."""
    real = compare._from_report

    def from_report(board, report):
        # The fake tools report one utilization for every core: give the float core more.
        row = real(board, report)
        fp32 = report["arith"] == "fp32"
        row["resources"] = {"lut": 1000 if fp32 else 100, "ff": 400 if fp32 else 50, "ebr": 20 if fp32 else 2,
                            "dsp": 50 if fp32 else 0}
        return row
    monkeypatch.setattr(compare, "_from_report", from_report)
    result, out, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    (board,) = result["boards"]
    assert board["mode"] == "iso-architecture" and board["lanes"] == 4
    ref, *ints = board["rows"]
    assert ref["core"] == "FP32" and [r["core"] for r in ints] == ["DHQ W8A8", "DHQ W6A6"]
    for r in board["rows"]:
        assert r["status"] == "ok" and r["lanes"] == 4
        assert r["latency_ms"] == pytest.approx(1e3 * 64 * r["cycles_per_pixel"] / (r["run_mhz"] * 1e6))
        assert r["energy_relative_only"] is True        # ECP5: the iCE40 constants, relative only
    for r in ints:
        vs = r["vs_fp32"]
        assert vs["psnr_delta_db"] == pytest.approx(r["psnr_db"] - ref["psnr_db"], abs=1e-3)
        for key in ("fmax_mhz", "run_mhz", "cycles_per_pixel", "latency_ms", "energy_mj"):
            assert vs[key]["ratio"] == pytest.approx(r[key] / ref[key])
            assert vs[key]["change_percent"] == pytest.approx(100 * (r[key] / ref[key] - 1))
        assert vs["latency_ms"]["change_percent"] == pytest.approx(-95.0)     # 100 vs 2000 cycles, same clock
        assert vs["energy_mj"]["ratio"] == pytest.approx(0.1)
        assert vs["resources"]["lut"]["change_percent"] == pytest.approx(-90.0)
        assert vs["resources"]["ebr"]["ratio"] == pytest.approx(0.1)
        assert vs["resources"]["dsp"] == {"ratio": 0.0, "change_percent": -100.0}
    assert "1e+03 (0.1×, -90.0 %)" not in out and "100 (0.1×, -90.0 %)" in out
    assert "relative only (0.1×, -90.0 %)" in out
    loss = next(t for t in result["targets"] if t["target"] == "ulx3s W8A8 vs FP32 PSNR loss dB")
    assert loss["value"] == pytest.approx(ref["psnr_db"] - ints[0]["psnr_db"], abs=1e-3)
    assert loss["met"] is (loss["value"] <= 0.2)
    best = next(t for t in result["targets"] if "best resource reduction" in t["target"])
    assert best["value"] == 100.0 and best["met"] is True and best["where"].startswith("DSP")


def test_builds_are_reused_and_an_interrupted_run_resumes(setup, capsys, monkeypatch):
    """A second run with the same models reuses every build and measurement
    (the tools would fail now); another placement seed builds again."""
    first, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    assert all(r["reused"] is False for r in first["boards"][0]["rows"])
    n = len(setup["calls"])
    assert n == 3
    monkeypatch.setenv("FAKE_FAIL", "yosys")
    again, out, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    rows = again["boards"][0]["rows"]
    assert all(r["reused"] is True for r in rows) and len(setup["calls"]) == n
    assert "(reused)" in out
    strip = lambda rs: [{k: v for k, v in r.items() if k != "reused"} for r in rs]   # noqa: E731
    assert strip(rows) == strip(first["boards"][0]["rows"])
    code, _, err = run_cli(main, setup["argv"] + ["--board", "ulx3s", "--lanes", "4", "--seed", "2"], capsys)
    assert code == 2 and err[-1].startswith("error: the ecp5 build failed") and "Traceback" not in "".join(err)
    # The W6A6 model changes: only its core is built again.
    monkeypatch.delenv("FAKE_FAIL")
    save(random_model(size=8, width=16, depth=1, seed=2, weight_bits=6, act_bits=6), setup["w6"])
    third, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    assert [r["reused"] for r in third["boards"][0]["rows"]] == [True, True, False]


def test_source_digest_follows_every_python_source(tmp_path):
    (tmp_path / "gateware").mkdir()
    (tmp_path / "gateware" / "core.py").write_text("x = 1\n")
    (tmp_path / "build.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not a source\n")
    first = compare.source_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("changed\n")
    assert compare.source_digest(tmp_path) == first
    (tmp_path / "gateware" / "core.py").write_text("x = 2\n")
    assert compare.source_digest(tmp_path) != first
    (tmp_path / "gateware" / "core.py").write_text("x = 1\n")
    assert compare.source_digest(tmp_path) == first
    (tmp_path / "gateware" / "core.py").rename(tmp_path / "gateware" / "core2.py")
    assert compare.source_digest(tmp_path) != first


def test_source_digest_ignores_comments_docstrings_and_layout(tmp_path):
    """Only the code counts: a docstring, comment or layout edit keeps the
    builds; a string the code uses, or a new line of code, does not."""
    core = tmp_path / "core.py"
    core.write_text('"""A core."""\n\ndef f(x):\n    """Twice x."""\n    return 2 * x  # doubled\n')
    first = compare.source_digest(tmp_path)
    core.write_text('"""A core, documented\nat length."""\n\n\ndef f(x):\n    """x + x."""\n'
                    '    # the product\n    return 2 * x\n')
    assert compare.source_digest(tmp_path) == first
    core.write_text('"""A core."""\n\ndef f(x):\n    """Twice x."""\n    return 3 * x\n')
    assert compare.source_digest(tmp_path) != first
    core.write_text('"""A core."""\n\ndef f(x):\n    """Twice x."""\n    print("x")\n    return 2 * x\n')
    assert compare.source_digest(tmp_path) != first
    core.write_text('"""A core."""\n\ndef f(x):\n    return 2 * x\n')       # the docstring gone
    assert compare.source_digest(tmp_path) == first
    core.write_text("def f(x:\n")                                             # does not parse: its bytes
    assert compare.source_digest(tmp_path) != first


def test_a_build_of_other_sources_is_built_again(setup, capsys):
    """A row whose build was made by other package sources is built again."""
    first, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    built = first["boards"][0]["rows"]
    old = Path(built[0]["folder"]) / compare.ROW_FILE
    record = json.loads(old.read_text())
    assert record["build_stamp"]["source"] == compare.source_digest()
    record["build_stamp"]["source"] = "0" * 16
    old.write_text(json.dumps(record))
    again, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    assert [r["reused"] for r in again["boards"][0]["rows"]] == [False] + [True] * (len(built) - 1)


def test_a_reused_row_keeps_its_own_build_report(setup, capsys):
    """A build that fails timing leaves the folder's earlier build (which met
    it) in place: a reused row takes its figures from its own build's report,
    kept in its record, not from the folder's ``utilization.json``."""
    first, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    row = first["boards"][0]["rows"][1]
    kept = Path(row["folder"]) / "utilization.json"
    other = json.loads(kept.read_text())
    other["clocks"] = {k: dict(v, fmax_mhz=v["fmax_mhz"] + 11.0) for k, v in other["clocks"].items()}
    other["performance"]["core_fmax_mhz"] = (other["performance"].get("core_fmax_mhz") or 0) + 11.0
    kept.write_text(json.dumps(other))
    again, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    reused = again["boards"][0]["rows"][1]
    assert reused["reused"] is True and reused["fmax_mhz"] == row["fmax_mhz"]


def test_ice40_builds_of_the_old_synthesis_flow_are_built_again(setup, capsys):
    """An iCE40 build stamped before the flow without ``-dsp`` (its DSPs
    rewritten by Yosys) is never reused; a current one is."""
    first, _, _ = _run(setup, capsys, "--board", "icebreaker")
    rows = first["boards"][0]["rows"]
    built = [r for r in rows if r["status"] != "does not fit"]
    assert built and all(r["reused"] is False for r in built)
    again, _, _ = _run(setup, capsys, "--board", "icebreaker")
    assert all(r["reused"] for r in again["boards"][0]["rows"] if r["status"] != "does not fit")
    old = Path(built[0]["folder"]) / compare.ROW_FILE
    record = json.loads(old.read_text())
    assert record["build_stamp"]["ice40_flow"] == compare.ICE40_FLOW
    del record["build_stamp"]["ice40_flow"]
    old.write_text(json.dumps(record))
    third, _, _ = _run(setup, capsys, "--board", "icebreaker")
    reused = {r["folder"]: r["reused"] for r in third["boards"][0]["rows"] if r["status"] != "does not fit"}
    assert reused.pop(built[0]["folder"]) is False and all(reused.values())


def test_a_core_that_does_not_fit_is_a_row(setup, capsys):
    """The float core at 64 lanes needs more DSPs than the ULX3S has: its
    row says so with the estimate's reason, the integer rows are measured
    without ratios, and the targets are not measured."""
    result, out, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "64")
    ref, *ints = result["boards"][0]["rows"]
    assert ref["status"] == "does not fit" and "DSP needs" in ref["reason"] and ref["reused"] is False
    assert all(r["status"] == "ok" and r["vs_fp32"] is None for r in ints)
    assert "does not fit: " in out and "DSP needs" in out
    best = next(t for t in result["targets"] if "best resource reduction" in t["target"])
    assert best["met"] is None and best["value"] is None


def test_iso_board_rows_and_json_schema(setup, capsys, tmp_path):
    """The iCEBreaker compares cores as large as fit (no common lane
    count); the JSON names the models and their provenance, every row its
    figures and the targets; the picture is a PNG."""
    png = tmp_path / "c.png"
    result, _, _ = _run(setup, capsys, "--board", "icebreaker", "--png", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result) >= {"command", "models", "targets_goal", "boards", "targets"}
    assert [m["role"] for m in result["models"]] == ["FP32 core", "DHQ W8A8 core", "DHQ W6A6 core"]
    assert result["models"][0]["provenance"].startswith("the float model carried by the first model")
    assert result["models"][2]["provenance"] == f"given: {setup['w6']}"
    (board,) = result["boards"]
    assert board["mode"] == "iso-board" and board["lanes"] is None
    for r in board["rows"]:
        assert {"core", "arith", "board", "status", "model_crc", "provenance", "reused"} <= set(r)
        if r["status"] == "ok":
            assert {"psnr_db", "fmax_mhz", "clock_mhz", "run_mhz", "cycles_per_pixel", "latency_ms", "energy_mj",
                    "resources", "lanes", "timing_met"} <= set(r)
            assert set(r["resources"]) == {"lc", "ff", "ebr", "spram", "dsp"}
            assert r["resources"]["lc"] == 100 and r["fmax_mhz"] == 60.0   # what the fake nextpnr reports
    w8 = board["rows"][1]
    assert w8["status"] == "ok", json.dumps(w8)
    assert w8["psnr_db"] == pytest.approx(_golden_psnr(setup), abs=1e-3)
    names = [t["target"] for t in result["targets"]]
    assert names == ["icebreaker W8A8 vs FP32 latency change %", "icebreaker W8A8 vs FP32 energy change %",
                     "icebreaker W8A8 vs FP32 PSNR loss dB"]
    if board["rows"][0]["status"] != "ok":
        assert all(t["met"] is None and "FP32 core" in t["why"] for t in result["targets"])


def _golden_psnr(setup):
    from dhq_rtl.golden import GoldenModel
    from dhq_rtl.images import load_image, psnr
    return psnr(load_image(setup["picture"], 8, "gray"), GoldenModel(load(setup["w8"])).render())


def test_refusals_are_one_line(setup, capsys, tmp_path, monkeypatch):
    argv = setup["argv"]
    assert_refused(run_cli(main, argv + ["--board", "nosuch"], capsys), "nosuch")
    bad = tmp_path / "bad.dhq"
    bad.write_bytes(b"not a model image")
    assert_refused(run_cli(main, ["--model", str(bad), "--out", str(setup["out"])], capsys))
    other = tmp_path / "other.dhq"
    save(random_model(size=16, width=16, depth=1, seed=0, weight_bits=6, act_bits=6), other)
    assert_refused(run_cli(main, ["--model", str(setup["w8"]), "--model", str(other), "--image",
                                  str(setup["picture"]), "--out", str(setup["out"])], capsys), "one target")
    assert_refused(run_cli(main, argv + ["--lanes", "3"], capsys), "--lanes")
    assert_refused(run_cli(main, argv + ["--bits", "w99a8"], capsys), "--bits")
    assert_refused(run_cli(main, argv + ["--json", str(tmp_path)], capsys), "folder")
    assert_refused(run_cli(main, argv + ["--out", str(under_a_file(tmp_path))], capsys), "--out")
    assert_refused(run_cli(main, argv + ["--json", str(setup["w8"])], capsys), "--model")
    assert_refused(run_cli(main, argv + ["--png", str(setup["json"]).replace(".json", ".png"), "--json",
                                         str(setup["json"]).replace(".json", ".png")], capsys), "same file")
    # A file where a build folder goes is refused before any work.
    setup["out"].mkdir()
    (setup["out"] / "ulx3s-int-w6a6-8").write_text("in the way")
    assert_refused(run_cli(main, argv + ["--board", "ulx3s"], capsys), "ulx3s-int-w6a6-8", "not a folder")
    (setup["out"] / "ulx3s-int-w6a6-8").unlink()
    setup["out"].rmdir()
    # A random model records no training: its W4A4 model cannot be derived.
    assert_refused(run_cli(main, argv + ["--bits", "w8a8", "w4a4"], capsys), "dhq_rtl.train")
    monkeypatch.setenv("YOSYS", str(tmp_path / "no-such-yosys"))
    assert_refused(run_cli(main, argv, capsys))
    assert not setup["out"].exists() and not setup["json"].exists()


def test_models_derived_from_one_float_fit(tmp_path, monkeypatch):
    """W6A6 and W4A4 models of a trained W8A8 model: the repeated float fit
    reproduces the W8A8 model's float model bit for bit, each derived model
    carries the fit's state at its own float steps, and a second call
    reuses the cached models without training."""
    import torch

    from dhq_rtl.images import default_image_path, load_image
    from dhq_rtl.reference import fit as fit_module
    from dhq_rtl.reference.fit import FitConfig, fit_image, train_float
    torch.set_num_threads(1)
    pixels = load_image(default_image_path(), 16, "gray")
    cfg = FitConfig(width=8, depth=1, steps=30, qat_steps=20, fine_tune_steps=5, warmup_steps=5,
                    refine_rounds=1, refine_candidates=8)
    w8 = fit_image(pixels, cfg).model
    w8.meta["image"] = default_image_path().name
    small = dict(fine_tune_steps=5, warmup_steps=5, refine_rounds=1, refine_candidates=8)
    real_config = compare._fit_config
    monkeypatch.setattr(compare, "_fit_config", lambda m, b: __import__("dataclasses").replace(
        real_config(m, b), **small))
    models = compare.derive_models(w8, ["w6a6", "w4a4"], pixels, tmp_path / "models", log=lambda m: None)
    fits = train_float(pixels, cfg, 50, snapshots={30, 5})
    for bits, steps in (("w6a6", 30), ("w4a4", 5)):
        model, provenance = models[bits]
        assert compare.bits_of(model) == bits and "bit for bit" in provenance
        assert model.meta["image"] == w8.meta["image"]
        for lin, layer in zip(fits[steps].linears, model.layers):
            assert np.array_equal(lin.weight.detach().numpy().astype(np.float32), layer.float_weight)

    def no_training(*a, **k):
        raise AssertionError("trained again")
    monkeypatch.setattr(fit_module, "train_float", no_training)
    again = compare.derive_models(w8, ["w6a6", "w4a4"], pixels, tmp_path / "models", log=lambda m: None)
    assert {b: p for b, (_, p) in again.items()} == {b: p for b, (_, p) in models.items()}
    assert {b: compare.model_crc(m) for b, (m, _) in again.items()} == \
        {b: compare.model_crc(m) for b, (m, _) in models.items()}


@pytest.mark.slow
def test_real_tools_tiny_model(tmp_path, capsys):
    """End to end with the real tools and simulation: a tiny model on the
    iCEBreaker, FP32 against W8A8 (the float core's row says "does not
    fit" while its estimate exceeds the UP5K, and is measured once it fits)."""
    from dhq_rtl.images import default_image_path
    m = random_model(size=8, width=8, depth=1, seed=0, rotate=False)
    path = tmp_path / "m.dhq"
    save(m, path)
    argv = ["--model", str(path), "--bits", "w8a8", "--board", "icebreaker", "--image",
            str(default_image_path()), "--out", str(tmp_path / "out"), "--json", str(tmp_path / "c.json")]
    code, out, err = run_cli(main, argv, capsys)
    assert code == 0, err
    fp32, w8 = json.loads((tmp_path / "c.json").read_text())["boards"][0]["rows"]
    assert w8["status"] in ("ok", "timing failed") and w8["cycles_per_pixel"] > 0 and w8["energy_mj"] > 0
    assert w8["resources"]["lc"] > 0 and w8["resources"]["dsp"] > 0 and not w8["energy_relative_only"]
    if fp32["status"] == "does not fit":
        assert "LC needs" in fp32["reason"] and w8["vs_fp32"] is None
    else:
        assert w8["vs_fp32"]["cycles_per_pixel"]["ratio"] < 1


def test_model_crc_is_the_files_own_crc(tmp_path):
    """A model's CRC is the one its file ends with, and differs between models."""
    import struct
    a, b = random_model(size=8, width=16, depth=1, seed=1), random_model(size=8, width=16, depth=1, seed=2)
    save(a, tmp_path / "a.dhq")
    (stored,) = struct.unpack("<I", (tmp_path / "a.dhq").read_bytes()[-4:])
    assert compare.model_crc(a) == f"{stored:08x}"
    assert compare.model_crc(a) != compare.model_crc(b)


def test_a_core_that_fails_timing_runs_below_its_fmax(setup, capsys, monkeypatch):
    """Both attempts fail timing (Fmax 30 MHz against 48): the row says so
    and its latency is at the fastest PLL clock at or below the Fmax."""
    from dhq_rtl.boards import get_board
    from dhq_rtl.build import fallback_clock_hz
    from dhq_rtl.gateware.top import pll_frequency_at_most
    monkeypatch.setenv("FAKE_FMAX", "30")
    result, out, _ = _run(setup, capsys, "--board", "icebreaker", "--bits", "w8a8")
    w8 = result["boards"][0]["rows"][1]
    board = get_board("icebreaker")
    assert w8["status"] == "timing failed" and w8["fmax_mhz"] == 30.0
    # The fake tools hold the 48 MHz constraint after the fallback: its clock is below the Fmax already.
    assert w8["run_mhz"] == w8["clock_mhz"] <= 30.0
    assert w8["run_mhz"] * 1e6 == fallback_clock_hz(board, 30.0, baud=3_000_000)    # the build's second clock
    # A real Fmax between the clocks: the fastest PLL clock at or below it that the UART divides.
    row = {"timing_met": False, "fmax_mhz": 41.02, "clock_mhz": 41.25, "baud": 3_000_000}
    assert compare._run_mhz(board, row) * 1e6 == pll_frequency_at_most("ice40", board.ref_hz, 41.02e6,
                                                                        baud=3_000_000) <= 41.02e6
    assert w8["latency_ms"] == pytest.approx(1e3 * 64 * SIM["int"][0] / (w8["run_mhz"] * 1e6))
    assert "timing failed" in out


def test_fabric_product_rows(setup, capsys, monkeypatch):
    """``--fabric-products``: on the ULX3S (iso-architecture) a row per
    integer width with the MAC products in fabric, built with
    ``multipliers="fabric"`` in its own folder; none on the iCEBreaker. A
    build made before the kind was stamped is reused as a DSP build, not as
    a fabric one; the best-reduction target names its row and LUT cost."""
    real = compare._from_report

    def from_report(board, report):
        row = real(board, report)
        fabric = report["parameters"].get("multipliers") == "fabric"
        fp32 = report["arith"] == "fp32"
        row["resources"] = {"lut": 1000 if fp32 else 300 if fabric else 100, "dsp": 40 if fp32 else 0 if fabric
                            else 8}
        return row
    monkeypatch.setattr(compare, "_from_report", from_report)
    plain, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4")
    out = setup["out"]
    # A stamp of a build made before the products' kind was recorded.
    row_file = out / "ulx3s-int-w8a8-4" / compare.ROW_FILE
    record = json.loads(row_file.read_text())
    del record["build_stamp"]["multipliers"]
    row_file.write_text(json.dumps(record))
    result, text, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4", "--board", "icebreaker",
                           "--fabric-products")
    ulx3s, ice = result["boards"]
    assert [(r["core"], r["multipliers"], r["reused"]) for r in ulx3s["rows"]] == [
        ("FP32", "dsp", True), ("DHQ W8A8", "dsp", True), ("DHQ W8A8 (fabric products)", "fabric", False),
        ("DHQ W6A6", "dsp", True), ("DHQ W6A6 (fabric products)", "fabric", False)]
    assert all(r["multipliers"] == "dsp" for r in ice["rows"])
    for r in ulx3s["rows"]:
        report = json.loads((out / Path(r["folder"]).name / "utilization.json").read_text())
        assert report["parameters"]["multipliers"] == r["multipliers"]
        assert Path(r["folder"]).name.endswith("-fabric") == (r["multipliers"] == "fabric")
    fabric = ulx3s["rows"][2]
    assert fabric["vs_fp32"]["resources"]["dsp"] == {"ratio": 0.0, "change_percent": -100.0}
    assert "DHQ W8A8 (fabric products)" in text
    best = next(t for t in result["targets"] if "best resource reduction" in t["target"])
    assert best["met"] is True and best["where"] == "DSP, DHQ W8A8 (fabric products); LUT -70.0 %"
    # The stamp now carries the kind: the DSP and fabric builds are both reused.
    again, _, _ = _run(setup, capsys, "--board", "ulx3s", "--lanes", "4", "--fabric-products")
    assert all(r["reused"] for r in again["boards"][0]["rows"])
    assert plain["boards"][0]["rows"][1]["multipliers"] == "dsp"
