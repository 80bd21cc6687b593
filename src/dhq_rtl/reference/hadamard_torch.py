"""The orthonormal Hadamard rotation ``H/√n`` as a torch tensor.

Built from :func:`dhq_rtl.hadamard.hadamard_matrix` (Sylvester order), so the
float rotation used in training is the very matrix the integer butterfly
``fwht_int`` applies (up to the ``√n`` the exporter folds into the sine table).
Sylvester ``H`` is symmetric, so ``H = Hᵀ`` and ``(H/√n)² = I``.
"""

import math

import torch

from ..hadamard import hadamard_matrix

__all__ = ["hadamard_orthonormal", "rotate"]


def hadamard_orthonormal(n, dtype=torch.float32):
    """``H_n / √n`` (``n`` a power of two), a ``(n, n)`` tensor."""
    return torch.tensor(hadamard_matrix(n), dtype=dtype) / math.sqrt(n)


def rotate(x, h):
    """``H·x`` for each row ``x`` of a ``(P, n)`` batch: ``x @ Hᵀ``."""
    return x @ h.T
