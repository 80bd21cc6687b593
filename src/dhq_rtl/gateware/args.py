"""Constructor argument checks shared by the gateware blocks.

Every block validates its integer parameters the same way: a ``TypeError``
for anything that is not an integer (``bool`` included, although Python
counts it as one), a ``ValueError`` naming the allowed range otherwise.
"""

import numpy as np

__all__ = ["is_int", "check_int"]


def is_int(value, numpy=False):
    """True for a Python ``int`` that is not a ``bool`` (with ``numpy``, numpy
    integer scalars count too)."""
    kinds = (int, np.integer) if numpy else int
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_int(name, value, lo, hi=None, *, numpy=False):
    """Raise ``TypeError`` unless ``value`` is an integer (:func:`is_int`) and
    ``ValueError`` unless ``lo ≤ value`` (and ``value ≤ hi`` when given); the
    messages name the argument ``name``."""
    if not is_int(value, numpy):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"at least {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
