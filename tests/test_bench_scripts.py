"""The bench scripts check their outputs before any work and never overwrite an input."""

import numpy as np
import pytest
from PIL import Image

from dhq_rtl.model_image import save
from dhq_rtl.synthetic import random_model

from tests.safety_checks import assert_refused, digests, load_script, run_cli, under_a_file


def _forbid(monkeypatch, module, name):
    def forbidden(*a, **k):
        raise AssertionError(f"{name} ran before the outputs were checked")
    monkeypatch.setattr(module, name, forbidden)


def _refused_untouched(folder, main, argv, capsys, needle):
    """``main argv`` is refused naming ``needle``, and no file in ``folder`` changed."""
    before = digests(folder)
    assert_refused(run_cli(main, argv, capsys), needle)
    assert digests(folder) == before


@pytest.fixture
def files(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "pic.png")
    save(random_model(size=8, width=8, depth=1, seed=0), tmp_path / "m.dhq")
    under_a_file(tmp_path)
    return tmp_path


def test_quality(files, capsys, monkeypatch):
    quality = load_script("quality")
    _forbid(monkeypatch, quality, "ProcessPoolExecutor")
    pic = str(files / "pic.png")
    for argv, needle in ((["--json", pic], "is the same file as --images"),
                         (["--markdown", str(files / "a-file" / "t.md")], "is a file, not a folder"),
                         (["--json", str(files / "t"), "--markdown", str(files / "t")], "name the same file")):
        _refused_untouched(files, quality.main, ["--images", pic, *argv], capsys, needle)


def test_hardware(files, capsys, monkeypatch):
    hardware = load_script("hardware")
    _forbid(monkeypatch, hardware, "build")
    for out, needle in ((files / "pic.png", "is a file, not a folder"), (files / "a-file" / "x", "is a file")):
        _refused_untouched(files, hardware.main, ["--out", str(out), "--only", "W4A4"], capsys, needle)
    for argv, needle in ((["--only", "W3A3"], "no configuration chosen"),
                         (["--only", "default envelope", "--fixed-model"], "leaves out 'default'"),
                         (["--json", str(files / "a-file" / "h.json")], "a-file")):
        _refused_untouched(files, hardware.main, ["--out", str(files / "hw"), *argv], capsys, needle)


def test_hardware_configurations():
    """The default run builds the board's default build and the rotated W8A8/W6A6/W4A4 models, each a
    model of its named widths; W16A16 only on request."""
    hardware = load_script("hardware")
    names = [c[0] for c in hardware._chosen(None)]
    assert names[0].startswith("default") and not any("W16A16" in n for n in names)
    assert [c[0] for c in hardware._chosen(["W16A16"])] == ["W16A16 no rotation (random)"]
    for name, make, _, envelope, fixed, _ in hardware.configs():
        if name.startswith("W") and "DHQ" in name:
            bits = int(name[1:name.index("A")])
            model = make()
            assert all(layer.rotate for layer in model.layers[1:-1])
            assert {layer.weight_bits for layer in model.layers[1:]} == {bits} and envelope is None and fixed


def test_simspeed(files, capsys, monkeypatch):
    simspeed = load_script("simspeed")
    _forbid(monkeypatch, simspeed, "InrCore")
    model = str(files / "m.dhq")
    _refused_untouched(files, simspeed.main, ["--model", model, "--json", model], capsys,
                       "is the same file as --model")


def test_distributions(files, capsys):
    distributions = load_script("distributions")
    pic = str(files / "pic.png")
    _refused_untouched(files, distributions.main, ["--image", pic, "--out", pic], capsys,
                       "is the same file as --image")


def test_link(files, capsys, monkeypatch):
    link = load_script("link")
    _forbid(monkeypatch, link, "run_model")
    model = str(files / "m.dhq")
    _refused_untouched(files, link.main, ["--models", model, "--json", model], capsys,
                       "is the same file as --models")


def test_fp32_core(files, capsys, monkeypatch):
    fp32_core = load_script("fp32_core")
    for name in ("quality", "build_one", "simulate"):
        _forbid(monkeypatch, fp32_core, name)
    model = str(files / "m.dhq")
    for argv, needle in ((["--out", str(files / "pic.png")], "is a file, not a folder"),
                         (["--out", str(files / "a-file" / "x")], "is a file"),
                         (["--out", str(files), "--model", str(files / "fp32_core.json")], "is the same file as --model")):
        _refused_untouched(files, fp32_core.main, argv, capsys, needle)


def test_energy_fp32(files, capsys, monkeypatch):
    energy_fp32 = load_script("energy_fp32")
    _forbid(monkeypatch, energy_fp32, "measure")
    model = str(files / "m.dhq")
    _refused_untouched(files, energy_fp32.main, ["--model", model, "--json", model], capsys,
                       "is the same file as --model")
    _refused_untouched(files, energy_fp32.main, ["--region", "0", "0", "999", "4"], capsys,
                       "--region must lie inside")
