"""Constructor argument checks shared by the gateware blocks.

Every block validates its integer parameters the same way: a ``TypeError``
for anything that is not an integer (``bool`` included, although Python
counts it as one), a ``ValueError`` naming the allowed range otherwise.
"""

import numpy as np
from amaranth.hdl import Shape

__all__ = ["is_int", "check_int", "check_tag_shape", "check_bool"]

#: Widest pass-through tag a block accepts.
MAX_TAG_BITS = 64


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


def check_tag_shape(tag_shape):
    """A block's pass-through tag: an integer width in ``[0, 64]`` or a shape
    (e.g. a ``data.StructLayout``) at most 64 bits wide. Returns it as given
    (an ``int`` as a Python ``int``)."""
    if is_int(tag_shape, numpy=True):
        check_int("tag_shape", int(tag_shape), 0, MAX_TAG_BITS)
        return int(tag_shape)
    try:
        width = Shape.cast(tag_shape).width
    except TypeError:
        raise TypeError(f"tag_shape must be an integer width or a shape, not {tag_shape!r}") from None
    if width > MAX_TAG_BITS:
        raise ValueError(f"tag_shape must be at most {MAX_TAG_BITS} bits wide, got {width}")
    return tag_shape


def check_bool(name, value):
    """Raise ``TypeError`` unless ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
