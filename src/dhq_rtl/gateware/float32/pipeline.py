"""A stalling pipeline with switchable register stages and an initiation interval.

The FP32 units are chains of combinational steps (unpack, align, add,
normalise, round, …). :class:`Pipeline` puts a register stage between two
steps either always (:meth:`Pipeline.stage`: where a DSP or a memory read
port has its own register) or only when the unit was built with that *cut*
enabled (:meth:`Pipeline.cut`), so one description gives every pipeline
depth from "one output register" to "a register after every step".

Flow control is the one the other blocks of the project use: every register
advances together on ``en``, a ``valid`` bit (and the user tag) travel
beside the data, a stalled output stalls the whole pipeline.

* ``ii = 1``: ``en = ~o.valid | o.ready`` and ``i.ready = en``: one
  operation per cycle while the output is not stalled.
* ``ii = N > 1`` (initiation interval): a counter divides time into windows
  of ``N`` cycles and ``en`` can only be high in the last cycle of a window,
  so every stage holds its values for ``N`` cycles; the units use the time
  to run several partial products through one multiplier
  (:class:`~.product.Products`). ``i.ready = en``; an output beat is valid
  from the window it was produced in until the sink takes it (``o.valid``
  drops after the transfer, so it is never delivered twice).

Data registers have no reset (``reset_less``); only the valid bits and the
window counter reset.
"""

from amaranth.hdl import Mux, Signal, Value

from ..args import check_int

__all__ = ["Pipeline", "choose_cuts"]


def choose_cuts(name, cuts, latency, fixed):
    """The optional cuts a unit uses for a requested ``latency``.

    ``cuts``: the unit's optional cut names, most useful first; ``fixed``:
    how many register stages the unit always has (output register, DSP and
    memory registers). ``latency`` (an int in ``[fixed, fixed + len(cuts)]``,
    or ``None`` for the maximum) selects the first ``latency − fixed`` cuts.
    Returns ``(cuts, latency)``.
    """
    hi = fixed + len(cuts)
    if latency is None:
        latency = hi
    check_int(f"{name} latency", latency, fixed, hi)
    return frozenset(cuts[:latency - fixed]), latency


class Pipeline:
    """Register stages of a stalling pipeline between stream ports ``i`` and ``o``.

    ``cuts``: names of the optional cuts that are registered; ``ii``: the
    initiation interval (cycles per operation). Values travel as dicts
    ``{name: Value}``; a registered stage returns a dict of new signals named
    ``<stage>_<name>``. :attr:`stages` counts the register stages built,
    :attr:`en` is the common enable, :attr:`slot` the cycle within the
    window (``None`` for ``ii = 1``).
    """

    def __init__(self, m, i, o, *, cuts=(), ii=1):
        check_int("ii", ii, 1)
        self.m = m
        self.o = o
        self.cuts = frozenset(cuts)
        self.ii = ii
        self.stages = 0
        self.en = Signal(name="pipe_en")
        if ii == 1:
            self.slot = None
            m.d.comb += self.en.eq(~o.valid | o.ready)
        else:
            self.slot = Signal(range(ii), name="pipe_slot")
            m.d.sync += self.slot.eq(Mux(self.slot == ii - 1, 0, self.slot + 1))
            m.d.comb += self.en.eq((self.slot == ii - 1) & (~o.valid | o.ready))
        m.d.comb += i.ready.eq(self.en)

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

    def output(self, valid, payload):
        """The output register: ``o.valid`` and the fields of ``o.payload``
        named in ``payload`` (a dict)."""
        o, m = self.o, self.m
        with m.If(self.en):
            m.d.sync += o.valid.eq(valid)
            for key, value in payload.items():
                m.d.sync += getattr(o.payload, key).eq(value)
        if self.ii > 1:
            with m.Elif(o.ready):
                m.d.sync += o.valid.eq(0)
        self.stages += 1

