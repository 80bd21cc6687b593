# amaranth: UnusedElaboratable=no
"""MacArray: bit-exact against numpy, under stalls, at full rate, across reset."""

import random

import numpy as np
import pytest

from dhq_rtl.gateware.mac import MacArray, layer_weight_rows, mac_reference
from dhq_rtl.golden import GoldenModel, pixel_coordinates
from dhq_rtl.synthesis import synth_ice40_cells
from dhq_rtl.synthetic import random_model

from tests.testbench import (ResetWrapper, field, reset_mid_stream, run_sim, stream_full_rate, stream_sink,
                           stream_source)


def _beats(rng, depth, lanes, act_bits, n_sums, max_len=4, tag_shape=0, acts=None):
    """Random beat groups: each sum has 1..max_len beats at random addresses."""
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    beats = []
    for s in range(n_sums):
        n = int(rng.integers(1, max_len + 1))
        for j in range(n):
            act = acts(rng) if acts is not None else rng.integers(lo, hi + 1, size=lanes)
            b = {"act": [int(a) for a in act], "addr": int(rng.integers(0, depth)),
                 "first": int(j == 0), "last": int(j == n - 1)}
            if tag_shape:
                b["tag"] = s % (1 << tag_shape)
            beats.append(b)
    return beats


def _run_stream(dut, beats, *, seed=0, stall=0.3):
    n_out = sum(b["last"] for b in beats)
    rng = random.Random(seed)
    got = {}

    async def source(ctx):
        await stream_source(ctx, dut.i, beats, rng, stall_prob=stall)

    async def sink(ctx):
        got["o"] = await stream_sink(ctx, dut.o, n_out, random.Random(seed + 1), stall_prob=stall)

    run_sim(dut, [source, sink])
    return got["o"]


def _check(dut, beats, got):
    want = mac_reference(dut.weights, beats, dut.acc_width)
    assert field(got, "acc") == want
    if dut.tag_width:
        assert field(got, "tag") == [b["tag"] for b in beats if b["last"]]


@pytest.mark.parametrize("lanes,act_bits,weight_bits", [(4, 8, 8), (3, 5, 7), (1, 8, 4), (8, 12, 16)])
def test_random_with_stalls(lanes, act_bits, weight_bits):
    rng = np.random.default_rng(lanes * 100 + act_bits)
    depth = 11
    wlo, whi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    weights = rng.integers(wlo, whi + 1, size=(depth, lanes))
    acc_width = act_bits + weight_bits + 6
    dut = MacArray(weights, act_bits=act_bits, weight_bits=weight_bits, acc_width=acc_width, tag_shape=5)
    beats = _beats(rng, depth, lanes, act_bits, 40, tag_shape=5)
    _check(dut, beats, _run_stream(dut, beats, seed=lanes))


@pytest.mark.parametrize("pattern", ["max", "min", "alternating", "zero"])
def test_corner_vectors(pattern):
    lanes, ab, wb = 4, 8, 8
    amax, amin = (1 << (ab - 1)) - 1, -(1 << (ab - 1))
    wmax, wmin = (1 << (wb - 1)) - 1, -(1 << (wb - 1))
    alt = lambda hi, lo: [hi if l % 2 == 0 else lo for l in range(lanes)]
    words = {"max": [[wmax] * lanes, [wmin] * lanes], "min": [[wmin] * lanes, [wmax] * lanes],
             "alternating": [alt(wmax, wmin), alt(wmin, wmax)], "zero": [[0] * lanes, [wmax] * lanes]}[pattern]
    acts = {"max": [amax] * lanes, "min": [amin] * lanes, "alternating": alt(amax, amin),
            "zero": [0] * lanes}[pattern]
    # Natural width: 4 beats of 4 lanes of 8×8 products never wrap.
    dut = MacArray(np.array(words), act_bits=ab, weight_bits=wb, acc_width=ab + wb + 4)
    beats = []
    for addr in (0, 1):
        for j in range(4):
            beats.append({"act": acts, "addr": addr, "first": int(j == 0), "last": int(j == 3)})
    beats.append({"act": acts, "addr": 0, "first": 1, "last": 1})
    got = _run_stream(dut, beats, stall=0.2)
    _check(dut, beats, got)
    if pattern == "min":  # (-128)·(-128)·16 = 2**18: the largest magnitude reachable
        assert field(got, "acc")[0] == 1 << 18


def test_accumulator_wraps_like_twos_complement():
    dut = MacArray(np.full((1, 2), 127), act_bits=8, weight_bits=8, acc_width=10)
    beats = [{"act": [127, 127], "addr": 0, "first": 1, "last": 0},
             {"act": [-127, 100], "addr": 0, "first": 0, "last": 1}]
    got = _run_stream(dut, beats, stall=0.0)
    _check(dut, beats, got)
    assert field(got, "acc") == [(127 * 127 * 2 - 127 * 27 + 512) % 1024 - 512]


