"""The load image: its layout (header, sections), its entries equal to the
memories' initial contents of a core built with the model, and its
independence from everything but the model and the layout."""

import numpy as np
import pytest

from dhq_rtl.envelope import ENVELOPES
from dhq_rtl.gateware.coords import first_layer_entries
from dhq_rtl.gateware.core import model_weight_rows
from dhq_rtl.gateware.descriptors import descriptor_entries
from dhq_rtl.gateware.mac import weight_words
from dhq_rtl.gateware.plan import LOAD_FORMAT, CorePlan
from dhq_rtl.loader import image_crc, load_image, section_entries
from dhq_rtl.synthetic import random_model


def _words(image):
    return np.frombuffer(image, dtype="<u2").astype(np.int64)


def test_header_and_sections(default_model):
    plan = CorePlan(default_model, lanes=8, envelope=ENVELOPES["default"])
    image = load_image(plan)
    words = _words(image)
    assert words[0] == LOAD_FORMAT and words[1] | words[2] << 16 == plan.signature
    entries = section_entries(plan)
    counts = [words[3 + 2 * s] | words[4 + 2 * s] << 16 for s in range(len(plan.sections))]
    assert counts == [len(entries[s.name]) for s in plan.sections]
    assert len(words) == plan.header_words + sum(c * s.words for c, s in zip(counts, plan.sections))
    assert len(words) <= plan.staging_words
    # the first weight row, decoded from the image
    start = plan.header_words + counts[0] * plan.sections[0].words
    row = 0
    for k in range(plan.section("weights").words):
        row |= int(words[start + k]) << (16 * k)
    assert row == weight_words(model_weight_rows(plan)[:1], plan.weight_bits)[0]


def test_entries_are_the_cores_initial_contents():
    model = random_model(width=16, depth=2, size=24, seed=4, channels=3, rotate=False, rotate_first=True)
    plan = CorePlan(model, lanes=4, envelope=ENVELOPES["default"])
    entries = section_entries(plan)
    assert entries["descriptors"] == descriptor_entries(plan)
    assert entries["weights"] == weight_words(model_weight_rows(plan)[:plan.model_weight_rows], plan.weight_bits)
    first = first_layer_entries(model, plan.first_sum_bits, plan.first_index_width)
    assert entries["first layer"] == first[:len(entries["first layer"])]


def test_image_depends_on_model_and_layout_only():
    a = random_model(width=8, depth=2, size=16, seed=1, rotate=False)
    b = random_model(width=8, depth=2, size=16, seed=2, rotate=False)
    env = ENVELOPES["default"]
    image = load_image(CorePlan(a, lanes=8, envelope=env))
    assert image == load_image(CorePlan(a, lanes=8, envelope=env, buffers=3, dsp="ice40", spram=True))
    assert image_crc(image) != image_crc(load_image(CorePlan(b, lanes=8, envelope=env)))
    assert image != load_image(CorePlan(a, lanes=16, envelope=env))
