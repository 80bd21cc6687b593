"""Error-compensating rounding of a quantized SIREN's weights (GPTQ-style PTQ).

Round-to-nearest treats every weight on its own. :func:`gptq_round` instead
quantizes a layer's weight matrix one input column at a time and moves the
columns not yet quantized so that the *layer output* error
``‖(W − Q)·Xᵀ‖²`` stays small (Frantar et al. 2022, "GPTQ", the optimal
brain surgeon update with the inverse Hessian ``(XᵀX)⁻¹`` of the layer input).
:func:`gptq_quantize` applies it to a :class:`~.qmodel.QuantSiren` layer by
layer, in order, with two additions that matter for these small networks:

* **inputs of the quantized model**: layer ``i`` is fitted on the inputs the
  quantized layers ``0…i−1`` actually produce (their rounding, their
  quantized activations), so every layer also compensates the error of the
  layers before it; its activation step is re-chosen (clipping-aware MSE) on
  those inputs;
* **least-squares refit and a free bias**: before rounding, ``[W, b]`` is
  refitted so that the quantized-input layer reproduces the float model's
  pre-activation on every pixel, and the bias (not quantized; the exporter
  folds it at ``2^-shift`` resolution) is the last column of the update, so
  it absorbs what the weight columns could not.

Layer 0 acts on exact coordinates (nothing to compensate) and keeps its
grid-searched steps (:meth:`~.qmodel.QuantSiren.search_first_layer_step`);
only its bias is refitted. Weight steps are the exporter's snapped steps, so
the export stays exact. Measured (camera 128², here; docs/quantization.md):
W6A6 PTQ 27.90 → 28.44 dB, W4A4 PTQ 19.39 → 20.75 dB, W8A8 unchanged.
"""

import torch

from .quantizers import grid_values, mse_step, qmax

__all__ = ["gptq_round", "gptq_quantize"]


def gptq_round(weight, hessian, step, bits, n_quant, damp=0.01, order=None):
    """Quantize the first ``n_quant`` columns of ``weight`` with error compensation.

    ``weight``: float64 ``(rows, n)``; the columns after ``n_quant`` (a bias)
    are never quantized but take their share of the compensation.
    ``hessian``: ``XᵀX`` of the layer input ``(n, n)`` (the bias column's input
    is the constant 1). ``step``: per-row step ``(rows,)`` (or a scalar).
    ``damp``: added to the diagonal as a fraction of its mean (keeps the
    Cholesky factorisation stable for correlated inputs). ``order``: the
    column order (default: descending Hessian diagonal, the most active
    inputs first; the unquantized columns always last). Returns the new
    ``(rows, n)`` matrix: quantized columns are ``k·step`` with
    ``|k| ≤ 2**(bits−1) − 1``.
    """
    w = torch.as_tensor(weight, dtype=torch.float64).clone()
    h = torch.as_tensor(hessian, dtype=torch.float64)
    rows, n = w.shape
    if h.shape != (n, n):
        raise ValueError(f"hessian must be ({n}, {n}), got {tuple(h.shape)}")
    if not 0 <= n_quant <= n:
        raise ValueError(f"n_quant must be in 0..{n}, got {n_quant}")
    m = qmax(bits)
    step = torch.as_tensor(step, dtype=torch.float64).reshape(-1)
    step = step.expand(rows) if step.numel() == 1 else step
    if order is None:
        diag = torch.diagonal(h)[:n_quant]
        order = torch.cat([torch.argsort(diag, descending=True), torch.arange(n_quant, n)])
    order = torch.as_tensor(order, dtype=torch.long)
    w = w[:, order]
    h = h[order][:, order]
    quantized = order < n_quant
    h = h + damp * torch.diagonal(h).mean() * torch.eye(n, dtype=h.dtype)
    # upper Cholesky factor of H⁻¹: row j holds the update of the later columns
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    for j in range(n):
        if not quantized[j]:
            continue
        q = torch.clamp(torch.round(w[:, j] / step), -m, m) * step
        err = (w[:, j] - q) / u[j, j]
        w[:, j + 1:] -= err[:, None] * u[j, j + 1:][None, :]
        w[:, j] = q
    return w[:, torch.argsort(order)]


@torch.no_grad()
def gptq_quantize(qm, float_siren, damp=0.01):
    """Round every quantized layer of ``qm`` (a :class:`~.qmodel.QuantSiren`
    with initialised steps) by :func:`gptq_round`, in layer order, against the
    pre-activations of ``float_siren`` (the float model it was made from; a
    separate copy, since ``qm``'s weights are overwritten). The LSQ quantizer
    only. Returns the relative pre-activation error of each layer after
    rounding, ``‖z_q − z_float‖² / ‖z_float‖²``.
    """
    if qm.quantizer != "lsq":
        raise ValueError("GPTQ rounding needs the lsq quantizer (min-max steps follow the weights)")
    siren = qm.siren
    n = siren.n_layers
    first = qm.first_matrix.double()
    coords = qm.coords.double()
    _, float_inputs = float_siren(qm.coords @ qm.first_matrix.T, return_hidden=True)
    errors = []
    h = None
    for i, lin in enumerate(siren.linears):
        spec = qm.specs[i]
        flin = float_siren.linears[i]
        if i == 0:
            x_q, x_f = coords, coords
            w_f = flin.weight.double() @ first
        else:
            a = h.float()
            if spec.a_bits is not None:
                x = a @ qm.rot[a.shape[1]].T if spec.rotate else a
                qm.log_a_step[i].copy_(torch.log(mse_step(x, spec.a_bits, midrise=spec.act_midrise)))
            x_q = qm.layer_input(i, a).double()
            x_f, w_f = float_inputs[i].double(), flin.weight.double()
            if spec.rotate:
                r = qm.rot[x_f.shape[1]].double()
                x_f, w_f = x_f @ r.T, w_f @ r.T
        target = x_f @ w_f.T + flin.bias.double()
        x1 = torch.cat([x_q, torch.ones(len(x_q), 1, dtype=torch.float64)], dim=1)
        hess = x1.T @ x1
        if i == 0:
            wb = torch.cat([w_f, flin.bias.double()[:, None]], dim=1)
        else:  # refit [W, b] on the quantized inputs (tiny ridge for rank-deficient inputs)
            ridge = 1e-6 * torch.diagonal(hess).mean() * torch.eye(len(hess), dtype=torch.float64)
            wb = torch.linalg.solve(hess + ridge, x1.T @ target).T
        k = wb.shape[1] - 1
        if spec.w_bits is not None:
            if i == 0:
                step = qm.weight_step(0).detach().double().reshape(-1)  # the grid-searched steps
                wb[:, :k] = grid_values(wb[:, :k] / step[:, None], qmax(spec.w_bits), spec.w_midrise) * step[:, None]
                wb[:, k] = (target - x_q @ wb[:, :k].T).mean(dim=0)
            else:
                qm.log_w_step[i].copy_(torch.log(mse_step(wb[:, :k].float(), spec.w_bits, per_row=True)))
                step = qm.weight_step(i).detach().double().reshape(-1)
                wb = gptq_round(wb, hess, step, spec.w_bits, k, damp)
        qm.set_effective_weight(i, wb[:, :k])
        lin.bias.copy_(wb[:, k].float())
        z = x_q @ qm.quant_weight(i).double().T + lin.bias.double()
        errors.append(float(((z - target) ** 2).sum() / (target ** 2).sum()))
        h = z if i == n - 1 else torch.sin(qm.omega0 * z)
    return errors
