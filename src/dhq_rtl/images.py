"""Reading target pictures and measuring reconstruction quality.

:func:`load_image` reads a PNG/JPEG (anything Pillow opens), centre-crops it
to a square, resizes it to ``size × size`` with Pillow's Lanczos filter
(antialiased when shrinking) and returns pixels ``(size, size, C)`` with
``C = 1`` (grayscale) or ``3`` (RGB) on the 8-bit scale ``0..255``: uint8 for
an 8-bit file, float32 for a 16-bit one, whose precision is kept (``v ·
255 / 65535``, not clipped). Transparent pixels are composited over black
(the model has no alpha channel), and a picture smaller than ``size`` is
upscaled; both are stated in a note. :func:`to_signed` maps pixels to the
training target in ``[-1, 1]`` (``p / 127.5 − 1``, the inverse of the output
layer's ``pixel = (y + 1)·127.5``). A missing, unreadable or unsuitable file
raises :class:`~dhq_rtl.errors.ImageError` with a one-line message.
"""

import sys
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ImageError

__all__ = ["RESAMPLE", "default_image_path", "load_image", "to_signed", "to_pixels", "save_png",
           "written_by_dhq_rtl", "psnr"]

#: Name of the Pillow filter used for resizing (documented in the CLI help).
RESAMPLE = "lanczos"

#: Smallest and largest supported side length.
MIN_SIZE, MAX_SIZE = 2, 4096

#: Text chunk that marks the PNGs this package writes (``Software``).
SOFTWARE = "dhq_rtl"

#: Pillow's grayscale weights (ITU-R 601-2), used for 16-bit colour → gray
#: as ``convert("L")`` uses them for 8 bits.
_LUMA = np.array([299, 587, 114], dtype=np.float64) / 1000


def default_image_path():
    """Path of the bundled 512×512 grayscale ``camera.png`` (CC0)."""
    return Path(str(resources.files("dhq_rtl") / "data" / "camera.png"))


def _stderr_note(message):
    print(f"note: {message}", file=sys.stderr)


