"""Reading target pictures and measuring reconstruction quality.

:func:`load_image` reads a PNG/JPEG (anything Pillow opens), centre-crops it
to a square, resizes it to ``size × size`` with Pillow's Lanczos filter
(antialiased when shrinking) and returns 8-bit pixels ``(size, size, C)``
with ``C = 1`` (grayscale) or ``3`` (RGB). :func:`to_signed` maps pixels to
the training target in ``[-1, 1]`` (``p / 127.5 − 1``, the inverse of the
output layer's ``pixel = (y + 1)·127.5``). A missing, unreadable or
unsuitable file raises :class:`~dhq_rtl.errors.ImageError` with a one-line
message.
"""

from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ImageError

__all__ = ["RESAMPLE", "default_image_path", "load_image", "to_signed", "to_pixels", "save_png", "psnr"]

#: Name of the Pillow filter used for resizing (documented in the CLI help).
RESAMPLE = "lanczos"

#: Smallest and largest supported side length.
MIN_SIZE, MAX_SIZE = 2, 4096


def default_image_path():
    """Path of the bundled 512×512 grayscale ``camera.png`` (CC0)."""
    return Path(str(resources.files("dhq_rtl") / "data" / "camera.png"))


def load_image(path, size, color="auto"):
    """Read ``path`` and return uint8 pixels of shape ``(size, size, C)``.

    ``color``: ``"gray"`` (C = 1), ``"rgb"`` (C = 3) or ``"auto"`` (gray if the
    file is a grayscale image or all its colour channels are equal, else RGB).
    Non-square pictures are centre-cropped to a square before resizing.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ImageError(f"image size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if color not in ("auto", "gray", "rgb"):
        raise ImageError(f"color must be 'auto', 'gray' or 'rgb', got {color!r}")
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            img = im.copy()
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
    if color == "auto":
        color = "gray" if _is_gray(img) else "rgb"
    img = img.convert("L" if color == "gray" else "RGB")
    side = min(img.width, img.height)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr.copy()


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


def save_png(pixels, path):
    """Write ``(H, W, 1|3)`` uint8 pixels as a PNG."""
    from PIL import Image

    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    try:
        Image.fromarray(arr).save(path, format="PNG")
    except OSError as e:
        raise ImageError(f"cannot write {path}: {e.strerror or e}") from None


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
