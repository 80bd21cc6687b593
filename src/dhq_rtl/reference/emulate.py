"""Bit-exact emulation of the integer datapath in torch.

:class:`DatapathEmulator` computes, from a
:class:`~dhq_rtl.model_image.ModelImage`, exactly the integers of the numpy
golden model (:class:`dhq_rtl.golden.GoldenModel`, the datapath
specification; ``docs/datapath.md``) for every pixel at once: sine-table
outputs, butterfly, requantizer, accumulators, phases and pixels. It is the
"hardware" half of training: :meth:`~.qmodel.QuantSiren.forward` with
``hardware=True`` runs it on the model the exporter would write at this very
step and puts its values into the differentiable forward pass
(straight-through), so the model QAT optimises, the model whose loss picks
the best iterate and the model code refinement searches are the integer
model itself, phase and table rounding included — not a float
approximation of it (``docs/quantization.md``, "Training equals hardware").

Exactness: every value is an integer. The matrix products run in floating
point, which is exact for integers while every partial sum stays below
``2**mantissa``: float32 when the model image's accumulator bound
(:meth:`~dhq_rtl.model_image.ModelImage.accumulator_bounds`, a proof over any
order of summation) fits in 24 bits, else float64 (53 bits; the model-image
loader already limits the bound). Everything after the product (scale,
shift, wrap, table look-up, butterfly, requantizer, saturation) is int64.
``tests/test_emulate.py`` checks every intermediate against the golden model.
"""

import torch

from ..golden import GoldenModel, pixel_coordinates

__all__ = ["DatapathEmulator", "fwht_int_torch"]

#: Mantissa bits (with the hidden one) of float32 and float64: below 2**bits
#: every integer, and so every partial sum of an integer product, is exact.
_EXACT_BITS = {torch.float32: 24, torch.float64: 53}


