"""The float SIREN-style implicit neural representation.

``depth`` sine layers ``h = sin(ω0 · (W h_prev + b))`` followed by a linear
output layer ``y = W h + b`` (one value per colour channel, ``y ∈ [-1, 1]``
maps to grey levels by ``(y + 1)·127.5``). The input is the pixel coordinate
``c ∈ [-1, 1]²``. Initialisation follows SIREN (Sitzmann et al. 2020): first
layer ``U(−1/2, 1/2)``, later layers ``U(−√(6/n)/ω0, √(6/n)/ω0)``.
"""

import math

import torch
from torch import nn

__all__ = ["Siren"]


class Siren(nn.Module):
    """``depth`` sine layers of ``width`` units and one linear output layer."""

    def __init__(self, width=32, depth=3, channels=1, omega0=30.0):
        super().__init__()
        for name, v, lo in (("width", width, 1), ("depth", depth, 1), ("channels", channels, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer ≥ {lo}, got {v!r}")
        if not isinstance(omega0, (int, float)) or not math.isfinite(omega0) or omega0 <= 0:
            raise ValueError(f"omega0 must be a positive number, got {omega0!r}")
        self.width, self.depth, self.channels, self.omega0 = width, depth, channels, float(omega0)
        dims = [2] + [width] * depth + [channels]
        self.linears = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(dims) - 1))
        with torch.no_grad():
            for i, lin in enumerate(self.linears):
                n_in = lin.in_features
                bound = 1.0 / n_in if i == 0 else math.sqrt(6.0 / n_in) / self.omega0
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-1.0 / math.sqrt(n_in), 1.0 / math.sqrt(n_in))
                if i > 0:
                    lin.bias.div_(self.omega0)

    @property
    def n_layers(self):
        return len(self.linears)

    def forward(self, c, return_hidden=False):
        """``c``: ``(P, 2)`` coordinates in ``[-1, 1]``. Returns ``y`` ``(P, channels)``
        (and, with ``return_hidden``, the list of each layer's input)."""
        h = c
        inputs = []
        for i, lin in enumerate(self.linears):
            inputs.append(h)
            z = lin(h)
            h = z if i == self.n_layers - 1 else torch.sin(self.omega0 * z)
        return (h, inputs) if return_hidden else h
