"""Uniform fake quantizers for training, and the step choices around them.

All quantizers are symmetric and signed, on one of two grids of a ``b``-bit
code ``q`` (``m = 2**(b−1) − 1``):

* mid-tread (the default): ``q = clamp(round(x / s), −m, m)``, value ``q·s``
  (``2m + 1`` levels, zero among them);
* mid-rise (``midrise=True``): ``q = clamp(floor(x / s), −m − 1, m)``, value
  ``(q + ½)·s`` (all ``2**b`` codes, ``±½s … ±(m + ½)s``, no zero level).
  The hardware multiplies the code ``q``; the ``½·s`` per input is a constant
  per output channel that the exporter folds into the bias
  (:func:`dhq_rtl.numerics.export_model`), so the grid is free in hardware. It
  suits the sine outputs (bounded, arcsine-distributed: mass at ±1), where
  it has one level more than mid-tread at the same bit width. The first
  layer's weights use it too: they are build-time constants of running sums
  in hardware, exported as the odd integers ``2q + 1`` of half a step
  (:func:`snap_weight_step`), and a weight pair of 4-bit mid-rise codes
  spans more directions (spatial frequencies) than a mid-tread pair.

* :func:`round_ste` — rounding with a straight-through estimator (identity
  gradient).
* :func:`fake_quant` — the quantizer; gradients follow LSQ (Esser et al.
  2020): ``∂/∂x`` is 1 inside the range and 0 outside (clipped values get
  no gradient), and ``∂/∂s = round(x/s) − x/s`` inside, ``±m`` outside.
* :func:`mse_step` — clipping-aware initial step: the step that minimises the
  quantization MSE over a grid of clipping ratios (per tensor or per row).
* :func:`minmax_step` — plain ``max|x| / m``.
* :func:`snap_weight_step` — the weight step on the exporter's scale grid
  (:func:`dhq_rtl.numerics.snap_scales`), rounded up so that it never clips a
  weight the unsnapped step kept; the exporter leaves it unchanged, so
  training and export agree exactly. Straight-through gradient.
* :func:`grid_search_steps` — per row, the step on the exporter's grid
  (one shared shift, every ``mult``) with the smallest quantization error:
  for a row of 2 weights (the first layer) this error is far below that of
  the smallest non-clipping step.
"""

import numpy as np
import torch

from ..numerics import grid_max, np_grid_values, snap_scales, snap_up, stored_weight_unit
from ..fixedpoint import signed_max

__all__ = ["qmax", "round_ste", "grad_scale", "fake_quant", "grid_values", "bin_offset_penalty", "quant_error", "mse_step", "minmax_step",
           "snap_weight_step", "grid_search_steps"]


