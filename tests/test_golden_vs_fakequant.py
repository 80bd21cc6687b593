"""The model training optimises is the integer golden model, and the float
fake-quant pass stays close to it.

Training's forward pass runs the exported integer model (bit-exact torch
emulation, ``reference/emulate.py``): its pixels must equal the golden
model's, every one, for every method, grid and bit width. The float
fake-quant pass (no phase, sine-table or bias rounding) differs from it by
the hardware's phase rounding (``phase_bits``) and the sine-table rounding
(``lut_bits``); the bounds below were measured on tiny trained models (32×32
camera, width 16, depth 2, 200 + 100 steps; measured |ΔPSNR| ≤ 0.04 dB
everywhere, max per-pixel difference 1 (W16A16), 2–3 (W8A8), 5–10 (W6A6),
11–48 (W4A4): at 4 bits one phase step can move an activation across a
quantization threshold) and carry a margin.
"""

import numpy as np
import pytest
import torch

from dhq_rtl import model_image
from dhq_rtl.golden import GoldenModel
from dhq_rtl.images import default_image_path, load_image
from dhq_rtl.reference.fit import FitConfig, fit_image
from dhq_rtl.reference.qmodel import integer_coords
from dhq_rtl.synthetic import fakequant_forward, random_float_layers

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def camera32():
    return load_image(default_image_path(), 32)


#  method, bits, quantizer, grid (sine outputs and layer-0 weights), max |ΔPSNR| dB, max pixel diff, mean pixel diff
CASES = [
    ("fp32", (8, 8), "lsq", "midrise", 0.05, 3, 0.3),
    ("naive", (8, 8), "lsq", "midrise", 0.1, 8, 0.6),
    ("naive", (8, 8), "lsq", "midtread", 0.1, 8, 0.6),
    ("dhq", (8, 8), "lsq", "midrise", 0.1, 8, 0.8),
    ("dhq-auto", (6, 6), "lsq", "midrise", 0.15, 20, 1.0),
    ("dhq-auto", (6, 6), "lsq", "midtread", 0.15, 20, 1.0),
    ("naive", (4, 4), "lsq", "midrise", 0.3, 96, 1.5),
    ("dhq", (4, 4), "minmax", "midrise", 0.3, 96, 1.5),
]


@pytest.mark.parametrize("method, bits, quantizer, grid, dpsnr, dmax, dmean", CASES)
def test_golden_matches_fakequant(camera32, tmp_path, method, bits, quantizer, grid, dpsnr, dmax, dmean):
    cfg = FitConfig(method=method, w_bits=bits[0], a_bits=bits[1], width=16, depth=2, steps=200, qat_steps=100,
                    quantizer=quantizer, act_grid=grid, first_weight_grid=grid)
    r = fit_image(camera32, cfg)
    first = r.model.layers[0]
    assert first.weight_midrise == (grid == "midrise" and method != "fp32")
    if first.weight_midrise:  # odd integers 2q + 1, the outermost levels used
        assert np.all(first.weight % 2 == 1) and np.abs(first.weight).max() > (1 << (bits[0] - 1))
    unrotated = [i > 0 and not rot and method != "fp32" for i, rot in enumerate(r.rotations)]
    luts = [l.lut for l, u in zip(r.model.layers, unrotated) if u]
    assert bool(luts) == (method in ("naive", "dhq-auto"))  # dhq rotates every layer, fp32 none quantized
    for lut in luts:
        half = len(lut) // 2
        if grid == "midrise":  # mid-rise codes: the second half is the complement of the first
            assert np.array_equal(lut[half:], ~lut[:half]) and lut.min() >= -(1 << (bits[1] - 1))
        else:  # mid-tread: negated, and -2**(b-1) never used
            assert np.array_equal(lut[half:], -lut[:half]) and lut.min() >= 1 - (1 << (bits[1] - 1))
    # training optimised the integer model itself
    assert np.array_equal(r.fakequant_pixels, r.golden_pixels) and r.psnr_fakequant == r.psnr_golden
    assert abs(r.psnr_golden - r.psnr_float_fakequant) <= dpsnr
    diff = np.abs(r.golden_pixels.astype(int) - r.float_fakequant_pixels.astype(int))
    assert diff.max() <= dmax and diff.mean() <= dmean
    # the model is real: far better than a flat grey picture
    assert r.psnr_golden > 16.0
    # and what was written is what was measured
    path = tmp_path / "m.dhq"
    model_image.save(r.model, path)
    assert np.array_equal(GoldenModel(model_image.load(path)).render(), r.golden_pixels)


# measured over seeds 0..5 (max, mean): 10/12: ≤ 9, ≤ 1.06; 12/14: ≤ 5, ≤ 0.50; 8/12: ≤ 10, ≤ 1.77
@pytest.mark.parametrize("phase_bits, lut_bits, bound, mean_bound",
                         [(10, 12, 14, 1.4), (12, 14, 8, 0.7), (8, 12, 16, 2.3)])
def test_random_rotated_model_golden_vs_fakequant(phase_bits, lut_bits, bound, mean_bound):
    """No training: a SIREN-initialised W8A8 model with every layer rotated
    (untrained weights, so the errors are larger than for trained models).
    Finer phases shrink the difference."""
    from dhq_rtl.export import export_model

    layers = random_float_layers(width=16, depth=3, size=24, rotate=True, rotate_first=True,
                                 phase_bits=phase_bits, seed=5)
    m = export_model(layers, height=24, width=24, channels=1, omega0=30.0, phase_bits=phase_bits, lut_bits=lut_bits)
    fq = fakequant_forward(layers, integer_coords(24, 24, True), 30.0)
    fq = np.clip(np.floor(fq + 0.5), 0, 255).reshape(24, 24, 1)
    diff = np.abs(GoldenModel(m).render().astype(int) - fq)
    assert diff.max() <= bound and diff.mean() <= mean_bound
