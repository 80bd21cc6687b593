"""IEEE-754 binary32 arithmetic of the FP32 units, in numpy (bit-exact twins).

This module is the specification of the FP32 gateware units
(:mod:`dhq_rtl.gateware.float32`) and the building block of a float32 golden
model: every function here computes, on ``uint32`` arrays of float32 bit
patterns, exactly the bits the matching unit produces. ``docs/float32.md``
describes every step.

Number policy (the same for every unit):

* **Flush to zero.** A subnormal input (exponent field 0) counts as a zero of
  the same sign; a result whose magnitude is below the smallest normal
  ``2**-126`` after rounding is replaced by a zero of the same sign.
  :func:`mul_spec` and :func:`add_spec` state this with numpy itself:
  ``flush(numpy_float32(flush(a) op flush(b)))``.
* **Round to nearest, ties to even** for every rounded result.
* **Overflow, infinities and NaN propagate as IEEE-754 says**: a finite
  result that rounds beyond the largest float becomes ±Inf; ``Inf − Inf``,
  ``0 · Inf`` and any NaN operand give a NaN; ``sin(±Inf)`` is a NaN. Every
  NaN output is the one canonical quiet NaN :data:`QNAN` (``0x7FC00000``):
  IEEE leaves the payload and the sign of a NaN open, and numpy's depend on
  the machine, so the twins canonicalise numpy's NaNs. (The model never
  reaches these cases: its parameters are finite and its activations
  bounded, so overflow would need a pre-activation beyond ``2**127``;
  propagating instead of saturating keeps a broken input visible rather than
  turning it into a plausible number.)

Functions:

* :func:`flush` — flush subnormals to signed zeros;
* :func:`mul_spec`, :func:`add_spec` — the specification through numpy;
* :func:`mul`, :func:`add` — the unit algorithms step by step on integers
  (the same widths, shifts and rounding as the RTL; the tests prove they
  equal the specification);
* :class:`SineSpec`, :func:`sin_turns` — the sine unit: ``sin(2π·t)`` of a
  phase ``t`` in turns, exact range reduction, a quadratic table, RNE;
* :func:`sin_turns_reference`, :func:`ulp_error` — the float64 reference
  and the error measure in units in the last place;
* :func:`tree_sum`, :func:`lane_dot` — the summation order of lanes, an
  adder tree and an accumulator;
* :func:`to_bits`, :func:`from_bits`.
"""

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "FRAC_BITS", "EXP_BITS", "BIAS", "EXP_MAX", "QNAN", "INF", "SIGN", "MIN_NORMAL",
    "to_bits", "from_bits", "flush", "canonical_nan",
    "mul_spec", "add_spec", "mul", "add", "tree_sum", "lane_dot",
    "SineSpec", "DEFAULT_SINE", "sine_table", "sin_turns", "sin_turns_reference", "ulp_error",
]

#: Fraction bits (the stored mantissa, without the hidden 1).
FRAC_BITS = 23
#: Exponent field bits.
EXP_BITS = 8
#: Exponent bias.
BIAS = 127
#: Exponent field of Inf and NaN.
EXP_MAX = (1 << EXP_BITS) - 1
#: The canonical quiet NaN every unit outputs.
QNAN = 0x7FC00000
#: +Inf (or with :data:`SIGN` set, −Inf).
INF = EXP_MAX << FRAC_BITS
#: The sign bit.
SIGN = 1 << 31
#: The bit pattern of the smallest normal number, 2**-126.
MIN_NORMAL = 1 << FRAC_BITS

_FRAC_MASK = (1 << FRAC_BITS) - 1
_HIDDEN = 1 << FRAC_BITS


