"""The torch datapath emulator against the numpy golden model, every intermediate of every pixel."""

import numpy as np
import pytest
import torch

from dhq_rtl.golden import GoldenModel, pixel_coordinates
from dhq_rtl.reference.emulate import DatapathEmulator, fwht_int_torch
from dhq_rtl.hadamard import fwht_int
from dhq_rtl.synthetic import random_model

SHAPES = [
    dict(width=16, depth=3, size=24, rotate=True),
    dict(width=32, depth=2, size=17, rotate=False, act_midrise=True, first_weight_midrise=True),
    dict(width=8, depth=3, size=20, channels=3, rotate=True, rotate_first=True, weight_bits=4, act_bits=4),
    dict(width=16, depth=2, size=16, rotate=False, weight_bits=6, act_bits=5, seed=3),
    dict(width=16, depth=2, size=12, rotate=False, weight_bits=16, act_bits=16, seed=5),
]


@pytest.mark.parametrize("kw", SHAPES, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_every_intermediate_equals_the_golden_model(kw):
    model = random_model(**kw)
    gold = GoldenModel(model).trace(*pixel_coordinates(model.height, model.width))
    emu = DatapathEmulator(model).trace()
    assert len(gold) == len(emu)
    for i, (g, e) in enumerate(zip(gold, emu)):
        for key in ("q", "acc", "phase", "pixel"):
            if key in g:
                np.testing.assert_array_equal(e[key].numpy(), g[key], err_msg=f"layer {i} {key}")
        if "pixel" in g:
            level = e["level"].numpy()
            np.testing.assert_array_equal(np.clip(np.floor(level + 0.5), 0, 255), g["pixel"])


def test_wide_accumulators_use_float64():
    model = random_model(width=16, depth=2, size=12, rotate=False, weight_bits=16, act_bits=16, seed=5)
    emu = DatapathEmulator(model)
    assert any(l.dtype == torch.float64 for l in emu.layers)
    narrow = DatapathEmulator(random_model(width=16, depth=2, size=12, rotate=False))
    assert all(l.dtype == torch.float32 for l in narrow.layers)


def test_fwht_matches_numpy():
    x = np.random.default_rng(0).integers(-2048, 2048, size=(7, 32))
    np.testing.assert_array_equal(fwht_int_torch(torch.tensor(x)).numpy(), fwht_int(x))


def test_set_weight_code_changes_model_and_result():
    model = random_model(width=8, depth=2, size=10, rotate=False, act_midrise=True)
    emu = DatapathEmulator(model)
    w = int(model.layers[1].weight[2, 3])
    emu.set_weight_code(1, 2, 3, w + 1 if w < 100 else w - 1)
    assert model.layers[1].weight[2, 3] != w
    gold = GoldenModel(model).render()
    np.testing.assert_array_equal(emu.render().numpy(), gold)