def test_full_rate_and_latency():
    rng = np.random.default_rng(7)
    lanes = 16
    weights = rng.integers(-127, 128, size=(8, lanes))
    dut = MacArray(weights, act_bits=8, weight_bits=8, acc_width=24)
    assert dut.latency == 7
    beats = _beats(rng, 8, lanes, 8, 30, max_len=2)
    n_out = sum(b["last"] for b in beats)
    res = {}

    async def tb(ctx):
        res["r"] = await stream_full_rate(ctx, dut.i, dut.o, beats, n_out)

    run_sim(dut, [tb])
    accepted, emitted = res["r"]
    assert accepted == list(range(len(beats)))
    last_cycles = [c for c, b in zip(accepted, beats) if b["last"]]
    assert [c for c, _ in emitted] == [c + dut.latency for c in last_cycles]
    _check(dut, beats, [p for _, p in emitted])


def test_reset_mid_stream_recovers():
    rng = np.random.default_rng(3)
    weights = rng.integers(-127, 128, size=(6, 4))
    dut = MacArray(weights, act_bits=8, weight_bits=8, acc_width=20, tag_shape=3)
    top = ResetWrapper(dut)
    before = _beats(rng, 6, 4, 8, 10, tag_shape=3)
    after = _beats(rng, 6, 4, 8, 12, tag_shape=3)
    # Part of a stream goes in while the sink is stalled; reset while sums are in flight.
    got = reset_mid_stream(top, dut, before[:5], after, random.Random(9),
                           out_count=sum(b["last"] for b in after), in_stall=0.2)
    _check(dut, after, got)


@pytest.mark.parametrize("lanes", [16, 4])
def test_hidden_layer_of_a_model(lanes):
    model = random_model(width=16, depth=2, seed=5)
    layer = 1
    L = model.layers[layer]
    xs, ys = pixel_coordinates(model.height, model.width, (3, 5, 7, 7))
    trace = GoldenModel(model).trace(xs, ys)[layer]
    rows, nb = layer_weight_rows(L.weight, lanes)
    dut = MacArray(rows, act_bits=L.act_bits, weight_bits=L.weight_bits,
                   acc_width=model.accumulator_bits(layer), tag_shape=4)
    beats = []
    for q in trace["q"]:
        for k in range(L.out_features):
            for c in range(nb):
                beats.append({"act": [int(v) for v in q[c * lanes:(c + 1) * lanes]], "addr": k * nb + c,
                              "first": int(c == 0), "last": int(c == nb - 1), "tag": k})
    got = _run_stream(dut, beats, seed=lanes, stall=0.25)
    assert field(got, "acc") == [int(v) for v in trace["acc"].ravel()]
    assert field(got, "tag") == list(range(L.out_features)) * len(xs)


def test_layer_weight_rows_pads():
    w = np.arange(1, 11).reshape(2, 5)
    rows, beats = layer_weight_rows(w, 4)
    assert beats == 2
    assert rows.tolist() == [[1, 2, 3, 4], [5, 0, 0, 0], [6, 7, 8, 9], [10, 0, 0, 0]]
    with pytest.raises(ValueError, match="2-D"):
        layer_weight_rows(np.arange(3), 4)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"weights": 5}, TypeError, "2-D array"),
    ({"weights": np.zeros((0, 4), int)}, ValueError, "non-empty"),
    ({"weights": np.zeros((2, 2), float)}, TypeError, "integers"),
    ({"act_bits": 8.0}, TypeError, "act_bits"),
    ({"act_bits": 1}, ValueError, "act_bits"),
    ({"weight_bits": 33}, ValueError, "weight_bits"),
    ({"acc_width": 65}, ValueError, "acc_width"),
    ({"tag_shape": -1}, ValueError, "tag_shape"),
    ({"dsp": "xilinx"}, ValueError, "dsp"),
    ({"dsp": "ice40", "act_bits": 17}, ValueError, "act_bits"),
    ({"weight_memory": "spram"}, ValueError, "weight_memory"),
    ({"weights": np.full((2, 2), 128)}, ValueError, "outside signed"),
])
def test_constructor_validation(kwargs, exc, match):
    args = {"weights": np.zeros((2, 2), int), "act_bits": 8, "weight_bits": 8, "acc_width": 20}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        MacArray(args.pop("weights"), **args)


# ------------------------------------------- SB_MAC16 path against cells_sim.v

