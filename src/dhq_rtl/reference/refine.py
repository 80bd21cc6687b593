"""Greedy refinement of the integer weight codes after QAT.

QAT with straight-through gradients ends on *some* set of integer codes: the
rounding of the latent float weights at the best iterate. It is not a local
minimum of the quantized model's loss over the codes themselves — moving a
single code one level up or down often lowers the loss, because the
straight-through gradient only approximates what a whole-level jump does.
:func:`refine_codes` searches those moves directly on the true loss:

1. with every code fixed, the gradient ``g`` of the loss (mean squared error
   over every pixel, the fitting objective) with respect to each quantized
   weight ranks the moves: code ``q → q − sign(g)`` (inside the grid), predicted
   gain ``|g|·step``;
2. the ``candidates`` best-ranked moves are tried one after the other on the
   exact quantized forward pass, and each is kept only if the loss drops
   (so the loss never rises: the result is at least as good as the input);
3. repeat (``rounds``) until a round keeps nothing.

Only the codes change; steps, biases and activation steps stay. A move in
layer ``i`` recomputes layers ``i …`` only (the inputs of the earlier layers
are cached), and within layer ``i`` only the one output channel whose row
changed. Afterwards the latent weights are set to the centres of their
codes' bins, so :meth:`~.qmodel.QuantSiren.float_layers` exports exactly the
refined codes. Cost: one forward-and-backward pass per round plus at most
``candidates`` partial forward passes (``evaluations`` in the result).
"""

import math

import torch

from ..numerics import grid_max
from .quantizers import grid_values, qmax

__all__ = ["refine_codes"]


def _codes(qm, i):
    """Layer ``i``'s grid values in steps (half-integers on the mid-rise
    grid), its steps, and the largest grid value's magnitude."""
    spec = qm.specs[i]
    step = qm.weight_step(i).detach().clone()
    values = grid_values(qm.effective_weight(i).detach() / step, qmax(spec.w_bits), spec.w_midrise)
    return values, step, grid_max(spec.w_bits, spec.w_midrise)


@torch.no_grad()
def refine_codes(qm, target, rounds=20, candidates=512, tolerance=1e-6):
    """Refine the weight codes of every quantized layer of ``qm`` (a
    :class:`~.qmodel.QuantSiren`, lsq steps) on ``target`` (``(P, channels)``,
    every pixel of the image in raster order), in place.

    A move is kept when it lowers the loss by more than ``tolerance`` times
    the current loss (float32 sums are not exact). Returns a dict: ``loss``
    before and after, ``moves`` kept, ``evaluations`` (partial forward
    passes), ``rounds`` run.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be an integer ≥ 0, got {rounds!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
    if qm.quantizer != "lsq":
        raise ValueError("code refinement needs the lsq quantizer (min-max steps follow the weights)")
    n = qm.siren.n_layers
    layers = [i for i in range(n) if qm.specs[i].w_bits is not None]
    codes, steps, wts, limit = {}, {}, {}, {}
    for i in layers:
        codes[i], steps[i], limit[i] = _codes(qm, i)
        wts[i] = codes[i] * steps[i]  # kept in step with the codes, one element per move

    def weight(i):
        return wts[i] if i in wts else qm.quant_weight(i).detach()

    def set_code(i, row, col, code):
        codes[i][row, col] = code
        wts[i][row, col] = code * steps[i][row if steps[i].shape[0] > 1 else 0, 0]

    def run(start, inputs, outputs):
        """Recompute layers ``start …`` into ``inputs``/``outputs`` (lists, updated in place)."""
        for i in range(start, n):
            if i > 0:
                inputs[i] = qm.layer_input(i, outputs[i - 1])
            outputs[i] = qm.layer_output(i, inputs[i], weight(i))

    def loss(y):
        return torch.mean((y - target) ** 2).item()

    inputs, outputs = [qm.coords] + [None] * (n - 1), [None] * n
    run(0, inputs, outputs)
    start_loss = cur = loss(outputs[-1])
    moves = evaluations = done = 0
    for _ in range(rounds):
        done += 1
        # 1. rank the moves by the gradient of the loss in each quantized weight
        with torch.enable_grad():
            leaves = {i: weight(i).clone().requires_grad_(True) for i in layers}
            torch.mean((_full(qm, lambda i: leaves[i] if i in leaves else weight(i)) - target) ** 2).backward()
        ranked = []
        for i in layers:
            g = leaves[i].grad
            d = -torch.sign(g)
            gain = torch.where((d != 0) & ((codes[i] + d).abs() <= limit[i]), g.abs() * steps[i],
                               torch.zeros_like(g))
            ranked.append((i, gain.reshape(-1), d.reshape(-1)))
        gains = torch.cat([r[1] for r in ranked])
        owner = torch.cat([torch.full((r[1].numel(),), k) for k, r in enumerate(ranked)])
        offset = [0]
        for r in ranked:
            offset.append(offset[-1] + r[1].numel())
        order = torch.argsort(gains, descending=True)[:candidates]
        kept = 0
        # 2. try them one by one on the exact loss
        for t in order.tolist():
            if gains[t] <= 0:
                break
            k = int(owner[t])
            i, _, d = ranked[k]
            flat = t - offset[k]
            row, col = divmod(flat, codes[i].shape[1])
            old = float(codes[i][row, col])
            trial_in, trial_out = list(inputs), list(outputs)
            set_code(i, row, col, old + float(d[flat]))
            # only output channel `row` of layer i changes
            z_row = inputs[i] @ wts[i][row] + qm.siren.linears[i].bias[row]
            out = outputs[i].clone()
            out[:, row] = qm.activation(i, z_row)
            trial_out[i] = out
            run(i + 1, trial_in, trial_out)
            evaluations += 1
            new = loss(trial_out[-1])
            if new < cur * (1 - tolerance):
                cur, inputs, outputs = new, trial_in, trial_out
                kept += 1
            else:
                set_code(i, row, col, old)
        moves += kept
        if not kept:
            break
    cur = loss(_full(qm, weight))  # the exact loss of the result, not the running one
    # 3. latent weights at the centres of the refined codes' bins
    for i in layers:
        qm.set_effective_weight(i, wts[i])
    return {"loss_before": start_loss, "loss_after": cur, "moves": moves, "evaluations": evaluations,
            "rounds": done, "psnr_gain_db": 10 * math.log10(start_loss / cur) if cur > 0 else 0.0}


def _full(qm, weight):
    """The whole forward pass with the weights ``weight(i)`` (every layer recomputed)."""
    h = qm.coords
    for i in range(qm.siren.n_layers):
        h = qm.layer_output(i, h if i == 0 else qm.layer_input(i, h), weight(i))
    return h
