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


# -------------------------------------------- 16-bit, transparency, upscaling

from tests.safety_checks import png16_bytes  # noqa: E402

from dhq_rtl.images import written_by_dhq_rtl  # noqa: E402


def test_16bit_gray_gradient_keeps_precision(tmp_path):
    """A 16-bit gradient is scaled (v·255/65535), not clipped to 255."""
    ramp = np.tile(np.arange(0, 65536, 256, dtype=np.uint16), (256, 1))
    p = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(p)          # Pillow writes 16-bit grayscale
    px = load_image(p, 256, note=lambda m: None)
    assert px.dtype == np.float32 and px.shape == (256, 256, 1)
    np.testing.assert_allclose(px[..., 0], ramp * (255 / 65535), atol=1e-3)
    assert (px >= 254.5).mean() < 0.01     # 8-bit clipping made 98 % of it white


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("interlace", [False, True])
def test_16bit_png_every_colour_type_filter_and_interlace(tmp_path, channels, interlace):
    rng = np.random.default_rng(channels)
    samples = rng.integers(0, 65536, (11, 11, channels))
    if channels in (2, 4):
        samples[..., -1] = 65535           # opaque: values compare directly
    p = tmp_path / "x.png"
    p.write_bytes(png16_bytes(samples, filters=(0, 1, 2, 3, 4), interlace=interlace))
    color = "rgb" if channels >= 3 else "gray"
    px = load_image(p, 11, color)
    want = samples[..., :3 if channels >= 3 else 1] * (255 / 65535)
    np.testing.assert_allclose(px, want, atol=1e-3)


def test_16bit_transparency_composited_over_black_with_a_note(tmp_path):
    samples = np.full((8, 8, 4), 40000)
    samples[..., 3] = 65535
    samples[:, :4, 3] = 0                  # left half transparent
    p = tmp_path / "a16.png"
    p.write_bytes(png16_bytes(samples))
    notes = []
    px = load_image(p, 8, note=notes.append)
    assert np.all(px[:, :4] == 0) and np.allclose(px[:, 4:], 40000 * 255 / 65535, atol=1e-3)
    assert len(notes) == 1 and "transparent" in notes[0] and "over black" in notes[0] and "50%" in notes[0]


def test_8bit_rgba_composited_over_black_with_a_note(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 255
    rgba[0, :, 3] = 0
    rgba[1, :, 3] = 128
    p = tmp_path / "a.png"
    Image.fromarray(rgba).save(p)
    notes = []
    px = load_image(p, 8, note=notes.append)
    assert px.dtype == np.uint8 and px.shape == (8, 8, 3)
    assert np.all(px[0] == 0) and np.all(px[2:] == (200, 100, 50))
    assert np.allclose(px[1], np.round(np.array([200, 100, 50]) * 128 / 255), atol=1)
    assert len(notes) == 1 and "composited over black" in notes[0]


def test_opaque_alpha_and_palette_transparency(tmp_path):
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[..., 0] = 10
    p = tmp_path / "opaque.png"
    Image.fromarray(rgba).save(p)
    notes = []
    assert load_image(p, 8, note=notes.append).shape == (8, 8, 3) and notes == []   # nothing lost, nothing said
    pal = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) % 4, mode="P")
    pal.putpalette([255, 255, 255, 0, 0, 0, 90, 90, 90, 30, 30, 30] + [0] * 756)
    pal.info["transparency"] = 0
    q = tmp_path / "pal.png"
    pal.save(q, transparency=0)
    px = load_image(q, 8, note=notes.append)
    assert len(notes) == 1 and "25%" in notes[0]
    assert px.shape == (8, 8, 1) and px[0, 0, 0] == 0     # index 0 (white) was transparent


def test_smaller_than_size_is_upscaled_with_a_note(tmp_path):
    p = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(p)
    notes = []
    assert load_image(p, 32, note=notes.append).shape == (32, 32, 1)
    assert len(notes) == 1 and "10×10" in notes[0] and "upscaled" in notes[0]
    notes.clear()
    load_image(p, 8, note=notes.append)
    assert notes == []


def test_float_images_are_refused(tmp_path):
    p = tmp_path / "f.tif"
    Image.fromarray(np.zeros((4, 4), np.float32)).save(p)
    with pytest.raises(ImageError, match="floating-point"):
        load_image(p, 4)


@pytest.mark.parametrize("channels", [1, 3])
def test_save_png_wide_pixels_round_trip(tmp_path, channels):
    rng = np.random.default_rng(2)
    px = rng.integers(0, 4096, (6, 6, channels))
    save_png(px, tmp_path / "w.png", pixel_bits=12)
    back = load_image(tmp_path / "w.png", 6, "gray" if channels == 1 else "rgb")
    np.testing.assert_allclose(back, px * (255 / 4095), atol=0.005)
    assert written_by_dhq_rtl(tmp_path / "w.png")


def test_save_png_marks_its_files(tmp_path):
    save_png(np.zeros((4, 4, 1), np.uint8), tmp_path / "ours.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "theirs.png")
    assert written_by_dhq_rtl(tmp_path / "ours.png") and not written_by_dhq_rtl(tmp_path / "theirs.png")
    assert not written_by_dhq_rtl(tmp_path / "missing.png")
