"""Image loading, resizing, target scaling and PSNR."""

import numpy as np
import pytest
from PIL import Image

from dhq_rtl.errors import ImageError
from dhq_rtl.images import default_image_path, load_image, psnr, save_png, to_pixels, to_signed


def test_bundled_camera_is_gray_and_resized():
    px = load_image(default_image_path(), 64)
    assert px.shape == (64, 64, 1) and px.dtype == np.uint8
    assert 20 < px.mean() < 235


def test_rgb_auto_and_forced_gray(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    p = tmp_path / "c.png"
    Image.fromarray(arr).save(p)
    rgb = load_image(p, 40, "auto")
    assert rgb.shape == (40, 40, 3)
    # centre crop of a 60-wide picture to 40x40, no resize needed
    assert np.array_equal(rgb, arr[:, 10:50])
    assert load_image(p, 16, "gray").shape == (16, 16, 1)


def test_rgb_file_with_equal_channels_is_gray(tmp_path):
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    p = tmp_path / "g.png"
    Image.fromarray(np.stack([g, g, g], -1)).save(p)
    px = load_image(p, 16)
    assert px.shape == (16, 16, 1) and np.array_equal(px[:, :, 0], g)


def test_jpeg_reads(tmp_path):
    p = tmp_path / "x.jpg"
    Image.fromarray(np.full((8, 8, 3), (200, 10, 30), np.uint8)).save(p)
    assert load_image(p, 8).shape == (8, 8, 3)


@pytest.mark.parametrize("make, msg", [
    (lambda d: d / "missing.png", "not found"),
    (lambda d: (d / "bad.png").write_bytes(b"this is not a picture") and d / "bad.png", "not a readable image"),
    (lambda d: d, "directory"),
])
def test_bad_files_raise_one_line_image_error(tmp_path, make, msg):
    with pytest.raises(ImageError, match=msg) as e:
        load_image(make(tmp_path), 32)
    assert "\n" not in str(e.value)


def test_truncated_png_is_image_error(tmp_path):
    p = tmp_path / "t.png"
    Image.fromarray(np.zeros((64, 64), np.uint8) + 7).save(p)
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(ImageError):
        load_image(p, 32)


@pytest.mark.parametrize("size", [0, 1, 5000, 3.5, True])
def test_bad_size(size):
    with pytest.raises(ImageError, match="size"):
        load_image(default_image_path(), size)


def test_bad_color():
    with pytest.raises(ImageError, match="color"):
        load_image(default_image_path(), 8, "cmyk")


def test_signed_and_pixels_round_trip():
    p = np.arange(256, dtype=np.uint8)
    y = to_signed(p)
    assert y.min() == -1.0 and y.max() == 1.0
    assert np.array_equal(to_pixels(y), p)
    assert to_pixels(np.array([-3.0, 3.0])).tolist() == [0, 255]


def test_psnr_values():
    a = np.zeros((4, 4))
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(20 * np.log10(255))
    with pytest.raises(ValueError):
        psnr(a, np.zeros(3))


def test_save_png_round_trip(tmp_path):
    px = np.random.default_rng(1).integers(0, 256, (8, 8, 1), dtype=np.uint8)
    save_png(px, tmp_path / "o.png")
    assert np.array_equal(load_image(tmp_path / "o.png", 8), px)
