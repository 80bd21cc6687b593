# amaranth: UnusedElaboratable=no
"""HadamardButterfly against dhq_rtl.hadamard.fwht_int, every output compared."""

import numpy as np
import pytest
from amaranth.hdl import signed

from dhq_rtl.gateware.butterfly import HadamardButterfly
from dhq_rtl.hadamard import fwht_int, hadamard_matrix
from dhq_rtl.synthesis import synth_ice40_cells

from tests.testbench import (ResetWrapper, field, run_sim, stream_full_rate, stream_sink, stream_source,
                           stream_through, tagged_beats)


def corner_vectors(n, width):
    hi, lo = (1 << (width - 1)) - 1, -(1 << (width - 1))
    alt = np.where(np.arange(n) % 2 == 0, hi, lo)
    return np.array([
        np.full(n, hi),                    # all-max
        np.full(n, lo),                    # all-min
        alt,                               # alternating signs
        -alt - 1,                          # alternating, starting negative
        np.zeros(n, dtype=np.int64),       # zero
        np.where(np.arange(n) < n // 2, lo, hi),
        np.eye(n, dtype=np.int64)[n - 1] * lo,
    ], dtype=np.int64)


def run_vectors(dut, vectors, rng, in_stall, out_stall, tags=True):
    """Stream the vectors through ``dut`` with random stalls; return (data, tags)."""
    n = dut.n
    beats = tagged_beats(dut, [{"data": int(v)} for vec in vectors for v in vec], tag_every=n)
    got_beats = stream_through(dut, beats, rng, in_stall, out_stall)
    got = np.array(field(got_beats, "data")).reshape(len(vectors), n)
    got_tags = field(got_beats, "tag") if dut.tag_width else None
    return got, got_tags


@pytest.mark.parametrize("n, width, min_ram_depth, in_stall, out_stall", [
    (2, 8, 16, 0.3, 0.3),
    (4, 1, 16, 0.5, 0.0),
    (8, 12, 2, 0.0, 0.5),     # every delay line of ≥ 2 entries in synchronous RAM
    (16, 8, 16, 0.3, 0.3),
    (16, 8, 4, 0.7, 0.7),
    (32, 16, 8, 0.2, 0.4),
    (64, 12, 16, 0.3, 0.3),
])
def test_random_and_corner_vectors(n, width, min_ram_depth, in_stall, out_stall):
    rng = np.random.default_rng(n * 1000 + width)
    dut = HadamardButterfly(n, width, tag_shape=3, min_ram_depth=min_ram_depth)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1))
    vectors = np.concatenate([corner_vectors(n, width), rng.integers(lo, hi, size=(4, n))])
    got, tags = run_vectors(dut, vectors, rng, in_stall, out_stall)
    np.testing.assert_array_equal(got, fwht_int(vectors))
    np.testing.assert_array_equal(got, vectors @ hadamard_matrix(n).T)
    assert tags == [k % 8 for k in range(len(vectors)) for _ in range(n)]


def test_length_256_with_stalls():
    n, width = 256, 12
    rng = np.random.default_rng(256)
    dut = HadamardButterfly(n, width)
    vectors = np.concatenate([corner_vectors(n, width)[[0, 2]],
                              rng.integers(-(1 << 11), 1 << 11, size=(1, n))])
    got, _ = run_vectors(dut, vectors, rng, 0.2, 0.2)
    np.testing.assert_array_equal(got, fwht_int(vectors))


@pytest.mark.parametrize("n, min_ram_depth", [(2, 16), (8, 16), (32, 4), (64, 16)])
def test_full_rate_latency(n, min_ram_depth):
    """Back-to-back vectors: one beat in and one out every cycle, documented latency."""
    width, nvec = 10, 3
    rng = np.random.default_rng(n)
    dut = HadamardButterfly(n, width, min_ram_depth=min_ram_depth)
    vectors = rng.integers(-(1 << 9), 1 << 9, size=(nvec, n))
    result = {}

    async def tb(ctx):
        result["r"] = await stream_full_rate(ctx, dut.i, dut.o, [{"data": int(v)} for v in vectors.ravel()],
                                             nvec * n)

    run_sim(dut, [tb])
    accepted, emitted = result["r"]
    assert accepted == list(range(nvec * n))
    cycles = [c for c, _ in emitted]
    assert cycles[0] - accepted[0] == dut.latency == n - 1 + int(np.log2(n))
    assert cycles == list(range(cycles[0], cycles[0] + nvec * n))
    got = np.array([int(p.data) for _, p in emitted]).reshape(nvec, n)
    np.testing.assert_array_equal(got, fwht_int(vectors))


