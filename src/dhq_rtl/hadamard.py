"""Hadamard matrices and the integer fast Walsh–Hadamard transform.

The transform uses the Sylvester (natural) ordering::

    H_1 = [1],   H_2n = [[H_n,  H_n],
                         [H_n, -H_n]]

``H_n`` has entries ±1 and ``H_n @ H_n.T == n * I``; the orthonormal rotation
used by DHQ is ``H_n / sqrt(n)``. The integer transform is exact: each of the
log2(n) butterfly stages adds one bit, so an input of ``b`` bits needs
``b + log2(n)`` bits at the output.
"""

import numpy as np


def is_power_of_two(n):
    return isinstance(n, (int, np.integer)) and n >= 1 and (n & (n - 1)) == 0


def log2_exact(n):
    """``log2(n)`` for a power of two ``n``; raises ``ValueError`` otherwise."""
    if not is_power_of_two(n):
        raise ValueError(f"{n!r} is not a power of two")
    return int(n).bit_length() - 1


def hadamard_matrix(n):
    """The ``n × n`` Sylvester Hadamard matrix with ±1 entries (int64)."""
    log2_exact(n)
    h = np.ones((1, 1), dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def fwht_int(x):
    """Integer fast Walsh–Hadamard transform along the last axis.

    Equal to ``x @ hadamard_matrix(n).T`` but computed with ``n log2 n``
    additions, stage by stage, in the order of the hardware butterfly:
    stage ``s`` combines the elements ``2**s`` apart (``a + b``, ``a - b``).
    """
    x = np.array(x, dtype=np.int64, copy=True)
    n = x.shape[-1]
    log2_exact(n)
    span = 1
    while span < n:
        y = x.reshape(x.shape[:-1] + (n // (2 * span), 2, span))
        a = y[..., 0, :].copy()
        b = y[..., 1, :]
        y[..., 0, :] = a + b
        y[..., 1, :] = a - b
        x = y.reshape(x.shape)
        span *= 2
    return x


def fwht_float(x):
    """Orthonormal Walsh–Hadamard transform (``H/sqrt(n)``) for float arrays."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    return x @ hadamard_matrix(n).T.astype(np.float64) / np.sqrt(n)
