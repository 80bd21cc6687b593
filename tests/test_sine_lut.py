# amaranth: UnusedElaboratable=no
"""SineLUT against the model image's tables, every output compared."""

import numpy as np
import pytest
from amaranth.hdl import signed

from dhq_rtl.numerics import sine_table
from dhq_rtl.gateware.sine_lut import SineLUT, is_quarter_wave_symmetric, quarter_wave_symmetry
from dhq_rtl.synthesis import synth_ice40_cells
from dhq_rtl.synthetic import random_model

from tests.testbench import (ResetWrapper, field, reset_mid_stream, run_sim, stream_full_rate, stream_through,
                           tagged_beats)


def stream(dut, phases, sels, rng, in_stall=0.3, out_stall=0.3):
    beats = tagged_beats(dut, [{"phase": int(p), "sel": int(s)} for p, s in zip(phases, sels)])
    return stream_through(dut, beats, rng, in_stall, out_stall, drain=dut.latency + 3)


def expected(tables, phases, sels):
    return [int(tables[s if s < len(tables) else 0][p]) for p, s in zip(phases, sels)]


@pytest.mark.parametrize("quarter_wave", [False, True])
def test_model_tables_every_phase(quarter_wave):
    """Every phase of every table of a random model (10-bit phase, 3 tables)."""
    model = random_model(width=8, depth=3, seed=1)
    dut = SineLUT.from_model(model, quarter_wave=quarter_wave, tag_shape=4)
    tables = [layer.lut for layer in model.layers[1:]]
    assert len(tables) == 3 and dut.phase_bits == model.phase_bits
    rng = np.random.default_rng(11)
    phases = np.tile(np.arange(1 << dut.phase_bits), len(tables))
    sels = np.repeat(np.arange(len(tables)), 1 << dut.phase_bits)
    order = rng.permutation(len(phases))
    phases, sels = phases[order], sels[order]
    got = stream(dut, phases, sels, rng, 0.2, 0.2)
    assert field(got, "data") == expected(tables, phases, sels)
    assert field(got, "tag") == [k % 16 for k in range(len(phases))]


def test_folded_input_reads_the_mirrored_quarter():
    """A folded table given the mirrored phase reads what an unfolded one reads from the phase."""
    phase_bits = 6
    tables = [sine_table(phase_bits, a, 10) for a in (300.0, 77.0)]
    dut = SineLUT(tables, 10, quarter_wave=True, folded=True)
    rng = np.random.default_rng(3)
    phases = np.tile(np.arange(1 << phase_bits), 2)
    sels = np.repeat(np.arange(2), 1 << phase_bits)
    low = (1 << (phase_bits - 2)) - 1
    folded = [p ^ low if p >> (phase_bits - 2) & 1 else p for p in phases]
    got = stream(dut, folded, sels, rng, 0.3, 0.3)
    assert field(got, "data") == expected(tables, phases, sels)


@pytest.mark.parametrize("phase_bits, lut_bits, amplitudes, quarter_wave", [
    (2, 4, [7.0], True),                      # one stored entry per table
    (4, 6, [31.0, 5.2, 0.4], True),           # 3 tables: sel 3 is out of range → table 0
    (6, 12, [2047.0, -100.0], False),
    (8, 16, [32767.0, 1e5], True),            # clamped tables stay symmetric
])
def test_small_tables_all_phases(phase_bits, lut_bits, amplitudes, quarter_wave):
    tables = [sine_table(phase_bits, a, lut_bits) for a in amplitudes]
    dut = SineLUT(tables, lut_bits, quarter_wave=quarter_wave)
    rng = np.random.default_rng(phase_bits)
    phases = np.tile(np.arange(1 << phase_bits), 1 << dut.sel_width)
    sels = np.repeat(np.arange(1 << dut.sel_width), 1 << phase_bits)
    got = stream(dut, phases, sels, rng, 0.4, 0.4)
    assert field(got, "data") == expected(tables, phases, sels)