@pytest.mark.parametrize("n, min_ram_depth", [(16, 16), (16, 2)])
def test_reset_mid_stream_recovers(n, min_ram_depth):
    width = 8
    rng = np.random.default_rng(7)
    dut = HadamardButterfly(n, width, min_ram_depth=min_ram_depth)
    top = ResetWrapper(dut)
    junk = rng.integers(-128, 128, size=3 * n // 2)
    fresh = rng.integers(-128, 128, size=(3, n))
    out = {}

    async def tb(ctx):
        # A vector and a half go in, a few outputs come out, then reset.
        ctx.set(dut.o.ready, 1)
        await stream_source(ctx, dut.i, [{"data": int(v)} for v in junk], rng, 0.2)
        await ctx.tick().repeat(3)
        ctx.set(dut.o.ready, 0)
        ctx.set(top.rst, 1)
        await ctx.tick()
        ctx.set(top.rst, 0)
        assert ctx.get(dut.o.valid) == 0

    async def source(ctx):
        await tb(ctx)
        out["reset_done"] = True
        await stream_source(ctx, dut.i, [{"data": int(v)} for v in fresh.ravel()], rng, 0.3)

    async def sink(ctx):
        while not out.get("reset_done"):
            await ctx.tick()
        out["beats"] = await stream_sink(ctx, dut.o, fresh.size, rng, 0.3)

    run_sim(top, [source, sink])
    got = np.array(field(out["beats"], "data")).reshape(fresh.shape)
    np.testing.assert_array_equal(got, fwht_int(fresh))


def test_ports_and_widths():
    dut = HadamardButterfly(64, 12, tag_shape=5)
    assert dut.out_width == 18 and dut.stages == 6 and dut.latency == 63 + 6
    assert dut.i.payload.shape().members["data"] == signed(12)
    assert dut.o.payload.shape().members["data"] == signed(18)
    assert dut.o.payload.shape().members["tag"].width == 5
    assert "tag" not in dict(HadamardButterfly(4, 8).i.payload.shape().members)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n=12, width=8), ValueError, "power of two"),
    (dict(n=1, width=8), ValueError, "n must be"),
    (dict(n=8192, width=8), ValueError, "n must be"),
    (dict(n=8.0, width=8), TypeError, "n must be an integer"),
    (dict(n=True, width=8), TypeError, "n must be an integer"),
    (dict(n=8, width=0), ValueError, "width must be"),
    (dict(n=8, width="8"), TypeError, "width must be an integer"),
    (dict(n=8, width=8, tag_shape=-1), ValueError, "tag_shape"),
    (dict(n=8, width=8, min_ram_depth=1), ValueError, "min_ram_depth"),
])
def test_constructor_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        HadamardButterfly(**kwargs)


# ------------------------------------------------------- synthesis (Yosys)

@pytest.mark.slow
def test_butterfly_64_is_sdf_sized():
    n, width, stages = 64, 8, 6
    cells = synth_ice40_cells(HadamardButterfly(n, width))
    luts = cells.get("SB_LUT4", 0)
    # A fully parallel transform has n·log2(n) = 384 adders of ~width+3 bits
    # (≥ 4000 LUTs); the SDF pipeline has log2(n) add/sub pairs plus control.
    assert 0 < luts < n * stages * (width + 3) // 4
    # The 16- and 32-entry delay lines sit in block RAM, the short ones in flip-flops.
    assert cells.get("SB_RAM40_4K", 0) == 2
    assert cells.get("SB_MAC16", 0) == 0


# ------------------------------------------------- without back-pressure (the core's use)

@pytest.mark.parametrize("n, min_ram_depth", [(2, 16), (8, 16), (32, 16), (8, 2), (16, 4)])
def test_always_ready_never_holds_input_and_keeps_its_timing(n, min_ram_depth):
    """With every output taken, the first stage's ``ready`` never falls (so
    ``always_ready=True`` may drop it), the results are the transform, and
    a vector's outputs start log2(n) cycles after its last input (and after
    the previous vector's outputs), one per cycle: the timing the core's
    schedule model uses."""
    rng = np.random.default_rng(n)
    plain = HadamardButterfly(n, 8, tag_shape=3, min_ram_depth=min_ram_depth)
    free = HadamardButterfly(n, 8, tag_shape=3, min_ram_depth=min_ram_depth, always_ready=True)
    vectors = rng.integers(-128, 128, size=(6, n))
    gaps = [[int(g) for g in rng.random(n) < 0.4] for _ in vectors]

    def drive(dut, check_ready):
        got, ins, outs, tags = [], [], [], []

        async def bench(ctx):
            if not dut.always_ready:
                ctx.set(dut.o.ready, 1)
            seq = [None if gap else (v, j) for v, vec in enumerate(vectors) for j, gap in
                   ((j, g) for j in range(n) for g in ([1] * gaps[v][j] + [0]))]
            seq += [None] * (2 * n + 8)
            for t, item in enumerate(seq):
                ctx.set(dut.i.valid, item is not None)
                if dut.always_ready:
                    # The input's valid a cycle ahead (the source knows it).
                    ctx.set(dut.i_valid_next, t + 1 < len(seq) and seq[t + 1] is not None)
                if item is not None:
                    ctx.set(dut.i.payload.data, int(vectors[item[0]][item[1]]))
                    ctx.set(dut.i.payload.tag, item[0] % 8)
                    ins.append((t, item[0]))
                _, _, ready, valid, data, tag = await ctx.tick().sample(
                    dut.i.ready, dut.o.valid, dut.o.payload.data, dut.o.payload.tag)
                if check_ready:
                    assert ready, f"input held back in cycle {t}"
                if valid:
                    got.append(int(data))
                    tags.append(int(tag))
                    outs.append(t)

        run_sim(dut, [bench])
        assert tags == [v % 8 for v in range(len(vectors)) for _ in range(n)]
        return got, ins, outs

    got, _, plain_outs = drive(plain, check_ready=True)
    np.testing.assert_array_equal(np.array(got).reshape(vectors.shape), fwht_int(vectors))
    got, ins, outs = drive(free, check_ready=False)
    np.testing.assert_array_equal(np.array(got).reshape(vectors.shape), fwht_int(vectors))
    assert outs == plain_outs
    want, end = [], -10
    for v in range(len(vectors)):
        start = max(max(t for t, vv in ins if vv == v) + free.stages, end + 1)
        want += [start + j for j in range(n)]
        end = start + n - 1
    assert outs == want
