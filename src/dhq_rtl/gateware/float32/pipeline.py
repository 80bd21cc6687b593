"""A stalling pipeline whose register stages can be switched on or off.

The FP32 units are chains of combinational steps (unpack, align, add,
normalise, round, …). :class:`Pipeline` puts a register stage between two
steps either always (:meth:`Pipeline.stage`: where a DSP or a memory read
port has its own register) or only when the unit was built with that *cut*
enabled (:meth:`Pipeline.cut`), so one description gives every pipeline
depth from "one output register" to "a register after every step".

Flow control is the one the other blocks of the project use: every register
advances together while ``en = ~o.valid | o.ready`` is high, ``i.ready =
en``; a ``valid`` bit (and the user tag) travel beside the data. A stalled
output therefore stalls the whole pipeline; throughput is one operation per
cycle when the output is never stalled.

Data registers have no reset (``reset_less``); only the valid bits reset, so
the reset net is small and DSP output registers (which have no reset either)
behave like the fabric ones.
"""

from amaranth.hdl import Signal, Value

from ..args import check_int

__all__ = ["Pipeline", "choose_cuts"]


def choose_cuts(name, cuts, latency, fixed):
    """The optional cuts a unit uses for a requested ``latency``.

    ``cuts``: the unit's optional cut names, most useful first; ``fixed``:
    how many register stages the unit always has (output register, DSP and
    memory registers). ``latency`` (an int in ``[fixed, fixed + len(cuts)]``,
    or ``None`` for the maximum) selects the first ``latency − fixed`` cuts.
    """
    hi = fixed + len(cuts)
    if latency is None:
        latency = hi
    check_int(f"{name} latency", latency, fixed, hi)
    return frozenset(cuts[:latency - fixed]), latency


class Pipeline:
    """Register stages of a stalling pipeline inside module ``m``.

    ``en``: the common clock enable; ``cuts``: names of the optional cuts
    that are registered. Values are passed as dicts ``{name: Value}``; a
    registered stage returns a dict of new signals named
    ``<stage>_<name>``. :attr:`stages` counts the register stages built.
    """

    def __init__(self, m, en, cuts=()):
        self.m = m
        self.en = en
        self.cuts = frozenset(cuts)
        self.stages = 0

    def stage(self, label, values):
        """Register every value of ``values`` (always)."""
        out = {}
        with self.m.If(self.en):
            for key, value in values.items():
                value = Value.cast(value)
                reg = Signal(value.shape(), name=f"{label}_{key}", reset_less=key != "valid")
                self.m.d.sync += reg.eq(value)
                out[key] = reg
        self.stages += 1
        return out

    def cut(self, label, values):
        """Register ``values`` if cut ``label`` is enabled, else pass them on."""
        if label in self.cuts:
            return self.stage(label, values)
        return dict(values)
