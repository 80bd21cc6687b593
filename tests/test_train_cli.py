"""``python -m dhq_rtl.train``: a tiny end-to-end run and its user errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dhq_rtl import model_image
from dhq_rtl.cli import run_main
from dhq_rtl.golden import GoldenModel
from dhq_rtl.images import load_image
from dhq_rtl.train import main


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "dhq_rtl.train", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_tiny_rgb_fit_writes_model_png_and_json(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    img = np.stack([xx * 6, yy * 6, (xx + yy) * 3], -1).astype(np.uint8) + rng.integers(0, 3, (40, 40, 3)).astype(np.uint8)
    src = tmp_path / "rgb.png"
    Image.fromarray(img).save(src)
    out = tmp_path / "m.dhq"
    r = _run("--image", str(src), "--out", str(out), "--size", "24", "--width", "16", "--depth", "2",
             "--steps", "150", "--qat-steps", "50", "--bits", "w6a6", "--method", "dhq", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for k in ("psnr_fp32", "psnr_fakequant", "psnr_golden"):
        assert isinstance(res[k], float)
    m = model_image.load(out)
    assert (m.height, m.width, m.channels, m.hidden_width, m.depth) == (24, 24, 3, 16, 2)
    assert all(l.rotate for l in m.layers) and m.layers[1].weight_bits == 6
    png = load_image(tmp_path / "m.png", 24, "rgb")
    assert np.array_equal(png, GoldenModel(m).render())
    assert res["psnr_golden"] > 18.0


def test_fp32_method_says_it_exports_wide(tmp_path):
    r = _run("--out", str(tmp_path / "f.dhq"), "--size", "16", "--width", "8", "--depth", "1", "--steps", "30",
             "--qat-steps", "10", "--method", "fp32", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "W16A16" in r.stdout and "PSNR" in r.stdout and "golden integer" in r.stdout
    m = model_image.load(tmp_path / "f.dhq")
    assert all(l.weight_bits == 16 and not l.rotate for l in m.layers)


BAD = [
    (["--image", "/nonexistent/x.png"], "not found"),
    (["--bits", "w8"], "w8a8"),
    (["--bits", "w1a8"], "2..16"),
    (["--size", "0"], "--size"),
    (["--size", "abc"], "--size"),
    (["--method", "magic"], "invalid choice"),
    (["--width", "24", "--method", "dhq"], "power of two"),
    (["--steps", "-3"], "--steps"),
    (["--rounding", "floor"], "invalid choice"),
    (["--warmup-steps", "-1"], "--warmup-steps"),
    (["--from-start-bits", "0"], "--from-start-bits"),
    (["--refine-rounds", "-1"], "--refine-rounds"),
    (["--dampening", "-0.5"], "number ≥ 0"),
    (["--dampening", "x"], "must be a number"),
    (["--omega0", "0"], "positive number"),
    (["--act-grid", "odd"], "invalid choice"),
    (["--first-weight-grid", "even"], "invalid choice"),
]


@pytest.mark.parametrize("args, needle", BAD)
def test_bad_arguments_one_line_exit_2(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as e:
        run_main(main, ["--out", str(tmp_path / "m.dhq"), "--steps", "1", "--qat-steps", "0", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "m.dhq").exists()


def test_bad_argument_in_a_subprocess(tmp_path):
    r = _run("--out", str(tmp_path / "m.dhq"), "--image", str(tmp_path / "none.png"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_unreadable_image_and_bad_out(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    for args, needle in ((["--image", str(bad), "--out", str(tmp_path / "m.dhq")], "readable"),
                         (["--out", str(tmp_path / "nodir" / "m.dhq")], "does not exist"),
                         (["--out", str(tmp_path)], "is a folder")):
        with pytest.raises(SystemExit) as e:
            run_main(main, args)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err


# ------------------------------------------------ inputs and results are kept

from tests.safety_checks import assert_refused, digests, fill_disk, run_cli, temp_leftovers, under_a_file  # noqa: E402

TINY = ["--size", "12", "--width", "8", "--depth", "1", "--steps", "20", "--qat-steps", "0", "--quiet"]


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:24, 0:24]
    Image.fromarray(((xx * 10 + yy * 3) % 256).astype(np.uint8)).save(p)
    return p


def _no_training(monkeypatch):
    """Refusals must come before any training: fitting fails the test."""
    import dhq_rtl.reference.fit as fit

    def forbidden(*a, **k):
        raise AssertionError("training started before the outputs were checked")
    monkeypatch.setattr(fit, "fit_image", forbidden)


@pytest.mark.parametrize("out, needle", [
    ("photo.png", "--out photo.png is the same file as --image"),
    ("photo.dhq", "the reconstruction photo.png (written next to --out) is the same file as --image"),
    ("hardlink.png", "--out hardlink.png is the same file as --image"),
    ("notes.txt", "exists and is not a model image"),
    ("other.dhq", "other.png (written next to --out) exists and is not a reconstruction"),
])
def test_train_never_overwrites_an_input_or_a_foreign_file(tmp_path, photo, capsys, monkeypatch, out, needle):
    (tmp_path / "hardlink.png").hardlink_to(photo)
    (tmp_path / "notes.txt").write_text("my notes")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "other.png")   # someone's picture
    before = digests(tmp_path)
    _no_training(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert_refused(run_cli(main, ["--image", "photo.png", "--out", out, *TINY], capsys), needle)
    assert digests(tmp_path) == before


def test_train_out_under_a_file_or_in_a_missing_folder(tmp_path, photo, capsys, monkeypatch):
    _no_training(monkeypatch)
    for out, needle in ((under_a_file(tmp_path) / "m.dhq", "is a file, not a folder"),
                        (tmp_path / "missing" / "m.dhq", "does not exist"),
                        (tmp_path, "is a folder")):
        before = digests(photo)
        assert_refused(run_cli(main, ["--image", str(photo), "--out", str(out), *TINY], capsys), needle)
        assert digests(photo) == before


def test_retraining_replaces_its_own_results(tmp_path, photo, capsys):
    out = tmp_path / "model.dhq"
    for seed in ("1", "2"):   # the second run replaces the model and its reconstruction
        code, stdout, err = run_cli(main, ["--image", str(photo), "--out", str(out), *TINY, "--seed", seed],
                                    capsys)
        assert code == 0, err
    assert model_image.load(out).width == 12 and (tmp_path / "model.png").exists()


def test_full_disk_keeps_the_previous_model_and_rescues_the_new_one(tmp_path, photo, capsys, monkeypatch):
    import tempfile

    folder = tmp_path / "models"
    folder.mkdir()
    out = folder / "m.dhq"
    assert run_cli(main, ["--image", str(photo), "--out", str(out), *TINY], capsys)[0] == 0
    before = digests(photo, folder)
    rescue = tmp_path / "rescue"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    fill_disk(monkeypatch, room=100, under=folder)
    result = run_cli(main, ["--image", str(photo), "--out", str(out), *TINY, "--seed", "3"], capsys)
    assert_refused(result, "cannot write", "No space left on device", "previous", "unchanged", "saved to")
    assert digests(photo, folder) == before
    assert temp_leftovers(folder) == []
    rescued = list(rescue.glob("m-*.dhq"))
    assert len(rescued) == 1 and str(rescued[0]) in result[2][0]
    assert model_image.load(rescued[0]).meta["image"] == "photo.png"


def test_full_disk_everywhere_says_the_model_is_lost(tmp_path, photo, capsys, monkeypatch):
    import tempfile

    out = tmp_path / "m.dhq"
    assert run_cli(main, ["--image", str(photo), "--out", str(out), *TINY], capsys)[0] == 0
    before = digests(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fill_disk(monkeypatch, room=10)
    result = run_cli(main, ["--image", str(photo), "--out", str(out), *TINY], capsys)
    assert_refused(result, "could not be saved anywhere", "unchanged")
    assert digests(tmp_path) == before


def test_16bit_gray_picture_is_not_clipped(tmp_path, capsys, monkeypatch):
    import dhq_rtl.reference.fit as fit

    ramp = np.tile(np.arange(0, 65536, 65536 // 16, dtype=np.uint16), (16, 1))
    src = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(src)
    before = digests(src)
    targets = []
    real = fit.fit_image
    monkeypatch.setattr(fit, "fit_image", lambda pixels, *a, **k: targets.append(pixels) or real(pixels, *a, **k))
    code, out, err = run_cli(main, ["--image", str(src), "--out", str(tmp_path / "r.dhq"), "--size", "16",
                                    "--width", "8", "--depth", "1", "--steps", "300", "--qat-steps", "0",
                                    "--quiet"], capsys)
    assert code == 0, err
    assert "16-bit" in out
    # The fit saw the ramp at 16-bit precision; clipped to 8 bits it would be
    # white from the second column on, and so would the reconstruction.
    np.testing.assert_allclose(targets[0][..., 0], ramp * (255 / 65535), atol=1e-3)
    rec = np.asarray(Image.open(tmp_path / "r.png"), dtype=np.float64)
    assert 90 < rec.mean() < 165
    assert digests(src) == before


def test_rgba_picture_is_composited_with_a_note(tmp_path, capsys):
    rgba = np.zeros((12, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[:6, :, 3] = 0
    src = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(src)
    code, out, err = run_cli(main, ["--image", str(src), "--out", str(tmp_path / "a.dhq"), *TINY], capsys)
    assert code == 0
    assert any("transparent pixels (50% of the picture); composited over black" in line for line in err)
    assert model_image.load(tmp_path / "a.dhq").channels == 3


def test_no_training_is_said(tmp_path, photo, capsys):
    code, out, err = run_cli(main, ["--image", str(photo), "--out", str(tmp_path / "z.dhq"), "--size", "12",
                                    "--width", "8", "--depth", "1", "--steps", "0", "--qat-steps", "0",
                                    "--quiet"], capsys)
    assert code == 0
    assert any(l.startswith("warning:") and "nothing is trained" in l for l in err)


def test_upscaled_picture_is_noted(tmp_path, photo, capsys):
    code, out, err = run_cli(main, ["--image", str(photo), "--out", str(tmp_path / "u.dhq"), "--size", "32",
                                    "--width", "8", "--depth", "1", "--steps", "5", "--qat-steps", "0",
                                    "--quiet"], capsys)
    assert code == 0
    assert any("24×24" in l and "upscaled" in l for l in err)


def test_recipe_first_wide_is_recorded_and_shown(tmp_path):
    """``--bits`` keeps its meaning under the default recipe; a named recipe
    widens only what it says, and the model image and the CLI say so."""
    out = tmp_path / "r.dhq"
    r = _run("--out", str(out), "--size", "16", "--width", "8", "--depth", "2", "--steps", "40", "--qat-steps", "20",
             "--bits", "w6a6", "--method", "naive", "--recipe", "first-wide", "--quiet")
    assert r.returncode == 0, r.stderr
    m = model_image.load(out)
    assert m.meta["recipe"] == "first-wide"
    assert [l.weight_bits for l in m.layers] == [12, 6, 6]
    assert all(l.act_bits == 6 for l in m.layers[1:])
    assert "L0 W12 | L1 W6A6 | L2 W6A6 (recipe first-wide)" in r.stdout
    plain = tmp_path / "u.dhq"
    r = _run("--out", str(plain), "--size", "16", "--width", "8", "--depth", "2", "--steps", "40", "--qat-steps", "20",
             "--bits", "w6a6", "--method", "naive", "--quiet")
    assert r.returncode == 0, r.stderr
    m = model_image.load(plain)
    assert m.meta["recipe"] == "uniform" and all(l.weight_bits <= 6 for l in m.layers)
    assert "(recipe uniform)" in r.stdout


def test_unknown_recipe_is_refused_before_training(tmp_path):
    r = _run("--out", str(tmp_path / "x.dhq"), "--recipe", "magic")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.dhq").exists()