def qmax(bits):
    """``2**(bits−1) − 1``; ``bits`` must be in 2..16."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bit width must be an integer in [2, 16], got {bits!r}")
    return signed_max(bits)


def round_ste(x):
    """``round(x)`` forward (half to even, as numpy), identity gradient backward."""
    return x + (torch.round(x) - x).detach()


def grad_scale(x, g):
    """Value ``x``, gradient multiplied by ``g`` (LSQ's step-gradient scaling)."""
    return (x - x * g).detach() + x * g


def fake_quant(x, step, bits, midrise=False):
    """``clamp(round(x/step), −m, m)·step`` (mid-rise: ``(clamp(floor(x/step),
    −m−1, m) + ½)·step``) with LSQ gradients for ``x`` and ``step``.

    ``step`` broadcasts against ``x`` (a scalar, or ``(n_out, 1)`` per row).
    """
    return _FakeQuant.apply(x, step, float(qmax(bits)), bool(midrise))


def grid_values(xs, m, midrise=False):
    """The grid value, in steps, of ``xs = x/step`` (``m = 2**(b−1) − 1``):
    ``clamp(round(xs), −m, m)``, or mid-rise ``clamp(floor(xs), −m−1, m) + ½``
    (see the module docstring). No gradient of its own. Numpy twin:
    :func:`dhq_rtl.numerics.np_grid_values`."""
    if midrise:
        return torch.clamp(torch.floor(xs), -m - 1, m) + 0.5
    return torch.clamp(torch.round(xs), -m, m)


class _FakeQuant(torch.autograd.Function):
    """The quantizer as one autograd op (fewer passes over the data than the
    composite ``clamp(round_ste(x/s))·s``; same LSQ gradients)."""

    @staticmethod
    def forward(ctx, x, step, m, midrise):
        xs = x / step
        q = grid_values(xs, m, midrise)
        ctx.save_for_backward(xs, q, step)
        ctx.limit = m + 1 if midrise else m  # the grid covers |x/step| ≤ limit
        return q * step

    @staticmethod
    def backward(ctx, g):
        xs, q, step = ctx.saved_tensors
        inside = xs.abs() <= ctx.limit
        gx = gs = None
        if ctx.needs_input_grad[0]:
            gx = g * inside
        if ctx.needs_input_grad[1]:
            gs = g * torch.where(inside, q - xs, q)
            # reduce to the step's (broadcast) shape
            while gs.dim() > step.dim():
                gs = gs.sum(dim=0)
            for d, n in enumerate(step.shape):
                if n == 1 and gs.shape[d] != 1:
                    gs = gs.sum(dim=d, keepdim=True)
        return gx, gs, None, None


def bin_offset_penalty(x, step, bits):
    """``mean(((x − Q(x)) / step)²)`` with the grid point ``Q(x)`` held fixed:
    how far latent weights sit from the centres of their bins, in steps
    (at most ¼ each inside the range; more for a clipped weight). Its gradient pulls each weight to its centre — oscillation
    dampening (Nagel et al. 2022): a weight near a bin edge flips level at
    every small update under straight-through gradients."""
    centre = (grid_values(x / step, qmax(bits)) * step).detach()
    return torch.mean(((x - centre) / step) ** 2)


def quant_error(x, step, bits, dim=None, midrise=False):
    """Mean squared quantization error of ``x`` with ``step`` (no gradient);
    over everything, or per row when ``dim`` is given (mean over ``dim``)."""
    with torch.no_grad():
        e = (grid_values(x / step, qmax(bits), midrise) * step - x) ** 2
        return e.mean() if dim is None else e.mean(dim=dim)


def minmax_step(x, bits, per_row=False, midrise=False):
    """``max|x| / m`` (mid-rise: ``/ (m + ½)``, the outermost level) over the
    tensor, or per row (shape ``(rows, 1)``)."""
    with torch.no_grad():
        a = x.abs().amax(dim=1, keepdim=True) if per_row else x.abs().max()
        qmax(bits)  # raises for a width outside 2..16
        return torch.clamp(a, min=1e-12) / grid_max(bits, midrise)


def mse_step(x, bits, per_row=False, ratios=None, midrise=False):
    """Clipping-aware step: ``α·max|x|/m`` with the ``α ∈ (0, 1]`` (a grid of
    ``ratios``, default 100 values from 0.2 to 1) that minimises the mean
    squared quantization error, per tensor or per row (``(rows, 1)``)."""
    with torch.no_grad():
        base = minmax_step(x, bits, per_row, midrise)
        ratios = torch.linspace(0.2, 1.0, 100, dtype=x.dtype) if ratios is None else ratios
        if per_row:
            errs = torch.stack([quant_error(x, base * r, bits, dim=1, midrise=midrise) for r in ratios])  # (R, rows)
            best = ratios[errs.argmin(dim=0)].unsqueeze(1)
            return base * best
        errs = torch.stack([quant_error(x, base * r, bits, midrise=midrise) for r in ratios])
        return base * ratios[errs.argmin()]


def snap_weight_step(step, act_step, unit, mult_bits, midrise=False):
    """The weight step after scale snapping, as the integer model will use it.

    The exporter represents ``step·act_step·unit`` per output channel as
    ``mult / 2**shift`` (``mult`` of ``mult_bits`` bits, one ``shift`` per
    layer). This snaps onto that grid rounding up (:func:`snap_up`), so the
    exporter's own snapping leaves the step unchanged and the integer weights
    are exactly the fake-quant ones; the gradient of ``step`` passes straight
    through. ``act_step`` and ``unit`` are floats. ``midrise``: the weights
    are on the mid-rise grid, exported as the odd integers ``2q + 1`` of half
    a step, so it is the half step that is snapped.
    """
    half = stored_weight_unit(midrise)
    flat = step.detach().double().reshape(-1).cpu().numpy() * half
    snapped = snap_up(flat * float(act_step) * float(unit), mult_bits)
    snapped = torch.as_tensor(snapped / (float(act_step) * float(unit) * half), dtype=step.dtype)
    return step + (snapped.reshape(step.shape) - step).detach()


def grid_search_steps(w, bits, gain_per_step, mult_bits, start_steps, midrise=False):
    """Per row of ``w`` (float64 ``(rows, n)``), the weight step on the exporter's
    ``mult / 2**shift`` grid that minimises ``Σ_j (Q(w_j) − w_j)²``.

    ``gain_per_step``: the scale gain of a unit step (``act_step · unit``);
    ``start_steps`` (per row) fix the layer's shift: the one
    :func:`snap_up` gives them. Every ``mult`` in ``1 … 2**mult_bits − 1`` is
    tried (clipping included in the error), so the chosen gains are fixed
    points of :func:`dhq_rtl.numerics.snap_scales`. With 2 weights per row there
    are hundreds of candidate steps and usually one puts both weights almost
    exactly on the grid (docs/quantization.md: 37× less error than the MSE
    step for the camera model's first layer). ``midrise``: the weights are on
    the mid-rise grid (:func:`snap_weight_step`: the half step is on the
    exporter's grid). Returns ``(steps, err_before, err_after)`` (float64
    steps per row; summed squared errors).
    """
    w = np.asarray(w, dtype=np.float64)
    qmax(bits)  # raises for a width outside 2..16
    half = stored_weight_unit(midrise)
    start = snap_up(np.asarray(start_steps, dtype=np.float64).reshape(-1) * half * gain_per_step, mult_bits)
    _, shift, _ = snap_scales(start, mult_bits)
    cand = np.arange(1, 1 << mult_bits, dtype=np.float64) / 2.0 ** shift / gain_per_step / half  # (M,)
    q = np_grid_values(w[:, None, :] / cand[None, :, None], bits, midrise) * cand[None, :, None]
    err = ((q - w[:, None, :]) ** 2).sum(-1)  # (rows, M)
    s0 = start / gain_per_step / half
    before = ((np_grid_values(w / s0[:, None], bits, midrise) * s0[:, None] - w) ** 2).sum()
    return cand[err.argmin(1)], float(before), float(err.min(1).sum())
