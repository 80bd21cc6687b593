"""From a trained float model to an integer model image.

The PyTorch side describes each layer with a :class:`FloatLayer` (float
weights and bias in the domain the integer layer computes in, the weight step
per output channel and the step of its input activation); :func:`export_model`
turns that into the integers of a :class:`~dhq_rtl.model_image.ModelImage`.

Scale folding (see ``docs/datapath.md``): the product of weight step,
activation step and the layer's *unit* (phase units per radian·ω0 for a sine
layer, grey levels for the output layer) becomes ``mult / 2**shift`` with a
``mult_bits``-bit integer ``mult`` per output channel and one ``shift`` per
layer. The weight steps are snapped onto that grid (:func:`snap_scales`), and
the fake-quant model in training uses the same snapped steps, so the integer
and float scales agree exactly. The activation step of a rotated input is
folded into the sine table's amplitude, so the requantizer is a pure
round-and-shift.
"""

import math
from dataclasses import dataclass

import numpy as np

from .fixedpoint import round_half_away, signed_bits, signed_max
from .model_image import LayerImage, ModelImage

__all__ = ["FloatLayer", "first_layer_input_matrix", "sine_unit", "output_unit", "stored_weight_unit", "grid_max",
           "np_grid_values",
           "snap_scales", "sine_table", "export_model"]


@dataclass
class FloatLayer:
    """One trained layer, as the exporter needs it.

    ``weight`` acts on the layer's input in its own domain: for the first layer
    the integer coordinate vector ``v`` (use :func:`first_layer_input_matrix`),
    for a rotated layer the rotated activation ``H·a`` (so ``weight`` is
    ``W·Hᵀ`` with orthonormal ``H``). ``weight_step`` (per output channel, or
    a scalar) must already be snapped with :func:`snap_scales`. ``act_step`` is
    the real value of one step of the input activation (1 for the first layer).
    ``act_midrise``: the input is on the mid-rise grid (code ``q`` means
    ``(q + ½)·act_step``; unrotated inputs of later layers only): the table
    holds ``floor`` codes and the ``½·act_step`` of every input is folded
    into the bias. ``weight_midrise``: the weights are on the mid-rise grid
    (first layer only; see :func:`export_model`).
    """

    weight: np.ndarray
    bias: np.ndarray
    weight_bits: int
    act_bits: int
    rotate: bool
    weight_step: np.ndarray
    act_step: float
    act_midrise: bool = False
    weight_midrise: bool = False


def first_layer_input_matrix(height, width, rotate):
    """Matrix ``F`` with ``c = F @ v``: the real coordinates ``c ∈ [-1, 1]²``
    from the first layer's integer input ``v`` (see
    :meth:`GoldenModel.first_layer_input`). A first-layer weight ``W`` acting on
    ``c`` acts on ``v`` as ``W @ F``."""
    d = np.diag([1.0 / (width - 1), 1.0 / (height - 1)])
    if rotate:
        # v = T u with T = [[1, 1], [1, -1]], T⁻¹ = T / 2.
        return d @ (np.array([[1.0, 1.0], [1.0, -1.0]]) / 2.0)
    return d


def sine_unit(omega0, phase_bits):
    """Phase-table steps per unit of pre-activation ``z`` (the sine is ``sin(ω0·z)``)."""
    return omega0 * (1 << phase_bits) / (2 * math.pi)


def output_unit(pixel_bits=8):
    """Grey levels per unit of output ``y ∈ [-1, 1]`` (``pixel = (y + 1)·unit``)."""
    return ((1 << pixel_bits) - 1) / 2


def stored_weight_unit(midrise):
    """One unit of a stored integer weight, in quantizer steps: ½ for a
    mid-rise weight (code ``q`` is stored as ``2q + 1``), else 1. The scale
    the exporter snaps is the step times this."""
    return 0.5 if midrise else 1.0


def grid_max(bits, midrise=False):
    """The largest magnitude of a ``bits``-bit grid, in steps: ``2**(b−1) − 1``
    (mid-tread), or ``2**(b−1) − ½`` (mid-rise: code ``q`` means ``q + ½``)."""
    return signed_max(bits) + (0.5 if midrise else 0.0)


def np_grid_values(xs, bits, midrise):
    """The numpy twin of :func:`dhq_rtl.reference.quantizers.grid_values`:
    ``xs = x/step`` on the mid-tread grid ``clamp(round(xs), ±m)`` (half to
    even, as torch) or the mid-rise grid ``clamp(floor(xs), −m−1, m) + ½``."""
    m = signed_max(bits)
    if midrise:
        return np.clip(np.floor(xs), -m - 1, m) + 0.5
    return np.clip(np.round(xs), -m, m)


def snap_scales(gain, mult_bits):
    """Snap positive per-channel gains onto the ``mult / 2**shift`` grid.

    Returns ``(mult, shift, snapped)``: the largest ``shift`` (≤ 48) with every
    ``round(gain · 2**shift)`` within ``mult_bits`` bits, the integer
    multipliers (at least 1), and ``snapped = mult / 2**shift``.
    """
    gain = np.atleast_1d(np.asarray(gain, dtype=np.float64))
    if not np.all(np.isfinite(gain)) or np.any(gain <= 0):
        raise ValueError("scale gains must be positive and finite")
    limit = (1 << mult_bits) - 1
    shift = int(np.floor(np.log2(limit / gain.max())))
    while shift > 0 and np.round(gain.max() * 2.0 ** shift) > limit:
        shift -= 1
    if shift < 0:
        raise ValueError(f"a scale gain of {gain.max():.3g} needs more than {mult_bits} multiplier bits")
    shift = min(shift, 48)
    mult = np.clip(np.round(gain * 2.0 ** shift), 1, limit).astype(np.int64)
    return mult, shift, mult / 2.0 ** shift


