"""PyTorch reference: SIREN, Hadamard rotation, quantizers, fake-quant model and export."""

import math

import numpy as np
import pytest
import torch

from dhq_rtl.export import export_model
from dhq_rtl.numerics import output_unit, sine_unit, snap_scales
from dhq_rtl.golden import GoldenModel
from dhq_rtl.reference.fit import FitConfig, method_specs, parse_bits, rotation_errors
from dhq_rtl.reference.hadamard_torch import hadamard_orthonormal, rotate
from dhq_rtl.reference.qmodel import LayerSpec, QuantSiren, integer_coords
from dhq_rtl.reference.quantizers import (fake_quant, grad_scale, minmax_step, mse_step, quant_error, round_ste,
                                          snap_weight_step)
from dhq_rtl.reference.siren import Siren
from dhq_rtl.synthetic import fakequant_forward

torch.set_num_threads(1)


# ------------------------------------------------------------------ Hadamard
@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 64])
def test_hadamard_orthonormal(n):
    h = hadamard_orthonormal(n, torch.float64)
    assert torch.allclose(h @ h.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.equal(h, h.T)


@pytest.mark.parametrize("n", [2, 16, 32])
def test_rotation_identity_w_x(n):
    g = torch.Generator().manual_seed(n)
    w = torch.randn(5, n, generator=g, dtype=torch.float64)
    x = torch.randn(7, n, generator=g, dtype=torch.float64)
    h = hadamard_orthonormal(n, torch.float64)
    # W x = (W Hᵀ)(H x), for a batch of rows x
    assert torch.allclose(x @ w.T, rotate(x, h) @ (w @ h.T).T, atol=1e-12)


def test_hadamard_rejects_non_power_of_two():
    with pytest.raises(ValueError):
        hadamard_orthonormal(12)


# ------------------------------------------------------------------ quantizers
def test_round_ste_and_grad_scale():
    x = torch.tensor([0.2, 1.5, 2.5, -0.7], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [0.0, 2.0, 2.0, -1.0]  # half to even, like numpy
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]
    s = torch.tensor(3.0, requires_grad=True)
    z = grad_scale(s, 0.25)
    assert z.item() == 3.0
    z.backward()
    assert s.grad.item() == 0.25


def test_fake_quant_values_and_ste_gradient():
    x = torch.tensor([-2.0, -0.26, 0.0, 0.24, 0.26, 0.9, 1.2], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    y = fake_quant(x, s, 3)  # levels −3..3 → ±1.5
    assert y.tolist() == [-1.5, -0.5, 0.0, 0.0, 0.5, 1.0, 1.0]
    y.sum().backward()
    # straight through inside the range, zero where clipped
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # LSQ step gradient: round(x/s) − x/s inside, ±m outside
    xs = x.detach() / 0.5
    q = torch.clamp(torch.round(xs), -3, 3)
    expected = torch.where(xs.abs() <= 3, q - xs, q).sum()
    assert s.grad.item() == pytest.approx(expected.item())


def test_fake_quant_midrise_values_and_gradients():
    """Mid-rise: every code of 3 bits (−4…3), values (q + ½)·s, no zero level;
    straight through inside ±(m + 1)·s, LSQ step gradient (q + ½) − x/s."""
    x = torch.tensor([-9.0, -1.76, -0.01, 0.0, 0.49, 0.51, 1.74, 1.76, 5.0], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    y = fake_quant(x, s, 3, midrise=True)
    assert y.tolist() == [-1.75, -1.75, -0.25, 0.25, 0.25, 0.75, 1.75, 1.75, 1.75]
    assert sorted(set(fake_quant(torch.linspace(-3, 3, 601), s, 3, midrise=True).tolist())) == \
        [(q + 0.5) * 0.5 for q in range(-4, 4)]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    xs = x.detach() / 0.5
    q = torch.clamp(torch.floor(xs), -4, 3) + 0.5
    assert s.grad.item() == pytest.approx(torch.where(xs.abs() <= 4, q - xs, q).sum().item())


def test_midrise_grid_beats_midtread_on_sine_outputs():
    """The sine outputs (arcsine-distributed, mass at ±1) at 4 bits: the 16
    mid-rise levels quantize them with less error than the 15 mid-tread ones,
    each with its own clipping-aware step."""
    a = torch.sin(torch.linspace(0, 200, 50001))
    tread = quant_error(a, mse_step(a, 4), 4)
    rise = quant_error(a, mse_step(a, 4, midrise=True), 4, midrise=True)
    assert rise < 0.9 * tread  # measured 0.88 (≈ (15/16)², one level more)
    assert minmax_step(a, 4, midrise=True).item() == pytest.approx(1 / 7.5, rel=1e-4)


def test_fake_quant_per_row_step_gradient_shape():
    x = torch.randn(6, 4, requires_grad=True)
    s = torch.full((6, 1), 0.3, requires_grad=True)
    fake_quant(x, s, 4).pow(2).sum().backward()
    assert s.grad.shape == (6, 1) and x.grad.shape == (6, 4)


def test_lsq_step_learns_toward_mse_optimum():
    """Minimising the quantization MSE through LSQ's step gradient moves a
    badly initialised step to (near) the step the grid search finds."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, generator=g)
    best = mse_step(x, 4)
    log_s = torch.tensor(math.log(best.item() * 3), requires_grad=True)
    opt = torch.optim.Adam([log_s], lr=0.02)
    for _ in range(400):
        opt.zero_grad()
        ((fake_quant(x, torch.exp(log_s), 4) - x) ** 2).mean().backward()
        opt.step()
    learned = torch.exp(log_s).detach()
    assert quant_error(x, learned, 4) <= 1.05 * quant_error(x, best, 4)
    assert abs(learned.item() / best.item() - 1) < 0.15


def test_mse_step_beats_minmax_on_gaussian_and_matches_on_uniform():
    g = torch.Generator().manual_seed(1)
    gauss = torch.randn(20000, generator=g)
    assert quant_error(gauss, mse_step(gauss, 4), 4) < 0.6 * quant_error(gauss, minmax_step(gauss, 4), 4)
    unif = torch.rand(20000, generator=g) * 2 - 1
    assert quant_error(unif, mse_step(unif, 8), 8) <= quant_error(unif, minmax_step(unif, 8), 8) * 1.001
    rows = torch.randn(5, 300, generator=g) * torch.arange(1, 6).unsqueeze(1)
    assert mse_step(rows, 6, per_row=True).shape == (5, 1)


@pytest.mark.parametrize("unit", [sine_unit(30.0, 10), sine_unit(10.0, 12), output_unit()])
@pytest.mark.parametrize("mult_bits", [4, 8, 12])
def test_snapping_is_on_the_export_grid_and_never_clips(unit, mult_bits):
    g = torch.Generator().manual_seed(3)
    step = torch.rand(16, 1, generator=g, dtype=torch.float64) * 1e-3 + 1e-5
    act = 1.0 / 127
    snapped = snap_weight_step(step, act, unit, mult_bits).detach().numpy().ravel()
    # never smaller than asked (a min-max step keeps clipping nothing) ...
    assert np.all(snapped >= step.numpy().ravel())
    # ... exactly what the exporter makes of it (a fixed point of snap_scales) ...
    mult, shift, again = snap_scales(snapped * act * unit, mult_bits)
    assert np.array_equal(again / (act * unit), snapped)
    assert mult.max() < 1 << mult_bits and mult.max() >= 1 << (mult_bits - 1)
    # ... and at most one grid step above the exporter's own rounding
    _, shift0, ref = snap_scales(step.numpy().ravel() * act * unit, mult_bits)
    assert np.all(snapped * act * unit - ref <= 2.0 ** -shift0 * (1 + 1e-9) * 2)
    # the gradient passes straight through the snapping
    step.requires_grad_(True)
    snap_weight_step(step, act, unit, mult_bits).sum().backward()
    assert torch.equal(step.grad, torch.ones_like(step))


def test_minmax_export_clips_no_weight():
    torch.manual_seed(0)
    s = Siren(16, 2, 1)
    qm = QuantSiren(s, method_specs("fp32", 3, 8, 8, True), height=16, width=16)
    qm.init_steps("minmax")
    for fl in qm.float_layers():
        step = np.broadcast_to(fl.weight_step, (fl.weight.shape[0],))
        assert np.all(np.abs(fl.weight).max(axis=1) / step <= 2 ** (fl.weight_bits - 1) - 1 + 1e-9)


def test_parse_bits():
    assert parse_bits("w8a8") == (8, 8)
    assert parse_bits("W4A16") == (4, 16)
    for bad in ("8", "w1a8", "w8a17", "a8w8", ""):
        with pytest.raises(ValueError):
            parse_bits(bad)


def test_config_validation():
    with pytest.raises(ValueError, match="method"):
        FitConfig(method="magic").check()
    with pytest.raises(ValueError, match="power of two"):
        FitConfig(method="dhq", width=24).check()
    FitConfig(method="naive", width=24).check()


# ------------------------------------------------------------------ models
def test_siren_validation_and_shapes():
    with pytest.raises(ValueError):
        Siren(width=0)
    with pytest.raises(ValueError):
        Siren(omega0=-1.0)
    s = Siren(16, 2, 3, 30.0)
    y, inputs = s(torch.zeros(5, 2), return_hidden=True)
    assert y.shape == (5, 3) and len(inputs) == 3 and inputs[1].shape == (5, 16)


def test_integer_coords_match_golden():
    for rot in (False, True):
        specs = [LayerSpec(8, 8, rot), LayerSpec(8, 8, False)]
        from dhq_rtl.golden import pixel_coordinates
        xs, ys = pixel_coordinates(6, 10)
        qm = QuantSiren(Siren(8, 1), specs, height=6, width=10)
        qm.init_steps()
        m = _export(qm, 6, 10)
        assert np.array_equal(integer_coords(6, 10, rot), GoldenModel(m).first_layer_input(xs, ys))


def _export(qm, h, w, **kw):
    return export_model(qm.float_layers(), height=h, width=w, channels=qm.siren.channels, omega0=qm.omega0,
                        phase_bits=qm.phase_bits, mult_bits=qm.mult_bits, **kw)


@pytest.mark.parametrize("quantizer", ["lsq", "minmax"])
@pytest.mark.parametrize("first_weight_midrise", [False, True])
@pytest.mark.parametrize("rot, bits, per_channel, midrise", [
    ((False, False, False, False), (8, 8), True, False),
    ((True, True, True, True), (8, 8), True, False),
    ((False, True, False, True), (4, 5), False, False),
    ((True, False, True, False), (6, 3), True, False),
    ((False, False, False, False), (4, 4), True, True),
    ((True, False, True, False), (6, 3), True, True),
])
def test_torch_fakequant_equals_numpy_fakequant_of_export(quantizer, rot, bits, per_channel, midrise,
                                                           first_weight_midrise):
    """The training forward pass computes exactly synthetic.fakequant_forward
    of the exported FloatLayers (same snapped steps, same rotations, same
    activation and weight grids)."""
    torch.manual_seed(0)
    s = Siren(16, 3, 2, 30.0).double()
    specs = [LayerSpec(bits[0], bits[1], r, per_channel, act_midrise=midrise and i > 0 and not r,
                       w_midrise=first_weight_midrise and i == 0)
             for i, r in enumerate(rot)]
    qm = QuantSiren(s, specs, height=12, width=12, quantizer=quantizer).double()
    qm.first_matrix = qm.first_matrix.double()
    qm.coords = qm.coords.double()
    qm.rot = {k: v.double() for k, v in qm.rot.items()}
    qm.init_steps("mse" if quantizer == "lsq" else "minmax")
    with torch.no_grad():
        y = qm().numpy()
    layers = qm.float_layers()
    ref = fakequant_forward(layers, integer_coords(12, 12, rot[0]), 30.0) / output_unit() - 1.0
    assert np.allclose(y, ref, atol=1e-9)
    m = _export(qm, 12, 12)  # and it exports to a valid model
    w0 = m.layers[0].weight.astype(np.int64)
    assert m.layers[0].weight_midrise == first_weight_midrise
    if first_weight_midrise:  # the odd integers 2q + 1 of the half step: the same real weights
        assert np.all(w0 % 2 == 1) and np.abs(w0).max() <= (1 << bits[0]) - 1
        half = m.layers[0].mult / 2.0 ** m.layers[0].shift / qm.unit(0)
        with torch.no_grad():
            assert np.allclose(w0 * half[:, None], qm.quant_weight(0).numpy(), rtol=1e-12, atol=0)


def test_float_and_wonly_layers_export_wide():
    s = Siren(8, 2, 1)
    for method, wb in (("fp32", 16), ("wonly", 4)):
        specs = method_specs(method, 3, 4, 4, True)
        qm = QuantSiren(s, specs, height=8, width=8)
        qm.init_steps()
        m = _export(qm, 8, 8)
        assert [l.rotate for l in m.layers] == [False] * 3
        assert all(l.weight_bits == wb for l in m.layers)
        assert all(l.act_bits == 16 for l in m.layers[1:])


def test_rotation_report_prefers_plain_for_sines_at_8_bits():
    torch.manual_seed(0)
    s = Siren(16, 2, 1)
    v = torch.tensor(integer_coords(16, 16, False), dtype=torch.float32)
    rep = rotation_errors(s, v, 8, 8, True, "lsq", 16, 16)
    assert len(rep) == 3
    for r in rep[1:]:
        # a bounded, U-shaped sine output quantizes better unrotated
        assert r["act_err_plain"] < r["act_err_rot"]


def test_quantsiren_validation():
    s = Siren(12, 2, 1)
    with pytest.raises(ValueError, match="power of two"):
        QuantSiren(s, [LayerSpec(), LayerSpec(8, 8, True), LayerSpec()], height=8, width=8)
    with pytest.raises(ValueError, match="one LayerSpec"):
        QuantSiren(s, [LayerSpec()], height=8, width=8)
    with pytest.raises(ValueError, match="quantizer"):
        QuantSiren(s, [LayerSpec()] * 3, height=8, width=8, quantizer="log")
    with pytest.raises(ValueError, match="bit width"):
        QuantSiren(s, [LayerSpec(1, 8)] * 3, height=8, width=8)
    with pytest.raises(ValueError, match="mid-rise"):
        QuantSiren(s, [LayerSpec(8, 8, act_midrise=True), LayerSpec(), LayerSpec()], height=8, width=8)
    with pytest.raises(ValueError, match="only the first layer's weights"):
        QuantSiren(s, [LayerSpec(), LayerSpec(8, 8, w_midrise=True), LayerSpec()], height=8, width=8)


def test_first_weight_grid_only_on_quantized_first_layers_that_fit():
    from dhq_rtl.reference.qmodel import set_first_weight_grid
    specs = set_first_weight_grid([LayerSpec(4, 4), LayerSpec(4, 4), LayerSpec(4, 4)], True)
    assert [s.w_midrise for s in specs] == [True, False, False]
    assert not set_first_weight_grid([LayerSpec(None, None)], True)[0].w_midrise  # float weights
    assert not set_first_weight_grid([LayerSpec(16, 16)], True)[0].w_midrise  # 2q + 1 would not fit int16
    assert set_first_weight_grid([LayerSpec(15, 16)], True)[0].w_midrise
    assert not set_first_weight_grid([LayerSpec(4, 4)], False)[0].w_midrise


@pytest.mark.parametrize("midrise", [False, True])
@pytest.mark.parametrize("bits", [8, 6, 4])
def test_first_layer_grid_search_is_exact_on_the_export_grid_and_never_worse(bits, midrise):
    """The searched layer-0 steps: less weight error than the MSE steps, the
    exporter keeps them exactly (the half step, on the mid-rise grid), and the
    training forward pass still equals the numpy fake-quant model of the export."""
    torch.manual_seed(1)
    s = Siren(16, 2, 1, 30.0)
    with torch.no_grad():
        s.linears[0].weight.mul_(8)  # trained first layers are far wider than the init
    qm = QuantSiren(s, [LayerSpec(bits, bits, w_midrise=midrise and i == 0) for i in range(3)], height=16, width=16)
    qm.init_steps("mse")
    w = qm.effective_weight(0).detach().double().numpy()
    m = 2 ** (bits - 1) - 1

    def err(step):
        s = step[:, None]
        q = np.clip(np.floor(w / s), -m - 1, m) + 0.5 if midrise else np.clip(np.round(w / s), -m, m)
        return ((q * s - w) ** 2).sum()

    before_step = qm.float_layers()[0].weight_step
    before, after = qm.search_first_layer_step()
    fl = qm.float_layers()[0]
    assert after <= before and after < 0.5 * before
    assert np.isclose(err(before_step), before) and np.isclose(err(fl.weight_step), after)
    gain = fl.weight_step * qm.unit(0) * (0.5 if midrise else 1.0)
    _, _, again = snap_scales(gain, qm.mult_bits)
    assert np.allclose(again, gain, rtol=1e-12, atol=0)
    qm.double()  # in float64 the two forward passes agree to rounding (float32 flips a few activation codes)
    qm.first_matrix, qm.coords = qm.first_matrix.double(), qm.coords.double()
    with torch.no_grad():
        y = qm().numpy()
    ref = fakequant_forward(qm.float_layers(), integer_coords(16, 16, False), 30.0) / output_unit() - 1.0
    assert np.allclose(y, ref, atol=1e-12)


def test_ptq_config_gets_the_whole_budget():
    w8 = FitConfig(w_bits=8, a_bits=8, fine_tune_steps=0)
    assert w8.is_ptq() and w8.float_steps() == 2500
    assert FitConfig(w_bits=8, a_bits=8).float_steps() == 2500 - FitConfig().fine_tune_steps
    assert not FitConfig(w_bits=6, a_bits=6).is_ptq() and FitConfig(w_bits=6, a_bits=6).float_steps() == 2000
    assert FitConfig(w_bits=6, a_bits=6, qat_steps=0).float_steps() == 2000
    assert FitConfig(method="fp32", w_bits=4, a_bits=4).float_steps() == 2500
    assert FitConfig(w_bits=6, a_bits=6, ptq_bits=6).is_ptq()


def test_bin_offset_penalty_values_and_pull_to_centres():
    from dhq_rtl.reference.quantizers import bin_offset_penalty
    s = torch.tensor(0.5)
    x = torch.tensor([0.0, 0.25, 0.2, -0.6, 9.0], requires_grad=True)
    # offsets in steps: 0, ½ (a tie: round half to even → 0), 0.4, −0.2, and 18 − 7 = 11 clipped at 4 bits
    pen = bin_offset_penalty(x, s, 4)
    assert pen.item() == pytest.approx((0 + 0.25 + 0.16 + 0.04 + 121) / 5)
    pen.backward()
    # the gradient pushes every weight toward its (fixed) grid point
    centre = torch.tensor([0.0, 0.0, 0.0, -0.5, 3.5])
    assert torch.all(torch.sign(x.grad) == torch.sign(x.detach() - centre))


def test_recipe_bits():
    from dhq_rtl.reference.methods import FIRST_WIDE_BITS, recipe_bits

    assert recipe_bits("uniform", 4, 6, 5) == [(6, 5)] * 4
    assert recipe_bits("first-wide", 3, 4, 4) == [(FIRST_WIDE_BITS, 4), (4, 4), (4, 4)]
    assert recipe_bits("first-wide", 2, 16, 16) == [(16, 16), (16, 16)]  # never narrower than asked
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_bits("fancy", 3, 8, 8)
    with pytest.raises(ValueError, match="recipe"):
        FitConfig(recipe="fancy").check()
