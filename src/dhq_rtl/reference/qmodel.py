"""The fake-quant SIREN: what the integer golden model computes, in float.

:class:`QuantSiren` wraps a trained :class:`~.siren.Siren` and computes, per
layer ``i`` (see ``docs/datapath.md`` and ``docs/quantization.md``):

* layer 0 acts on the exact integer centred coordinates ``v`` (never
  quantized; ``(u_x+u_y, u_x−u_y)`` when rotated) with the weight ``W₀·F``
  (:func:`dhq_rtl.numerics.first_layer_input_matrix`), quantized per output
  channel (or per tensor), on the mid-rise grid when ``w_midrise``;
* a later layer takes ``a = sin(ω0·z)`` of the previous layer, rotates it
  (``x = H·a``, orthonormal Sylvester ``H``) if the layer is rotated, and
  quantizes ``x`` with one per-tensor step ``s_a`` (mid-rise grid for an
  unrotated input when ``act_midrise``, see :mod:`.quantizers`); its weight
  is ``W·Hᵀ`` when rotated, else ``W``;
* ``z = q·Wqᵀ + b``; hidden layers output ``sin(ω0·z)``, the last ``y = z``.

Weight steps are always the exporter's snapped steps
(:func:`~.quantizers.snap_weight_step`), so :meth:`QuantSiren.float_layers`
exported with :func:`dhq_rtl.export.export_model` (:meth:`QuantSiren.export`)
gives an integer model that agrees with this float forward pass up to phase,
sine-table and bias rounding. ``forward(hardware=True)`` removes even that
difference: it exports the model as it stands, runs the integer datapath on
it (:class:`~.emulate.DatapathEmulator`, bit-exact with the golden model) and
gives every layer the integer model's input values and the integer model's
output, with the float pass's gradients (straight-through). Training,
best-iterate selection and code refinement use it, so what they optimise is
the exported integer model.

Steps are learned (LSQ) in the log domain, ``s = exp(θ)``, so one Adam
learning rate suits steps of every magnitude; the ``minmax`` quantizer
instead recomputes ``max|x|/m`` at every forward pass (no learned step).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..export import FloatLayer, export_model
from ..numerics import first_layer_input_matrix, output_unit, sine_unit
from ..model_image import MAX_MIDRISE_WEIGHT_BITS
from .emulate import DatapathEmulator
from .hadamard_torch import hadamard_orthonormal
from .quantizers import fake_quant, grid_search_steps, minmax_step, mse_step, qmax, snap_weight_step

__all__ = ["LayerSpec", "QuantSiren", "integer_coords", "set_act_grid", "set_first_weight_grid", "WIDE_BITS"]

#: Bit width used to export float (unquantized) weights or activations.
WIDE_BITS = 16


@dataclass
class LayerSpec:
    """How one layer is quantized.

    ``w_bits``/``a_bits``: bit widths, or ``None`` for float (then the export
    uses :data:`WIDE_BITS`). ``rotate``: Hadamard rotation of the layer's
    input. ``per_channel``: one weight step per output channel (else one per
    tensor). ``a_bits`` of layer 0 is ignored (its input is exact).
    ``act_midrise``: quantize the input on the mid-rise grid (all ``2**b``
    codes; the sine table produces them directly, so only an unrotated input
    of a layer after the first can use it). ``w_midrise``: quantize the
    weights on the mid-rise grid (the first layer only: its weights are
    constants of running sums in hardware, exported as odd integers; a MAC
    layer would need one more multiplier bit).
    """

    w_bits: int | None = 8
    a_bits: int | None = 8
    rotate: bool = False
    per_channel: bool = True
    act_midrise: bool = False
    w_midrise: bool = False


def set_act_grid(specs, midrise):
    """Put every input that can be mid-rise (a quantized, unrotated input of a
    layer after the first) on the mid-rise grid when ``midrise``, every input
    on the mid-tread grid otherwise; ``specs`` is changed in place and returned."""
    for i, s in enumerate(specs):
        s.act_midrise = bool(midrise and i > 0 and not s.rotate and s.a_bits is not None)
    return specs


def set_first_weight_grid(specs, midrise):
    """Put the first layer's quantized weights on the mid-rise grid when
    ``midrise`` (up to :data:`~dhq_rtl.model_image.MAX_MIDRISE_WEIGHT_BITS`
    bits; wider ones, where the grid makes no difference, stay mid-tread),
    on the mid-tread grid otherwise; every later layer's weights on the
    mid-tread grid. ``specs`` is changed in place and returned."""
    for i, s in enumerate(specs):
        s.w_midrise = bool(midrise and i == 0 and s.w_bits is not None and s.w_bits <= MAX_MIDRISE_WEIGHT_BITS)
    return specs


def integer_coords(height, width, rotate):
    """The first layer's integer input ``v`` for every pixel in raster order,
    exactly as :meth:`dhq_rtl.golden.GoldenModel.first_layer_input` builds it
    (int64 array ``(H·W, 2)``)."""
    ys, xs = np.mgrid[0:height, 0:width]
    ux = 2 * xs.ravel().astype(np.int64) - (width - 1)
    uy = 2 * ys.ravel().astype(np.int64) - (height - 1)
    return np.stack([ux + uy, ux - uy] if rotate else [ux, uy], axis=-1)


class QuantSiren(nn.Module):
    """Fake-quant forward pass of a :class:`~.siren.Siren` under per-layer :class:`LayerSpec`s."""

    def __init__(self, siren, specs, *, height, width, quantizer="lsq", phase_bits=10, mult_bits=8,
                 lut_bits=12, pixel_bits=8):
        super().__init__()
        if len(specs) != siren.n_layers:
            raise ValueError(f"need one LayerSpec per layer ({siren.n_layers}), got {len(specs)}")
        if quantizer not in ("lsq", "minmax"):
            raise ValueError(f"quantizer must be 'lsq' or 'minmax', got {quantizer!r}")
        for i, s in enumerate(specs):
            if s.rotate and i > 0 and siren.linears[i].in_features & (siren.linears[i].in_features - 1):
                raise ValueError(f"layer {i} cannot be rotated: its input width is not a power of two")
            for b in (s.w_bits, s.a_bits):
                if b is not None:
                    qmax(b)
            if s.act_midrise and (i == 0 or s.rotate):
                raise ValueError(f"layer {i}: only an unrotated sine input can use the mid-rise grid "
                                 f"({'the coordinates are exact' if i == 0 else 'the requantizer rounds to mid-tread'})")
            if s.w_midrise and i > 0:
                raise ValueError(f"layer {i}: only the first layer's weights can use the mid-rise grid "
                                 f"(the MACs multiply the code itself)")
        self.siren = siren
        self.specs = list(specs)
        self.height, self.width = height, width
        self.quantizer = quantizer
        self.phase_bits, self.mult_bits, self.lut_bits, self.pixel_bits = phase_bits, mult_bits, lut_bits, pixel_bits
        self.omega0 = siren.omega0
        n = siren.n_layers
        self.register_buffer("first_matrix", torch.tensor(
            first_layer_input_matrix(height, width, specs[0].rotate), dtype=torch.float32))
        self.register_buffer("coords", torch.tensor(integer_coords(height, width, specs[0].rotate),
                                                    dtype=torch.float32))
        self.rot = {}
        for i in range(1, n):
            if specs[i].rotate:
                k = siren.linears[i].in_features
                if k not in self.rot:
                    self.rot[k] = hadamard_orthonormal(k)
        self.log_w_step = nn.ParameterList()
        self.log_a_step = nn.ParameterList()
        for i, lin in enumerate(siren.linears):
            rows = lin.out_features if specs[i].per_channel else 1
            self.log_w_step.append(nn.Parameter(torch.zeros(rows, 1)))
            self.log_a_step.append(nn.Parameter(torch.zeros(())))

    # ------------------------------------------------------------ pieces
    def unit(self, i):
        """Phase steps (hidden) or grey levels (output) per unit of ``z``."""
        return output_unit(self.pixel_bits) if i == self.siren.n_layers - 1 else sine_unit(self.omega0, self.phase_bits)

    def effective_weight(self, i):
        """The float weight in the domain the integer layer computes in."""
        w = self.siren.linears[i].weight
        if i == 0:
            return w @ self.first_matrix
        if self.specs[i].rotate:
            return w @ self.rot[w.shape[1]].T
        return w

    @torch.no_grad()
    def set_effective_weight(self, i, eff):
        """Set layer ``i``'s float weight so that :meth:`effective_weight` is
        ``eff`` (the inverse map, computed in ``eff``'s precision)."""
        if i == 0:
            w = eff @ torch.linalg.inv(self.first_matrix.to(eff.dtype))
        elif self.specs[i].rotate:
            w = eff @ self.rot[eff.shape[1]].to(eff.dtype)  # W·Hᵀ·H = W (H orthonormal)
        else:
            w = eff
        self.siren.linears[i].weight.copy_(w)

    def act_step(self, i):
        """The step of layer ``i``'s input activation (1 for the exact coordinates;
        ``1/(2**15−1)`` for a float activation, as exported)."""
        spec = self.specs[i]
        if i == 0:
            return torch.ones(())
        if spec.a_bits is None:
            return torch.tensor(1.0 / qmax(WIDE_BITS))
        return torch.exp(self.log_a_step[i])

    def layer_input(self, i, a):
        """Rotate (if the layer is rotated) and quantize a sine output ``a``."""
        spec = self.specs[i]
        x = a @ self.rot[a.shape[1]].T if spec.rotate else a
        if spec.a_bits is None:
            return x
        if self.quantizer == "minmax":
            step = minmax_step(x, spec.a_bits, midrise=spec.act_midrise)
            with torch.no_grad():
                self.log_a_step[i].copy_(torch.log(step))  # the step the export will use
            return fake_quant(x, step, spec.a_bits, spec.act_midrise)
        return fake_quant(x, self.act_step(i), spec.a_bits, spec.act_midrise)

    def weight_step(self, i, w_eff=None):
        """Layer ``i``'s snapped weight step, shape ``(rows, 1)``."""
        spec = self.specs[i]
        if self.quantizer == "minmax":
            w_eff = self.effective_weight(i) if w_eff is None else w_eff
            step = minmax_step(w_eff, spec.w_bits, per_row=spec.per_channel, midrise=spec.w_midrise)
            step = step.reshape(-1, 1)
        else:
            step = torch.exp(self.log_w_step[i])
        a_step = self.act_step(i)
        if self.quantizer == "minmax" and i > 0 and spec.a_bits is not None:
            # min-max activation steps depend on the data: use the calibrated one for snapping
            a_step = torch.exp(self.log_a_step[i])
        return snap_weight_step(step, float(a_step.detach()), self.unit(i), self.mult_bits, spec.w_midrise)

    def quant_weight(self, i):
        w = self.effective_weight(i)
        spec = self.specs[i]
        if spec.w_bits is None:
            return w
        return fake_quant(w, self.weight_step(i, w), spec.w_bits, spec.w_midrise)

    # ------------------------------------------------------------ forward
    def forward(self, v=None, return_inputs=False, hardware=False, weights=None):
        """``v``: integer first-layer inputs ``(P, 2)`` (default: every pixel).
        Returns ``y`` ``(P, channels)``; with ``return_inputs`` also each
        layer's (rotated, quantized) input.

        ``hardware``: the values are the exported integer model's (``True``:
        :meth:`hardware_values` of the current parameters; or given, as
        :meth:`hardware_dequantize` returns them), the gradients the float
        pass's (straight-through). ``weights``: per layer, a quantized weight
        to use instead of :meth:`quant_weight` (``None`` entries: the layer's
        own)."""
        hw = self.hardware_values(v) if hardware is True else (hardware or None)
        h = self.coords if v is None else v
        inputs = []
        for i in range(self.siren.n_layers):
            x = h if i == 0 else self.layer_input(i, h)
            if hw is not None and i > 0:
                x = x + (hw[0][i] - x).detach()
            inputs.append(x)
            h = self.layer_output(i, x, None if weights is None else weights[i])
        if hw is not None:
            h = h + (hw[1] - h).detach()
        return (h, inputs) if return_inputs else h

    def layer_output(self, i, x, weight=None):
        """Layer ``i`` on its (rotated, quantized) input ``x``: ``sin(ω0·z)``
        for a hidden layer, ``z`` for the last, with ``z = x·Wᵀ + b`` and
        ``W`` = ``weight`` or the quantized weight :meth:`quant_weight`."""
        return self.activation(i, x @ (self.quant_weight(i) if weight is None else weight).T
                               + self.siren.linears[i].bias)

    def activation(self, i, z):
        """Layer ``i``'s output for pre-activation ``z``: ``sin(ω0·z)`` (hidden),
        ``z`` (last layer)."""
        if i == self.siren.n_layers - 1:
            return z
        return torch.sin(self.omega0 * z)

    # ------------------------------------------------------------ the integer model
    @torch.no_grad()
    def export(self, channels=None, meta=None):
        """The integer model of the current parameters: ``(model, layers)``,
        the :class:`~dhq_rtl.model_image.ModelImage` that
        :func:`dhq_rtl.export.export_model` makes of :meth:`float_layers`."""
        if self.quantizer == "minmax":
            self.forward()  # min-max activation steps follow the data: calibrate them
        layers = self.float_layers()
        model = export_model(layers, height=self.height, width=self.width,
                             channels=self.siren.linears[-1].out_features if channels is None else channels,
                             omega0=self.omega0, phase_bits=self.phase_bits, lut_bits=self.lut_bits,
                             mult_bits=self.mult_bits, pixel_bits=self.pixel_bits, meta=meta)
        return model, layers

    def hardware_dequantize(self, layers, trace):
        """Real values of an integer trace (:meth:`~.emulate.DatapathEmulator.trace`):
        per layer ``i ≥ 1`` its input ``(q + ½·midrise)·s_a`` (``None`` for
        layer 0, whose input is exact), and the output ``y = level/unit − 1``
        before the pixel's rounding, as float32 tensors."""
        inputs = [None]
        for i in range(1, len(layers)):
            fl = layers[i]
            q = trace[i]["q"].to(torch.float32)  # codes are exact in float32
            inputs.append((q + 0.5 if fl.act_midrise else q) * fl.act_step)
        y = trace[-1]["level"] / output_unit(self.pixel_bits) - 1.0
        return inputs, y.to(torch.float32)

    @torch.no_grad()
    def hardware_values(self, v=None):
        """``(inputs, y)`` of the exported integer model on ``v`` (default:
        every pixel): see :meth:`hardware_dequantize`."""
        model, layers = self.export()
        emu = DatapathEmulator(model)
        vi = None if v is None else torch.round(v).to(torch.int64)
        return self.hardware_dequantize(layers, emu.trace(vi))

    # ------------------------------------------------------------ initialisation
    @torch.no_grad()
    def init_steps(self, method="mse"):
        """Initialise every step from the float model's weights and activations
        on all pixels: ``method = 'mse'`` (clipping-aware) or ``'minmax'``."""
        pick = mse_step if method == "mse" else minmax_step
        c = self.coords @ self.first_matrix.T
        _, fp_inputs = self.siren(c, return_hidden=True)
        for i in range(self.siren.n_layers):
            spec = self.specs[i]
            if i > 0 and spec.a_bits is not None:
                a = fp_inputs[i]
                x = a @ self.rot[a.shape[1]].T if spec.rotate else a
                self.log_a_step[i].copy_(torch.log(pick(x, spec.a_bits, midrise=spec.act_midrise)))
            if spec.w_bits is not None:
                w = self.effective_weight(i)
                s = pick(w, spec.w_bits, per_row=spec.per_channel, midrise=spec.w_midrise)
                self.log_w_step[i].copy_(torch.log(s).reshape(self.log_w_step[i].shape))

    @torch.no_grad()
    def search_first_layer_step(self):
        """Replace layer 0's weight steps by the grid-searched ones
        (:func:`~.quantizers.grid_search_steps`): per channel, the step on the
        exporter's grid with the least error on its 2 weights. Layer 0's phase
        error grows with the coordinate (a weight error is a frequency error),
        and this layer alone cost 0.5 dB at 8 bits with the MSE step
        (docs/quantization.md). LSQ steps only; keep the step frozen afterwards.
        Returns ``(err_before, err_after)``."""
        spec = self.specs[0]
        if spec.w_bits is None or self.quantizer != "lsq" or not spec.per_channel:
            return None
        w = self.effective_weight(0).double().numpy()
        start = torch.exp(self.log_w_step[0]).double().numpy().reshape(-1)
        steps, before, after = grid_search_steps(w, spec.w_bits, self.unit(0), self.mult_bits, start, spec.w_midrise)
        # stored as log(float32): a hair below the grid point, so that snapping up
        # (which rounds the float32 round trip up) lands exactly on it
        self.log_w_step[0].copy_(torch.log(torch.tensor(steps * (1 - 1e-5), dtype=torch.float32)).reshape(-1, 1))
        return before, after

    # ------------------------------------------------------------ export
    @torch.no_grad()
    def float_layers(self):
        """The :class:`~dhq_rtl.export.FloatLayer` list for :func:`~dhq_rtl.export.export_model`
        (float64; float weights or activations are given :data:`WIDE_BITS` bits)."""
        out = []
        for i, lin in enumerate(self.siren.linears):
            spec = self.specs[i]
            w = lin.weight.detach().double().numpy()
            if i == 0:
                w = w @ first_layer_input_matrix(self.height, self.width, spec.rotate)
            elif spec.rotate:
                k = w.shape[1]
                from ..hadamard import hadamard_matrix
                w = w @ (hadamard_matrix(k).astype(np.float64) / math.sqrt(k)).T
            w_bits = spec.w_bits if spec.w_bits is not None else WIDE_BITS
            a_bits = spec.a_bits if spec.a_bits is not None else WIDE_BITS
            if i == 0:
                a_step = 1.0
            elif spec.a_bits is None:
                a_step = 1.0 / qmax(WIDE_BITS)
            elif self.quantizer == "minmax":
                a_step = float(torch.exp(self.log_a_step[i]))
            else:
                a_step = float(self.act_step(i))
            if spec.w_bits is None:
                step = np.abs(w).max(axis=1) / qmax(WIDE_BITS)
                step = np.maximum(step, 1e-30)
                st = torch.tensor(step, dtype=torch.float64).reshape(-1, 1)
            elif self.quantizer == "minmax":
                st = minmax_step(torch.tensor(w), spec.w_bits, per_row=spec.per_channel,
                                 midrise=spec.w_midrise).reshape(-1, 1)
            else:
                st = torch.exp(self.log_w_step[i]).double()
            w_midrise = bool(spec.w_midrise and spec.w_bits is not None)
            snapped = snap_weight_step(st.double(), a_step, self.unit(i), self.mult_bits, w_midrise)
            step = snapped.numpy().reshape(-1)
            out.append(FloatLayer(weight=w, bias=lin.bias.detach().double().numpy(), weight_bits=w_bits,
                                  act_bits=a_bits, rotate=bool(spec.rotate),
                                  act_midrise=bool(spec.act_midrise and spec.a_bits is not None),
                                  weight_midrise=w_midrise,
                                  weight_step=step if step.size > 1 else float(step[0]), act_step=a_step))
        return out
