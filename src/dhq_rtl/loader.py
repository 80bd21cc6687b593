"""The load image: a model image laid out for the memories of one core.

The host sends a model to a board as a *load image*, the exact words the
core's installer (:mod:`dhq_rtl.gateware.model_store`) copies into its
memories; it depends on the model and on the board's plan (its envelope and
lanes: :class:`~dhq_rtl.gateware.plan.CorePlan`), and nothing else. Its
CRC-32 is what the board reports as the loaded model's CRC, so the host
knows whether a board already holds a model.

Layout (16-bit words, little-endian; entries LSB first)::

    word 0          LOAD_FORMAT
    words 1–2       the layout's signature (CorePlan.signature: the envelope with the
                    core's lanes; low word first)
    words 3 + 2s…   entry count of section s (32 bits, low word first)
    then            the sections in order, each entry in ceil(bits / 16) words

The sections (``plan.sections``): the layer descriptors (every entry:
``L_max`` layers and the global one; :mod:`dhq_rtl.gateware.descriptors`),
the weight rows of the model's layers ``1 … L−1``
(:func:`~dhq_rtl.gateware.mac.layer_weight_rows`, ``lanes`` weights a row),
the channel scaler's table (``Cat(mult, bias)`` at ``Cat(channel, layer)``
for the model's layers; layer 0's entries the identity), the model's distinct sine tables (the first quarter
of each), and the first layer's running-sum constants (DX, DY and base
blocks, scaled to the envelope's running-sum width).
"""

import zlib

import numpy as np

from .gateware.coords import first_layer_entries
from .gateware.descriptors import descriptor_entries
from .gateware.mac import layer_weight_rows, weight_words
from .gateware.plan import LOAD_FORMAT, STAGING_WORD_BITS
from .gateware.scaler import scaler_table_words

__all__ = ["section_entries", "load_image", "load_image_words", "image_crc", "LOAD_FORMAT"]


def section_entries(plan):
    """``{section name: [entry integers]}`` for the plan's model."""
    model = plan.model
    layers = model.layers
    rows = [layer_weight_rows(layers[i].weight, plan.lanes)[0] for i in range(1, plan.n_layers)]
    weights = weight_words(np.concatenate(rows), plan.weight_bits)
    scaler = scaler_table_words(model, plan.n_layers << plan.scaler_channel_width, plan.scaler_channel_width,
                                plan.scaler_mult_bits, plan.scaler_bias_bits, first_identity=True)
    stored = plan.stored_table_entries
    mask = (1 << plan.lut_bits) - 1
    tables = [int(v) & mask for t in plan.tables for v in t[:stored]]
    first = first_layer_entries(model, plan.first_sum_bits, plan.first_index_width)
    first = first[:(2 << plan.first_index_width) + plan.out_features[0]]
    entries = {"descriptors": descriptor_entries(plan), "weights": weights, "scaler": scaler,
               "sine tables": tables, "first layer": first}
    for s in plan.sections:
        if len(entries[s.name]) > s.max_entries:
            raise ValueError(f"the {s.name} section has {len(entries[s.name])} entries, the memory "
                             f"{s.max_entries}")
    return entries


def _words(value, count):
    return [(value >> (STAGING_WORD_BITS * k)) & 0xFFFF for k in range(count)]


def load_image_words(plan, sections=None):
    """The load image of ``plan.model`` as a list of 16-bit words; only the
    sections named in ``sections`` (default: all; the others have no
    entries)."""
    entries = section_entries(plan)
    if sections is not None:
        entries = {k: (v if k in sections else []) for k, v in entries.items()}
    signature = plan.signature
    words = [LOAD_FORMAT, signature & 0xFFFF, signature >> 16]
    for s in plan.sections:
        words += _words(len(entries[s.name]), 2)
    for s in plan.sections:
        for e in entries[s.name]:
            words += _words(int(e), s.words)
    assert len(words) <= plan.staging_words
    return words


def load_image(plan):
    """The load image of ``plan.model`` for ``plan``'s core, as bytes."""
    return np.asarray(load_image_words(plan), dtype="<u2").tobytes()


def image_crc(image):
    """CRC-32 (the zlib polynomial) of a load image."""
    return zlib.crc32(bytes(image))
