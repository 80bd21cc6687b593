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