def load_image(path, size, color="auto", note=_stderr_note):
    """Read ``path`` and return pixels of shape ``(size, size, C)`` (see the module docstring).

    ``color``: ``"gray"`` (C = 1), ``"rgb"`` (C = 3) or ``"auto"`` (gray if the
    file is a grayscale image or all its colour channels are equal, else RGB).
    Non-square pictures are centre-cropped to a square before resizing.
    ``note(message)`` is told what was done to the picture beyond that
    (transparency composited, upscaling); by default it goes to stderr.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ImageError(f"image size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if color not in ("auto", "gray", "rgb"):
        raise ImageError(f"color must be 'auto', 'gray' or 'rgb', got {color!r}")
    path = Path(path)
    try:
        with Image.open(path) as im:
            tile = list(im.tile)
            im.load()
            img = im.copy()
        wide = _read_16bit(path, img, tile)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"image path is a directory: {path}") from None
    except UnidentifiedImageError:
        raise ImageError(f"not a readable image (PNG/JPEG expected): {path}") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"cannot read image {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if img.width < 1 or img.height < 1:
        raise ImageError(f"image {path} is empty")
    side = min(img.width, img.height)
    if side < size:
        note(f"{path.name} is {side}×{side} after the centre crop, smaller than {size}×{size}: "
             f"upscaled with a Lanczos filter, which adds no detail")
    if wide is not None:
        return _finish_16bit(*wide, path, size, color, note)
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.min() < 255:
            _note_transparency(note, path, alpha < 255)
            img = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), rgba)
        img = img.convert("RGB")
    if color == "auto":
        color = "gray" if _is_gray(img) else "rgb"
    img = img.convert("L" if color == "gray" else "RGB")
    img = _crop_square(img)
    if side != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr.copy()


def _crop_square(img):
    side = min(img.width, img.height)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side))


def _has_alpha(img):
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _note_transparency(note, path, transparent):
    note(f"{path.name} has transparent pixels ({np.mean(transparent):.0%} of the picture); "
         f"composited over black (the model has no alpha channel)")


def _read_16bit(path, img, tile):
    """``(values, alpha)`` of a 16-bit file as float64 arrays (values ``(H, W,
    C)`` on ``0..65535``, alpha on ``0..1`` or None), or None for 8-bit files.

    Pillow reads 16-bit grayscale at full precision (mode ``I;16``) but keeps
    only the high byte of 16-bit RGB, RGBA and gray+alpha PNGs. Their low
    bytes are read by decoding the same data once more with the little-endian
    raw mode (``RGB;16L`` on big-endian samples yields the low byte), or, for
    gray+alpha, as 8-bit RGBA (same bytes per pixel, so the same unfiltering).
    """
    from PIL import Image

    mode = img.mode
    if mode == "F":
        raise ImageError(f"{path}: floating-point images are not supported; save it as an 8- or 16-bit PNG")
    if mode.startswith("I"):
        v = np.asarray(img).astype(np.float64)
        if v.size and (v.min() < 0 or v.max() > 65535):
            raise ImageError(f"{path}: pixel values outside 0..65535; save it as an 8- or 16-bit PNG")
        values, alpha = v[:, :, None], None
        if "transparency" in img.info:
            alpha = (v != img.info["transparency"]).astype(np.float64)
        return values, alpha
    raw = tile[0].args if len(tile) == 1 and tile[0][0] == "zip" else None
    raw = raw[0] if isinstance(raw, tuple) else raw
    if raw not in ("RGB;16B", "RGBA;16B", "LA;16B"):
        return None
    low_raw = "RGBA" if raw == "LA;16B" else raw.replace(";16B", ";16L")
    with Image.open(path) as again:
        t = again.tile[0]
        args = low_raw if isinstance(t[3], str) else (low_raw, *t[3][1:])
        again.tile = [t._replace(args=args) if hasattr(t, "_replace") else (*t[:3], args)]
        again.load()
        low = np.asarray(again).astype(np.float64)
    high = np.asarray(img).astype(np.float64)
    if raw == "LA;16B":     # Pillow expands gray+alpha to RGBA; the low read holds L_hi L_lo A_hi A_lo
        values = (low[..., 0] * 256 + low[..., 1])[..., None]
        alpha = (low[..., 2] * 256 + low[..., 3]) / 65535
    else:
        full = high * 256 + low
        values = full[..., :3]
        alpha = full[..., 3] / 65535 if raw == "RGBA;16B" else None
        if alpha is None and "transparency" in img.info:
            key = np.asarray(img.info["transparency"], dtype=np.float64)
            alpha = np.any(values != key, axis=-1).astype(np.float64)
    return values, alpha


def _finish_16bit(values, alpha, path, size, color, note):
    """Composite, convert, crop and resize 16-bit ``values`` in floating point;
    float32 pixels on the 8-bit scale."""
    from PIL import Image

    values = values * (255.0 / 65535.0)
    if alpha is not None and alpha.min() < 1:
        _note_transparency(note, path, alpha < 1)
        values = values * alpha[..., None]
    gray = values.shape[2] == 1 or (np.all(values[..., 0] == values[..., 1])
                                    and np.all(values[..., 1] == values[..., 2]))
    if color == "auto":
        color = "gray" if gray else "rgb"
    if color == "gray" and values.shape[2] == 3:
        values = values[..., :1] if gray else (values @ _LUMA)[..., None]
    elif color == "rgb" and values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    channels = []
    for c in range(values.shape[2]):
        ch = _crop_square(Image.fromarray(values[..., c].astype(np.float32), mode="F"))
        if ch.width != size:
            ch = ch.resize((size, size), Image.Resampling.LANCZOS)
        channels.append(np.asarray(ch, dtype=np.float32))
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0)


def _is_gray(img):
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    return bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))


def to_signed(pixels):
    """uint8 pixels → float32 target in ``[-1, 1]``."""
    return np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0


def to_pixels(y):
    """Model output ``y`` (≈ ``[-1, 1]``) → uint8 pixels, rounded half up and clamped,
    as the output layer does it."""
    return np.clip(np.floor((np.asarray(y, dtype=np.float64) + 1.0) * 127.5 + 0.5), 0, 255).astype(np.uint8)


def save_png(pixels, path, pixel_bits=8):
    """Write ``(H, W, 1|3)`` pixels as a PNG, atomically (a failed write
    leaves a previous file unchanged), marked as written by this package.

    ``pixel_bits ≤ 8``: an 8-bit PNG of the values; wider pixels: a 16-bit
    PNG, scaled to its full range (``v · 65535 / (2**pixel_bits − 1)``).
    """
    from PIL import Image, PngImagePlugin

    from .outputs import write_file

    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if pixel_bits > 8:
        wide = np.clip(arr.astype(np.float64), 0, (1 << pixel_bits) - 1) * (65535 / ((1 << pixel_bits) - 1))
        data = _png16(np.floor(wide + 0.5).astype(">u2"))
        write_file(path, data)
        return
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    image = Image.fromarray(arr)
    write_file(path, lambda f: image.save(f, format="PNG", pnginfo=info))


def _png16(samples):
    """A 16-bit grayscale or RGB PNG of big-endian ``(H, W, 1|3)`` samples
    (Pillow writes 16-bit grayscale only)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, c = samples.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), samples.reshape(h, w * c).view(np.uint8)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 16, 0 if c == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tEXt", b"Software\0" + SOFTWARE.encode())
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def written_by_dhq_rtl(path):
    """True if ``path`` is a PNG this package wrote (:func:`save_png`)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == SOFTWARE
    except (OSError, ValueError, SyntaxError):
        return False


def psnr(reference, test, peak=255.0):
    """Peak signal-to-noise ratio in dB of ``test`` against ``reference``
    (same shape, pixel units, peak 255 by default); ``inf`` if identical."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * np.log10(peak * peak / mse)
