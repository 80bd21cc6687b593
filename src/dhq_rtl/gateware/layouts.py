"""Stream payload layouts shared by the gateware blocks."""

from amaranth.hdl import Shape, unsigned
from amaranth.lib import data

__all__ = ["tagged_layout", "tag_width"]


def tag_width(tag_shape):
    """Width in bits of a pass-through tag given as an integer width or a shape."""
    return tag_shape if isinstance(tag_shape, int) else Shape.cast(tag_shape).width


def tagged_layout(fields, tag_shape=0):
    """``StructLayout(fields)`` plus, when the tag is not empty, a pass-through
    ``"tag"`` field that a block carries from its input beat to the matching
    output beat unchanged. ``tag_shape`` is an integer (a plain
    ``unsigned(tag_shape)``, 0 for no field) or any shape, typically a
    :class:`~amaranth.lib.data.StructLayout` naming what the tag holds (the
    core's tags say which layer, channel and buffer a value belongs to)."""
    fields = dict(fields)
    if tag_width(tag_shape):
        fields["tag"] = unsigned(tag_shape) if isinstance(tag_shape, int) else tag_shape
    return data.StructLayout(fields)
