# amaranth: UnusedElaboratable=no
"""ChannelScaler: bit-exact against fixedpoint.phase_scale / output_scale."""

import random

import numpy as np
import pytest

from dhq_rtl.gateware.scaler import ChannelScaler, dsp_pieces, scaler_reference
from dhq_rtl.golden import GoldenModel, pixel_coordinates
from dhq_rtl.synthesis import synth_ice40_cells
from dhq_rtl.synthetic import random_model

from tests.testbench import (ResetWrapper, field, reset_mid_stream, run_sim, stream_full_rate, stream_sink,
                           stream_source)


@pytest.fixture(scope="module")
def model():
    return random_model(width=8, depth=2, channels=3, seed=11)


def _beats(model, rng, n, acc_width, tag_shape=0):
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    beats = []
    for j in range(n):
        layer = int(rng.integers(0, len(model.layers)))
        ch = int(rng.integers(0, model.layers[layer].out_features))
        b = {"acc": int(rng.integers(lo, hi + 1)), "layer": layer, "channel": ch}
        if tag_shape:
            b["tag"] = j % (1 << tag_shape)
        beats.append(b)
    return beats


def _want(model, beats):
    return [int(scaler_reference(model, b["layer"], b["channel"], b["acc"])) for b in beats]


def _run(dut, beats, seed=0, stall=0.3):
    got = {}

    async def src(ctx):
        await stream_source(ctx, dut.i, beats, random.Random(seed), stall_prob=stall)

    async def snk(ctx):
        got["o"] = await stream_sink(ctx, dut.o, len(beats), random.Random(seed + 1), stall_prob=stall)

    run_sim(dut, [src, snk])
    return got["o"]


def _check(model, dut, beats, got):
    assert field(got, "value") == _want(model, beats)
    assert field(got, "layer") == [b["layer"] for b in beats]
    assert field(got, "channel") == [b["channel"] for b in beats]
    if dut.tag_width:
        assert field(got, "tag") == [b["tag"] for b in beats]


@pytest.mark.parametrize("multiplier,table", [("logic", "bram"), ("dsp", "logic")])
def test_random_with_stalls(model, multiplier, table):
    dut = ChannelScaler(model, tag_shape=4, multiplier=multiplier, table_memory=table)
    rng = np.random.default_rng(1)
    beats = _beats(model, rng, 150, dut.acc_width, 4)
    _check(model, dut, beats, _run(dut, beats))


def _quarter_fold(value, phase_bits):
    """The quarter-wave mirror: the low phase_bits − 2 bits inverted when bit phase_bits − 2 is set."""
    low = (1 << (phase_bits - 2)) - 1
    return value ^ low if value >> (phase_bits - 2) & 1 else value


def test_quarter_fold_mirrors_sine_layers_only(model):
    dut = ChannelScaler(model, quarter_fold=True)
    rng = np.random.default_rng(5)
    beats = _beats(model, rng, 120, dut.acc_width)
    out = len(model.layers) - 1
    want = [v if b["layer"] == out else _quarter_fold(v, model.phase_bits) for b, v in zip(beats, _want(model, beats))]
    assert any(w != v for w, v in zip(want, _want(model, beats)))
    assert field(_run(dut, beats), "value") == want


def test_loadable_every_shift(model):
    """The loadable scaler's barrel shift (split over two stages) for every shift up to max_shift."""
    dut = ChannelScaler(model, loadable=True, max_shift=13)
    rng = np.random.default_rng(9)
    last = len(model.layers) - 1
    beats = []
    for b in _beats(model, rng, 200, dut.acc_width):
        b.update(shift=int(rng.integers(0, dut.max_shift + 1)), output=int(b["layer"] == last))
        beats.append(b)
    want = []
    for b in beats:
        L = model.layers[b["layer"]]
        mult, bias = (1, 0) if b["layer"] == 0 else (int(L.mult[b["channel"]]), int(L.bias[b["channel"]]))
        v = (b["acc"] * mult + bias) >> b["shift"]
        want.append(min(max(v, 0), (1 << model.pixel_bits) - 1) if b["output"] else v % (1 << model.phase_bits))
    assert {b["shift"] for b in beats} == set(range(dut.max_shift + 1))
    assert field(_run(dut, beats), "value") == want


