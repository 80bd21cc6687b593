"""Payloads and signatures of the links between the core's parts.

Every function takes the :class:`~.plan.CorePlan`, so the widths come from
one place. Tags are :class:`~amaranth.lib.data.StructLayout`\\ s: a value
travelling through the post-processing chain carries the names of what it
belongs to (output neuron, destination buffer, layer), never bit offsets.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .coords import phase_source_signature

__all__ = ["coord_source_signature", "vector_ref_layout", "element_tag_layout", "scaler_tag_layout", "element_layout", "write_layout",
           "accumulator_layout", "pixel_value_layout", "activation_read_signature", "credit_signature",
           "path_done_signature", "buffer_id_stream", "vector_ref_stream"]


def vector_ref_layout(plan):
    """A stored vector: the activation buffer holding it and the layer it is
    the input of (the ready queue), or the layer that produced it (the
    butterfly's tag)."""
    return data.StructLayout({"buffer": unsigned(plan.buffer_width), "layer": unsigned(plan.layer_width)})


def element_tag_layout(plan):
    """One element of a vector: its ``index`` (output neuron), destination
    ``buffer`` and the ``layer`` that produced it."""
    return data.StructLayout({"index": unsigned(plan.index_width), "buffer": unsigned(plan.buffer_width),
                              "layer": unsigned(plan.layer_width)})


def scaler_tag_layout(plan):
    """What rides along the channel scaler: the destination ``buffer``, and
    the sine ``table`` and its ``complement`` flag of the element's layer
    (looked up from the descriptors before the scaler, so that the table's
    read address starts at registers). (A layer-0 phase, already made by
    the running sums, goes through the scaler's arithmetic itself: layer
    0's table entries are the identity.)"""
    return data.StructLayout({"buffer": unsigned(plan.buffer_width), "table": unsigned(plan.table_width),
                              "complement": unsigned(1)})


def element_layout(plan):
    """An element from the vector arbiter to the post-processing chain:
    ``value`` is an accumulator or (``coord``) an element of vector 0 (the
    integer core: a layer-0 phase; the float core: a coordinate),
    ``coord_bits`` wide."""
    acc_bits = plan.scaler_acc_bits if plan.arith == "int" else plan.acc_bits
    value = data.UnionLayout({"acc": signed(acc_bits), "phase": unsigned(plan.coord_bits)})
    return data.StructLayout({"value": value, "coord": unsigned(1), "layer": unsigned(plan.layer_width),
                              "index": unsigned(plan.index_width), "buffer": unsigned(plan.buffer_width)})


def coord_source_signature(plan):
    """The source of vector 0 (each pixel's first vector, which needs no MAC
    job: the integer core's layer-0 phases, the float core's coordinates),
    seen from the source: ``ready`` (a pixel may be requested), ``next`` (a
    request pulse) and the ``always_ready`` stream ``phases`` of the pixel's
    elements ``{phase: coord_bits, index: first_index_width, last}``:
    :func:`~.coords.phase_source_signature` of the plan's widths."""
    return phase_source_signature(plan.coord_bits, plan.first_index_width)


def write_layout(plan):
    """One activation written into a buffer: ``value``, its ``index`` in the
    vector, the ``buffer`` and the ``layer`` that produced it."""
    return data.StructLayout({"value": signed(plan.act_bits), "index": unsigned(plan.index_width),
                              "buffer": unsigned(plan.buffer_width), "layer": unsigned(plan.layer_width)})


def accumulator_layout(plan):
    """A finished dot product and the layer it belongs to, with what the
    vector arbiter needs to know about that layer's vector (looked up when
    the dot product enters the queue, so that the arbiter decides from the
    queue's output register directly): the vector's ``last_index``, whether
    it has a ``single`` element, goes to the ``output`` (pixels) or, when
    ``next_rotated``, through the butterfly."""
    return data.StructLayout({"acc": signed(plan.acc_bits), "layer": unsigned(plan.layer_width),
                              "last_index": unsigned(plan.index_width), "single": unsigned(1),
                              "output": unsigned(1), "next_rotated": unsigned(1)})


def pixel_value_layout(plan):
    """One channel of an output pixel."""
    return data.StructLayout({"value": unsigned(plan.pixel_bits), "channel": unsigned(plan.index_width)})


def activation_read_signature(plan):
    """The reader's side of the activation buffers' read port: a word
    address (``buffer``, ``word``) and, one cycle later, the word's
    ``act_word`` activations."""
    addr = data.StructLayout({"word": unsigned(plan.word_index_width), "buffer": unsigned(plan.buffer_width)})
    return wiring.Signature({"addr": Out(addr), "data": In(unsigned(plan.act_word * plan.act_bits))})


def credit_signature():
    """The MAC job side of the accumulator queue's credit: ``reserve`` (a dot
    product's last beat is issued now: one more accumulator will arrive),
    ``credit`` (registered: room for another dot product)."""
    return wiring.Signature({"reserve": Out(1), "credit": In(1)})


def path_done_signature():
    """Strobes from the post-processing chain: an element of a vector left
    the ``direct`` path (sine table straight into a buffer) or the
    ``rotated`` path (butterfly and requantizer) this cycle."""
    return wiring.Signature({"direct": Out(1), "rotated": Out(1)})


def buffer_id_stream(plan, *, always_ready=False):
    """A stream of activation-buffer numbers (allocation, release)."""
    return stream.Signature(unsigned(plan.buffer_width), always_ready=always_ready)


def job_ref_layout(plan):
    """A ready vector (:func:`vector_ref_layout`) with the neuron and chunk
    counts' flags of the job that consumes it, looked up when the vector
    was queued (``c1``: one chunk per neuron, ``k1``: one neuron, ``k2``:
    two neurons; the job sequencer reads them from the queue's head)."""
    return data.StructLayout({**vector_ref_layout(plan).members, "c1": 1, "k1": 1, "k2": 1})


def vector_ref_stream(plan):
    """The ready queue: vectors a MAC job may consume (:func:`job_ref_layout`)."""
    return stream.Signature(job_ref_layout(plan))
