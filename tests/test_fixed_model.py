# amaranth: UnusedElaboratable=no
"""The integer core with a fixed model (``CorePlan(loadable=False)``,
``build --fixed-model``): its plan, the core without a load path, bit-exact
renders (unrotated and rotated models) in Amaranth's and the compiled
simulation, the host link refusing loads, the build's options and reports,
and the estimate against a real iCEBreaker build."""

import json
import zlib

import numpy as np
import pytest

from dhq_rtl.boards import get_board
from dhq_rtl.envelope import Envelope, get_envelope
from dhq_rtl.gateware.core import InrCore
from dhq_rtl.gateware.plan import CorePlan, fixed_model_lanes
from dhq_rtl.gateware.top import BoardDesign
from dhq_rtl.golden import GoldenModel
from dhq_rtl.model_image import dumps, save
from dhq_rtl.rtlsim import run_pysim, unpack_pixels
from dhq_rtl.synthetic import random_model

from tests.safety_checks import assert_refused, digests, run_cli
from tests.test_core import elaborated_memories
from tests.testbench import run_sim

ICEBREAKER = get_board("icebreaker")

#: Small models, unrotated and rotated (Hadamard butterfly + requantizer
#: before every hidden layer, and a rotated first layer), and their lanes.
MODELS = {
    "unrotated": (dict(width=8, depth=2, size=8, seed=3, rotate=False, channels=3), 4),
    "rotated": (dict(width=8, depth=3, size=8, seed=4, rotate_first=True, weight_bits=6, act_bits=6), 2),
    "midrise": (dict(width=8, depth=2, size=8, seed=8, weight_bits=4, act_bits=4, rotate=False,
                     act_midrise=True), 4),
}


def _model(name):
    kw, lanes = MODELS[name]
    return random_model(**kw), lanes


def _check_golden(payloads, model, region):
    got = unpack_pixels(payloads, model, region)
    want = GoldenModel(model).render(region)
    bad = np.argwhere(np.any(got != want, axis=-1))
    assert len(bad) == 0, f"{len(bad)} pixels differ, first at (row, col) {bad[0].tolist()}"


# ------------------------------------------------------------------ plan

def test_fixed_plan_has_no_load_path_and_rom_memories(default_model):
    plan = CorePlan(default_model, lanes=8, loadable=False)
    assert plan.loadable is False and CorePlan(default_model, lanes=8).loadable is True
    assert plan.sections == () and plan.staging_words == 0 and plan.staging_depth == 0
    assert plan.envelope == Envelope.of_model(default_model)
    roles = {m.role for m in plan.memories}
    assert not any("staging" in r for r in roles) and "weights" in roles
    assert not any(m.loadable for m in plan.memories)
    roms = {m.path for m in plan.memories if m.rom}
    assert roms == {"mac.weights", "coords.consts", "post.scaler.table", "post.lut.rom"}
    # The constants are block RAM: as a ROM of logic they were the worst path.
    assert next(m for m in plan.memories if m.path == "coords.consts").block_ram
    # The default model's layers share one sine table: a fixed model stores it once.
    assert len(plan.tables) == 1 and plan.max_tables == 1
    assert CorePlan(default_model, lanes=8).max_tables == len(default_model.layers) - 1


def test_fixed_plan_validation(default_model):
    with pytest.raises(TypeError, match="loadable"):
        CorePlan(default_model, loadable=1)
    with pytest.raises(ValueError, match="takes no envelope"):
        CorePlan(default_model, loadable=False, envelope=Envelope.of_model(default_model))
    with pytest.raises(ValueError, match="takes no envelope"):
        CorePlan.for_board(default_model, ICEBREAKER, loadable=False, envelope=get_envelope("default"))
    with pytest.raises(TypeError, match="loadable"):
        CorePlan.for_board(default_model, ICEBREAKER, loadable="no")