def test_loadable_clamp_edges_every_shift(model):
    """Pixel values at and around the clamp's edges, for every shift (the
    clamp reads the bits above the pixel's before the shift's last bit)."""
    dut = ChannelScaler(model, loadable=True, max_shift=13)
    lo, hi = -(1 << (dut.acc_width - 1)), (1 << (dut.acc_width - 1)) - 1
    pmax = (1 << model.pixel_bits) - 1
    beats = []
    for shift in range(dut.max_shift + 1):
        for target in (-2, -1, 0, 1, pmax - 1, pmax, pmax + 1, pmax + 2, 2 * pmax, 2 * pmax + 1, 2 * pmax + 2):
            for acc in ((target << shift), (target << shift) + (1 << shift) - 1):
                if lo <= acc <= hi:
                    # Layer 0's entries are the identity: the value is acc >> shift.
                    beats.append({"acc": acc, "layer": 0, "channel": 0, "shift": shift, "output": 1})
    want = [min(max(b["acc"] >> b["shift"], 0), pmax) for b in beats]
    assert field(_run(dut, beats), "value") == want


def test_corner_accumulators(model):
    """Every (layer, channel) with acc = min, max, alternating bits, 0, ±1,
    and accs that land exactly on and around the pixel clamp limits."""
    dut = ChannelScaler(model, acc_width=24)
    w = dut.acc_width
    alt = int("01" * (w // 2), 2) if w % 2 == 0 else int("10" * (w // 2), 2)
    corner = [-(1 << (w - 1)), (1 << (w - 1)) - 1, alt, -alt - 1, 0, 1, -1]
    beats = [{"acc": a, "layer": li, "channel": k}
             for li, L in enumerate(model.layers) for k in range(L.out_features) for a in corner]
    last = len(model.layers) - 1
    L = model.layers[last]
    for k in range(L.out_features):  # around pixel 0 and 255 (mult > 0 in a random model)
        for target in (0, 255):
            t0 = (target << L.shift) - int(L.bias[k])
            a0 = t0 // int(L.mult[k])
            beats += [{"acc": a0 + d, "layer": last, "channel": k} for d in (-2, -1, 0, 1, 2)]
    got = _run(dut, beats, stall=0.2)
    _check(model, dut, beats, got)
    values = field(got, "value")
    out = [v for v, b in zip(values, beats) if b["layer"] == last]
    assert 0 in out and 255 in out  # the clamp was exercised on both sides


def test_golden_trace_every_layer(model):
    """The scaler turns the golden model's accumulators into its phases and pixels."""
    dut = ChannelScaler(model, tag_shape=0)
    xs, ys = pixel_coordinates(model.height, model.width, (0, 0, 3, 2))
    trace = GoldenModel(model).trace(xs, ys)
    beats, want = [], []
    for li, step in enumerate(trace):
        key = "pixel" if li == len(trace) - 1 else "phase"
        for p in range(len(xs)):
            for k in range(model.layers[li].out_features):
                beats.append({"acc": int(step["acc"][p, k]), "layer": li, "channel": k})
                want.append(int(step[key][p, k]))
    got = _run(dut, beats, stall=0.1)
    assert field(got, "value") == want


def test_full_rate_and_latency(model):
    dut = ChannelScaler(model)
    assert dut.latency == 4 + 4  # mult_bits 8 → 9 tree items → 4 levels
    beats = _beats(model, np.random.default_rng(2), 40, dut.acc_width)
    res = {}

    async def tb(ctx):
        res["r"] = await stream_full_rate(ctx, dut.i, dut.o, beats, len(beats))

    run_sim(dut, [tb])
    accepted, emitted = res["r"]
    assert accepted == list(range(len(beats)))
    assert [c for c, _ in emitted] == [c + dut.latency for c in accepted]
    assert field([p for _, p in emitted], "value") == _want(model, beats)


def test_dsp_pieces_cover_the_product():
    """The pieces tile both operands exactly; only the accumulator's top
    piece is signed; their shifted products sum to acc · mult at the ends
    of every range."""
    for acc_width in (2, 8, 16, 17, 23, 32, 33, 48):
        for mult_bits in (1, 8, 16, 17, 32):
            pieces = dsp_pieces(acc_width, mult_bits)
            assert len(pieces) == -(-acc_width // 16) * -(-mult_bits // 16)
            assert all(w <= 16 and mw <= 16 for _, w, _, _, mw in pieces)
            for acc in (-(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1, -1, 0, 1):
                for mult in (0, 1, (1 << mult_bits) - 1):
                    total = 0
                    for ao, aw, a_signed, mo, mw in pieces:
                        a = (acc >> ao) & ((1 << aw) - 1)
                        if a_signed and a >> (aw - 1):
                            a -= 1 << aw
                        total += (a * ((mult >> mo) & ((1 << mw) - 1))) << (ao + mo)
                    assert total == acc * mult, (acc_width, mult_bits, acc, mult)


@pytest.mark.parametrize("acc_width", [12, 16, 17, 23, 33])
def test_dsp_scaler_every_piece_count(model, acc_width):
    """One, two and three accumulator pieces: bit-exact with stalls, and the
    latency is 4 + ceil_log2(pieces + 1)."""
    dut = ChannelScaler(model, acc_width=acc_width, multiplier="dsp")
    n = len(dut.pieces)
    assert n == -(-acc_width // 16)
    assert dut.latency == 4 + (n + 1 - 1).bit_length()
    beats = _beats(model, np.random.default_rng(acc_width), 120, acc_width)
    w = acc_width
    beats += [{"acc": a, "layer": li, "channel": 0}
              for li in range(len(model.layers)) for a in (-(1 << (w - 1)), (1 << (w - 1)) - 1, -1, 0)]
    _check(model, dut, beats, _run(dut, beats, stall=0.25))


def test_reset_mid_stream(model):
    dut = ChannelScaler(model, tag_shape=3)
    top = ResetWrapper(dut)
    rng = np.random.default_rng(4)
    before = _beats(model, rng, 6, dut.acc_width, 3)
    after = _beats(model, rng, 30, dut.acc_width, 3)
    got = reset_mid_stream(top, dut, before, after, random.Random(5), in_stall=0.2)
    _check(model, dut, after, got)


def test_widths(model):
    dut = ChannelScaler(model)
    assert dut.acc_width == max(model.accumulator_bits(i) for i in range(len(model.layers)))
    assert dut.value_width == max(model.phase_bits, model.pixel_bits)
    assert dut.layer_width == 2 and dut.channel_width == 3  # 3 layers, up to 8 channels


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"model": "m"}, TypeError, "ModelImage"),
    ({"multiplier": "fpga"}, ValueError, "multiplier"),
    ({"dsp": "xilinx"}, ValueError, "dsp"),
    ({"multiplier": "dsp", "loadable": True, "mult_bits": 33}, ValueError, "at most 32 bits"),
    ({"table_memory": "spram"}, ValueError, "table_memory"),
    ({"acc_width": 1.5}, TypeError, "acc_width"),
    ({"acc_width": 1}, ValueError, "acc_width"),
    ({"acc_width": 65}, ValueError, "acc_width"),
    ({"tag_shape": "x"}, TypeError, "tag_shape"),
    ({"tag_shape": -2}, ValueError, "tag_shape"),
    ({"quarter_fold": 1}, TypeError, "quarter_fold"),
])
def test_constructor_validation(model, kwargs, exc, match):
    args = {"model": model}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ChannelScaler(args.pop("model"), **args)


# ------------------------------------------------------- synthesis (Yosys)

@pytest.mark.slow
def test_scaler_logic_uses_no_dsp_and_dsp_option_does(tmp_path):
    model = random_model(width=16, depth=3, channels=3, seed=1)
    logic = synth_ice40_cells(ChannelScaler(model, multiplier="logic"), workdir=tmp_path / "l")
    assert "SB_MAC16" not in logic
    assert logic["SB_RAM40_4K"] >= 1
    assert any(k.startswith("SB_DFF") for k in logic)
    dsp = synth_ice40_cells(ChannelScaler(model, multiplier="dsp"), workdir=tmp_path / "d")
    assert dsp.get("SB_MAC16", 0) >= 1
    assert dsp["SB_LUT4"] < logic["SB_LUT4"]


@pytest.mark.slow
@pytest.mark.parametrize("acc_width", [16, 23])
def test_dsp_scaler_on_sb_mac16_cell_models(model, tmp_path, acc_width):
    """The iCE40 scaler (SB_MAC16 instances in 16×16 mode, signed × unsigned
    for the top piece) under Verilator with Yosys's cell models: every
    output equals the reference, with stalls on both sides."""
    from tests.verilog_stream import stream_outputs
    dut = ChannelScaler(model, acc_width=acc_width, multiplier="dsp", dsp="ice40")
    rng = np.random.default_rng(7)
    beats = _beats(model, rng, 300, acc_width)
    w = acc_width
    beats += [{"acc": a, "layer": li, "channel": k} for li, L in enumerate(model.layers)
              for k in range(L.out_features) for a in (-(1 << (w - 1)), (1 << (w - 1)) - 1, -1, 0, 1)]
    layout = dut.i.payload.shape()
    words = [layout.const(b).as_value().value for b in beats]
    out = stream_outputs(dut, words, tmp_path, stall=0.3)
    vw = dut.value_width
    assert [int(o) & ((1 << vw) - 1) for o in out] == _want(model, beats)


@pytest.mark.slow
def test_dsp_scaler_netlist_keeps_its_instances(model, tmp_path):
    """Synthesized as the board builds do (no -dsp), the scaler's SB_MAC16
    instances reach the netlist unchanged (synth_ice40 checks them)."""
    dut = ChannelScaler(model, acc_width=23, multiplier="dsp", dsp="ice40")
    cells = synth_ice40_cells(dut, workdir=tmp_path)
    assert cells["SB_MAC16"] == 2
