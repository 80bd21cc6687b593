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

from .fixedpoint import signed_bits, signed_max
from .model_image import LayerImage, ModelImage
from .numerics import (first_layer_input_matrix, integer_bias, integer_weights, output_unit, sine_table,  # noqa: F401
                       sine_unit, snap_scales, stored_weight_unit)

__all__ = ["FloatLayer", "export_model", "with_float_model"]


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
        mult, shift, snapped = snap_scales(step * stored_weight_unit(w_midrise) * fl.act_step * unit, mult_bits)
        wq = integer_weights(w, snapped / (fl.act_step * unit), fl.weight_bits, w_midrise)
        midrise = bool(fl.act_midrise)
        if midrise and (i == 0 or fl.rotate):
            raise ValueError(f"layer {i}: only an unrotated input of a later layer can be mid-rise")
        # mid-rise input: Σ_j w_j·(q_j + ½) = acc + ½·Σ_j w_j, a constant per channel
        fold = mult * wq.sum(axis=1) / 2.0 if midrise else 0.0
        bias = integer_bias(fl.bias, unit, shift, fold, last, phase_bits)
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


def with_float_model(model, weights, biases):
    """``model`` with the float model's parameters attached (format version
    3): per layer the weight ``W`` and bias ``b`` exactly as the float model
    has them (float32; layer 0 acting on the real coordinates ``c ∈ [−1,
    1]²``, nothing rotated), for the full-precision core. Returns the
    validated model."""
    if len(weights) != len(model.layers) or len(biases) != len(model.layers):
        raise ValueError(f"need a weight and a bias for each of the {len(model.layers)} layers, "
                         f"got {len(weights)} and {len(biases)}")
    for layer, w, b in zip(model.layers, weights, biases):
        layer.float_weight = np.array(w, dtype=np.float32)
        layer.float_bias = np.array(b, dtype=np.float32)
    return model.validate()