def test_fixed_plan_for_the_icebreaker_keeps_the_weights_in_block_ram(default_model):
    """SPRAM has no initial contents: a fixed model's weights are block RAM,
    with the lanes (and so the cycles per pixel) of the loadable build."""
    loadable = CorePlan.for_board(default_model, ICEBREAKER, envelope=Envelope.for_board(default_model, ICEBREAKER))
    fixed = CorePlan.for_board(default_model, ICEBREAKER, loadable=False)
    assert loadable.weights_in_spram and not fixed.weights_in_spram
    assert not any(m.kind == "spram" for m in fixed.memories)
    weights = next(m for m in fixed.memories if m.path == "mac.weights")
    assert weights.block_ram and weights.rom and weights.depth == fixed.model_weight_rows
    assert fixed.lanes == loadable.lanes == fixed_model_lanes(default_model, ICEBREAKER) == 8
    assert fixed.cycles_per_pixel() == loadable.cycles_per_pixel() == 260
    assert (fixed.direct, fixed.scaler_multiplier) == (loadable.direct, loadable.scaler_multiplier)
    assert CorePlan.for_board(default_model, ICEBREAKER, loadable=False, lanes=4).lanes == 4


def test_derived_plans_keep_the_fixed_model(default_model):
    plan = CorePlan(default_model, lanes=8, loadable=False)
    assert plan.with_scaler_multiplier("dsp").loadable is False
    other = random_model(width=16, depth=2, size=16, seed=1, rotate=False)
    moved = plan.with_model(other)
    assert moved.loadable is False and moved.model is other and moved.envelope == Envelope.of_model(other)
    assert CorePlan(default_model, lanes=8).with_model(default_model).loadable is True


# ------------------------------------------------------------------ core

@pytest.mark.parametrize("name", sorted(MODELS))
def test_fixed_core_has_no_load_ports_and_the_plans_memories(name):
    model, lanes = _model(name)
    core = InrCore(model, lanes=lanes, loadable=False)
    members = dict(core.signature.members)
    assert "staging" not in members and "install" not in members and "desc" in members
    assert "staging" in dict(InrCore(model, lanes=lanes).signature.members)
    assert elaborated_memories(core) == {(m.path, m.width, m.depth, m.undefined_collisions) for m in core.plan.memories}


def test_fixed_core_has_no_installer_or_descriptor_registers():
    from amaranth.back import rtlil
    model, lanes = _model("rotated")
    text = rtlil.convert(InrCore(model, lanes=lanes, loadable=False), name="top", emit_src=False)
    modules = [line.split()[1] for line in text.splitlines() if line.startswith("module ")]
    assert not any(".store" in m or ".descriptors" in m for m in modules), modules
    loadable = rtlil.convert(InrCore(model, lanes=lanes), name="top", emit_src=False)
    assert "top.store" in loadable and "top.descriptors" in loadable


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fixed_core_renders_bit_exact_on_the_loadable_cores_schedule(name):
    """Amaranth simulation with stalls: every pixel equals the golden
    model's, accepted in the same cycle as from the loadable core (the
    datapath and the schedule are the same)."""
    model, lanes = _model(name)
    region = (1, 2, 7, 5)
    fixed = run_pysim(InrCore(model, lanes=lanes, loadable=False), region, stall=0.3, seed=5)
    _check_golden(fixed.payloads, model, region)
    loadable = run_pysim(InrCore(model, lanes=lanes), region, stall=0.3, seed=5)
    np.testing.assert_array_equal(fixed.beat_cycles, loadable.beat_cycles)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unrotated", "rotated"])
