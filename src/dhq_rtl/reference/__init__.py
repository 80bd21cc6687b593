"""PyTorch reference: the SIREN-style INR, its quantizers and the training flow.

* :mod:`.siren` — the float model (``depth`` sine layers + a linear output layer).
* :mod:`.hadamard_torch` — the orthonormal Sylvester rotation ``H/√n``.
* :mod:`.quantizers` — uniform fake quantizers with a straight-through
  estimator, LSQ (learned step) and MSE-optimal (clipping-aware) step search,
  and the scale snapping the exporter uses.
* :mod:`.qmodel` — the fake-quant model that computes what the integer golden
  model computes (up to phase and sine-table rounding), and its export.
* :mod:`.fit` — the whole flow: fit, choose rotations, PTQ/QAT, export, measure.
"""

from .fit import METHODS, FitConfig, FitResult, fit_image, parse_bits
from .qmodel import LayerSpec, QuantSiren
from .siren import Siren

__all__ = ["Siren", "QuantSiren", "LayerSpec", "FitConfig", "FitResult", "fit_image", "parse_bits", "METHODS"]
