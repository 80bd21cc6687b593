"""Per-layer constant tables in the core's control: a value selected by a layer number."""

__all__ = ["lookup"]


def lookup(m, index, values, target, default=0):
    """``target = values[index]`` (combinational) for a list of constants or
    expressions; ``default`` for an index past the list."""
    with m.Switch(index):
        for j, v in enumerate(values):
            with m.Case(j):
                m.d.comb += target.eq(v)
        with m.Default():
            m.d.comb += target.eq(default)