def sine_table(phase_bits, amplitude, bits, midrise=False):
    """``round_half_away(amplitude · sin(2π (p + ½) / 2**phase_bits))``, clamped
    to ``±(2**(bits-1) − 1)``. The half-step offset makes the table exactly
    quarter-wave symmetric and makes ``floor`` the right rounding of the phase.

    ``midrise``: the mid-rise codes ``floor(amplitude · sin(…))`` clamped to
    ``[−2**(bits−1), 2**(bits−1) − 1]`` (code ``q`` stands for ``q + ½``); the
    second half is then the bitwise complement of the first (``−q − 1``)."""
    n = 1 << phase_bits
    p = np.arange(n, dtype=np.float64)
    s = amplitude * np.sin(2 * np.pi * (p + 0.5) / n)
    m = signed_max(bits)
    if midrise:
        if n < 4:
            return np.clip(np.floor(s), -m - 1, m).astype(np.int64)
        # from the first quarter by symmetry, so the table is exactly
        # quarter-wave symmetric whatever the last bit of the float sine
        quarter = np.clip(np.floor(s[: n // 4]), -m - 1, m).astype(np.int64)
        half = np.concatenate([quarter, quarter[::-1]])
        return np.concatenate([half, ~half])
    return np.clip(round_half_away(s), -m, m)


def export_model(layers, *, height, width, channels, omega0, phase_bits=10, lut_bits=12,
                 mult_bits=8, pixel_bits=8, meta=None):
    """Quantize and fold a list of :class:`FloatLayer` into a validated ModelImage."""
    out = []
    n_layers = len(layers)
    for i, fl in enumerate(layers):
        last = i == n_layers - 1
        w = np.asarray(fl.weight, dtype=np.float64)
        n_out, n_in = w.shape
        unit = output_unit(pixel_bits) if last else sine_unit(omega0, phase_bits)
        step = np.broadcast_to(np.asarray(fl.weight_step, dtype=np.float64), (n_out,))
        w_midrise = bool(fl.weight_midrise)
        if w_midrise and i > 0:
            raise ValueError(f"layer {i}: only the first layer's weights can be mid-rise")
        # a mid-rise weight (q + ½)·s is the odd integer 2q + 1 of the half step s/2
        mult, shift, snapped = snap_scales(step * stored_weight_unit(w_midrise) * fl.act_step * unit, mult_bits)
        wstep = snapped / (fl.act_step * unit)
        if w_midrise:
            wq = (2 * np_grid_values(w / (2 * wstep[:, None]), fl.weight_bits, True)).astype(np.int64)
        else:
            wmax = signed_max(fl.weight_bits)
            wq = np.clip(round_half_away(w / wstep[:, None]), -wmax, wmax)
        b = np.asarray(fl.bias, dtype=np.float64)
        midrise = bool(fl.act_midrise)
        if midrise and (i == 0 or fl.rotate):
            raise ValueError(f"layer {i}: only an unrotated input of a later layer can be mid-rise")
        # mid-rise input: Σ_j w_j·(q_j + ½) = acc + ½·Σ_j w_j, a constant per channel
        fold = mult * wq.sum(axis=1) / 2.0 if midrise else 0.0
        if last:
            bias = round_half_away(((b + 1.0) * unit + 0.5) * 2.0 ** shift + fold)
        else:
            bias = np.mod(round_half_away(b * unit * 2.0 ** shift + fold), 1 << (phase_bits + shift))
        kw = dict(in_features=n_in, out_features=n_out, weight_bits=fl.weight_bits, rotate=bool(fl.rotate),
                  mult_bits=mult_bits, shift=shift, weight=wq, mult=mult, bias=bias, weight_midrise=w_midrise)
        if i == 0:
            m = max(height, width) - 1
            kw["act_bits"] = signed_bits(-2 * m, 2 * m) if fl.rotate else signed_bits(-m, m)
        else:
            kw["act_bits"] = fl.act_bits
            if fl.rotate:
                # a = A·sin, x = H_int a, q = round(x / 2**r): q·s_a = H a / √n
                # needs A = 2**r / (s_a √n); take the largest r the table width allows.
                root_n = math.sqrt(n_in)
                r = math.floor(math.log2(signed_max(lut_bits) * fl.act_step * root_n))
                if r < 0:
                    raise ValueError(f"layer {i}: activation step {fl.act_step:.3g} is too fine for "
                                     f"a {lut_bits}-bit sine table")
                amplitude = 2.0 ** r / (fl.act_step * root_n)
                kw.update(lut=sine_table(phase_bits, amplitude, lut_bits), lut_bits=lut_bits,
                          req_mult=1, req_shift=r)
            else:
                kw.update(lut=sine_table(phase_bits, 1.0 / fl.act_step, fl.act_bits, midrise), lut_bits=fl.act_bits)
        out.append(LayerImage(**kw))
    model = ModelImage(height=height, width=width, channels=channels, phase_bits=phase_bits,
                       omega0=float(omega0), layers=out, pixel_bits=pixel_bits, meta=dict(meta or {}))
    return model.validate()
