"""The float32 golden model: the bit-exact specification of the full-precision core.

A model image of format version 3 carries the float model the integer one
was exported from (``ModelImage.has_float``; per layer ``W``, ``b`` as
trained, float32). :class:`FloatGoldenModel` computes every pixel from it with
IEEE-754 binary32 arithmetic in a fixed order, with the number policy of the
FP32 units (``docs/float32.md``: round to nearest even, subnormals flushed to
zero on input and output), exactly as the float core
(:class:`~dhq_rtl.gateware.core.InrCore` with ``arith="fp32"``) does, so that
the RTL equals it bit for bit. The order depends on the core's ``lanes``.

The computation, per pixel ``(x, y)`` of an ``H × W`` image
(``docs/float32.md``, "The float core"):

1. **Input.** ``u_x = 2x − (W − 1)`` and ``u_y = 2y − (H − 1)``, exact
   integers (odd for an even side), as float32 (exact: ``|u| < 2**24``).
2. **Folded parameters** (:func:`float_core_parameters`, computed once per
   model in float64 and rounded to float32 once): the scale ``ω0/2π`` is
   folded into every sine layer's weights and bias, so that the
   pre-activation ``t`` is the phase **in turns** that
   :func:`~dhq_rtl.float32_ref.sin_turns` takes (no multiply before the
   sine); layer 0 also takes the coordinate scale ``1/(W − 1)``,
   ``1/(H − 1)`` (its input is ``u``, not ``c = u/(W − 1)``); the output layer
   takes the pixel mapping ``(y + 1)·U + ½`` with ``U = (2**pixel_bits − 1)/2``::

       s = ω0 / (2π)                                    (float64)
       W'_0[:, 0] = f32(W_0[:, 0] · s / (W − 1)),  W'_0[:, 1] = f32(W_0[:, 1] · s / (H − 1))
       W'_i = f32(W_i · s),  b'_i = f32(b_i · s)        (sine layers, b'_0 too)
       W'_L = f32(W_L · U),  b'_L = f32((b_L + 1) · U + ½)  (output layer)

3. **Dot product** (:func:`lane_dot_with_bias`): the bias is the start
   value; the input vector is cut into beats of ``lanes`` elements (the last
   padded with +0 weights and +0 inputs, whose products are +0); each beat's
   products are summed in an adder tree (:func:`~dhq_rtl.float32_ref.tree_sum`:
   pairs ``(0, 1), (2, 3), …`` level by level, an odd last element passing
   through); the beat sums are added to the running value in beat order::

       t = (…((b' + S_0) + S_1) + …) + S_{C−1},   S_c = tree(W'[k, cP…cP+P−1] ⊙ h[cP…])

4. **Sine layers**: ``h' = sin_turns(t)`` (``sin(2π·t)``, the FP32 sine
   unit's algorithm, within 0.631 ULP).
5. **Output layer**: ``pixel = clamp(floor(t), 0, 2**pixel_bits − 1)``
   (the ``+ ½`` in ``b'_L`` makes it round half up, as the integer core and
   :func:`dhq_rtl.images.to_pixels` round); a NaN gives 0.

It differs from the float PyTorch model only in operation order (the
folding, the summation order) and the sine algorithm; ``bench/fp32_core.py``
reports the PSNR between the two.
"""

import math

import numpy as np

from . import float32_ref as ref
from .errors import ModelImageError
from .golden import pixel_coordinates
from .numerics import output_unit

__all__ = ["FloatGoldenModel", "float_core_parameters", "lane_dot_with_bias", "float_pixels", "float64_render",
           "require_float"]


def require_float(model):
    """Raise :class:`~dhq_rtl.errors.ModelImageError` unless ``model`` carries
    its float parameters (format version 3)."""
    if not model.has_float:
        raise ModelImageError("the model image carries no float parameters (it predates format version 3, or "
                              "was made without them), so the float core cannot run it; re-export it with "
                              "`python -m dhq_rtl.train`")


def float_core_parameters(model):
    """The float core's constants: per layer ``(W', b')`` as float32 bit
    patterns (``uint32``), the float model's ``W``, ``b`` with the scales
    folded in (module docstring, step 2)."""
    require_float(model)
    s = float(model.omega0) / (2.0 * math.pi)
    unit = output_unit(model.pixel_bits)
    last = len(model.layers) - 1
    out = []
    for i, layer in enumerate(model.layers):
        w = layer.float_weight.astype(np.float64)
        b = layer.float_bias.astype(np.float64)
        if i == last:
            w, b = w * unit, (b + 1.0) * unit + 0.5
        else:
            w, b = w * s, b * s
            if i == 0:
                w = w / np.array([model.width - 1, model.height - 1], dtype=np.float64)
        with np.errstate(over="ignore"):
            out.append((ref.to_bits(w.astype(np.float32)), ref.to_bits(b.astype(np.float32))))
    return out


def _tree_sum(values):
    """:func:`float32_ref.tree_sum` along the last axis with the numpy-backed
    :func:`~dhq_rtl.float32_ref.add_spec` (equal to the unit's twin)."""
    v = values
    while v.shape[-1] > 1:
        n = v.shape[-1]
        pairs = ref.add_spec(v[..., 0:n - 1:2], v[..., 1:n:2])
        v = np.concatenate([pairs, v[..., n - 1:]], axis=-1) if n % 2 else pairs
    return v[..., 0]