def _verilator_run(dut, beats, tmp_path, *, seed=0, stall=0.3):
    """Simulate ``dut`` (a MacArray, any dsp) as Verilog with Yosys's iCE40 cell
    models under Verilator; return the output payload ints, in order."""
    from dhq_rtl.gateware.mac import mac_in_layout
    from tests.verilog_stream import rtl_verilog, run_stream
    layout = mac_in_layout(dut.lanes, dut.act_bits, dut.addr_width)
    words = [layout.const(b).as_value().value for b in beats]
    out_w = dut.o.payload.shape().size
    out = run_stream(rtl_verilog(dut, tmp_path), layout.size, out_w, words, sum(b["last"] for b in beats),
                     tmp_path, seed=seed, stall=stall)
    return [v - (1 << out_w) if v >> (out_w - 1) else v for v in out]


@pytest.mark.slow
@pytest.mark.parametrize("lanes,act_bits,weight_bits", [(5, 8, 8), (3, 11, 9)])
def test_ice40_dsp_path_bit_exact_in_verilog(tmp_path, lanes, act_bits, weight_bits):
    """dsp="ice40" (SB_MAC16 dual 8×8 / 16×16) simulated with Yosys's cells_sim.v."""
    rng = np.random.default_rng(lanes)
    depth = 9
    wlo, whi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    weights = rng.integers(wlo, whi + 1, size=(depth, lanes))
    weights[0] = wlo          # corner words: all-min, all-max, alternating
    weights[1] = whi
    weights[2, ::2], weights[2, 1::2] = whi, wlo
    acc_width = act_bits + weight_bits + 5
    dut = MacArray(weights, act_bits=act_bits, weight_bits=weight_bits, acc_width=acc_width, dsp="ice40")
    assert dut.dual == (act_bits <= 8 and weight_bits <= 8)
    amin, amax = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    beats = [{"act": [amin] * lanes, "addr": 0, "first": 1, "last": 1},
             {"act": [amax] * lanes, "addr": 1, "first": 1, "last": 1},
             {"act": [amin] * lanes, "addr": 1, "first": 1, "last": 1},
             {"act": [amax if l % 2 else amin for l in range(lanes)], "addr": 2, "first": 1, "last": 1},
             {"act": [0] * lanes, "addr": 1, "first": 1, "last": 1}]
    beats += _beats(rng, depth, lanes, act_bits, 120)
    got = _verilator_run(dut, beats, tmp_path, seed=lanes)
    assert got == mac_reference(weights, beats, acc_width)


# ------------------------------------------------------- synthesis (Yosys)

def _rom_weights(depth=64, lanes=16, bits=8, seed=0):
    m = (1 << (bits - 1)) - 1
    return np.random.default_rng(seed).integers(-m, m + 1, size=(depth, lanes))


@pytest.mark.slow
def test_mac_ice40_dual_8x8_uses_half_the_dsps(tmp_path):
    """16 lanes of 8×8 with explicit SB_MAC16s in dual mode: exactly 8 DSPs;
    the 64×128-bit weight ROM sits in 8 EBRs (16 bits wide each)."""
    cells = synth_ice40_cells(
        MacArray(_rom_weights(), act_bits=8, weight_bits=8, acc_width=20, dsp="ice40"), workdir=tmp_path)
    assert cells["SB_MAC16"] == 8
    assert cells["SB_RAM40_4K"] == 8
    assert cells["SB_LUT4"] < 600


@pytest.mark.slow
def test_mac_generic_infers_one_dsp_per_multiply(tmp_path):
    """Yosys `synth_ice40 -dsp` maps each inferred 8×8 multiply to a whole
    SB_MAC16 (no dual packing); without -dsp none at all."""
    w = _rom_weights(depth=16, lanes=4)
    dsp = synth_ice40_cells(MacArray(w, act_bits=8, weight_bits=8, acc_width=20), workdir=tmp_path / "d")
    assert dsp["SB_MAC16"] == 4
    lut = synth_ice40_cells(MacArray(w, act_bits=8, weight_bits=8, acc_width=20), dsp=False,
                                      workdir=tmp_path / "l")
    assert "SB_MAC16" not in lut and lut["SB_LUT4"] > dsp["SB_LUT4"] + 4 * 40


@pytest.mark.slow
def test_mac_ice40_16x16_mode(tmp_path):
    """Operands wider than 8 bits: one 16×16 SB_MAC16 per lane."""
    cells = synth_ice40_cells(
        MacArray(_rom_weights(depth=8, lanes=3, bits=12), act_bits=11, weight_bits=12, acc_width=28, dsp="ice40"),
        workdir=tmp_path)
    assert cells["SB_MAC16"] == 3


# ------------------------------------------------ products in logic ("fabric")

