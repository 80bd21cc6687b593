"""Greedy refinement of the integer weight codes after QAT, on the integer model.

QAT with straight-through gradients ends on *some* set of integer codes: the
rounding of the latent float weights at the best iterate. It is not a local
minimum of the quantized model's loss over the codes themselves — moving a
single code one level up or down often lowers the loss, because the
straight-through gradient only approximates what a whole-level jump does.
:func:`refine_codes` searches those moves directly on the loss of the
exported integer model (:class:`~.emulate.DatapathEmulator`, bit-exact with
the golden model: phase, sine-table and bias rounding included):

1. with every code fixed, the gradient ``g`` of the hardware loss (mean
   squared error over every pixel of the integer model's output before the
   pixel's rounding, :meth:`~.qmodel.QuantSiren.forward` with
   ``hardware=True``) with respect to each quantized weight ranks the moves:
   code ``q → q − sign(g)`` (inside the grid), predicted gain ``|g|·step``;
2. the ``candidates`` best-ranked moves are tried one after the other on the
   integer model, and each is kept only if its loss drops (so the loss never
   rises: the result is at least as good as the input);
3. repeat (``rounds``) until a round keeps nothing.

Only the codes change (and, for a layer with a mid-rise input, the channel's
integer bias, which holds half the row's sum); steps, biases and activation
steps stay. A move in layer ``i`` changes one accumulator column by the
code's input column (exact integers) and recomputes the layers after ``i``
from the cached phases. Afterwards the latent weights are set to the centres
of their codes' bins, so :meth:`~.qmodel.QuantSiren.export` gives exactly
the refined integer model (checked). Cost: one forward-and-backward pass per
round plus at most ``candidates`` partial integer passes (``evaluations``).
"""

import math

import numpy as np
import torch

from ..numerics import integer_bias
from .emulate import DatapathEmulator

__all__ = ["refine_codes"]


class _IntegerState:
    """The integer model's trace on every pixel, updated move by move."""

    def __init__(self, qm, target):
        self.qm = qm
        self.model, self.layers = qm.export()
        self.emu = DatapathEmulator(self.model)
        self.trace = self.emu.trace()
        self.target = target.to(torch.float64)
        self.unit = qm.unit(len(self.layers) - 1)
        self.loss = self.loss_of(self.trace[-1]["acc"])

    def loss_of(self, acc_last):
        y = self.emu.output_level(acc_last) / self.unit - 1.0
        return torch.mean((y - self.target) ** 2).item()

    def stored_limits(self, i):
        """Stored-integer range and one code level in stored units."""
        lay = self.model.layers[i]
        if lay.weight_midrise:
            return (1 << lay.weight_bits) - 1, 2  # odd integers 2q + 1
        m = (1 << (lay.weight_bits - 1)) - 1
        return m, 1

    def channel_bias(self, i, row, weight_row):
        """The integer bias of channel ``row`` of layer ``i`` with the stored
        weights ``weight_row`` (it changes only for a mid-rise input)."""
        fl, lay = self.layers[i], self.model.layers[i]
        if not fl.act_midrise:
            return None
        last = i == len(self.layers) - 1
        fold = lay.mult[row] * weight_row.sum() / 2.0
        return int(integer_bias(fl.bias[row:row + 1], self.qm.unit(i), lay.shift, fold, last,
                                self.model.phase_bits)[0])

    def try_move(self, i, row, col, delta):
        """Apply stored-weight change ``delta`` at ``(i, row, col)`` if it lowers
        the loss; return whether it was kept."""
        emu, lay = self.emu, self.model.layers[i]
        old = int(lay.weight[row, col])
        old_bias = int(lay.bias[row])
        row_w = lay.weight[row].astype(np.int64).copy()
        row_w[col] = old + delta
        emu.set_weight_code(i, row, col, old + delta, self.channel_bias(i, row, row_w))
        acc = self.trace[i]["acc"].clone()
        acc[:, row] += delta * self.trace[i]["q"][:, col]
        trial = self.trace[:i] + [emu.step(i, self.trace[i]["q"], acc)]
        trial = emu.trace(start=(i + 1, trial))
        new = self.loss_of(trial[-1]["acc"])
        return trial, new, old, old_bias

    def undo(self, i, row, col, old, old_bias):
        self.emu.set_weight_code(i, row, col, old, old_bias)