@pytest.mark.parametrize("phase_bits, lut_bits, amplitudes", [
    (10, 4, [7.5, 6.1, 20.0]),     # mid-rise 4-bit codes, one clamped
    (4, 6, [33.0, 3.3]),           # coarse phase: the largest entry is clamped
])
def test_midrise_tables_quarter_wave_every_phase(phase_bits, lut_bits, amplitudes):
    """Mid-rise tables (second half = bitwise complement of the first) stored
    as a quarter, alone and mixed with ordinary (negated) tables."""
    rise = [sine_table(phase_bits, a, lut_bits, midrise=True) for a in amplitudes]
    assert all(quarter_wave_symmetry(t) == "complement" for t in rise)
    assert rise[0].min() == -(1 << (lut_bits - 1))  # the whole signed range is used
    tread = sine_table(phase_bits, amplitudes[0], lut_bits)
    assert quarter_wave_symmetry(tread) == "negate"
    rng = np.random.default_rng(phase_bits)
    for tables in (rise, [tread] + rise):
        dut = SineLUT(tables, lut_bits, quarter_wave=True)
        assert dut.depth * 4 == len(tables) << phase_bits
        phases = np.tile(np.arange(1 << phase_bits), 1 << dut.sel_width)
        sels = np.repeat(np.arange(1 << dut.sel_width), 1 << phase_bits)
        got = stream(dut, phases, sels, rng, 0.3, 0.3)
        assert field(got, "data") == expected(tables, phases, sels)


def test_quarter_wave_symmetric_non_sine_table():
    """Any table with the symmetry works, extremes included."""
    rng = np.random.default_rng(2)
    q = rng.integers(-127, 128, size=16)
    q[0], q[1] = 127, -127
    half = np.concatenate([q, q[::-1]])
    table = np.concatenate([half, -half])
    assert is_quarter_wave_symmetric(table)
    full = SineLUT([table], 8)
    quarter = SineLUT([table], 8, quarter_wave=True)
    assert quarter.depth * 4 == full.depth == 64
    phases = np.arange(64)
    for dut in (full, quarter):
        got = stream(dut, phases, np.zeros(64, dtype=int), rng, 0.2, 0.2)
        assert field(got, "data") == table.tolist()


def test_full_rate_latency():
    tables = [sine_table(8, 100.0, 8)]
    dut = SineLUT(tables, 8, quarter_wave=True)
    phases = np.arange(256)[::-1]
    result = {}

    async def tb(ctx):
        result["r"] = await stream_full_rate(ctx, dut.i, dut.o, [{"phase": int(p), "sel": 0} for p in phases], 256)

    run_sim(dut, [tb])
    accepted, emitted = result["r"]
    assert accepted == list(range(256))
    assert dut.latency == 2
    assert [c for c, _ in emitted] == list(range(2, 258))
    assert [int(p.data) for _, p in emitted] == tables[0][phases].tolist()


def test_reset_mid_stream_recovers():
    tables = [sine_table(6, 30.0, 8), sine_table(6, 9.0, 8)]
    dut = SineLUT(tables, 8, quarter_wave=True)
    top = ResetWrapper(dut)
    rng = np.random.default_rng(4)
    phases = rng.integers(0, 64, size=80)
    sels = rng.integers(0, 2, size=80)
    junk = [{"phase": p, "sel": 1} for p in (5, 40, 63)]
    fresh = [{"phase": int(p), "sel": int(s)} for p, s in zip(phases, sels)]
    got = reset_mid_stream(top, dut, junk, fresh, rng, expect_busy=True)
    assert field(got, "data") == expected(tables, phases, sels)


def test_ports_memory_and_widths():
    tables = [sine_table(10, 2000.0, 12) for _ in range(5)]
    full = SineLUT(tables, 12, tag_shape=3)
    quarter = SineLUT(tables, 12, quarter_wave=True)
    assert full.sel_width == 3 and full.phase_bits == 10
    assert full.depth == 5 * 1024 and quarter.depth == 5 * 256
    members = dict(full.i.payload.shape().members)
    assert members["phase"].width == 10 and members["sel"].width == 3 and members["tag"].width == 3
    assert dict(full.o.payload.shape().members)["data"] == signed(12)