def _codes(bits):
    return list(range(-(1 << (bits - 1)), 1 << (bits - 1)))


@pytest.mark.parametrize("act_bits,weight_bits", [(2, 2), (4, 4), (6, 6), (8, 8), (3, 5), (5, 2), (8, 4)])
def test_fabric_products_exhaustive(act_bits, weight_bits):
    """One lane, every (activation, weight) pair, each its own sum: every
    product of the shift-and-add multiplier against the numpy twin, with
    stalls (every sign combination and the min/max codes included)."""
    weights = np.array(_codes(weight_bits)).reshape(-1, 1)
    beats = [{"act": [a], "addr": addr, "first": 1, "last": 1}
             for addr in range(len(weights)) for a in _codes(act_bits)]
    dut = MacArray(weights, act_bits=act_bits, weight_bits=weight_bits, acc_width=act_bits + weight_bits,
                   dsp="fabric")
    got = _run_stream(dut, beats, seed=act_bits, stall=0.2)
    _check(dut, beats, got)
    assert field(got, "acc") == [a * int(weights[b["addr"], 0]) for b in beats for a in b["act"]]


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
def test_fabric_products_match_generic(bits):
    """4 lanes: corner rows (min, max, −1, 0, 1 in every lane order) and
    random rows, corner and random activations, sums of 1…4 beats, with
    stalls: the fabric kind emits what the ``*`` kind and the twin emit."""
    rng = np.random.default_rng(bits)
    lanes, lo, hi = 4, -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    corners = [lo, hi, -1, 0, 1] if bits > 2 else [lo, hi, -1, 0]
    rows = [[corners[(i + l) % len(corners)] for l in range(lanes)] for i in range(len(corners))]
    rows += [[lo] * lanes, [hi] * lanes] + rng.integers(lo, hi + 1, size=(6, lanes)).tolist()
    weights = np.array(rows)
    pick = lambda r: [corners[int(i)] for i in r.integers(0, len(corners), size=lanes)] \
        if r.random() < 0.5 else r.integers(lo, hi + 1, size=lanes)
    beats = _beats(rng, len(weights), lanes, bits, 40, tag_shape=3, acts=pick)
    beats += [{"act": [v] * lanes, "addr": a, "first": 1, "last": 1, "tag": 0}
              for v in (lo, hi) for a in (len(corners), len(corners) + 1)]
    acc_width = 2 * bits + 4
    fabric = MacArray(weights, act_bits=bits, weight_bits=bits, acc_width=acc_width, tag_shape=3, dsp="fabric")
    generic = MacArray(weights, act_bits=bits, weight_bits=bits, acc_width=acc_width, tag_shape=3)
    assert fabric.latency == generic.latency
    got = _run_stream(fabric, beats, seed=bits, stall=0.3)
    _check(fabric, beats, got)
    assert field(got, "acc") == field(_run_stream(generic, beats, seed=bits, stall=0.3), "acc")


def test_fabric_products_full_rate_latency():
    """Same latency as the generic kind, one beat a cycle."""
    rng = np.random.default_rng(11)
    lanes = 8
    weights = rng.integers(-128, 128, size=(8, lanes))
    dut = MacArray(weights, act_bits=8, weight_bits=8, acc_width=24, dsp="fabric")
    assert dut.latency == 3 + 3 and dut.dsp_count == 0
    beats = _beats(rng, 8, lanes, 8, 20, max_len=2)
    res = {}

    async def tb(ctx):
        res["r"] = await stream_full_rate(ctx, dut.i, dut.o, beats, sum(b["last"] for b in beats))

    run_sim(dut, [tb])
    accepted, emitted = res["r"]
    assert accepted == list(range(len(beats)))
    assert [c for c, _ in emitted] == [c + dut.latency for c, b in zip(accepted, beats) if b["last"]]
    _check(dut, beats, [p for _, p in emitted])


@pytest.mark.parametrize("act_bits,weight_bits", [(8, 8), (4, 4), (6, 3)])
def test_fabric_products_have_no_multiply_in_rtlil(act_bits, weight_bits):
    """Synthesis sees adders, no ``$mul`` (the ``*`` kind has one per lane)."""
    from amaranth.back import rtlil
    w = np.zeros((4, 4), int)
    args = dict(act_bits=act_bits, weight_bits=weight_bits, acc_width=act_bits + weight_bits + 4)
    fabric = rtlil.convert(MacArray(w, dsp="fabric", **args))
    generic = rtlil.convert(MacArray(w, **args))
    assert generic.count("cell $mul ") == 4
    assert "$mul" not in fabric and fabric.count("cell $add ") >= 4 * (weight_bits - 1)
