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

from .methods import DEFAULT_METHOD, METHODS, parse_bits

__all__ = ["Siren", "QuantSiren", "LayerSpec", "FitConfig", "FitResult", "fit_image", "train_float", "parse_bits",
           "METHODS", "DEFAULT_METHOD"]

_LAZY = {"Siren": "siren", "QuantSiren": "qmodel", "LayerSpec": "qmodel", "FitConfig": "fit", "FitResult": "fit",
         "fit_image": "fit", "train_float": "fit"}


def __getattr__(name):
    # torch is imported only when a model class is first used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
