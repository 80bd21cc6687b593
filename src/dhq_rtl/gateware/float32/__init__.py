"""IEEE-754 binary32 arithmetic units (pipelined, stream in/out).

* :class:`Fp32Mul` — product, round to nearest even;
* :class:`Fp32Add` — sum, round to nearest even;
* :class:`Fp32Sine` — ``sin(2π·t)`` of a phase ``t`` in turns.

Every unit flushes subnormals to zero on input and output and propagates
Inf/NaN as IEEE-754 does (one canonical NaN); its bit-exact numpy twin is in
:mod:`dhq_rtl.float32_ref`, the arithmetic in ``docs/float32.md``.
"""

from .add import Fp32Add
from .mul import Fp32Mul, binary_in_layout, float_out_layout
from .sine import Fp32Sine, sine_in_layout

__all__ = ["Fp32Mul", "Fp32Add", "Fp32Sine", "binary_in_layout", "float_out_layout", "sine_in_layout"]
