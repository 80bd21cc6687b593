"""Operand sets for the FP32 unit tests: corner classes and random vectors.

Every function returns ``uint32`` arrays of float32 bit patterns (pairs for
the two-operand units). The classes are the ones a binary32 unit gets wrong
first: zeros of both signs, subnormals (flushed), the smallest and largest
normals, infinities and NaNs, products and sums that fall exactly on a
rounding tie (both parities of the last mantissa bit), exponent carries in
the normalisation and in the rounding, cancellation, overflow and the
underflow boundary.
"""

import numpy as np

from dhq_rtl import float32_ref as ref

MANT = 1 << ref.FRAC_BITS
FRAC = MANT - 1


def pack(sign, exp, frac):
    sign, exp, frac = (np.asarray(x, dtype=np.int64) for x in (sign, exp, frac))
    return ((sign << 31) | (exp << ref.FRAC_BITS) | frac).astype(np.uint32)


def specials():
    """One of each special class, both signs."""
    mags = [0, 1, 0x7FFFFF, 0x400000,                      # zero, subnormals (flushed)
            MANT, MANT + 1, MANT + FRAC,                     # smallest normals, just below 2**-125
            0x3F800000, 0x3F800001, 0x3FFFFFFF, 0x3FC00000,  # 1, 1 + ulp, 2 − ulp, 1.5
            0x3F7FFFFF, 0x40000000, 0x00FFFFFF,
            0x7F7FFFFF, 0x7F7FFFFE, 0x7F000000,              # largest normals
            0x7F800000,                                      # Inf
            0x7FC00000, 0x7F800001, 0x7FFFFFFF]              # quiet and signalling NaNs
    mags = np.array(mags, dtype=np.uint32)
    return np.concatenate([mags, mags | np.uint32(ref.SIGN)])


def all_pairs(values):
    a, b = np.meshgrid(values, values, indexing="ij")
    return a.ravel(), b.ravel()


def random_bits(rng, n):
    """Uniformly random bit patterns (every exponent, so mostly huge or tiny)."""
    return rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)


def random_normal(rng, n, lo=100, hi=154):
    """Random signs and fractions, exponent fields in ``[lo, hi)``."""
    return pack(rng.integers(0, 2, n), rng.integers(lo, hi, n), rng.integers(0, MANT, n))


# ------------------------------------------------------------------- products

def mul_ties(rng, n):
    """Pairs whose exact product lies exactly halfway between two floats:
    ``ma = x·2**j``, ``mb = y·2**l`` with ``x, y`` odd and ``j + l = 22 +
    top``, so the product is an odd multiple of the guard bit."""
    a, b = [], []
    while len(a) < n:
        j = int(rng.integers(0, 23))
        top = int(rng.integers(0, 2))
        l = 22 + top - j
        if not 0 <= l <= 23:
            continue
        x = int(rng.integers(1 << (23 - j), 1 << (24 - j))) | 1 if j < 23 else 1
        y = int(rng.integers(1 << (23 - l), 1 << (24 - l))) | 1 if l < 23 else 1
        ma, mb = x << j, y << l
        if (ma * mb >> 47) != top or ma >= 2 * MANT or mb >= 2 * MANT:
            continue
        ea, eb = int(rng.integers(100, 150)), int(rng.integers(100, 150))
        a.append(pack(rng.integers(0, 2), ea, ma - MANT))
        b.append(pack(rng.integers(0, 2), eb, mb - MANT))
    return np.array(a, dtype=np.uint32), np.array(b, dtype=np.uint32)


def mul_carries(rng, n):
    """Products that carry: mantissas near 2 (product ≥ 2, shift right) and
    products that round up into the next binade (all-ones mantissas)."""
    fa = FRAC - rng.integers(0, 64, n)
    fb = np.where(rng.random(n) < 0.5, FRAC - rng.integers(0, 64, n), rng.integers(0, 64, n))
    ea, eb = rng.integers(110, 145, n), rng.integers(110, 145, n)
    return pack(rng.integers(0, 2, n), ea, fa), pack(rng.integers(0, 2, n), eb, fb)


def mul_range_edges(rng, n):
    """Exponent sums at the underflow boundary (result near ``2**-126``, with
    the fraction patterns that round up to it) and at the overflow boundary."""
    ea = rng.integers(1, 255, n)
    under = rng.random(n) < 0.6
    eb = np.where(under, 127 - ea + rng.integers(-2, 3, n), 381 - ea + rng.integers(-2, 3, n))
    eb = np.clip(eb, 1, 254)
    fa = np.where(rng.random(n) < 0.5, FRAC - rng.integers(0, 8, n), rng.integers(0, MANT, n))
    fb = np.where(rng.random(n) < 0.5, rng.integers(0, 8, n), rng.integers(0, MANT, n))
    # (2 − 2**-23)·(1 + k·2**-23)·2**-127 for small k: at or just above
    # 2**-126 − 2**-150, the products that round up to 2**-126 with subnormals
    edge = rng.random(n) < 0.15
    fa = np.where(edge, FRAC, fa)
    fb = np.where(edge, rng.integers(0, 2, n), fb)
    eb = np.where(edge, 127 - ea, eb)
    ok = eb >= 1
    return pack(rng.integers(0, 2, n), ea, fa)[ok], pack(rng.integers(0, 2, n), eb, fb)[ok]


