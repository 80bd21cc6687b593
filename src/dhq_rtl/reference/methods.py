"""Method names and bit-width parsing (no torch import: the CLI checks its
arguments before it loads PyTorch)."""

import re

__all__ = ["METHODS", "DEFAULT_METHOD", "GRIDS", "RECIPES", "FIRST_WIDE_BITS", "parse_bits", "recipe_bits"]

#: Quantization methods (``best`` is an alias of :data:`DEFAULT_METHOD`).
METHODS = ("dhq-auto", "dhq", "naive", "wonly", "fp32", "best")
#: The method ``best`` stands for (chosen by measurement, docs/quantization.md).
DEFAULT_METHOD = "dhq-auto"
#: Quantization grids (:mod:`.quantizers`): of the unrotated sine outputs
#: (``act_grid``) and of the first layer's weights (``first_weight_grid``).
GRIDS = ("midrise", "midtread")
#: Bit-width recipes. ``uniform``: every weight and activation at the stated
#: widths (``--bits`` means what it says). ``first-wide``: layer 0's weights
#: at :data:`FIRST_WIDE_BITS` bits, everything else at the stated widths —
#: layer 0 has no multipliers in hardware (running sums of build-time
#: constants), so its weight width costs only the width of those constants
#: (docs/quantization.md, "Recipes", for the measured cost).
RECIPES = ("uniform", "first-wide")
#: Layer 0's weight bits in the ``first-wide`` recipe.
FIRST_WIDE_BITS = 12


def parse_bits(text):
    """``"w8a8"`` → ``(8, 8)``; both widths in 2..16. Raises ``ValueError``."""
    m = re.fullmatch(r"\s*[wW](\d+)[aA](\d+)\s*", str(text))
    if not m:
        raise ValueError(f"bits must look like w8a8 (weight and activation bits), got {text!r}")
    w, a = int(m.group(1)), int(m.group(2))
    for name, b in (("weight", w), ("activation", a)):
        if not 2 <= b <= 16:
            raise ValueError(f"{name} bits must be in 2..16, got {b}")
    return w, a


def recipe_bits(recipe, n_layers, w_bits, a_bits):
    """Per-layer ``(weight bits, activation bits)`` of a recipe for a model of
    ``n_layers`` layers (layer 0's activation is the exact coordinate: its
    entry is ``a_bits`` but unused). Raises ``ValueError`` for an unknown recipe."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    bits = [(w_bits, a_bits) for _ in range(n_layers)]
    if recipe == "first-wide":
        bits[0] = (max(w_bits, FIRST_WIDE_BITS), a_bits)
    return bits
