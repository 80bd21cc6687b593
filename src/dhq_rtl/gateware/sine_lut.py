"""Streaming sine look-up table (phase → table value).

:class:`SineLUT` is the gateware twin of ``layer.lut[phase]`` in
:meth:`dhq_rtl.golden.GoldenModel.trace`: a ``phase_bits``-bit phase (a full
turn is ``2**phase_bits``, so the phase arithmetic upstream may simply drop its
high bits: the modulo 2π is free) addresses a table of signed ``lut_bits``-bit
values.

Several tables, one instance: the model has one table per sine layer; all of
them live in one ROM (:class:`~amaranth.lib.memory.Memory` without a write
port, which synthesis maps to block RAM), one after the other, and the ``sel``
field of each input beat picks the table (``sel = k`` → ``tables[k]``; with
:meth:`SineLUT.from_model`, ``sel = i − 1`` for layer ``i``; a ``sel`` beyond
the list reads table 0). One shared ROM is what a core that runs the layers one
after the other needs, and it packs small tables into few RAM blocks.

Quarter-wave option: tables made by :func:`dhq_rtl.numerics.sine_table` (the
half-step offset ``sin(2π(p + ½)/N)``) are exactly quarter-wave symmetric::

    T[N/2 − 1 − p] == T[p]        (0 ≤ p < N/2)
    T[p + N/2]     == −T[p]       (0 ≤ p < N/2)

and mid-rise tables (``sine_table(..., midrise=True)``: codes ``floor(A·sin)``
standing for ``q + ½``) have the first symmetry and, in the second half, the
bitwise complement ``T[p + N/2] == −T[p] − 1 == ~T[p]``
(:func:`quarter_wave_symmetry` tells which).

With ``quarter_wave=True`` only the first quarter (``N/4`` entries per table)
is stored; the second quarter is read mirrored (the low ``phase_bits − 2``
address bits inverted) and the second half negated (complemented, for a
mid-rise table). The results are identical; the memory is a quarter. The
constructor raises ``ValueError`` for a table with neither symmetry.

Latency 2 cycles (input beat → output beat: one for the synchronous ROM read,
one output register that also holds the negation), throughput one element per
cycle; a stalled output stalls the pipeline (``i.ready = ~o.valid |
o.ready``).

Payloads: ``i.payload = {"phase": unsigned(phase_bits), "sel":
unsigned(sel_width)[, "tag": tag_shape]}`` with ``sel_width =
max(1, ceil_log2(len(tables)))``; ``o.payload = {"data": signed(lut_bits)[,
"tag": ...]}``. Bit growth: none (the output width is the table width).
With ``always_ready=True`` both streams are ``always_ready`` (no
back-pressure), for a consumer that takes every beat.

Loadable (``loadable=True``, what the core uses): the table memory has room
for ``max_tables`` tables and a write port (``write``: ``en``, ``addr`` =
``Cat(index, sel)``, ``data``: the entry, ``lut_bits`` bits two's
complement); the tables given are its initial contents. With
``quarter_wave`` each input beat then says itself whether its table's second
half is the ``complement`` (a mid-rise table) or the negation of the first,
since the tables loaded later are not known when the hardware is built.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .args import check_bool, check_int, check_tag_shape
from .layouts import tag_width, tagged_layout
from .ram import memory_attrs, read_port

__all__ = ["SineLUT", "sine_lut_in_layout", "sine_lut_out_layout", "is_quarter_wave_symmetric",
           "quarter_wave_symmetry"]


def sine_lut_in_layout(phase_bits, sel_width, tag_shape=0):
    return tagged_layout({"phase": unsigned(phase_bits), "sel": unsigned(sel_width)}, tag_shape)


def sine_lut_out_layout(lut_bits, tag_shape=0):
    return tagged_layout({"data": signed(lut_bits)}, tag_shape)


def quarter_wave_symmetry(table):
    """How the second half of ``table`` (length ``N``, a power of two ≥ 4)
    follows from its first quarter: ``"negate"`` (``T[p+N/2] == −T[p]``),
    ``"complement"`` (``T[p+N/2] == −T[p] − 1``, a mid-rise table), or
    ``None``; both kinds also need ``T[N/2−1−p] == T[p]`` (``0 ≤ p < N/2``)."""
    t = np.asarray(table, dtype=np.int64)
    n = t.shape[0]
    if n < 4:
        return None
    half = t[: n // 2]
    if not np.array_equal(half[::-1], half):
        return None
    if np.array_equal(t[n // 2:], -half):
        return "negate"
    if np.array_equal(t[n // 2:], -half - 1):
        return "complement"
    return None


def is_quarter_wave_symmetric(table):
    """Whether ``table`` can be stored as its first quarter (:func:`quarter_wave_symmetry`)."""
    return quarter_wave_symmetry(table) is not None


class SineLUT(wiring.Component):
    """Phase → sine-table value, several tables selected per beat.

    Parameters
    ----------
    tables : sequence of 1-D integer arrays
        One or more tables of equal length ``2**phase_bits``
        (``1 ≤ phase_bits ≤ 16``, at least 2 for ``quarter_wave``).
    lut_bits : int
        Output width (signed), ``2 ≤ lut_bits ≤ 32``; every entry must lie in
        ``[−2**(lut_bits−1), 2**(lut_bits−1) − 1]``.
    quarter_wave : bool
        Store only the first quarter of each table (see module docstring).
    tag_shape : int or shape
        Shape of an optional tag passed through (an integer width, 0: none,
        or e.g. a ``data.StructLayout``).
    always_ready : bool
        Streams without back-pressure (see the module docstring).
    loadable : bool
        Write port and per-beat ``complement`` (module docstring).
    max_tables : int or None
        Tables the loadable memory holds (default: as many as given).
    folded : bool
        With ``quarter_wave``: the input phase comes already mirrored (its
        low ``phase_bits − 2`` bits inverted when bit ``phase_bits − 2`` is
        set, as a :class:`~.scaler.ChannelScaler` with ``quarter_fold``
        makes it), so its low bits address the table as they are (timing:
        no logic in front of the read address).

    Attributes: ``phase_bits``, ``lut_bits``, ``sel_width``, ``depth`` (ROM
    entries), ``latency`` (2).
    """

    def __init__(self, tables, lut_bits, *, quarter_wave=False, tag_shape=0, always_ready=False, loadable=False,
                 max_tables=None, folded=False):
        check_int("lut_bits", lut_bits, 2, 32)
        check_bool("quarter_wave", quarter_wave)
        check_bool("folded", folded)
        if folded and not quarter_wave:
            raise ValueError("folded is an option of a quarter_wave table")
        self.folded = folded
        check_bool("always_ready", always_ready)
        check_bool("loadable", loadable)
        tag_shape = check_tag_shape(tag_shape)
        if isinstance(tables, np.ndarray) and tables.ndim == 1:
            raise TypeError("tables must be a sequence of tables (wrap a single table in a list)")
        if isinstance(tables, (str, bytes)) or not hasattr(tables, "__iter__"):
            raise TypeError(f"tables must be a sequence of 1-D integer arrays, not {tables!r}")
        arrays = []
        for k, table in enumerate(tables):
            t = np.asarray(table)
            if t.ndim != 1:
                raise ValueError(f"tables[{k}] must be one-dimensional, got shape {t.shape}")
            if t.dtype.kind not in "iu":
                raise TypeError(f"tables[{k}] must hold integers, got dtype {t.dtype}")
            arrays.append(t.astype(np.int64))
        if not arrays:
            raise ValueError("tables must hold at least one table")
        size = arrays[0].shape[0]
        if size < 2 or size & (size - 1) or size > 1 << 16:
            raise ValueError(f"table length must be a power of two in [2, 65536], got {size}")
        lo, hi = -(1 << (lut_bits - 1)), (1 << (lut_bits - 1)) - 1
        for k, t in enumerate(arrays):
            if t.shape[0] != size:
                raise ValueError(f"tables[{k}] has {t.shape[0]} entries, tables[0] has {size}")
            if t.min() < lo or t.max() > hi:
                raise ValueError(f"tables[{k}] has values in [{t.min()}, {t.max()}], outside the "
                                 f"{lut_bits}-bit range [{lo}, {hi}]")
        phase_bits = size.bit_length() - 1
        if quarter_wave:
            if phase_bits < 2:
                raise ValueError("quarter_wave needs tables of at least 4 entries")
            for k, t in enumerate(arrays):
                if not is_quarter_wave_symmetric(t):
                    raise ValueError(f"tables[{k}] is not quarter-wave symmetric "
                                     f"(T[N/2-1-p] == T[p] and T[p+N/2] == -T[p] or -T[p]-1), "
                                     f"so quarter_wave=True would change its values")
        # per table: is the second half the complement (mid-rise) rather than the negation
        self.complement = [quarter_wave and quarter_wave_symmetry(t) == "complement" for t in arrays]
        self.tables = arrays
        self.lut_bits = lut_bits
        self.phase_bits = phase_bits
        self.quarter_wave = quarter_wave
        self.tag_shape = tag_shape
        self.tag_width = tag_width(tag_shape)
        self.always_ready = always_ready
        if max_tables is None:
            max_tables = len(arrays)
        elif not loadable:
            raise ValueError("max_tables is a parameter of a loadable table (loadable=True)")
        check_int("max_tables", max_tables, len(arrays))
        self.loadable = loadable
        self.max_tables = max_tables
        self.sel_width = max(1, ceil_log2(max_tables))
        self.stored = size // 4 if quarter_wave else size
        self.depth = self.stored * max_tables
        self.latency = 2
        in_layout = sine_lut_in_layout(phase_bits, self.sel_width, tag_shape)
        if loadable and quarter_wave:
            in_layout = data.StructLayout({**{k: f.shape for k, f in in_layout}, "complement": unsigned(1)})
        members = {
            "i": In(stream.Signature(in_layout, always_ready=always_ready)),
            "o": Out(stream.Signature(sine_lut_out_layout(lut_bits, tag_shape), always_ready=always_ready)),
        }
        if loadable:
            members["write"] = In(wiring.Signature({"en": Out(1), "addr": Out(max(1, ceil_log2(self.depth))),
                                                    "data": Out(lut_bits)}))
        super().__init__(members)

    @classmethod
    def from_model(cls, model, *, quarter_wave=False, tag_shape=0, always_ready=False):
        """The tables of every sine layer of a ``ModelImage`` (layers 1…L−1, in
        order, so ``sel = i − 1`` for layer ``i``), ``lut_bits`` the widest."""
        layers = [layer for layer in model.layers[1:]]
        tables = [layer.lut for layer in layers]
        lut_bits = max(layer.lut_bits for layer in layers)
        return cls(tables, lut_bits, quarter_wave=quarter_wave, tag_shape=tag_shape, always_ready=always_ready)

    def elaborate(self, platform):
        m = Module()
        ntab = self.max_tables
        init = np.concatenate([t[: self.stored] for t in self.tables]).tolist()
        # (A loadable table is written only while no region is rendered: no
        # read meets a write.)
        m.submodules.rom = rom = Memory(shape=signed(self.lut_bits), depth=self.depth, init=init,
                                        attrs=memory_attrs())
        if self.loadable:
            wr = rom.write_port()
            m.d.comb += [wr.en.eq(self.write.en), wr.addr.eq(self.write.addr), wr.data.eq(self.write.data)]
        rd = read_port(m, rom, platform)

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        if not self.always_ready:
            m.d.comb += self.i.ready.eq(advance)

        phase = self.i.payload.phase
        sel = Signal(range(ntab))
        with m.If(self.i.payload.sel < ntab):
            m.d.comb += sel.eq(self.i.payload.sel)
        index_bits = ceil_log2(self.stored)
        negate, complement = Signal(), Signal()
        if self.quarter_wave:
            k = self.phase_bits
            low = phase[: k - 2]
            index = low if self.folded else Mux(phase[k - 2], ~low, low)
            m.d.comb += negate.eq(phase[k - 1])
            if self.loadable:
                m.d.comb += complement.eq(self.i.payload.complement)
            elif all(self.complement):
                m.d.comb += complement.eq(1)
            elif any(self.complement):
                mask = sum(1 << t for t, c in enumerate(self.complement) if c)
                m.d.comb += complement.eq(Const(mask, ntab).bit_select(sel, 1))
        else:
            index = phase
        m.d.comb += [
            rd.addr.eq(Cat(index[:index_bits], sel) if index_bits else sel),
            rd.en.eq(advance),
        ]

        valid1, negate1, complement1 = Signal(), Signal(), Signal()
        if self.loadable or (any(self.complement) and not all(self.complement)):
            second_half = Mux(complement1, ~rd.data, -rd.data)
        else:
            second_half = ~rd.data if any(self.complement) else -rd.data
        with m.If(advance):
            m.d.sync += [
                valid1.eq(self.i.valid), negate1.eq(negate), complement1.eq(complement),
                self.o.valid.eq(valid1),
                self.o.payload.data.eq(Mux(negate1, second_half, rd.data)),
            ]
            if self.tag_width:
                tag1 = Signal(self.tag_width)
                m.d.sync += [tag1.eq(self.i.payload.tag), self.o.payload.tag.eq(tag1)]
        return m
