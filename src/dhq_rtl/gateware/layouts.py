"""Stream payload layouts shared by the gateware blocks."""

from amaranth.hdl import unsigned
from amaranth.lib import data

__all__ = ["tagged_layout"]


def tagged_layout(fields, tag_width=0):
    """``StructLayout(fields)`` plus, when ``tag_width > 0``, a pass-through
    ``"tag": unsigned(tag_width)`` field that a block carries from its input
    beat to the matching output beat unchanged (the core uses it to remember
    which layer, channel or pixel a value belongs to)."""
    fields = dict(fields)
    if tag_width:
        fields["tag"] = unsigned(tag_width)
    return data.StructLayout(fields)