# ----------------------------------------------------------------------- sums

def add_ties(rng, n):
    """Sums exactly halfway between two floats: ``b`` is half an ULP of
    ``a`` (or 1.5 ULP, or half an ULP plus a far-away bit, which is not a
    tie), either sign."""
    ea = rng.integers(30, 220, n)
    fa = rng.integers(0, MANT, n)
    kind = rng.integers(0, 3, n)
    eb = ea - np.where(kind == 1, 23, 24)
    fb = np.where(kind == 0, 0, np.where(kind == 1, MANT >> 1, 1))
    return pack(rng.integers(0, 2, n), ea, fa), pack(rng.integers(0, 2, n), eb, fb)


def add_alignments(rng, n):
    """Exponent differences 0…30 (every alignment shift, the sticky bit,
    shifts past the mantissa), either sign."""
    ea = rng.integers(40, 200, n)
    d = rng.integers(0, 31, n)
    return (pack(rng.integers(0, 2, n), ea, rng.integers(0, MANT, n)),
            pack(rng.integers(0, 2, n), ea - d, rng.integers(0, MANT, n)))


def add_cancellation(rng, n):
    """Opposite signs, nearly equal magnitudes: massive cancellation (up to an
    exact zero), results near and below ``2**-126``."""
    ea = np.where(rng.random(n) < 0.3, rng.integers(1, 5, n), rng.integers(20, 230, n))
    fa = rng.integers(0, MANT, n)
    delta = rng.integers(-70, 71, n)
    bits_a = pack(0, ea, fa).astype(np.int64)
    bits_b = np.clip(bits_a + delta, MANT, 0x7F7FFFFF)
    sa = rng.integers(0, 2, n)
    return (bits_a | (sa << 31)).astype(np.uint32), (bits_b | ((1 - sa) << 31)).astype(np.uint32)


def add_carries(rng, n):
    """Same signs, mantissas near 2: the sum carries into the next binade, and
    sums that round up past all-ones mantissas; also sums at the overflow
    boundary."""
    ea = np.where(rng.random(n) < 0.3, rng.integers(252, 255, n), rng.integers(20, 230, n))
    fa = FRAC - rng.integers(0, 16, n)
    eb = ea - rng.integers(0, 26, n)
    fb = np.where(rng.random(n) < 0.5, FRAC - rng.integers(0, 16, n), rng.integers(0, MANT, n))
    s = rng.integers(0, 2, n)
    return pack(s, ea, fa), pack(s, eb, fb)


# ---------------------------------------------------------------------- phases

def sine_phases(rng, n_random):
    """Phases for the sine unit: the quarter-turn lattice (exact 0 and ±1
    results, ``r = 1``), the reduction boundaries (``|t|`` around 1/4, the
    largest exponents where the fraction still has bits, ``|t| ≥ 2**21``),
    tiny and subnormal phases, Inf/NaN, near-multiples of 1/2 (tiny
    results), and ``n_random`` phases spread over the binades ``2**-20 …
    2**8``."""
    quarter = np.array([k / 4 for k in range(-12, 13)] + [2.0 ** 21 + 0.25, 2.0 ** 22 + 0.5, 2.0 ** 23 + 1,
                                                          3.0 * 2 ** 20 + 0.75, 2.0 ** 24, 2.0 ** 30], np.float32)
    edges = np.array([0.25, np.nextafter(np.float32(0.25), 0), np.nextafter(np.float32(0.25), 1), 0.5, 1.0,
                      np.nextafter(np.float32(0.5), 0), np.nextafter(np.float32(1.0), 0),
                      np.nextafter(np.float32(0.75), 0), np.nextafter(np.float32(0.75), 1),
                      2.0 ** -126, 2.0 ** -100, 2.0 ** -30, 2.0 ** -3, 3.4e38], np.float32)
    lattice = np.concatenate([quarter, edges, -edges])
    bits = [ref.to_bits(lattice), np.array([0, ref.SIGN, 1, 0x807FFFFF, ref.INF, ref.INF | ref.SIGN,
                                            ref.QNAN, 0x7F800001], np.uint32)]
    # near k/2: a few ULPs away from the zeros of the sine
    k = rng.integers(1, 64, 200).astype(np.float32) / 2
    steps = rng.integers(-3, 4, 200)
    bits.append((ref.to_bits(k).astype(np.int64) + steps).astype(np.uint32))
    # near k/4 + 1/8: every slope of the table
    bits.append(ref.to_bits(np.float32(rng.integers(0, 4096, 100) / 4096.0 + rng.integers(-8, 8, 100))))
    mag = np.exp2(rng.uniform(-20, 8, n_random)).astype(np.float32)
    sign = np.where(rng.random(n_random) < 0.5, -1.0, 1.0).astype(np.float32)
    bits.append(ref.to_bits(mag * sign))
    return np.concatenate(bits)
