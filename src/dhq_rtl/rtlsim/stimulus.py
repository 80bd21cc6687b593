"""What every simulation engine shares: the region, the back-pressure
pattern of ``pixels.ready`` and the result of a run.

Cycle numbering (both engines): cycle ``n = 0, 1, …`` is the ``n``-th rising
clock edge counted from the edge that samples ``start`` (``start`` is high
in cycle 0 only). In each cycle the inputs are set, the design settles, the
outputs are sampled — a pixel *beat* happens when ``valid & ready`` — and
then the clock rises.

Back-pressure: ``ready`` in cycle ``n`` is a pure function of ``(seed, n)``
(a SplitMix64 hash), low with probability ``stall``. The C++ driver
(``sim/driver.cpp``) computes the same function, so both engines see the
same ``ready`` waveform and must produce their beats in the same cycles.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import DhqError

__all__ = ["SimResult", "check_region", "pack_region", "stall_threshold", "ready_pattern",
           "unpack_pixels", "PHI", "MASK64"]

MASK64 = (1 << 64) - 1
#: The SplitMix64 increment (2⁶⁴/φ).
PHI = 0x9E3779B97F4A7C15


class RegionError(DhqError):
    """A pixel region outside the image or empty."""


def check_region(model, region):
    """Validate ``region = (x0, y0, x1, y1)`` (half-open) against the model's
    image and return it as a tuple of ints; ``None`` means the whole image."""
    if region is None:
        return (0, 0, model.width, model.height)
    try:
        x0, y0, x1, y1 = (int(v) for v in region)
    except (TypeError, ValueError):
        raise RegionError(f"region must be four integers x0,y0,x1,y1, got {region!r}") from None
    if not (0 <= x0 < x1 <= model.width and 0 <= y0 < y1 <= model.height):
        raise RegionError(f"region {x0},{y0},{x1},{y1} is not a non-empty rectangle inside the "
                          f"{model.width}×{model.height} image (need 0 ≤ x0 < x1 ≤ {model.width}, "
                          f"0 ≤ y0 < y1 ≤ {model.height})")
    return (x0, y0, x1, y1)


def pack_region(layout, region):
    """The integer value of the core's ``region`` port for ``(x0, y0, x1, y1)``,
    packed according to the core's own struct ``layout`` (field order and
    widths are taken from it, not assumed)."""
    values = dict(zip(("x0", "y0", "x1", "y1"), region))
    word = 0
    names = set()
    for name, field in layout:
        names.add(name)
        if name not in values:
            raise ValueError(f"the core's region has an unexpected field {name!r}")
        v = int(values[name])
        if not 0 <= v < (1 << field.width):
            raise ValueError(f"region.{name} = {v} does not fit the core's {field.width}-bit field")
        word |= v << field.offset
    missing = set(values) - names
    if missing:
        raise ValueError(f"the core's region lacks fields {sorted(missing)}")
    return word


def stall_threshold(stall):
    """``ready`` is low when the top 32 bits of the hash are below this threshold."""
    stall = float(stall)
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall probability must be in [0, 1), got {stall}")
    return int(round(stall * (1 << 32)))


def _splitmix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def ready_pattern(seed, threshold, n):
    """``ready`` in cycle ``n`` (the twin of ``ready_in_cycle`` in ``sim/driver.cpp``)."""
    if threshold == 0:
        return True
    return (_splitmix64((seed + (n + 1) * PHI) & MASK64) >> 32) >= threshold


@dataclass
class SimResult:
    """One run of the core over a region.

    ``beat_cycles[i]`` is the cycle in which pixel ``i`` (raster order of the
    region) was accepted and ``payloads[i]`` its raw payload. ``cycles`` is
    the last beat's cycle + 1 (the region's latency from ``start``);
    ``busy_cycles`` the first cycle ≥ ``cycles`` in which ``busy`` was low.
    ``seconds`` is the wall time of the simulation loop alone.
    """

    engine: str
    region: tuple
    beat_cycles: np.ndarray
    payloads: np.ndarray
    cycles: int
    busy_cycles: int
    seconds: float

    @property
    def cycles_per_second(self):
        return self.cycles / self.seconds if self.seconds > 0 else float("inf")

    @property
    def pixels(self):
        return len(self.payloads)


def unpack_pixels(payloads, model, region):
    """Payloads (raster order) → ``(rows, cols, channels)`` array like
    :meth:`GoldenModel.render`: channel ``c`` is bits ``[c·b, (c+1)·b)``."""
    x0, y0, x1, y1 = region
    p = np.asarray(payloads, dtype=np.uint64)
    b = model.pixel_bits
    chans = [(p >> np.uint64(c * b)) & np.uint64((1 << b) - 1) for c in range(model.channels)]
    dtype = np.uint8 if b <= 8 else np.uint16
    return np.stack(chans, axis=-1).astype(dtype).reshape(y1 - y0, x1 - x0, model.channels)
