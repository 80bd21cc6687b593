"""Method names and bit-width parsing (no torch import: the CLI checks its
arguments before it loads PyTorch)."""

import re

__all__ = ["METHODS", "DEFAULT_METHOD", "GRIDS", "parse_bits"]

#: Quantization methods (``best`` is an alias of :data:`DEFAULT_METHOD`).
METHODS = ("dhq-auto", "dhq", "naive", "wonly", "fp32", "best")
#: The method ``best`` stands for (chosen by measurement, docs/quantization.md).
DEFAULT_METHOD = "dhq-auto"
#: Quantization grids (:mod:`.quantizers`): of the unrotated sine outputs
#: (``act_grid``) and of the first layer's weights (``first_weight_grid``).
GRIDS = ("midrise", "midtread")


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
