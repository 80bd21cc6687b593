"""Envelopes: the fit check names the limit a model exceeds; the tightest
envelope around a model holds it; invalid envelopes are refused; the
signature tells layouts apart."""

import dataclasses

import pytest

from dhq_rtl.envelope import ENVELOPES, Envelope, EnvelopeError, get_envelope
from dhq_rtl.errors import DhqError
from dhq_rtl.synthetic import random_model


def test_named_envelopes_hold_the_default_model(default_model):
    for env in ENVELOPES.values():
        assert env.check(default_model)
    assert ENVELOPES["default"].max_width >= 64 and ENVELOPES["large"].max_width >= 128
    with pytest.raises(EnvelopeError, match="unknown envelope 'huge'"):
        get_envelope("huge")


def test_tightest_envelope_holds_its_model_and_is_tight():
    model = random_model(width=16, depth=3, size=20, seed=1, channels=3)
    env = Envelope.of_model(model)
    assert env.check(model)
    assert (env.max_width, env.max_layers, env.max_size, env.max_channels, env.rotate_width) == (16, 4, 20, 3, 16)
    assert env.acc_bits == max(model.accumulator_bits(i) for i in range(1, 4))
    wider = random_model(width=32, depth=3, size=20, seed=1, channels=3)
    assert not env.fits(wider)


@pytest.mark.parametrize("change,limit", [
    (dict(width=128), "hidden width 128, more than the envelope's 64"),
    (dict(depth=4), "4 sine layers, more than the envelope's 3"),
    (dict(size=300), "image 300×300"),
    (dict(weight_bits=12, act_bits=12), "12-bit weights"),
    (dict(phase_bits=12), "phase_bits 12"),
    (dict(rotate=True, lut_bits=8), "rotated"),
    (dict(lut_bits=12, rotate=True), "12-bit sine table entries"),
])
def test_fit_check_names_the_limit(change, limit):
    kw = dict(width=32, depth=3, size=128, seed=0, rotate=False, lut_bits=8)
    kw.update(change)
    model = random_model(**kw)
    with pytest.raises(EnvelopeError, match=limit) as e:
        ENVELOPES["default"].check(model)
    assert isinstance(e.value, DhqError) and "\n" not in str(e.value)


@pytest.mark.parametrize("change,match", [
    (dict(max_width=0), "max_width"),
    (dict(max_layers=1), "max_layers"),
    (dict(weight_bits=17), "weight_bits"),
    (dict(rotate_width=48), "rotate_width"),
    (dict(lut_bits=12), "lut_bits must equal act_bits"),
    (dict(first_sum_bits=4), "first_sum_bits"),
    (dict(weight_memory="flash"), "weight_memory"),
    (dict(lanes=3), "lanes"),
    (dict(max_size=2.5), "max_size must be an integer"),
])
def test_invalid_envelopes_are_refused(change, match):
    with pytest.raises(EnvelopeError, match=match):
        dataclasses.replace(ENVELOPES["default"], **change)


def test_signature_tells_layouts_apart_but_not_names():
    env = ENVELOPES["default"]
    assert env.signature(8) == dataclasses.replace(env, name="other").signature(8)
    assert env.signature(8) != env.signature(16)
    assert env.signature(8) != dataclasses.replace(env, max_width=32).signature(8)
