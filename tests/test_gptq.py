"""Error-compensating (GPTQ) rounding, and the training schedules around it."""

import numpy as np
import pytest
import torch

from dhq_rtl.export import export_model
from dhq_rtl.numerics import output_unit
from dhq_rtl.images import load_image
from dhq_rtl.reference.fit import FitConfig, method_specs, train_float
from dhq_rtl.reference.gptq import gptq_quantize, gptq_round
from dhq_rtl.reference.qmodel import QuantSiren, integer_coords
from dhq_rtl.reference.quantizers import qmax
from dhq_rtl.synthetic import fakequant_forward

torch.set_num_threads(1)


def _correlated_inputs(n_points, n, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(n, n, generator=g, dtype=torch.float64)
    return torch.randn(n_points, n, generator=g, dtype=torch.float64) @ mix


def _nearest(w, step, bits):
    m = qmax(bits)
    return torch.clamp(torch.round(w / step[:, None]), -m, m) * step[:, None]


@pytest.mark.parametrize("bits", [3, 4, 6])
def test_gptq_values_are_on_the_grid_and_the_free_column_is_not(bits):
    g = torch.Generator().manual_seed(bits)
    x = _correlated_inputs(400, 12, bits)
    x1 = torch.cat([x, torch.ones(400, 1, dtype=torch.float64)], dim=1)
    w = torch.randn(5, 13, generator=g, dtype=torch.float64)
    step = w[:, :12].abs().amax(dim=1) / qmax(bits)
    q = gptq_round(w, x1.T @ x1, step, bits, 12)
    k = q[:, :12] / step[:, None]
    assert torch.allclose(k, torch.round(k), atol=1e-9)
    assert torch.round(k).abs().max() <= qmax(bits)
    assert not torch.allclose(q[:, 12], w[:, 12])  # the bias took part of the compensation


def test_gptq_equals_nearest_rounding_for_uncorrelated_inputs():
    """A diagonal Hessian couples no columns: nothing to compensate."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 8, generator=g, dtype=torch.float64)
    hess = torch.diag(torch.rand(8, generator=g, dtype=torch.float64) + 0.5)
    step = w.abs().amax(dim=1) / qmax(4)
    assert torch.equal(gptq_round(w, hess, step, 4, 8), _nearest(w, step, 4))


@pytest.mark.parametrize("seed", range(4))
def test_gptq_lowers_the_layer_output_error(seed):
    x = _correlated_inputs(500, 16, seed)
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    step = w.abs().amax(dim=1) / qmax(4)
    ref = x @ w.T
    err_nearest = ((x @ _nearest(w, step, 4).T - ref) ** 2).sum()
    err_gptq = ((x @ gptq_round(w, x.T @ x, step, 4, 16).T - ref) ** 2).sum()
    assert err_gptq < 0.8 * err_nearest


def test_gptq_argument_errors():
    w = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"hessian must be \(3, 3\)"):
        gptq_round(w, torch.eye(2), 1.0, 4, 3)
    with pytest.raises(ValueError, match="n_quant must be in 0..3"):
        gptq_round(w, torch.eye(3), 1.0, 4, 4)
    with pytest.raises(ValueError, match="bit width"):
        gptq_round(w, torch.eye(3), 1.0, 1, 3)


@pytest.fixture(scope="module")
def small_fit():
    pixels = load_image(_image("camera"), 16)
    cfg = FitConfig(width=16, depth=2, seed=3)
    return pixels, train_float(pixels, cfg, 300)


def _image(name):
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "bench" / "images" / f"{name}.png"


def _quant_model(siren, rotate, bits=4):
    import copy

    specs = method_specs("dhq" if rotate else "naive", siren.n_layers, bits, bits, True)
    qm = QuantSiren(copy.deepcopy(siren), specs, height=16, width=16)
    qm.init_steps("mse")
    qm.search_first_layer_step()
    return qm


@pytest.mark.parametrize("rotate", [False, True])
def test_gptq_model_beats_nearest_and_exports_exactly(small_fit, rotate):
    _, siren = small_fit
    with torch.no_grad():
        ref = siren(torch.tensor(integer_coords(16, 16, False), dtype=torch.float32) / 15.0)
    nearest = _quant_model(siren, rotate)
    qm = _quant_model(siren, rotate)
    errors = gptq_quantize(qm, siren)
    assert len(errors) == siren.n_layers and all(e >= 0 for e in errors)
    with torch.no_grad():
        y, y_nearest = qm(), nearest()
    assert ((y - ref) ** 2).mean() < ((y_nearest - ref) ** 2).mean()
    # the rounded weights are on the export grid: the exported model computes the same thing
    layers = qm.float_layers()
    model = export_model(layers, height=16, width=16, channels=1, omega0=siren.omega0)
    fq = fakequant_forward(layers, integer_coords(16, 16, layers[0].rotate), siren.omega0, model.pixel_bits)
    assert np.allclose(y.double().numpy(), fq / output_unit() - 1.0, atol=2e-4)


def test_gptq_needs_the_lsq_quantizer(small_fit):
    _, siren = small_fit
    qm = QuantSiren(siren, method_specs("naive", siren.n_layers, 4, 4, True), height=16, width=16,
                    quantizer="minmax")
    with pytest.raises(ValueError, match="lsq"):
        gptq_quantize(qm, siren)


def test_schedules_share_one_budget():
    w4, w6, w8 = (FitConfig(w_bits=b, a_bits=b) for b in (4, 6, 8))
    assert w4.is_from_start() and (w4.float_steps(), w4.train_qat_steps()) == (100, 2400)
    assert not w6.is_from_start() and (w6.float_steps(), w6.train_qat_steps()) == (2000, 500)
    assert w8.is_ptq() and (w8.float_steps(), w8.train_qat_steps()) == (2400, 100)  # fine-tuned at the end
    plain = FitConfig(w_bits=8, a_bits=8, fine_tune_steps=0)
    assert plain.is_ptq() and (plain.float_steps(), plain.train_qat_steps()) == (2500, 0)
    whole = FitConfig(w_bits=8, a_bits=8, steps=50, qat_steps=30, fine_tune_steps=500)
    assert (whole.float_steps(), whole.train_qat_steps()) == (0, 80)  # never more than the budget
    fp = FitConfig(method="fp32", w_bits=4, a_bits=4)
    assert not fp.is_from_start() and (fp.float_steps(), fp.train_qat_steps()) == (2500, 0)
    off = FitConfig(w_bits=4, a_bits=4, from_start_bits=1)
    assert not off.is_from_start() and off.float_steps() == 2000
    assert FitConfig(w_bits=4, a_bits=4).qat_lr_for() == FitConfig().lr  # from the start: the float rate
    assert FitConfig(w_bits=4, a_bits=8, method="wonly").is_from_start()
    with pytest.raises(ValueError, match="rounding must be nearest or gptq"):
        FitConfig(rounding="best").check()
    with pytest.raises(ValueError, match="warmup_steps"):
        FitConfig(warmup_steps=-1).check()


def test_float_snapshots_are_the_states_of_a_shorter_run_on_the_same_horizon(small_fit):
    pixels, _ = small_fit
    cfg = FitConfig(width=8, depth=2, seed=1)
    kept = train_float(pixels, cfg, 40, horizon=40, snapshots={10, 25})
    assert sorted(kept) == [10, 25, 40]
    short = train_float(pixels, cfg, 25, horizon=40)
    for a, b in zip(kept[25].parameters(), short.parameters()):
        assert torch.equal(a, b)
    other = train_float(pixels, cfg, 25)  # its own, shorter horizon decays faster
    assert not all(torch.equal(a, b) for a, b in zip(kept[25].parameters(), other.parameters()))
