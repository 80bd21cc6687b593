"""Random SIREN-like models for tests and benchmarks that need no training.

:func:`random_float_layers` draws weights the way SIREN initialises them and
picks quantizer steps from the weights' and activations' ranges;
:func:`random_model` exports them. :func:`fakequant_forward` is the float
(fake-quant) forward pass of the same layers in numpy, which the integer
golden model must match to within the phase and sine-table rounding.
"""

import math

import numpy as np

from .export import FloatLayer, export_model, with_float_model
from .numerics import (first_layer_input_matrix, grid_max, np_grid_values, output_unit, sine_unit, snap_scales,
                       stored_weight_unit)
from .fixedpoint import signed_max
from .hadamard import fwht_float

__all__ = ["random_siren", "random_float_layers", "random_model", "fakequant_forward"]


def _snapped_step(w, bits, act_step, unit, mult_bits, midrise=False):
    half = stored_weight_unit(midrise)
    step = np.abs(w).max(axis=1) / grid_max(bits, midrise)
    step = np.maximum(step, 1e-12)
    _, _, snapped = snap_scales(step * half * act_step * unit, mult_bits)
    return snapped / (act_step * unit * half)


def random_siren(*, width=16, depth=3, channels=1, omega0=30.0, seed=0):
    """The float model of :func:`random_float_layers`: SIREN-initialised
    ``(W, b)`` per layer (``depth`` sine layers + output layer, float64),
    layer 0 acting on the real coordinates ``c ∈ [−1, 1]²``."""
    rng = np.random.default_rng(seed)
    dims = [2] + [width] * depth + [channels]
    out = []
    for i in range(len(dims) - 1):
        n_in, n_out = dims[i], dims[i + 1]
        bound = 1.0 / n_in if i == 0 else math.sqrt(6.0 / n_in) / omega0
        w = rng.uniform(-bound, bound, size=(n_out, n_in))
        b = rng.uniform(-1.0 / math.sqrt(n_in), 1.0 / math.sqrt(n_in), size=n_out) / (1 if i == 0 else omega0)
        if i == len(dims) - 2:
            w = w * omega0  # the output layer is linear: undo the sine-layer scaling
            b = b * omega0 * 0.2
        out.append((w, b))
    return out


def random_float_layers(*, width=16, depth=3, channels=1, size=32, weight_bits=8, act_bits=8,
                        rotate=True, rotate_first=False, omega0=30.0, phase_bits=10, mult_bits=8, seed=0,
                        act_midrise=False, first_weight_midrise=False):
    """SIREN-initialised layers (``depth`` sine layers + output layer;
    :func:`random_siren`) with
    min-max weight steps (snapped) and activation steps covering the sine
    (unrotated) or three standard deviations of the rotated sine (rotated).
    ``act_midrise``: unrotated activations on the mid-rise grid;
    ``first_weight_midrise``: the first layer's weights on the mid-rise grid."""
    siren = random_siren(width=width, depth=depth, channels=channels, omega0=omega0, seed=seed)
    layers = []
    for i, (w, b) in enumerate(siren):
        n_in = w.shape[1]
        last = i == len(siren) - 1
        rot = rotate_first if i == 0 else rotate
        if i == 0:
            w = w @ first_layer_input_matrix(size, size, rot)
            act_step = 1.0
        else:
            if rot:
                w = w @ (np.eye(n_in) @ _hadamard_orthonormal(n_in).T)
                act_step = 3.0 * math.sqrt(0.5) / signed_max(act_bits)
            else:
                act_step = 1.0 / grid_max(act_bits, act_midrise)
        unit = output_unit() if last else sine_unit(omega0, phase_bits)
        w_midrise = bool(first_weight_midrise and i == 0)
        step = _snapped_step(w, weight_bits, act_step, unit, mult_bits, w_midrise)
        layers.append(FloatLayer(weight=w, bias=b, weight_bits=weight_bits, act_bits=act_bits,
                                 rotate=rot, weight_step=step, act_step=act_step,
                                 act_midrise=bool(act_midrise and i > 0 and not rot), weight_midrise=w_midrise))
    return layers


def _hadamard_orthonormal(n):
    from .hadamard import hadamard_matrix
    return hadamard_matrix(n).astype(np.float64) / math.sqrt(n)


def random_model(*, size=32, channels=1, omega0=30.0, phase_bits=10, lut_bits=12, mult_bits=8, **kw):
    """A valid random :class:`ModelImage` (see :func:`random_float_layers`)
    that carries its float model (:func:`random_siren`) too."""
    layers = random_float_layers(size=size, channels=channels, omega0=omega0, phase_bits=phase_bits,
                                 mult_bits=mult_bits, **kw)
    model = export_model(layers, height=size, width=size, channels=channels, omega0=omega0,
                         phase_bits=phase_bits, lut_bits=lut_bits, mult_bits=mult_bits,
                         meta={"source": "random", **{k: v for k, v in kw.items() if isinstance(v, (int, float, bool))}})
    siren = random_siren(channels=channels, omega0=omega0,
                         **{k: kw[k] for k in ("width", "depth", "seed") if k in kw})
    return with_float_model(model, [w for w, _ in siren], [b for _, b in siren])


def fakequant_forward(layers, v, omega0, pixel_bits=8):
    """Float forward pass with quantized weights and activations (no phase or
    table rounding). ``v``: first-layer integer inputs ``(P, 2)``. Returns real
    pixel values ``(P, channels)`` before rounding."""
    h = np.asarray(v, dtype=np.float64)
    for i, fl in enumerate(layers):
        last = i == len(layers) - 1
        step = np.broadcast_to(np.asarray(fl.weight_step, dtype=np.float64), (fl.weight.shape[0],))
        wq = np_grid_values(fl.weight / step[:, None], fl.weight_bits, fl.weight_midrise) * step[:, None]
        if i == 0:
            x = h
        else:
            x = fwht_float(h) if fl.rotate else h
            x = np_grid_values(x / fl.act_step, fl.act_bits, fl.act_midrise) * fl.act_step
        z = x @ wq.T + fl.bias
        h = z if last else np.sin(omega0 * z)
    return (h + 1.0) * output_unit(pixel_bits)
