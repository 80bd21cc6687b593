"""Wide unsigned products built from 16×16 pieces (registered ``*`` or ``SB_MAC16``).

:class:`Products` splits unsigned operands ``a`` and ``b`` into pieces of at
most 16 bits (least significant first), multiplies every pair of pieces, and
hands the partial products (with their bit offsets) to the next pipeline
stage; :func:`sum_terms` adds them. ``Σ pᵢⱼ · 2**(offᵢ + offⱼ)`` is the
exact product, so the two together are a registered ``a * b``: the pieces
count as one register stage of the :class:`~.pipeline.Pipeline`.

Where the pieces are multiplied:

* initiation interval 1: every piece has its own registered multiplier
  (clock enable = the pipeline's), so a unit with ``P`` pieces has ``P``
  multipliers;
* initiation interval ``N ≥ 3``: the pieces of all products of the unit share
  ``ceil(P / (N − 2))`` multipliers: in the window of ``N`` cycles that a
  stage holds its operands, multiplier ``j`` takes piece ``p`` (``p mod M ==
  j``) in cycle ``p // M``, its registered product is copied into a holding
  register one cycle later, and the holding registers move into the next
  stage when the pipeline advances (two spare cycles per window).

What a multiplier is (``dsp``):

* ``"generic"``: a registered ``*`` (any simulator, any FPGA; Yosys
  ``synth_ice40 -dsp`` maps a product of at least 11 bits to one
  ``SB_MAC16``, ``synth_ecp5`` to ``MULT18X18D`` blocks);
* ``"ice40"``: an explicit ``SB_MAC16`` in unsigned 16×16 mode
  (:func:`dhq_rtl.gateware.ice40_dsp.mul16x16`, its output register inside
  the DSP). Not simulatable by Amaranth's simulator (the DSP is a black box);
  the tests run it with Yosys's ``cells_sim.v`` under Verilator.

(A piece in logic is not offered: ``synth_ice40 -dsp`` maps every ``*`` of
an 11-bit or wider product to an ``SB_MAC16`` anyway.)
"""

from amaranth.hdl import Const, Signal

from .. import ice40_dsp

__all__ = ["DSP_KINDS", "CHUNK_BITS", "chunks", "Products", "sum_terms", "pieces_of", "multipliers_needed"]

DSP_KINDS = ("generic", "ice40")
#: Width of one piece (the 16×16 mode of ``SB_MAC16``).
CHUNK_BITS = ice40_dsp.MAX_SINGLE_BITS


def chunks(width):
    """``[(offset, width), …]`` of the pieces of a ``width``-bit operand,
    least significant first (all ``CHUNK_BITS`` wide but the last)."""
    return [(off, min(CHUNK_BITS, width - off)) for off in range(0, width, CHUNK_BITS)]


def pieces_of(a_width, b_width):
    """``[(width_a, width_b), …]`` of the pieces of an ``a_width × b_width`` product."""
    return [(wa, wb) for _, wa in chunks(a_width) for _, wb in chunks(b_width)]


def multipliers_needed(shapes, *, ii=1, dsp="generic"):
    """``(multipliers, dsps)`` for products of the operand widths ``shapes``
    (a list of ``(a_width, b_width)``): how many multipliers
    :class:`Products` builds, and how many of them are ``SB_MAC16`` with
    ``dsp="ice40"`` (0 for ``"generic"``)."""
    pieces = sum(len(pieces_of(a, b)) for a, b in shapes)
    mults = pieces if ii == 1 else -(-pieces // (ii - 2))
    return mults, mults if dsp == "ice40" else 0


class Products:
    """The multiplications of one unit, built into module ``m`` beside
    ``pipe`` (a :class:`~.pipeline.Pipeline`).

    Call :meth:`product` for every multiplication (each returns its pieces,
    which belong to the next register stage of ``pipe``: call
    ``pipe.stage(...)`` right after it for the values travelling beside), then
    :meth:`finish` once.
    """

    def __init__(self, m, pipe, *, dsp="generic"):
        if not isinstance(dsp, str) or dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        if pipe.ii == 2:
            raise ValueError("products need an initiation interval of 1 or at least 3")
        self.m, self.pipe, self.dsp = m, pipe, dsp
        self.shared = []      # (a piece, b piece, stage register) for ii > 1
        self.multipliers = 0
        self.dsps = 0

    def _multiply(self, a, b, *, ce, name):
        wa, wb = len(a), len(b)
        if self.dsp == "ice40":
            self.dsps += 1
            return ice40_dsp.mul16x16(self.m, a, b, ce=ce, name=name, signed=False)[:wa + wb]
        p = Signal(wa + wb, name=name, reset_less=True)
        with self.m.If(ce):
            self.m.d.sync += p.eq(a * b)
        return p

    def product(self, name, a, b):
        """The pieces of unsigned ``a × b``: ``[(offset, Value), …]``."""
        terms = []
        for oa, wa in chunks(len(a)):
            for ob, wb in chunks(len(b)):
                pa, pb = a[oa:oa + wa], b[ob:ob + wb]
                label = f"{name}_{oa // CHUNK_BITS}_{ob // CHUNK_BITS}"
                if self.pipe.ii == 1:
                    self.multipliers += 1
                    p = self._multiply(pa, pb, ce=self.pipe.en, name=label)
                else:
                    p = Signal(wa + wb, name=label, reset_less=True)
                    self.shared.append((pa, pb, p))
                terms.append((oa + ob, p))
        return terms

    def finish(self):
        """Build the shared multipliers (initiation interval > 1)."""
        if self.pipe.ii == 1 or not self.shared:
            return
        m, pipe = self.m, self.pipe
        slots = pipe.ii - 2
        count = -(-len(self.shared) // slots)
        for j in range(count):
            mine = self.shared[j::count]          # piece p = j + s·count in slot s
            wa = max(len(pa) for pa, _, _ in mine)
            wb = max(len(pb) for _, pb, _ in mine)
            op_a, op_b = Signal(wa, name=f"shared{j}_a"), Signal(wb, name=f"shared{j}_b")
            with m.Switch(pipe.slot):
                for s, (pa, pb, _) in enumerate(mine):
                    with m.Case(s):
                        m.d.comb += [op_a.eq(pa), op_b.eq(pb)]
            prod = self._multiply(op_a, op_b, ce=Const(1, 1), name=f"shared{j}")
            self.multipliers += 1
            for s, (pa, pb, reg) in enumerate(mine):
                hold = Signal(len(reg), name=f"{reg.name}_hold", reset_less=True)
                with m.If(pipe.slot == s + 1):
                    m.d.sync += hold.eq(prod[:len(reg)])
                with m.If(pipe.en):
                    m.d.sync += reg.eq(hold)


def sum_terms(terms):
    """``Σ value · 2**offset`` of ``terms``. Terms that do not overlap are
    concatenated into one row first, so a 2×2 split needs two adders."""
    rows = []  # [offset, end, [(offset, value)]]
    for off, value in sorted(terms, key=lambda t: (t[0], -len(t[1]))):
        end = off + len(value)
        for row in rows:
            if row[1] <= off:
                row[1] = end
                row[2].append((off, value))
                break
        else:
            rows.append([off, end, [(off, value)]])
    total = None
    for _, _, parts in rows:
        row = None
        for off, value in parts:
            row = value << off if row is None else row | (value << off)
        total = row if total is None else total + row
    return total
