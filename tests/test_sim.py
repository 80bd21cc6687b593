"""Cycle-accurate simulation: engines, their agreement, the CLI.

The compiled simulators are built once per design and cached (under
``$DHQ_RTL_CACHE`` or ``~/.cache/dhq_rtl``), so a second run of this file
skips every build.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dhq_rtl.cli import run_main
from dhq_rtl.errors import DhqError, ToolchainError
from dhq_rtl.golden import GoldenModel
from dhq_rtl.model_image import load, save
from dhq_rtl.firmware import default_model
from dhq_rtl.sim import main
from dhq_rtl.rtlsim import (CompiledSim, ToolchainUnavailable, find_toolchain, pack_region,
                              ready_pattern, run_pysim, stall_threshold, unpack_pixels)
from dhq_rtl.rtlsim.stimulus import check_region
from dhq_rtl.synthetic import random_model
from tests.standin_core import StandinCore

ROOT = Path(__file__).resolve().parents[1]


def _have_compiler():
    try:
        find_toolchain("verilator")
        return True
    except ToolchainUnavailable:
        return False


_no_cxx = pytest.mark.skipif(not _have_compiler(), reason="no C++ compiler / Verilator")


def needs_cxx(test):
    """A test of the compiled engine: it runs Yosys, Verilator and g++ (``slow``)."""
    return pytest.mark.slow(_no_cxx(test))


@pytest.fixture(scope="module")
def small_model():
    return random_model(size=12, width=8, depth=2, channels=3, seed=4)


@pytest.fixture(scope="module")
def standin(small_model):
    return StandinCore(small_model, cycles_per_pixel=3)


def _check_same(a, b):
    """Two runs produced the same beats in the same cycles."""
    assert a.pixels == b.pixels
    np.testing.assert_array_equal(a.payloads, b.payloads)
    np.testing.assert_array_equal(a.beat_cycles, b.beat_cycles)
    assert (a.cycles, a.busy_cycles) == (b.cycles, b.busy_cycles)


def _check_golden(result, model, region):
    got = unpack_pixels(result.payloads, model, region)
    want = GoldenModel(model).render(region)
    bad = np.argwhere(np.any(got != want, axis=-1))
    assert len(bad) == 0, f"{len(bad)} pixels differ, first at (row, col) {bad[0].tolist()}"


# ------------------------------------------------------------------ stimulus

def test_ready_pattern_rate_and_determinism():
    thr = stall_threshold(0.25)
    pattern = [ready_pattern(7, thr, n) for n in range(20000)]
    assert pattern == [ready_pattern(7, thr, n) for n in range(20000)]
    assert abs(pattern.count(False) / len(pattern) - 0.25) < 0.02
    assert all(ready_pattern(7, 0, n) for n in range(100))
    assert pattern != [ready_pattern(8, thr, n) for n in range(20000)]
    with pytest.raises(ValueError):
        stall_threshold(1.0)
    with pytest.raises(ValueError):
        stall_threshold(-0.1)


def test_pack_region_follows_layout(standin):
    layout = standin.region.shape()
    word = pack_region(layout, (1, 2, 11, 12))
    for name, value in zip(("x0", "y0", "x1", "y1"), (1, 2, 11, 12)):
        f = layout[name]
        assert (word >> f.offset) & ((1 << f.width) - 1) == value
    with pytest.raises(ValueError):
        pack_region(layout, (1, 2, 1 << 10, 12))


@pytest.mark.parametrize("region", [(0, 0, 0, 5), (3, 0, 2, 4), (0, 0, 13, 12), (-1, 0, 4, 4), (0, 0, 12, 13)])
def test_check_region_rejects(small_model, region):
    with pytest.raises(DhqError, match="region"):
        check_region(small_model, region)


def test_check_region_whole_image(small_model):
    assert check_region(small_model, None) == (0, 0, 12, 12)


# ------------------------------------------------------------ engines (stand-in)

def test_pysim_standin_golden_with_stalls(small_model, standin):
    region = (2, 3, 9, 7)
    res = run_pysim(standin, region, stall=0.4, seed=3)
    _check_golden(res, small_model, region)
    # Without back-pressure the stand-in gives one pixel every cycles_per_pixel + 1 cycles.
    free = run_pysim(standin, region)
    np.testing.assert_array_equal(free.beat_cycles, 4 + 4 * np.arange(28))
    assert res.cycles > free.cycles


@needs_cxx
@pytest.mark.parametrize("backend", ["verilator", "cxxrtl"])
def test_compiled_matches_pysim_cycle_for_cycle_standin(small_model, standin, backend):
    region = (1, 2, 11, 9)
    sim = CompiledSim(standin, backend=backend)
    sim.build()
    assert CompiledSim(standin, backend=backend).cached  # a second run needs no build
    for stall, seed in ((0.0, 1), (0.5, 9)):
        ref = run_pysim(standin, region, stall=stall, seed=seed)
        res = sim.run(region, stall=stall, seed=seed)
        _check_same(ref, res)
        _check_golden(res, small_model, region)


@needs_cxx
def test_compiled_reports_hang(standin):
    sim = CompiledSim(standin)
    with pytest.raises(ToolchainError, match="no pixel for 2 cycles"):
        sim.run((0, 0, 4, 4), idle_limit=2)
    with pytest.raises(ToolchainError, match="no pixel for 2 cycles"):
        run_pysim(standin, (0, 0, 4, 4), idle_limit=2)


def test_missing_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(ToolchainUnavailable, match="no-such-compiler"):
        find_toolchain("verilator")
    with pytest.raises(ToolchainUnavailable, match="no-such-compiler"):
        find_toolchain("cxxrtl")


# ------------------------------------------------------------------- the CLI

def _cli(argv, factory=None):
    try:
        run_main(lambda a: main(a, core_factory=factory), argv)
    except SystemExit as e:
        return e.code
    raise AssertionError("run_main did not exit")


def _standin_factory(model, lanes):
    return StandinCore(model, lanes=lanes, cycles_per_pixel=2)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_model):
    path = tmp_path_factory.mktemp("m") / "small.dhq"
    save(small_model, path)
    return path


def test_cli_bad_region(capsys, model_file):
    for region in ("0,0,13,4", "1,2,3", "a,b,c,d", "4,0,4,4"):
        assert _cli(["--model", str(model_file), "--region", region], _standin_factory) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and "region" in err[0]


def test_cli_bad_model_file(capsys, tmp_path):
    bad = tmp_path / "bad.dhq"
    bad.write_bytes(b"DHQM\x01\x00garbage")
    for path in (bad, tmp_path / "missing.dhq"):
        assert _cli(["--model", str(path)], _standin_factory) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:")


def test_cli_missing_compiler(capsys, monkeypatch, tmp_path, model_file):
    monkeypatch.setenv("CXX", str(tmp_path / "nothing-here" / "g++"))
    # Asked for explicitly: a one-line error, exit 2.
    assert _cli(["--model", str(model_file), "--engine", "compiled"], _standin_factory) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "C++ compiler" in err[0] and "nothing-here" in err[0]
    # Automatic engine choice: fall back to pysim with an estimate of the time.
    assert _cli(["--model", str(model_file), "--region", "0,0,5,2", "--no-progress"], _standin_factory) == 0
    out = capsys.readouterr()
    assert "falling back to Amaranth's Python simulator" in out.err and "cycles/s" in out.err
    assert "engine: pysim" in out.out and "OK: all 10 pixels" in out.out


def test_cli_pysim_writes_png_and_reports(capsys, tmp_path, model_file, small_model):
    png = tmp_path / "out.png"
    assert _cli(["--model", str(model_file), "--engine", "pysim", "--region", "2,1,8,4", "--stall", "0.3",
                 "--out", str(png), "--no-progress"], _standin_factory) == 0
    out = capsys.readouterr().out
    assert "cycles:" in out and "per pixel" in out and "cycles/s" in out and "PSNR vs original" in out
    from PIL import Image
    img = np.asarray(Image.open(png))
    np.testing.assert_array_equal(img, GoldenModel(small_model).render((2, 1, 8, 4)))


def test_cli_reports_mismatches(capsys, model_file):
    other = random_model(size=12, width=8, depth=2, channels=3, seed=5)

    def wrong(model, lanes):  # renders another model's pixels
        return StandinCore(other, lanes=lanes, cycles_per_pixel=1)

    assert _cli(["--model", str(model_file), "--engine", "pysim", "--region", "0,0,6,3", "--no-progress"],
                wrong) == 1
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l.startswith("mismatch at")]
    assert lines and "FAIL" in out
    want = GoldenModel(load(model_file)).render((0, 0, 6, 3))
    got = GoldenModel(other).render((0, 0, 6, 3))
    bad = np.argwhere(np.any(got != want, axis=-1))
    r, c = bad[0]
    assert lines[0] == f"mismatch at x={c} y={r}: simulated {got[r, c].tolist()} golden {want[r, c].tolist()}"


# ---------------------------------------------------------- the real core

@pytest.fixture(scope="module")
def default():
    from dhq_rtl.gateware.core import InrCore
    model, _ = default_model()
    return model, InrCore(model, lanes=16, dsp="generic")


@needs_cxx
def test_core_whole_default_image_bit_exact(default):
    model, core = default
    region = (0, 0, model.width, model.height)
    res = CompiledSim(core).run(region, stall=0.1, seed=2)
    _check_golden(res, model, region)
    assert res.busy_cycles >= res.cycles


@needs_cxx
def test_core_pysim_and_compiled_agree_on_patch(default):
    model, core = default
    sim = CompiledSim(core)
    for region, stall in (((5, 7, 9, 8), 0.0), ((60, 100, 63, 102), 0.35)):
        ref = run_pysim(core, region, stall=stall, seed=11)
        res = sim.run(region, stall=stall, seed=11)
        _check_same(ref, res)
        _check_golden(res, model, region)


# ---------------------------------------------------------- the float core

def _check_float_golden(result, model, region, lanes):
    from dhq_rtl.golden_float32 import FloatGoldenModel
    got = unpack_pixels(result.payloads, model, region)
    want = FloatGoldenModel(model, lanes).render(region)
    bad = np.argwhere(np.any(got != want, axis=-1))
    assert len(bad) == 0, f"{len(bad)} pixels differ, first at (row, col) {bad[0].tolist()}"


@needs_cxx
def test_float_core_whole_images_bit_exact():
    """The float core renders whole images in compiled simulation, every
    pixel equal to the float32 golden model: the bundled model (no layer
    rotated) and a model whose integer export rotated every layer (the
    float core runs its float model all the same); and the compiled and
    the Python simulator give the same beats in the same cycles."""
    from dhq_rtl.gateware.core import InrCore
    from dhq_rtl.gateware.float32.plan import FloatUnits
    model, _ = default_model()
    core = InrCore(model, lanes=4, dsp="generic", arith="fp32", units=FloatUnits(sine_ii=3))
    sim = CompiledSim(core)
    region = (0, 0, model.width, model.height)
    res = sim.run(region, stall=0.1, seed=2)
    _check_float_golden(res, model, region, 4)
    patch = (60, 100, 63, 101)
    _check_same(run_pysim(core, patch, stall=0.3, seed=5), sim.run(patch, stall=0.3, seed=5))
    rotated = random_model(size=32, width=16, depth=2, channels=3, seed=3, rotate=True, rotate_first=True)
    assert all(l.rotate for l in rotated.layers)
    core = InrCore(rotated, lanes=2, dsp="generic", arith="fp32", units=FloatUnits(sine_ii=11))
    region = (0, 0, 32, 32)
    _check_float_golden(CompiledSim(core).run(region, stall=0.2, seed=3), rotated, region, 2)


def test_cli_float_core_pysim(capsys, model_file, small_model):
    from dhq_rtl.golden_float32 import FloatGoldenModel
    assert _cli(["--model", str(model_file), "--arith", "fp32", "--lanes", "2", "--sine-ii", "3",
                 "--engine", "pysim", "--region", "1,1,4,3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "float core (fp32), lanes 2" in out and "OK: all 6 pixels equal the float32 golden model" in out
    assert FloatGoldenModel(small_model, 2).render((1, 1, 4, 3)).shape == (2, 3, 3)


def test_cli_float_core_refuses_before_simulating(capsys, tmp_path, small_model):
    import copy
    bare = copy.deepcopy(small_model)
    for layer in bare.layers:
        layer.float_weight = layer.float_bias = None
    path = tmp_path / "v2.dhq"
    save(bare, path)
    assert _cli(["--model", str(path), "--arith", "fp32", "--engine", "pysim"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "carries no float parameters" in err[0] and "re-export" in err[0]
    assert _cli(["--model", str(path), "--arith", "fp32", "--sine-ii", "2"]) == 2
    assert "model image carries no float" in capsys.readouterr().err
    save(small_model, path)
    assert _cli(["--model", str(path), "--arith", "fp32", "--sine-ii", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sine-ii must be 1 or in 3..64, got 2" in err[0]


@needs_cxx
def test_cli_module_entry_point(tmp_path):
    """``python -m dhq_rtl.sim`` as a user runs it (simulator cached by the tests above)."""
    out = subprocess.run([sys.executable, "-m", "dhq_rtl.sim", "--region", "0,0,16,4", "--no-progress",
                          "--stall", "0.2", "--engine", "compiled"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=600)
    assert out.returncode == 0, out.stderr
    assert "OK: all 64 pixels equal the golden model" in out.stdout
    assert "engine: compiled (verilator)" in out.stdout


# ------------------------------------------------ inputs and results are kept

from tests.safety_checks import assert_refused, digests, fill_disk, run_cli, under_a_file  # noqa: E402


def _never(model, lanes):
    raise AssertionError("the core was built before the arguments were checked")


@pytest.fixture
def inputs(tmp_path, small_model):
    model = tmp_path / "m.dhq"
    save(small_model, model)
    (tmp_path / "model-link.dhq").hardlink_to(model)
    from PIL import Image
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "orig.png")
    (tmp_path / "notes.txt").write_text("my notes")
    return tmp_path


@pytest.mark.parametrize("extra, needle", [
    (["--out", "m.dhq"], "--out m.dhq is the same file as --model m.dhq"),
    (["--out", "model-link.dhq"], "is the same file as --model"),
    (["--out", "orig.png"], "--out orig.png is the same file as --image orig.png"),
    (["--out", "a-file/x.png"], "is a file, not a folder"),
    (["--out", "notes.txt"], "exists and is not a PNG"),
    (["--out", "."], "is a folder"),
    (["--out", ""], "the path is empty"),
    (["--image", "missing.png"], "image file not found"),
    (["--region", ""], "--region must be x0,y0,x1,y1"),
    (["--region", "-1,0,4,4"], "region -1,0,4,4 is not a non-empty rectangle"),
    (["--stall", "nan"], "--stall"),
])
def test_sim_refuses_before_simulating(inputs, capsys, monkeypatch, extra, needle):
    under_a_file(inputs)
    monkeypatch.chdir(inputs)
    before = digests(inputs)
    argv = ["--model", "m.dhq", "--image", "orig.png", "--engine", "pysim", "--no-progress", *extra]
    assert_refused(run_cli(lambda a: main(a, core_factory=_never), argv, capsys), needle)
    assert digests(inputs) == before


def test_sim_full_disk_keeps_the_previous_png(inputs, capsys, monkeypatch):
    def argv(region):
        return ["--model", str(inputs / "m.dhq"), "--engine", "pysim", "--region", region, "--no-progress",
                "--out", str(inputs / "out.png")]

    run = lambda a: main(a, core_factory=_standin_factory)  # noqa: E731
    assert run_cli(run, argv("0,0,3,2"), capsys)[0] == 0
    before = digests(inputs)
    fill_disk(monkeypatch, room=40)
    assert_refused(run_cli(run, argv("0,0,5,5"), capsys), "cannot write", "No space left on device", "unchanged")
    assert digests(inputs) == before


@needs_cxx
def test_damaged_simulator_cache_is_rebuilt(inputs, capsys, monkeypatch):
    monkeypatch.setenv("DHQ_RTL_CACHE", str(inputs / "cache"))
    argv = ["--model", str(inputs / "m.dhq"), "--engine", "compiled", "--backend", "cxxrtl", "--region",
            "0,0,4,3", "--no-progress"]
    run = lambda a: main(a, core_factory=_standin_factory)  # noqa: E731
    code, out, err = run_cli(run, argv, capsys)
    assert code == 0 and "OK: all 12 pixels" in out, err
    (binary,) = (inputs / "cache").rglob("simulator")
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    binary.write_bytes(bytes(data))
    code, out, err = run_cli(run, argv, capsys)
    assert code == 0 and "OK: all 12 pixels" in out, err
    assert any("damaged" in line and "rebuilding" in line for line in err)
    code, out, err = run_cli(run, argv, capsys)   # the rebuilt entry is used as it is
    assert code == 0 and "simulator cached" in out and not any("damaged" in line for line in err)


@needs_cxx
def test_unwritable_simulator_cache_falls_back_to_a_temporary_folder(inputs, capsys, monkeypatch):
    monkeypatch.setenv("DHQ_RTL_CACHE", str(under_a_file(inputs)))
    argv = ["--model", str(inputs / "m.dhq"), "--engine", "compiled", "--backend", "cxxrtl", "--region",
            "0,0,4,3", "--no-progress"]
    code, out, err = run_cli(lambda a: main(a, core_factory=_standin_factory), argv, capsys)
    assert code == 0 and "OK: all 12 pixels" in out, err
    assert any(l.startswith("warning: cannot use the simulator cache") and "is a file, not a folder" in l
               for l in err)
