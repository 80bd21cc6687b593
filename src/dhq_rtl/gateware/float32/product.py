"""Wide unsigned products built from 16×16 pieces (fabric or ``SB_MAC16``).

:func:`product_terms` splits unsigned operands ``a`` and ``b`` into chunks
of at most 16 bits (from the least significant bit), multiplies every pair of
chunks in a registered multiplier, and returns the partial products with
their bit offsets; :func:`sum_terms` adds them. ``Σ pᵢⱼ · 2**(offᵢ + offⱼ)``
is the exact product, so the two together are a registered ``a * b``.

``dsp``:

* ``"generic"``: every piece is a registered ``*`` (any simulator, any
  FPGA; Yosys ``synth_ice40 -dsp`` maps each piece of a product of at least
  11 bits to one ``SB_MAC16``, ``synth_ecp5`` to ``MULT18X18D`` blocks);
* ``"ice40"``: every piece of more than ``logic_max_area`` partial-product
  bits (``width_a · width_b``) is an explicit ``SB_MAC16`` in unsigned
  16×16 mode (:func:`dhq_rtl.gateware.ice40_dsp.mul16x16`, output register
  inside the DSP), the smaller ones a registered ``*`` in logic. Not
  simulatable by Amaranth's simulator (the DSP is a black box); the tests
  simulate it with Yosys's ``cells_sim.v`` under Verilator.

Every piece is registered once (enable ``en``), so the generic and the
iCE40 form have the same timing: one cycle from operands to partial
products.
"""

from amaranth.hdl import Signal

from .. import ice40_dsp

__all__ = ["DSP_KINDS", "CHUNK_BITS", "chunks", "product_terms", "sum_terms", "dsp_pieces"]

DSP_KINDS = ("generic", "ice40")
#: Width of one piece (the 16×16 mode of ``SB_MAC16``).
CHUNK_BITS = ice40_dsp.MAX_SINGLE_BITS


def chunks(width):
    """``[(offset, width), …]`` of the pieces of a ``width``-bit operand,
    least significant first (all ``CHUNK_BITS`` wide but the last)."""
    return [(off, min(CHUNK_BITS, width - off)) for off in range(0, width, CHUNK_BITS)]


def dsp_pieces(a_width, b_width, dsp, logic_max_area=0):
    """How many pieces of an ``a_width × b_width`` product go into DSPs
    (``SB_MAC16`` instances) for ``dsp="ice40"`` (0 for ``"generic"``)."""
    if dsp != "ice40":
        return 0
    return sum(1 for _, wa in chunks(a_width) for _, wb in chunks(b_width) if wa * wb > logic_max_area)


def product_terms(m, a, b, *, en, dsp="generic", logic_max_area=0, name="mul"):
    """Registered partial products of unsigned ``a × b`` (``a``, ``b``:
    Values, read as unsigned). Returns ``[(offset, Signal), …]``."""
    if dsp not in DSP_KINDS:
        raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
    terms = []
    for oa, wa in chunks(len(a)):
        for ob, wb in chunks(len(b)):
            pa, pb = a[oa:oa + wa], b[ob:ob + wb]
            label = f"{name}_{oa // CHUNK_BITS}_{ob // CHUNK_BITS}"
            if dsp == "ice40" and wa * wb > logic_max_area:
                p = ice40_dsp.mul16x16(m, pa, pb, ce=en, name=label, signed=False)[:wa + wb]
            else:
                p = Signal(wa + wb, name=label, reset_less=True)
                with m.If(en):
                    m.d.sync += p.eq(pa * pb)
            terms.append((oa + ob, p))
    return terms


def sum_terms(terms):
    """``Σ value · 2**offset`` of ``terms``. Terms that do not overlap are
    concatenated into one row first, so a 2×2 split needs two adders."""
    rows = []  # [(offset, end, [(offset, value)])]
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