def fwht_int_torch(x):
    """Integer Walsh–Hadamard transform along the last axis (Sylvester order),
    stage by stage as :func:`dhq_rtl.hadamard.fwht_int`: stage ``s`` combines
    the elements ``2**s`` apart (``a + b`` low, ``a − b`` high). int64, exact."""
    n = x.shape[-1]
    span = 1
    while span < n:
        y = x.reshape(x.shape[:-1] + (n // (2 * span), 2, span))
        a, b = y[..., 0, :], y[..., 1, :]
        x = torch.stack([a + b, a - b], dim=-2).reshape(x.shape)
        span *= 2
    return x


class _Layer:
    """One layer's integers as tensors, and the float type its product is exact in."""

    def __init__(self, model, index):
        layer = model.layers[index]
        self.layer = layer
        self.weight_t = torch.as_tensor(layer.weight, dtype=torch.float64).T.contiguous()
        self.mult = torch.as_tensor(layer.mult, dtype=torch.int64)
        self.bias = torch.as_tensor(layer.bias, dtype=torch.int64)
        self.lut = None if layer.lut is None else torch.as_tensor(layer.lut, dtype=torch.int64)
        self.dtype = torch.float64
        self.check_exact(model, index)

    def check_exact(self, model, index):
        """Pick the narrowest float type whose products are exact for this
        layer's accumulator bound (re-checked after every weight change)."""
        lo, hi = model.accumulator_bounds(index)
        bound = max(-lo, hi)
        if bound >= 2 ** _EXACT_BITS[torch.float64]:
            raise ValueError(f"layer {index}: accumulator bound {bound} is not exact in float64")
        dtype = torch.float32 if bound < 2 ** _EXACT_BITS[torch.float32] else torch.float64
        if dtype != self.dtype:
            self.dtype = dtype
            self.weight_t = self.weight_t.to(dtype)


class DatapathEmulator:
    """The golden model's integer datapath in torch (all pixels at once).

    ``model``: a validated :class:`~dhq_rtl.model_image.ModelImage`. The
    integers of a layer are read once here; :meth:`set_weight_code` changes
    one (code refinement). Methods work on int64 tensors with one row per
    pixel.
    """

    def __init__(self, model):
        self.model = model.validate()
        self.layers = [_Layer(model, i) for i in range(len(model.layers))]
        self.phase_mask = (1 << model.phase_bits) - 1
        self.pixel_max = (1 << model.pixel_bits) - 1

    # ---------------------------------------------------------------- steps
    def first_layer_input(self, xs=None, ys=None):
        """The integer input ``v`` of layer 0 (``(P, 2)`` int64; every pixel by default)."""
        if xs is None:
            xs, ys = pixel_coordinates(self.model.height, self.model.width)
        return torch.from_numpy(GoldenModel(self.model).first_layer_input(xs, ys))

    def layer_input(self, i, phase):
        """Layer ``i ≥ 1``'s input codes ``q`` from the previous layer's phases:
        the sine table, then (rotated) the butterfly and the requantizer."""
        lay = self.layers[i]
        a = lay.lut[phase]
        if not lay.layer.rotate:
            return a
        x = fwht_int_torch(a)
        r, m = lay.layer.req_shift, lay.layer.req_mult
        q = x * m
        if r:
            q = (q + (1 << (r - 1))) >> r
        lim = (1 << (lay.layer.act_bits - 1)) - 1
        return q.clamp(-lim, lim)

    def accumulate(self, i, q):
        """``acc = q · Wᵀ`` of layer ``i`` (int64, exact)."""
        lay = self.layers[i]
        return torch.round(q.to(lay.dtype) @ lay.weight_t).to(torch.int64)

    def scaled(self, i, acc):
        """``acc·M + B`` of layer ``i`` (int64; before the shift)."""
        lay = self.layers[i]
        return acc * lay.mult + lay.bias

    def phase(self, i, acc):
        """``((acc·M + B) ≫ S) mod 2^K`` of a sine layer."""
        return (self.scaled(i, acc) >> self.layers[i].layer.shift) & self.phase_mask

    def pixel(self, acc):
        """The output layer's pixels ``clamp((acc·M + B) ≫ S, 0, 2^p − 1)``."""
        return (self.scaled(len(self.layers) - 1, acc) >> self.layers[-1].layer.shift).clamp(0, self.pixel_max)

    def output_level(self, acc):
        """The output layer's pixel value before its floor and clamp, in grey
        levels (float64): ``(acc·M + B)/2^S − ½`` (the bias holds the ``½`` of
        round half up). ``floor(level + ½)``, clamped, is :meth:`pixel`."""
        last = self.layers[-1].layer
        return self.scaled(len(self.layers) - 1, acc).to(torch.float64) / 2.0 ** last.shift - 0.5

    # ---------------------------------------------------------------- whole model
    def step(self, i, q, acc=None):
        """Layer ``i``'s values for input codes ``q`` (and, if already known,
        its accumulator): a dict of ``q``, ``acc`` and ``phase`` (sine layers)
        or ``pixel`` and ``level`` (output layer)."""
        acc = self.accumulate(i, q) if acc is None else acc
        if i < len(self.layers) - 1:
            return {"q": q, "acc": acc, "phase": self.phase(i, acc)}
        return {"q": q, "acc": acc, "pixel": self.pixel(acc), "level": self.output_level(acc)}

    def trace(self, v=None, start=None):
        """Run every pixel (or the layer-0 inputs ``v``) and return per layer a
        dict of :meth:`step`. ``start = (i, steps)``: recompute from layer
        ``i`` on, keeping ``steps[:i]`` (a list of earlier step dicts)."""
        if start is not None:
            i0, steps = start[0], list(start[1][:start[0]])
        else:
            i0, steps = 0, []
        for i in range(i0, len(self.layers)):
            if i == 0:
                q = self.first_layer_input() if v is None else torch.as_tensor(v, dtype=torch.int64)
            else:
                q = self.layer_input(i, steps[-1]["phase"])
            steps.append(self.step(i, q))
        return steps

    def render(self):
        """The whole image as a ``(H, W, C)`` int64 tensor."""
        m = self.model
        return self.trace()[-1]["pixel"].reshape(m.height, m.width, m.channels)

    # ---------------------------------------------------------------- edits
    def set_weight_code(self, i, row, col, value, bias=None):
        """Set the stored integer weight ``W[row, col]`` of layer ``i`` (and the
        channel's integer bias, which a mid-rise input's fold makes depend on
        the row's sum). The model image is changed too, so that it stays the
        model this emulator computes."""
        lay = self.layers[i]
        lay.layer.weight[row, col] = value
        lay.weight_t[col, row] = value
        if bias is not None:
            lay.layer.bias[row] = bias
            lay.bias[row] = bias
        lay.check_exact(self.model, i)