@torch.no_grad()
def refine_codes(qm, target, rounds=20, candidates=512, tolerance=1e-9):
    """Refine the weight codes of every quantized layer of ``qm`` (a
    :class:`~.qmodel.QuantSiren`, lsq steps) on ``target`` (``(P, channels)``,
    every pixel of the image in raster order), in place.

    A move is kept when it lowers the integer model's loss by more than
    ``tolerance`` times the current loss. Returns a dict: ``loss`` before and
    after, ``moves`` kept, ``evaluations`` (partial integer passes),
    ``rounds`` run.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be an integer ≥ 0, got {rounds!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
    if qm.quantizer != "lsq":
        raise ValueError("code refinement needs the lsq quantizer (min-max steps follow the weights)")
    layers = [i for i in range(qm.siren.n_layers) if qm.specs[i].w_bits is not None]
    state = _IntegerState(qm, target)
    start_loss = state.loss
    moves = evaluations = done = 0
    for _ in range(rounds):
        done += 1
        ranked = _rank_moves(qm, state, layers, target)
        kept = 0
        for gain, i, row, col, delta in ranked[:candidates]:
            trial, new, old, old_bias = state.try_move(i, row, col, delta)
            evaluations += 1
            if new < state.loss * (1 - tolerance):
                state.trace, state.loss = trial, new
                kept += 1
            else:
                state.undo(i, row, col, old, old_bias)
        moves += kept
        if not kept:
            break
    _set_latent_weights(qm, state, layers)
    end_loss = state.loss_of(DatapathEmulator(qm.export()[0]).trace()[-1]["acc"])
    if end_loss != state.loss:
        raise AssertionError("refined codes did not survive the export")  # a bug, not a user error
    return {"loss_before": start_loss, "loss_after": end_loss, "moves": moves, "evaluations": evaluations,
            "rounds": done, "psnr_gain_db": 10 * math.log10(start_loss / end_loss) if end_loss > 0 else 0.0}


def _rank_moves(qm, state, layers, target):
    """Candidate moves ``(gain, layer, row, col, stored delta)``, best first:
    the gradient of the hardware loss in each quantized weight, at the
    integer model's current codes."""
    weights = {}
    for i in layers:
        lay = state.model.layers[i]
        unit = qm.weight_step(i).detach() / (2 if lay.weight_midrise else 1)  # one stored unit
        weights[i] = (torch.as_tensor(lay.weight, dtype=torch.float32) * unit).requires_grad_(True)
    with torch.enable_grad():
        hw = qm.hardware_dequantize(state.layers, state.trace)
        y = qm(hardware=hw, weights=[weights.get(i) for i in range(qm.siren.n_layers)])
        torch.mean((y - target) ** 2).backward()
    out = []
    for i in layers:
        lay = state.model.layers[i]
        limit, level = state.stored_limits(i)
        g = weights[i].grad
        delta = (-torch.sign(g) * level).to(torch.int64)
        stored = torch.as_tensor(lay.weight, dtype=torch.int64)
        ok = (delta != 0) & ((stored + delta).abs() <= limit)
        step = qm.weight_step(i).detach().expand_as(g)
        gain = torch.where(ok, g.abs() * step, torch.zeros_like(g))
        rows, cols = torch.nonzero(gain > 0, as_tuple=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            out.append((float(gain[r, c]), i, r, c, int(delta[r, c])))
    out.sort(key=lambda t: -t[0])
    return out


def _set_latent_weights(qm, state, layers):
    """Latent weights at the centres of the refined codes' bins."""
    for i in layers:
        lay = state.model.layers[i]
        unit = qm.weight_step(i).detach().double() / (2 if lay.weight_midrise else 1)
        qm.set_effective_weight(i, torch.as_tensor(lay.weight, dtype=torch.float64) * unit)
