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
        before = digests(files)
        assert_refused(run_cli(quality.main, ["--images", pic, *argv], capsys), needle)
        assert digests(files) == before


def test_hardware(files, capsys, monkeypatch):
    hardware = load_script("hardware")
    _forbid(monkeypatch, hardware, "build")
    for out, needle in ((files / "pic.png", "is a file, not a folder"), (files / "a-file" / "x", "is a file")):
        before = digests(files)
        assert_refused(run_cli(hardware.main, ["--out", str(out), "--only", "W4A4"], capsys), needle)
        assert digests(files) == before


def test_simspeed(files, capsys, monkeypatch):
    simspeed = load_script("simspeed")
    _forbid(monkeypatch, simspeed, "InrCore")
    before = digests(files)
    model = str(files / "m.dhq")
    assert_refused(run_cli(simspeed.main, ["--model", model, "--json", model], capsys),
                   "is the same file as --model")
    assert digests(files) == before


def test_distributions(files, capsys):
    distributions = load_script("distributions")
    before = digests(files)
    pic = str(files / "pic.png")
    assert_refused(run_cli(distributions.main, ["--image", pic, "--out", pic], capsys),
                   "is the same file as --image")
    assert digests(files) == before


def test_link(files, capsys, monkeypatch):
    link = load_script("link")
    _forbid(monkeypatch, link, "run_model")
    before = digests(files)
    model = str(files / "m.dhq")
    assert_refused(run_cli(link.main, ["--models", model, "--json", model], capsys),
                   "is the same file as --models")
    assert digests(files) == before


def test_fp32_core(files, capsys, monkeypatch):
    fp32_core = load_script("fp32_core")
    for name in ("quality", "build_one", "simulate"):
        _forbid(monkeypatch, fp32_core, name)
    model = str(files / "m.dhq")
    for argv, needle in ((["--out", str(files / "pic.png")], "is a file, not a folder"),
                         (["--out", str(files / "a-file" / "x")], "is a file"),
                         (["--out", str(files), "--model", str(files / "fp32_core.json")], "is the same file as --model")):
        before = digests(files)
        assert_refused(run_cli(fp32_core.main, argv, capsys), needle)
        assert digests(files) == before


def test_energy_fp32(files, capsys, monkeypatch):
    energy_fp32 = load_script("energy_fp32")
    _forbid(monkeypatch, energy_fp32, "measure")
    before = digests(files)
    model = str(files / "m.dhq")
    assert_refused(run_cli(energy_fp32.main, ["--model", model, "--json", model], capsys),
                   "is the same file as --model")
    assert_refused(run_cli(energy_fp32.main, ["--region", "0", "0", "999", "4"], capsys),
                   "--region must lie inside")
    assert digests(files) == before
