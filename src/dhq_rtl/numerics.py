"""The numeric conventions of the flow, in one place.

Training (:mod:`dhq_rtl.reference`), the exporter (:mod:`dhq_rtl.export`),
the integer golden model and the gateware all follow the same rules for
what an integer means; each rule is written here once:

* the quantization grids (mid-tread ``±(2^(b−1) − 1)``, mid-rise: code ``q``
  means ``q + ½``) and their largest value (:func:`grid_max`,
  :func:`np_grid_values`), and how a mid-rise weight is stored
  (:func:`stored_weight_unit`: the odd integer ``2q + 1`` of half a step);
* the units that turn a real pre-activation into integer steps
  (:func:`sine_unit`: phase-table steps; :func:`output_unit`: grey levels)
  and the first layer's coordinate map (:func:`first_layer_input_matrix`);
* scale snapping onto the ``mult / 2**shift`` grid of the hardware
  (:func:`snap_scales`, and :func:`snap_up`, which never shrinks a step);
* the integer weights, biases and sine tables of a layer
  (:func:`integer_weights`, :func:`integer_bias`, :func:`sine_table`).

``docs/datapath.md`` is the arithmetic these rules produce. Everything here
is numpy; the torch quantizers (:mod:`dhq_rtl.reference.quantizers`) are the
differentiable twins of the grid rules.
"""

import math

import numpy as np

from .fixedpoint import round_half_away, signed_max

__all__ = ["first_layer_input_matrix", "sine_unit", "output_unit", "stored_weight_unit", "grid_max",
           "np_grid_values", "snap_scales", "snap_up", "integer_weights", "integer_bias", "sine_table"]


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


def snap_up(gain, mult_bits):
    """Snap positive gains onto the exporter's ``mult / 2**shift`` grid, rounding
    **up** (never below ``gain``), so a snapped min-max step clips nothing.

    Returns the snapped gains (float64). They are fixed points of
    :func:`snap_scales`: exporting them changes nothing.
    """
    gain = np.atleast_1d(np.asarray(gain, dtype=np.float64))
    limit = (1 << mult_bits) - 1
    _, shift, _ = snap_scales(gain, mult_bits)
    while True:
        mult = np.maximum(np.ceil(gain * 2.0 ** shift - 1e-9), 1)
        if mult.max() <= limit or shift == 0:
            break
        shift -= 1
    if mult.max() > limit:
        raise ValueError(f"a scale gain of {gain.max():.3g} needs more than {mult_bits} multiplier bits")
    return mult / 2.0 ** shift


def integer_weights(weight, stored_step, bits, midrise=False):
    """The stored integer weights of a layer: ``weight`` (float ``(n_out, n_in)``)
    in units of ``stored_step`` (per row, ``(n_out,)``: the real value of one
    unit of the stored integer, i.e. the snapped step, or half of it on the
    mid-rise grid, :func:`stored_weight_unit`), rounded half away from zero and
    clamped to ``±(2^(b−1) − 1)``; on the mid-rise grid the odd integers
    ``2q + 1`` of ``q = clamp(floor(w/step), −2^(b−1), 2^(b−1) − 1)``."""
    w = np.asarray(weight, dtype=np.float64)
    stored_step = np.asarray(stored_step, dtype=np.float64).reshape(-1, 1)
    if midrise:
        # a mid-rise weight (q + ½)·s is the odd integer 2q + 1 of the half step s/2
        return (2 * np_grid_values(w / (2 * stored_step), bits, True)).astype(np.int64)
    wmax = signed_max(bits)
    return np.clip(round_half_away(w / stored_step), -wmax, wmax)


def integer_bias(bias, unit, shift, fold, last, phase_bits):
    """The integer bias ``B`` of a layer (``docs/datapath.md``, steps 6 and 7).

    ``bias``: the float bias per output channel; ``unit``: :func:`sine_unit`
    or :func:`output_unit`; ``shift``: the layer's ``S``; ``fold``: the
    per-channel constant a mid-rise input adds (``M·Σ_j W_j / 2``, else 0).
    A sine layer's bias is reduced mod ``2^(K+S)`` (whole turns); the output
    layer's carries the ``(y + 1)`` offset and the ``½`` of round half up."""
    b = np.asarray(bias, dtype=np.float64)
    if last:
        return round_half_away(((b + 1.0) * unit + 0.5) * 2.0 ** shift + fold)
    return np.mod(round_half_away(b * unit * 2.0 ** shift + fold), 1 << (phase_bits + shift))


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
