"""Greedy integer-code refinement (reference/refine.py)."""

import numpy as np
import pytest
import torch

from dhq_rtl.golden import GoldenModel, pixel_coordinates
from dhq_rtl.numerics import output_unit
from dhq_rtl.reference.fit import FitConfig
from dhq_rtl.reference.qmodel import LayerSpec, QuantSiren
from dhq_rtl.reference.quantizers import grid_values
from dhq_rtl.reference.refine import refine_codes
from dhq_rtl.reference.siren import Siren

torch.set_num_threads(1)
SIZE = 12


def _target():
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    img = np.sin(xs / 2.0) * np.cos(ys / 3.0) * 0.8
    return torch.tensor(img.reshape(-1, 1), dtype=torch.float32)


def _model(rot=(False, False, False, False), bits=(4, 4), seed=0, first_midrise=False):
    torch.manual_seed(seed)
    specs = [LayerSpec(bits[0], bits[1], r, True, act_midrise=i > 0 and not r, w_midrise=first_midrise and i == 0)
             for i, r in enumerate(rot)]
    qm = QuantSiren(Siren(8, 3, 1, 30.0), specs, height=SIZE, width=SIZE)
    qm.init_steps("mse")
    qm.search_first_layer_step()
    return qm


def _codes(qm):
    """Each layer's weights in steps (half-integers on the mid-rise grid)."""
    return [grid_values(qm.effective_weight(i).detach() / qm.weight_step(i).detach(), 7, qm.specs[i].w_midrise)
            for i in range(4)]


def _loss(qm, target):
    """The loss refinement minimises, computed with the numpy golden model on
    the exported integer model: the output before the pixel's rounding."""
    model = qm.export()[0]
    last = model.layers[-1]
    acc = GoldenModel(model).trace(*pixel_coordinates(SIZE, SIZE))[-1]["acc"]
    level = (acc * last.mult + last.bias) / 2.0 ** last.shift - 0.5
    return float(np.mean((level / output_unit() - 1.0 - target.double().numpy()) ** 2))


@pytest.mark.parametrize("rot, first_midrise", [((False,) * 4, False), ((True, False, True, False), False),
                                                ((True,) * 4, False), ((False,) * 4, True),
                                                ((True, False, True, False), True)])
def test_refinement_lowers_the_exact_loss_and_exports_its_codes(rot, first_midrise):
    target = _target()
    qm = _model(rot, first_midrise=first_midrise)
    before = _loss(qm, target)
    rep = refine_codes(qm, target, rounds=10, candidates=64)
    after = _loss(qm, target)
    # an untrained quantized model is far from a local optimum over its codes
    assert rep["moves"] > 0 and after < 0.9 * before
    # the loss refinement reports is the golden model's, before and after
    assert rep["loss_before"] == pytest.approx(before, rel=1e-12)
    assert rep["loss_after"] == pytest.approx(after, rel=1e-12)
    assert 0 < rep["evaluations"] <= 64 * rep["rounds"]
    for i, q in enumerate(_codes(qm)):
        assert q.abs().max() <= (7.5 if qm.specs[i].w_midrise else 7)
        # on the grid: the latent weights are the values themselves
        assert torch.allclose(q * qm.weight_step(i).detach(), qm.effective_weight(i).detach(), rtol=1e-5, atol=1e-7)
    assert qm.export()[0].layers[0].weight_midrise == first_midrise


def test_refinement_never_raises_the_loss_and_stops_at_a_local_optimum():
    target = _target()
    qm = _model(seed=3)
    first = refine_codes(qm, target, rounds=50, candidates=2000)
    assert first["rounds"] < 50  # stopped: a round kept nothing
    codes = _codes(qm)
    again = refine_codes(qm, target, rounds=5, candidates=2000)
    assert again["moves"] == 0 and again["rounds"] == 1
    assert again["loss_after"] == first["loss_after"]
    assert all(torch.equal(a, b) for a, b in zip(codes, _codes(qm)))


def test_zero_rounds_changes_nothing():
    target = _target()
    qm = _model(seed=1)
    codes, before = _codes(qm), _loss(qm, target)
    rep = refine_codes(qm, target, rounds=0)
    assert rep["moves"] == rep["evaluations"] == rep["rounds"] == 0
    assert all(torch.equal(a, b) for a, b in zip(codes, _codes(qm)))
    assert _loss(qm, target) == before


@pytest.mark.parametrize("kwargs, match", [
    (dict(rounds=-1), "rounds"),
    (dict(rounds=1.5), "rounds"),
    (dict(candidates=0), "candidates"),
    (dict(candidates=True), "candidates"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        refine_codes(_model(), _target(), **kwargs)


def test_minmax_quantizer_is_refused():
    torch.manual_seed(0)
    qm = QuantSiren(Siren(8, 3, 1, 30.0), [LayerSpec(4, 4)] * 4, height=SIZE, width=SIZE, quantizer="minmax")
    with pytest.raises(ValueError, match="lsq"):
        refine_codes(qm, _target())


@pytest.mark.parametrize("field, value", [("refine_rounds", -1), ("refine_candidates", 0), ("dampening", -1.0),
                                          ("dampening", float("nan")),
                                          ("refine_candidates", 2.0), ("act_grid", "odd"),
                                          ("first_weight_grid", "even")])
def test_config_checks_refinement_fields(field, value):
    with pytest.raises(ValueError, match=field):
        FitConfig(**{field: value}).check()


def test_fit_image_refines_after_qat_and_records_it():
    """A from-start 4-bit fit runs dampened QAT, then refinement (never
    worse on the loss), and the model's metadata says so; the 8-bit path
    fine-tunes and refines, plain PTQ does neither."""
    from dhq_rtl.images import default_image_path, load_image
    from dhq_rtl.reference.fit import fit_image

    px = load_image(default_image_path(), 24)
    cfg = dict(method="naive", width=8, depth=2, steps=150, qat_steps=50)
    r = fit_image(px, FitConfig(w_bits=4, a_bits=4, **cfg))
    rep = r.refinement
    assert rep is not None and rep["loss_after"] <= rep["loss_before"] and rep["rounds"] >= 1
    assert r.model.meta["dampening"] == 0.3 and r.model.meta["refine_rounds"] == 20
    assert r.summary()["refinement"]["moves"] == rep["moves"]
    assert r.model.meta["first_weight_grid"] == "midrise" and r.model.layers[0].weight_midrise
    plain = fit_image(px, FitConfig(w_bits=4, a_bits=4, refine_rounds=0, dampening=0.0,
                                    first_weight_grid="midtread", **cfg))
    assert plain.refinement is None and plain.model.meta["dampening"] == 0.0
    assert plain.model.meta["first_weight_grid"] == "midtread" and not plain.model.layers[0].weight_midrise
    fine = fit_image(px, FitConfig(w_bits=8, a_bits=8, **cfg))  # 8 bits: a short QAT at the end, then refinement
    assert fine.refinement is not None and fine.model.meta["fine_tune_steps"] == 100
    assert fine.refinement["loss_after"] <= fine.refinement["loss_before"]
    ptq = fit_image(px, FitConfig(w_bits=8, a_bits=8, fine_tune_steps=0, refine_rounds=0, **cfg))
    assert ptq.refinement is None and ptq.model.meta["refine_rounds"] == 0 and ptq.model.meta["fine_tune_steps"] == 0