def lane_dot_with_bias(weights, bias, x, lanes):
    """``bias + weights @ x`` in the order of the float core (module
    docstring, step 3): float32 bit patterns ``weights (n_out, n_in)``, ``bias
    (n_out,)``, ``x (..., n_in)``; returns ``(..., n_out)``. Equal to
    :func:`dhq_rtl.float32_ref.lane_dot` with the bias added first."""
    w = np.asarray(weights, dtype=np.uint32)
    v = np.asarray(x, dtype=np.uint32)
    n_out, n_in = w.shape
    beats = -(-n_in // lanes)
    pad = beats * lanes - n_in
    w = np.concatenate([w, np.zeros((n_out, pad), np.uint32)], axis=1).reshape(n_out, beats, lanes)
    v = np.concatenate([v, np.zeros(v.shape[:-1] + (pad,), np.uint32)], axis=-1)
    v = v.reshape(v.shape[:-1] + (1, beats, lanes))
    sums = _tree_sum(ref.mul_spec(w, v))             # (..., n_out, beats)
    acc = np.broadcast_to(np.asarray(bias, dtype=np.uint32), sums.shape[:-1])
    for b in range(beats):
        acc = ref.add_spec(acc, sums[..., b])
    return acc


def float_pixels(t, pixel_bits):
    """The output conversion: ``clamp(floor(t), 0, 2**pixel_bits − 1)`` of
    float32 bit patterns ``t``; NaN → 0."""
    top = (1 << pixel_bits) - 1
    with np.errstate(invalid="ignore"):
        v = ref.from_bits(np.asarray(t, dtype=np.uint32)).astype(np.float64)
        p = np.clip(np.floor(v), 0, top)
    return np.where(np.isnan(v), 0, p).astype(np.int64)


class FloatGoldenModel:
    """float32 inference of a model image's float model in the float core's
    order for ``lanes`` lanes (module docstring)."""

    def __init__(self, model, lanes=1):
        if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, got {lanes!r}")
        self.model = model.validate()
        self.lanes = int(lanes)
        self.params = float_core_parameters(model)

    def first_layer_input(self, xs, ys):
        """``(u_x, u_y)`` per pixel as float32 bit patterns ``(P, 2)``."""
        m = self.model
        ux = 2 * np.asarray(xs, dtype=np.int64) - (m.width - 1)
        uy = 2 * np.asarray(ys, dtype=np.int64) - (m.height - 1)
        return ref.to_bits(np.stack([ux, uy], axis=-1).astype(np.float32))

    def trace(self, xs, ys):
        """Every intermediate, per layer a dict: ``input`` (the layer's input
        vector), ``t`` (pre-activation: the phase in turns, or the output in
        pixel units), and ``h`` (the sine, hidden layers) or ``pixel``."""
        h = self.first_layer_input(xs, ys)
        steps = []
        last = len(self.params) - 1
        for i, (w, b) in enumerate(self.params):
            t = lane_dot_with_bias(w, b, h, self.lanes)
            step = {"input": h, "t": t}
            if i < last:
                h = ref.sin_turns(t)
                step["h"] = h
            else:
                step["pixel"] = float_pixels(t, self.model.pixel_bits)
            steps.append(step)
        return steps

    def predict(self, xs, ys):
        """Pixels ``(P, channels)`` for coordinates ``(xs, ys)``."""
        return self.trace(xs, ys)[-1]["pixel"]

    def render(self, region=None, chunk=2048):
        """The whole image (or a region) as a ``(rows, cols, channels)`` uint8/uint16 array."""
        m = self.model
        x0, y0, x1, y1 = region if region is not None else (0, 0, m.width, m.height)
        xs, ys = pixel_coordinates(m.height, m.width, (x0, y0, x1, y1))
        parts = [self.predict(xs[s:s + chunk], ys[s:s + chunk]) for s in range(0, len(xs), chunk)]
        out = np.concatenate(parts) if parts else np.zeros((0, m.channels), np.int64)
        dtype = np.uint8 if m.pixel_bits <= 8 else np.uint16
        return out.reshape(y1 - y0, x1 - x0, m.channels).astype(dtype)


def float64_render(model, region=None):
    """The float model evaluated in float64 (``c = u/(W − 1)``, ``sin(ω0·z)``,
    the pixel rounded half up and clamped): the ideal the float32 models are
    compared with. Returns ``(pixels, y)`` (``y`` the float64 output before the
    pixel conversion)."""
    require_float(model)
    x0, y0, x1, y1 = region if region is not None else (0, 0, model.width, model.height)
    xs, ys = pixel_coordinates(model.height, model.width, (x0, y0, x1, y1))
    h = np.stack([(2 * xs - (model.width - 1)) / (model.width - 1),
                  (2 * ys - (model.height - 1)) / (model.height - 1)], axis=-1).astype(np.float64)
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        z = h @ layer.float_weight.astype(np.float64).T + layer.float_bias.astype(np.float64)
        h = z if i == last else np.sin(model.omega0 * z)
    unit = output_unit(model.pixel_bits)
    px = np.clip(np.floor((h + 1.0) * unit + 0.5), 0, (1 << model.pixel_bits) - 1).astype(np.int64)
    shape = (y1 - y0, x1 - x0, model.channels)
    return px.reshape(shape).astype(np.uint8 if model.pixel_bits <= 8 else np.uint16), h.reshape(shape)