def test_sine_tables_are_symmetric():
    for bits in (4, 10):
        assert is_quarter_wave_symmetric(sine_table(bits, 1000.0, 12))
    assert not is_quarter_wave_symmetric(np.round(1000 * np.sin(2 * np.pi * np.arange(1024) / 1024)).astype(int))


def _broken(kind):
    t = sine_table(6, 30.0, 8)
    if kind == "mirror":
        t[3] += 1
        t[3 + 32] -= 1   # keeps the half-wave antisymmetry, breaks the mirror
    elif kind == "half":
        t[40] += 1       # breaks the half-wave antisymmetry
    elif kind == "unshifted":
        t = np.round(30 * np.sin(2 * np.pi * np.arange(64) / 64)).astype(np.int64)
    return t


@pytest.mark.parametrize("args, kwargs, exc, match", [
    (([_broken("mirror")], 8), {"quarter_wave": True}, ValueError, "quarter-wave symmetric"),
    (([_broken("half")], 8), {"quarter_wave": True}, ValueError, "quarter-wave symmetric"),
    (([_broken("unshifted")], 8), {"quarter_wave": True}, ValueError, "quarter-wave symmetric"),
    (([sine_table(6, 30.0, 8), _broken("half")], 8), {"quarter_wave": True}, ValueError, r"tables\[1\]"),
    (([np.array([1, -1])], 4), {"quarter_wave": True}, ValueError, "at least 4"),
    (([sine_table(6, 30.0, 8)], 8), {"folded": True}, ValueError, "quarter_wave"),
    (([sine_table(6, 300.0, 10)], 8), {}, ValueError, "outside the 8-bit range"),
    (([sine_table(6, 30.0, 8), sine_table(5, 30.0, 8)], 8), {}, ValueError, "entries"),
    (([np.arange(12)], 8), {}, ValueError, "power of two"),
    (([np.zeros(8)], 8), {}, TypeError, "integers"),
    (([np.zeros((2, 8), dtype=int)], 8), {}, ValueError, "one-dimensional"),
    ((sine_table(6, 30.0, 8), 8), {}, TypeError, "sequence of tables"),
    (([], 8), {}, ValueError, "at least one"),
    (([sine_table(6, 30.0, 8)], 1), {}, ValueError, "lut_bits"),
    (([sine_table(6, 30.0, 8)], 8.0), {}, TypeError, "lut_bits"),
    (([sine_table(6, 30.0, 8)], 8), {"quarter_wave": 1}, TypeError, "quarter_wave"),
    (([sine_table(6, 30.0, 8)], 8), {"tag_shape": -1}, ValueError, "tag_shape"),
])
def test_constructor_validation(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SineLUT(*args, **kwargs)


def test_unsymmetric_table_is_fine_without_quarter_wave():
    t = _broken("half")
    dut = SineLUT([t], 8)
    got = stream(dut, np.arange(64), np.zeros(64, dtype=int), np.random.default_rng(0), 0.0, 0.0)
    assert field(got, "data") == t.tolist()


# ------------------------------------------------------- synthesis (Yosys)

@pytest.mark.slow
def test_sine_lut_quarter_wave_saves_ram():
    table = sine_table(10, 2000.0, 12)
    full = synth_ice40_cells(SineLUT([table], 12))
    quarter = synth_ice40_cells(SineLUT([table], 12, quarter_wave=True))
    # 1024 × 12 bits needs 3 EBRs (4 kbit each); 256 × 12 bits fits in one.
    assert full.get("SB_RAM40_4K", 0) == 3
    assert quarter.get("SB_RAM40_4K", 0) == 1
    for cells in (full, quarter):
        assert cells.get("SB_LUT4", 0) < 100
        assert cells.get("SB_MAC16", 0) == 0
