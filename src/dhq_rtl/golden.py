"""The integer golden model: the bit-exact specification of the datapath.

Given a :class:`~dhq_rtl.model_image.ModelImage`, :class:`GoldenModel`
computes every pixel with integer arithmetic only, exactly as the gateware
does (``docs/datapath.md`` describes each step). ``predict`` gives the pixels,
``trace`` every intermediate tensor (hls4ml-style bit-accurate emulation), so
an RTL block can be checked against the very values it must produce.
"""

import numpy as np

from .fixedpoint import output_scale, phase_scale, requantize
from .hadamard import fwht_int

__all__ = ["GoldenModel", "pixel_coordinates"]


def pixel_coordinates(height, width, region=None):
    """Raster-order ``(x, y)`` integer pixel coordinates of the whole image or
    of ``region = (x0, y0, x1, y1)`` (half-open), as two int64 arrays."""
    x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return xs.ravel().astype(np.int64), ys.ravel().astype(np.int64)


class GoldenModel:
    """Integer-only inference of a model image."""

    def __init__(self, model):
        self.model = model.validate()

    def first_layer_input(self, xs, ys):
        """The first layer's integer input ``v`` (shape ``(P, 2)``): centred
        coordinates ``u = 2·x − (W−1)``, ``2·y − (H−1)``, or their Hadamard
        rotation ``(u_x + u_y, u_x − u_y)`` when the first layer is rotated."""
        m = self.model
        ux = 2 * np.asarray(xs, dtype=np.int64) - (m.width - 1)
        uy = 2 * np.asarray(ys, dtype=np.int64) - (m.height - 1)
        if m.layers[0].rotate:
            return np.stack([ux + uy, ux - uy], axis=-1)
        return np.stack([ux, uy], axis=-1)

    def trace(self, xs, ys):
        """Run the model on pixels ``(xs, ys)`` and return a list with one dict
        per layer holding every intermediate: ``lut_out`` (sine table output),
        ``butterfly`` (Hadamard transform), ``q`` (the layer's input
        activation), ``acc`` (accumulator), and ``phase`` or ``pixel``."""
        m = self.model
        steps = []
        q = self.first_layer_input(xs, ys)
        phase = None
        for i, layer in enumerate(m.layers):
            step = {}
            if i > 0:
                a = layer.lut[phase]
                step["lut_out"] = a
                if layer.rotate:
                    x = fwht_int(a)
                    step["butterfly"] = x
                    q = requantize(x, layer.req_mult, layer.req_shift, layer.act_bits)
                else:
                    q = a
            step["q"] = q
            acc = q @ layer.weight.T
            step["acc"] = acc
            if i < len(m.layers) - 1:
                phase = phase_scale(acc, layer.mult, layer.bias, layer.shift, m.phase_bits)
                step["phase"] = phase
            else:
                step["pixel"] = output_scale(acc, layer.mult, layer.bias, layer.shift, m.pixel_bits)
            steps.append(step)
        return steps

    def predict(self, xs, ys):
        """Pixels ``(P, channels)`` for coordinates ``(xs, ys)``."""
        return self.trace(xs, ys)[-1]["pixel"]

    def render(self, region=None, chunk=4096):
        """The whole image (or a region) as a ``(rows, cols, channels)`` uint8/uint16 array."""
        m = self.model
        x0, y0, x1, y1 = region if region is not None else (0, 0, m.width, m.height)
        xs, ys = pixel_coordinates(m.height, m.width, (x0, y0, x1, y1))
        out = np.concatenate([self.predict(xs[s:s + chunk], ys[s:s + chunk])
                              for s in range(0, len(xs), chunk)] or [np.zeros((0, m.channels), np.int64)])
        dtype = np.uint8 if m.pixel_bits <= 8 else np.uint16
        return out.reshape(y1 - y0, x1 - x0, m.channels).astype(dtype)