def test_fixed_core_compiled_whole_image_bit_exact(name):
    """The compiled (Verilator) simulation: every pixel of the image, with
    stalls, and the cycles per pixel of the plan."""
    from dhq_rtl.rtlsim import CompiledSim
    model, lanes = _model(name)
    core = InrCore(model, lanes=lanes, loadable=False)
    region = (0, 0, model.width, model.height)
    res = CompiledSim(core).run(region, stall=0.2, seed=3)
    _check_golden(res.payloads, model, region)
    steady = CompiledSim(core).run(region, stall=0.0, seed=1)
    gaps = np.diff(np.asarray(steady.beat_cycles))
    assert gaps[len(gaps) // 2:].mean() == pytest.approx(core.plan.cycles_per_pixel(), rel=0.05)


# ------------------------------------------------------------------ link

def test_board_design_with_a_fixed_model(default_model):
    design = BoardDesign(default_model, ICEBREAKER, fixed_model=True)
    assert design.envelope is not None and not design.plan.loadable and design.lanes == 8
    assert design.model_crc == zlib.crc32(dumps(default_model))
    with pytest.raises(ValueError, match="no envelope"):
        BoardDesign(default_model, ICEBREAKER, fixed_model=True, envelope=get_envelope("default"))
    with pytest.raises(TypeError, match="fixed_model"):
        BoardDesign(default_model, ICEBREAKER, fixed_model=1)
    # The float core is fixed anyway: the flag changes nothing there.
    fp32 = BoardDesign(default_model, ICEBREAKER, arith="fp32", fixed_model=True)
    assert fp32.plan.arith == "fp32" and not fp32.plan.loadable


# ------------------------------------------------------------------ estimate

def test_fixed_estimate_drops_the_load_path(default_model):
    from dhq_rtl.estimate import estimate
    loadable = estimate(default_model, ICEBREAKER)
    fixed = estimate(default_model, ICEBREAKER, fixed_model=True)
    assert fixed["spram"] == 0 and fixed["dsp"] == loadable["dsp"]
    assert fixed["lc"] < loadable["lc"] - 1500
    paths = {d["path"] for d in fixed["details"]}
    assert "mac.weights" in paths and not any(p.startswith("store.") for p in paths)
    with pytest.raises(ValueError, match="no envelope"):
        estimate(default_model, ICEBREAKER, fixed_model=True, envelope=get_envelope("default"))
    with pytest.raises(TypeError, match="fixed_model must be a bool"):
        estimate(default_model, ICEBREAKER, fixed_model="yes")


#: The default model's --fixed-model build, logic cells (seed 1; since the
#: block RAMs carry no read-first logic, docs/RESULTS.md "Timing closure",
#: third pass).
DEFAULT_FIXED_LC = 2479


def _rotated_w32(bits=8):
    """A rotated width-32 W``bits``A``bits`` model (every hidden layer's
    input through the Hadamard butterfly and the requantizer), 128×128 like
    the default."""
    return random_model(width=32, depth=3, size=128, seed=0, weight_bits=bits, act_bits=bits)


def test_a_rotated_width_32_model_fits_the_up5k_only_fixed():
    from dhq_rtl.estimate import check_fit, estimate
    from dhq_rtl.errors import FitError
    model = _rotated_w32()
    assert all(l.rotate for l in model.layers[1:])
    with pytest.raises(FitError):
        check_fit(estimate(model, ICEBREAKER), ICEBREAKER)
    assert check_fit(estimate(model, ICEBREAKER, fixed_model=True), ICEBREAKER)


def test_fixed_estimate_tracks_the_measured_builds(default_model):
    """The estimate against the iCEBreaker --fixed-model builds (seed 1;
    docs/RESULTS.md, "Timing closure", third pass; ``bench/hardware.py``): the default
    model and rotated width-32 W8A8, W6A6 and W4A4 models (W4A4: 16 lanes,
    two products a DSP), logic cells within 4 %, EBR and DSP exact."""
    from dhq_rtl.estimate import estimate
    measured = [(default_model, DEFAULT_FIXED_LC, 24, 6), (_rotated_w32(8), 3399, 25, 6), (_rotated_w32(6), 3250, 22, 5),
                (_rotated_w32(4), 3547, 19, 8)]
    for model, lc, ebr, dsp in measured:
        est = estimate(model, ICEBREAKER, fixed_model=True)
        assert abs(est["lc"] - lc) <= 0.04 * lc, (est["lc"], lc)
        assert (est["ebr"], est["dsp"], est["spram"]) == (ebr, dsp, 0)


@pytest.mark.slow
def test_icebreaker_fixed_model_build(tmp_path, default_model, check_build_outputs):
    """One place-and-route run of the default model --fixed-model: no SPRAM,
    the weights in block RAM, 6 DSPs, the estimate's EBR exact and its
    logic cells within 5 %, the same cycles per pixel as the loadable build."""
    from dhq_rtl.build import build
    from dhq_rtl.firmware import DEFAULT_MODEL_NAME
    report = build(default_model, ICEBREAKER, tmp_path, source=DEFAULT_MODEL_NAME, log=lambda *a: None,
                   fallback=False, fixed_model=True)
    data = check_build_outputs(tmp_path, report, "top.bin")
    res = data["resources"]
    assert res["spram"]["used"] == 0 and res["dsp"]["used"] == 6 and data["cells"].get("SB_MAC16") == 6
    assert res["ebr"]["used"] == res["ebr"]["estimated"]
    assert abs(res["lc"]["estimate_error_percent"]) <= 5
    assert data["parameters"]["fixed_model"] is True and "envelope" not in data
    assert data["performance"]["cycles_per_pixel"] == 260


# ------------------------------------------------------------------ build

@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The fake tools, a tiny model file and an empty build folder path."""
    from tests.fake_toolchain import install
    install(tmp_path / "tools", monkeypatch)
    model = tmp_path / "tiny.dhq"
    save(random_model(size=8, width=8, depth=1, seed=0), model)
    return {"model": model, "out": tmp_path / "build"}


def test_fake_fixed_build_reports_the_fixed_model(fake, capsys):
    from dhq_rtl.build import main
    code, out, err = run_cli(main, ["--model", str(fake["model"]), "--fixed-model", "--out", str(fake["out"])],
                             capsys)
    assert code == 0, err
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["arith"] == "int" and report["parameters"]["fixed_model"] is True
    assert "envelope" not in report and "model_image_crc" in report["model"]
    assert report["estimate_details"] and not any(d["path"].startswith("store.") for d in report["estimate_details"])
    assert "model: fixed (--fixed-model)" in out and "integer core, its model fixed" in out
    assert "fixed_model=True" in (fake["out"] / "utilization.log").read_text()
    # Without the option: loadable, an envelope in the report.
    code, out, err = run_cli(main, ["--model", str(fake["model"]), "--out", str(fake["out"])], capsys)
    assert code == 0, err
    report = json.loads((fake["out"] / "utilization.json").read_text())
    assert report["parameters"]["fixed_model"] is False and "envelope" in report
    assert "model: fixed" not in out


def test_fake_fixed_build_refusals(fake, capsys, tmp_path):
    """``--envelope`` with ``--fixed-model``: one line, before any tool runs."""
    from dhq_rtl.build import main
    before = digests(tmp_path)
    assert_refused(run_cli(main, ["--model", str(fake["model"]), "--fixed-model", "--envelope", "default",
                                  "--out", str(fake["out"])], capsys), "--envelope", "--fixed-model")
    assert digests(tmp_path) == before and not fake["out"].exists()


def test_fake_float_build_accepts_fixed_model(fake, capsys):
    """The float core's model is always fixed: ``--arith fp32 --fixed-model``
    is the ``--arith fp32`` build."""
    from dhq_rtl.build import main
    reports = []
    for extra in ([], ["--fixed-model"]):
        code, _, err = run_cli(main, ["--model", str(fake["model"]), "--arith", "fp32", *extra,
                                      "--out", str(fake["out"])], capsys)
        assert code == 0, err
        report = json.loads((fake["out"] / "utilization.json").read_text())
        assert report["arith"] == "fp32" and report["parameters"]["fixed_model"] is True
        reports.append((report["parameters"], report["model"]))
    assert reports[0] == reports[1]


def test_fixed_build_energy_simulates_the_fixed_core(fake, capsys, monkeypatch, default_model):
    """``--fixed-model --energy``: the energy entry is that of the fixed core
    (the activity simulation replaced by a record of its arguments), whose
    simulated twin has no load path either."""
    from dhq_rtl import energy
    from dhq_rtl.build import main
    calls = []

    def fake_entry(model, board, *, clock_hz, **kw):
        calls.append(kw["fixed_model"])
        return {"energy_j": 1e-3, "breakdown_j": {"logic": 1e-3}, "average_power_w": 0.01, "clock_hz": clock_hz}

    monkeypatch.setattr(energy, "build_entry", fake_entry)
    for extra in (["--fixed-model"], []):
        code, _, err = run_cli(main, ["--model", str(fake["model"]), *extra, "--energy", "--out", str(fake["out"])],
                               capsys)
        assert code == 0, err
    assert calls == [True, False]
    plan = energy.board_plan(default_model, ICEBREAKER, fixed_model=True)
    twin = energy.simulation_core(plan).plan
    assert not plan.loadable and not twin.loadable and twin.dsp == "generic" and twin.lanes == plan.lanes


def test_a_fixed_model_too_large_is_refused_before_the_tools(tmp_path):
    """The fit check runs on the fixed core's estimate before any tool: a
    width-128 model's weights do not fit the UP5K's block RAM."""
    from dhq_rtl.build import build
    from dhq_rtl.errors import FitError
    big = random_model(width=128, depth=4, size=64, seed=1)
    with pytest.raises(FitError, match="EBR needs"):
        build(big, ICEBREAKER, tmp_path / "out", log=lambda *a: None, fixed_model=True)
    assert not (tmp_path / "out").exists()