def to_bits(x):
    """float32 values (anything numpy casts to float32) → ``uint32`` bit patterns."""
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def from_bits(u):
    """``uint32`` bit patterns → float32 values."""
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def _u32(u):
    a = np.asarray(u)
    if a.dtype.kind not in "iu":
        raise TypeError(f"float32 bit patterns must be integers, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 0xFFFFFFFF):
        raise ValueError("float32 bit patterns must lie in [0, 2**32)")
    return a.astype(np.uint32)


def flush(u):
    """Replace subnormal bit patterns by zeros of the same sign (others unchanged)."""
    u = _u32(u)
    return np.where((u & np.uint32(INF)) == 0, u & np.uint32(SIGN), u).astype(np.uint32)


def canonical_nan(u):
    """Replace every NaN bit pattern by :data:`QNAN` (others unchanged)."""
    u = _u32(u)
    nan = ((u & np.uint32(INF)) == INF) & ((u & np.uint32(_FRAC_MASK)) != 0)
    return np.where(nan, np.uint32(QNAN), u).astype(np.uint32)


def _spec(op, a, b):
    a, b = np.broadcast_arrays(flush(a), flush(b))
    with np.errstate(all="ignore"):
        r = op(from_bits(a), from_bits(b))
    return flush(canonical_nan(to_bits(r)))


def mul_spec(a, b):
    """The product the multiplier must give: ``flush(numpy float32 product of
    flush(a), flush(b))``, NaNs canonical. Bit patterns in and out."""
    return _spec(np.multiply, a, b)


def add_spec(a, b):
    """The sum the adder must give: ``flush(numpy float32 sum of flush(a),
    flush(b))``, NaNs canonical. Bit patterns in and out."""
    return _spec(np.add, a, b)


# ------------------------------------------------------------------ unpacking

def _unpack(u):
    u = u.astype(np.int64)
    return u >> 31, (u >> FRAC_BITS) & EXP_MAX, u & _FRAC_MASK


def _classes(e, f):
    """zero (after flushing), inf, nan masks of unpacked operands."""
    return e == 0, (e == EXP_MAX) & (f == 0), (e == EXP_MAX) & (f != 0)


def _pack(sign, exp, frac):
    return ((sign.astype(np.int64) << 31) | (exp.astype(np.int64) << FRAC_BITS) | frac).astype(np.uint32)


def _round_nearest_even(mant, guard, sticky):
    """``mant`` (an integer of ``FRAC_BITS + 1`` bits with its leading one)
    rounded at its lsb: up when the guard bit is set and either a sticky bit
    or the lsb is set. Returns ``(mant', carry)``: on carry the mantissa went
    to ``2**(FRAC_BITS + 1)`` and is returned as ``2**FRAC_BITS`` (the caller
    adds one to the exponent)."""
    up = guard & (sticky | (mant & 1))
    mant = mant + up
    carry = mant >> (FRAC_BITS + 1)
    return np.where(carry == 1, _HIDDEN, mant), carry


# ------------------------------------------------------------------- multiply

def mul(a, b):
    """The multiplier's algorithm (twin of :class:`~dhq_rtl.gateware.float32.Fp32Mul`).

    1. Unpack; an exponent field of 0 is a zero (flush); classify Inf/NaN.
    2. ``p = ma · mb``: the exact 48-bit product of the 24-bit mantissas
       (``2**46 ≤ p < 2**48``).
    3. Normalise: ``top = p ≫ 47``; biased exponent ``e = ea + eb − 127 +
       top``; mantissa ``p ≫ (23 + top)`` (24 bits), guard bit below it,
       sticky = OR of the bits under the guard.
    4. Round to nearest even; a carry out gives mantissa ``2**23`` and
       ``e + 1``.
    5. ``e ≥ 255`` after rounding: ±Inf. ``e ≤ 0``: ±0, except ``e == 0``
       before rounding with all 23 fraction bits set: the product is at least
       ``2**-126 − 2**-150``, which rounds to ``2**-126`` on the float32 grid
       with subnormals, so the result is ``±2**-126`` (this keeps the result
       equal to numpy's, flushed).
    6. Specials: NaN operand or ``0 · Inf`` → :data:`QNAN`; Inf operand →
       ±Inf; a zero operand → ±0 (sign = XOR of the signs, always).
    """
    a, b = np.broadcast_arrays(_u32(a), _u32(b))
    sa, ea, fa = _unpack(a)
    sb, eb, fb = _unpack(b)
    za, ia, na = _classes(ea, fa)
    zb, ib, nb = _classes(eb, fb)
    sign = sa ^ sb
    nan = na | nb | (ia & zb) | (ib & za)
    inf = (ia | ib) & ~nan
    zero = (za | zb) & ~nan & ~inf

    p = (fa | _HIDDEN) * (fb | _HIDDEN)
    top = p >> (2 * FRAC_BITS + 1)
    e = ea + eb - BIAS + top
    sh = FRAC_BITS + top
    mant0 = p >> sh
    guard = (p >> (sh - 1)) & 1
    sticky = ((p & ((np.int64(1) << (sh - 1)) - 1)) != 0).astype(np.int64)
    mant, carry = _round_nearest_even(mant0, guard, sticky)
    e_r = e + carry
    up_to_min = (e == 0) & ((mant0 & _FRAC_MASK) == _FRAC_MASK)
    overflow = e_r >= EXP_MAX
    underflow = (e_r <= 0) & ~up_to_min

    exp = np.where(up_to_min, 1, np.clip(e_r, 0, EXP_MAX))
    frac = np.where(up_to_min, 0, mant & _FRAC_MASK)
    out = _pack(sign, exp, frac)
    out = np.where(overflow | inf, _pack(sign, np.full_like(e, EXP_MAX), 0), out)
    out = np.where(underflow | zero, _pack(sign, np.zeros_like(e), 0), out)
    return np.where(nan, np.uint32(QNAN), out).astype(np.uint32)


# ------------------------------------------------------------------------ add

#: Bits kept below the 24-bit mantissa while aligning: guard, round, sticky.
ADD_EXTRA_BITS = 3


def add(a, b):
    """The adder's algorithm (twin of :class:`~dhq_rtl.gateware.float32.Fp32Add`).

    1. Unpack, flush, classify. Order the operands by magnitude (the 31 low
       bits of the flushed patterns compared as integers): ``big`` ≥ ``small``.
    2. Mantissas with three extra bits (guard, round, sticky): ``Mb = mb ≪ 3``
       (27 bits); ``Ms = (ms ≪ 3) ≫ d`` with ``d = eb − es``, the sticky
       bit (bit 0) ORed with every bit shifted out (``d ≥ 27``: only the
       sticky). A zero has mantissa 0.
    3. ``S = Mb + Ms`` or, for operands of different signs, ``Mb − Ms``
       (28 bits, never negative).
    4. Normalise: ``z`` = leading zeros of ``S`` in 28 bits; ``S ≪ z``; the
       exponent is ``eb + 1 − z``. Mantissa = bits 27…4, guard = bit 3,
       sticky = OR of bits 2…0.
    5. Round to nearest even (carry: exponent + 1). ``e ≥ 255``: ±Inf.
       ``e ≤ 0``: ±0 (such a sum is exact: both operands are multiples of
       ``2**-149``). ``S == 0``: +0, or −0 when both operands are −0.
    6. Specials: NaN operand or ``Inf − Inf`` → :data:`QNAN`; an Inf operand
       → that Inf.

    The sign of a non-zero result is the sign of ``big``.
    """
    a, b = np.broadcast_arrays(flush(a), flush(b))
    swap = (b & np.uint32(0x7FFFFFFF)) > (a & np.uint32(0x7FFFFFFF))
    big, small = np.where(swap, b, a), np.where(swap, a, b)
    sb, eb, fb = _unpack(big)
    ss, es, fs = _unpack(small)
    zb, ib, nb = _classes(eb, fb)
    zs, is_, ns = _classes(es, fs)
    nan = nb | ns | (ib & is_ & (sb != ss))
    inf = ib & ~nan                       # |big| ≥ |small|: an Inf is always big

    x = ADD_EXTRA_BITS
    width = FRAC_BITS + 1 + x             # 27
    mb = np.where(zb, 0, fb | _HIDDEN) << x
    ms = np.where(zs, 0, fs | _HIDDEN) << x
    d = eb - es
    dc = np.minimum(d, width)
    shifted = ms >> dc
    lost = (ms & ((np.int64(1) << dc) - 1)) != 0
    ms = shifted | lost.astype(np.int64)
    sub = sb != ss
    s = np.where(sub, mb - ms, mb + ms)   # 0 ≤ s < 2**28

    n = width + 1                          # 28
    z = np.where(s == 0, n, n - _bit_length(s))
    sn = (s << np.minimum(z, n - 1)) & ((np.int64(1) << n) - 1)
    e = eb + 1 - z
    mant = sn >> (x + 1)
    guard = (sn >> x) & 1
    sticky = ((sn & ((1 << x) - 1)) != 0).astype(np.int64)
    mant, carry = _round_nearest_even(mant, guard, sticky)
    e = e + carry
    exact_zero = s == 0
    overflow = (e >= EXP_MAX) & ~exact_zero
    underflow = (e <= 0) & ~exact_zero

    out = _pack(sb, np.clip(e, 0, EXP_MAX), mant & _FRAC_MASK)
    out = np.where(overflow, _pack(sb, np.full_like(e, EXP_MAX), 0), out)
    out = np.where(underflow, _pack(sb, np.zeros_like(e), 0), out)
    zero_sign = np.where(zb & zs, sb & ss, 0)
    out = np.where(exact_zero, _pack(zero_sign, np.zeros_like(e), 0), out)
    out = np.where(inf, _pack(sb, np.full_like(e, EXP_MAX), 0), out)
    return np.where(nan, np.uint32(QNAN), out).astype(np.uint32)


def _bit_length(v):
    """Bit length of non-negative int64 values below 2**53 (0 → 0)."""
    v = np.asarray(v, dtype=np.int64)
    return np.where(v > 0, np.frexp(v.astype(np.float64))[1], 0).astype(np.int64)


def tree_sum(values, axis=-1):
    """Sum float32 bit patterns along ``axis`` with :func:`add` in a pairwise
    tree: level by level, elements ``2j`` and ``2j+1`` are added, an odd last
    element passes to the next level unchanged (the order of an adder tree
    over lanes ``0 … n−1``)."""
    v = np.moveaxis(_u32(values), axis, -1)
    if v.shape[-1] == 0:
        raise ValueError("tree_sum needs at least one value")
    while v.shape[-1] > 1:
        n = v.shape[-1]
        pairs = add(v[..., 0:n - 1:2], v[..., 1:n:2])
        v = np.concatenate([pairs, v[..., n - 1:]], axis=-1) if n % 2 else pairs
    return v[..., 0]


def lane_dot(weights, x, lanes):
    """Dot products ``weights @ x`` in the order of ``lanes`` multipliers, an
    adder tree and an accumulator: the input vector is cut into beats of
    ``lanes`` elements (the last one padded with +0 weights and +0 inputs,
    whose products are +0); per beat the products (:func:`mul`) are summed
    with :func:`tree_sum`; the beat sums are added in beat order, the first
    beat's sum being the start value. ``weights``: ``(n_out, n_in)``, ``x``:
    ``(..., n_in)`` bit patterns; returns ``(..., n_out)``. The bias is not
    added here (where it goes is the model's choice)."""
    w = _u32(weights)
    v = _u32(x)
    if w.ndim != 2 or v.shape[-1] != w.shape[1]:
        raise ValueError(f"weights {w.shape} and inputs {v.shape} do not chain")
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer, got {lanes!r}")
    n_out, n_in = w.shape
    beats = -(-n_in // lanes)
    pad = beats * lanes - n_in
    w = np.concatenate([w, np.zeros((n_out, pad), np.uint32)], axis=1).reshape(n_out, beats, lanes)
    v = np.concatenate([v, np.zeros(v.shape[:-1] + (pad,), np.uint32)], axis=-1)
    v = v.reshape(v.shape[:-1] + (1, beats, lanes))
    sums = tree_sum(mul(w, v))                       # (..., n_out, beats)
    acc = sums[..., 0]
    for b in range(1, beats):
        acc = add(acc, sums[..., b])
    return acc


# ----------------------------------------------------------------------- sine

@dataclass(frozen=True)
class SineSpec:
    """Parameters of the sine unit's arithmetic (see :func:`sin_turns`).

    ``index_bits`` (k): the table has ``2**k`` segments over the reduced
    argument ``r ∈ [0, 1)`` (quarter turns); ``h_bits`` (H): fraction bits of
    the interpolated factor ``h(r) = sin(π r/2)/r ∈ [1, π/2]``. The other
    widths follow (each truncation error below ``2**-(H+2)`` in ``h``):

    * ``r_bits = H + 2``: fraction bits of the fixed-point ``r``;
    * ``delta1_bits = H + 2 − k``: bits of the offset ``δ`` in a segment
      that multiply the slope;
    * ``delta2_bits = H + 2 − 2k``: bits of ``δ`` that multiply the
      curvature;
    * ``guard_bits = 2``: extra fraction bits of the slope sum.
    """

    index_bits: int = 8
    h_bits: int = 27

    def __post_init__(self):
        for name, lo, hi in (("index_bits", 4, 10), ("h_bits", 22, 28)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, not {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")

    guard_bits = 2

    @property
    def r_bits(self):
        return self.h_bits + 2

    @property
    def delta_bits(self):
        return self.r_bits - self.index_bits

    @property
    def delta1_bits(self):
        return self.h_bits + 2 - self.index_bits

    @property
    def delta2_bits(self):
        return self.h_bits + 2 - 2 * self.index_bits


DEFAULT_SINE = SineSpec()


def _pi_fixed(bits):
    """π · 2**bits rounded down, from Machin's formula in integers."""
    guard = 16
    scale = 1 << (bits + guard)

    def atan_inv(x):
        total, term, k, sign = 0, scale // x, 1, 1
        while term:
            total += sign * (term // k)
            term //= x * x
            k += 2
            sign = -sign
        return total

    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> guard


_PREC = 120  # fixed-point bits of the table computation


def _h_value(r):
    """``sin(π r / 2) / r`` for a rational ``r ∈ [0, 1]``, as a Fraction with
    ``_PREC`` bits (Taylor series in integers: the same on every machine)."""
    one = 1 << _PREC
    a = Fraction(_pi_fixed(_PREC + 8), 1 << (_PREC + 9))     # π/2
    x = a * r                                                # ≤ π/2
    x2 = x * x
    # sin(x)/r = a · Σ (−1)^n x^(2n) / (2n+1)!
    term, total, n = Fraction(1), Fraction(0), 0
    while abs(term) * one >= 1:
        total += term
        n += 1
        term = -term * x2 / ((2 * n) * (2 * n + 1))
    return Fraction(round(a * total * one), one)


# Interpolation nodes in a segment (close to the Chebyshev nodes of [0, 1]).
_NODES = (Fraction(1, 15), Fraction(1, 2), Fraction(14, 15))


@functools.lru_cache(maxsize=8)
def sine_table(spec=DEFAULT_SINE):
    """The sine unit's coefficient table: ``(C0, C1, C2)`` int64 arrays of
    ``2**index_bits`` entries.

    Segment ``i`` covers ``r ∈ [i, i + 1)·2**-k``; with ``δ ∈ [0, 1)`` the
    position in it, ``h ≈ c0 − c1·δ − c2·δ²`` is the quadratic through
    ``h`` at three nodes near the Chebyshev nodes. Stored: ``C0 =
    round(c0·2**H)``, ``C1 = round(c1·2**(H+g))``, ``C2 = round(c2·2**(H+g))``
    (``c1, c2 ≥ 0``: ``h`` falls and is concave on ``[0, 1]``). Computed
    with rational arithmetic, so the table is the same on every machine.
    """
    if not isinstance(spec, SineSpec):
        raise TypeError(f"spec must be a SineSpec, not {type(spec).__name__}")
    n = 1 << spec.index_bits
    H, g = spec.h_bits, spec.guard_bits
    c0s, c1s, c2s = [], [], []
    for i in range(n):
        ys = [_h_value((i + d) / Fraction(n)) for d in _NODES]
        (x0, x1, x2), (y0, y1, y2) = _NODES, ys
        # Newton form → monomial coefficients of p(δ) = k0 + k1 δ + k2 δ²
        d01 = (y1 - y0) / (x1 - x0)
        d12 = (y2 - y1) / (x2 - x1)
        k2 = (d12 - d01) / (x2 - x0)
        k1 = d01 - k2 * (x0 + x1)
        k0 = y0 - d01 * x0 + k2 * x0 * x1
        c0s.append(round(k0 * (1 << H)))
        c1s.append(round(-k1 * (1 << (H + g))))
        c2s.append(round(-k2 * (1 << (H + g))))
    c0, c1, c2 = (np.array(c, dtype=np.int64) for c in (c0s, c1s, c2s))
    if c1.min() < 0 or c2.min() < 0:
        raise AssertionError("sine table: slope or curvature changed sign")
    return c0, c1, c2


#: ``r = 4|t| = m·2**(e − _R_SHIFT)`` for a phase ``t`` with exponent field ``e``.
_R_SHIFT = BIAS + FRAC_BITS - 2


def _reduce(t):
    """Range reduction of phases ``t`` (turns): returns a dict of int64 arrays
    (see :func:`sin_turns`)."""
    sign, e, f = _unpack(t)
    m = f | _HIDDEN
    big = e >= BIAS - 2                   # |t| ≥ 1/4: reduce
    sh = np.clip(e - (BIAS - 2), 0, 25)
    x = (m << sh) & ((1 << 25) - 1)       # 4|t| mod 4, 23 fraction bits (sh = 25 → 0)
    q = np.where(big, x >> FRAC_BITS, 0)
    f23 = x & _FRAC_MASK
    r23 = np.where(q & 1, _HIDDEN - f23, f23)
    return {"sign": sign, "e": e, "m": m, "big": big, "q": q, "r23": r23}


def sin_turns(t, spec=DEFAULT_SINE):
    """``sin(2π·t)`` of float32 phases ``t`` (bit patterns, in turns): the
    sine unit's algorithm (twin of :class:`~dhq_rtl.gateware.float32.Fp32Sine`).

    1. Unpack; exponent field 0 (zero or subnormal): ``±0``; 255: Inf/NaN →
       :data:`QNAN`.
    2. Reduction (exact). For ``|t| ≥ 1/4`` (``e ≥ 125``):
       ``X = (m ≪ (e − 125)) mod 2**25`` is ``4|t| mod 4`` with 23 fraction
       bits (0 when ``e − 125 ≥ 25``); quadrant ``q = X ≫ 23``, ``f = X mod
       2**23``; ``R = f`` for even ``q``, ``2**23 − f`` for odd ``q``; the
       reduced argument (quarter turns) is ``r = R·2**-23 ∈ [0, 1]`` and
       ``sin(2π t) = ±sin(π r / 2)``, negative for ``q ≥ 2``. For ``|t| <
       1/4``: ``q = 0``, ``r = 4|t| = m·2**(e − 148)`` (exact, a float).
    3. ``r = 0``: ``±0``. ``r = 1``: ``±1``. Otherwise ``r = mr·2**(er − 23)``
       with a 24-bit mantissa ``mr`` (the small case: ``mr = m``, ``er = e −
       125``; the reduced case: ``R`` shifted up to its leading one).
    4. Fixed-point ``r`` with ``r_bits`` fraction bits (``R`` shifted, exact;
       the small case truncated). Index ``i`` = its top ``index_bits`` fraction
       bits, ``δ`` the rest; ``δ1``, ``δ2`` the top ``delta1_bits`` and
       ``delta2_bits`` of ``δ``.
    5. ``u = C1[i] + round(C2[i]·δ2 / 2**delta2_bits)``;
       ``H = C0[i] − round(u·δ1 / 2**(delta1_bits + g))`` (``round``: add
       half, floor) ≈ ``h(r)·2**h_bits``.
    6. ``P = mr·H`` exactly; ``top`` = 1 if ``P ≥ 2**(24 + h_bits)``; the
       24-bit mantissa is ``P ≫ (h_bits + top)``, rounded to nearest even
       with the bits below; biased exponent ``er + 127 + top`` (+1 on a
       rounding carry).
    7. Sign: the sign of ``t`` XOR (``q ≥ 2``); a zero takes the sign of ``t``.
    """
    if not isinstance(spec, SineSpec):
        raise TypeError(f"spec must be a SineSpec, not {type(spec).__name__}")
    t = _u32(t)
    red = _reduce(t)
    sign, e, m, big, q, r23 = (red[k] for k in ("sign", "e", "m", "big", "q", "r23"))
    zero_in = e == 0
    nan = e == EXP_MAX
    zero_r = big & (r23 == 0)
    one = big & (r23 == _HIDDEN)

    F = spec.r_bits
    # fixed-point r with F fraction bits
    n = e - _R_SHIFT + F                  # small case: r·2**F = m·2**n
    small_fix = np.where(n >= 0, m << np.clip(n, 0, 62), m >> np.clip(-n, 0, 62))
    rfix = np.where(big, r23 << (F - FRAC_BITS), small_fix)
    k, D = spec.index_bits, spec.delta_bits
    idx = np.minimum(rfix >> D, (1 << k) - 1)
    delta = rfix & ((1 << D) - 1)
    d1 = delta >> (D - spec.delta1_bits)
    d2 = delta >> (D - spec.delta2_bits)
    c0, c1, c2 = (c[idx] for c in sine_table(spec))
    u = c1 + ((c2 * d2 + (1 << (spec.delta2_bits - 1))) >> spec.delta2_bits)
    s1 = spec.delta1_bits + spec.guard_bits
    h = c0 - ((u * d1 + (1 << (s1 - 1))) >> s1)

    # r = mr·2**(er − 23)
    bl = _bit_length(r23)
    mr = np.where(big, r23 << np.clip(FRAC_BITS + 1 - bl, 0, 24), m)
    er = np.where(big, bl - (FRAC_BITS + 1), e - (BIAS - 2))
    p = mr * h
    H = spec.h_bits
    top = p >> (FRAC_BITS + 1 + H)
    sh = H + top
    mant = p >> sh
    guard = (p >> (sh - 1)) & 1
    sticky = ((p & ((np.int64(1) << (sh - 1)) - 1)) != 0).astype(np.int64)
    mant, carry = _round_nearest_even(mant, guard, sticky)
    exp = er + BIAS + top + carry

    out_sign = sign ^ (q >> 1)
    out = _pack(out_sign, np.clip(exp, 0, EXP_MAX), mant & _FRAC_MASK)
    out = np.where(one, _pack(out_sign, np.full_like(e, BIAS), 0), out)
    out = np.where(zero_r | zero_in, _pack(sign, np.zeros_like(e), 0), out)
    return np.where(nan, np.uint32(QNAN), out).astype(np.uint32)


def sin_turns_reference(t):
    """``sin(2π·t)`` in float64 for float32 phases ``t`` (bit patterns,
    flushed like the unit's input): the reduction of :func:`sin_turns` is
    exact, so the reference reduces the same way and evaluates
    ``sin(π r/2)`` of the exact ``r`` with numpy (relative error about
    ``2**-52``, far below a float32 ULP). NaN for Inf/NaN inputs."""
    t = _u32(t)
    red = _reduce(t)
    sign, e, m, big, q, r23 = (red[k] for k in ("sign", "e", "m", "big", "q", "r23"))
    r = np.where(big, r23.astype(np.float64) * 2.0 ** -FRAC_BITS,
                 np.ldexp(m.astype(np.float64), (e - _R_SHIFT).astype(np.int32)))
    r = np.where(e == 0, 0.0, r)
    y = np.sin(np.pi / 2 * r)
    y = np.where(e == EXP_MAX, np.nan, y)
    return np.where((sign ^ (q >> 1)) == 1, -y, y)


def ulp_error(y_bits, ref):
    """``|y − ref|`` in units of the float32 ULP of ``ref`` (the spacing of
    float32 numbers in the binade of ``|ref|``; ``2**-149`` below the smallest
    normal). ``y_bits``: float32 bit patterns; ``ref``: float64 values."""
    y = from_bits(y_bits).astype(np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    mag = np.abs(ref)
    with np.errstate(divide="ignore"):
        exp = np.floor(np.log2(np.where(mag > 0, mag, 1.0)))
    ulp = np.where(mag >= 2.0 ** -126, np.ldexp(1.0, (exp - FRAC_BITS).astype(np.int32)), 2.0 ** -149)
    return np.abs(y - ref) / ulp
