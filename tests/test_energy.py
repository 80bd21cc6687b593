"""The energy model: activity counting in the compiled simulation, the
constants and their derivation, the report and the CLI hook.

Tests that build an activity simulator (Yosys, Verilator, g++) are
``slow``; the simulators are cached, so a second run skips the builds.
"""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from dhq_rtl import energy
from dhq_rtl.cli import run_main
from dhq_rtl.energy import (CLASSES, ICE40UP5K, MEASURED_UA, SUPPLY_V, Constant, EnergyConstants, _fit,
                            constants_for, energy_of, format_report)
from dhq_rtl.gateware.coords import region_layout
from dhq_rtl.rtlsim import ToolchainUnavailable, find_toolchain
from dhq_rtl.rtlsim.activity import (Activity, ActivitySim, CLASS_OF_CELL, activity_from_counts,
                                     ebr_blocks_per_access, instrument_netlist, memory_kind, mul_units,
                                     parse_coverage)
from dhq_rtl.sim import main as sim_main
from dhq_rtl.synthetic import random_model


def _have_verilator():
    try:
        find_toolchain("verilator")
        return True
    except ToolchainUnavailable:
        return False


def needs_verilator(test):
    return pytest.mark.slow(pytest.mark.skipif(not _have_verilator(), reason="no C++ compiler / Verilator")(test))


class Block(wiring.Component):
    """A test block with the core's interface: one pixel per cycle, ``body(m)``
    adds the logic whose activity is counted."""

    def __init__(self, body):
        self.body = body
        super().__init__({"start": In(1), "region": In(region_layout(1024, 1024)), "busy": Out(1),
                          "pixels": Out(stream.Signature(unsigned(1)))})

    def elaborate(self, platform):
        m = Module()
        out = self.body(m)
        m.d.comb += [self.pixels.valid.eq(1), self.pixels.payload.eq(out), self.busy.eq(0)]
        return m


def _activity(body, cycles=1024):
    return ActivitySim(Block(body)).run((0, 0, cycles // 16, 16))


# ----------------------------------------------------------- known activity

@needs_verilator
def test_counter_toggles_exactly_as_counted_by_hand():
    width = 10

    def body(m):
        c = Signal(width)
        m.d.sync += c.eq(c + 1)
        return c[-1]

    a = _activity(body, 1024)
    n = a.cycles
    assert n == 1024
    # Bit i of a counter from 0 changes floor(n / 2^i) times in n cycles.
    want = sum(n >> i for i in range(width))
    assert a.toggles["ff"] == want
    assert abs(a.toggles["carry"] - want) <= width  # the adder's output is the next count
    assert a.ff_bits == width
    assert a.memories == {} and a.dsp_ops == 0
    assert 1.9 < a.toggles["ff"] / n < 2.0     # ≈ 2 toggles per cycle


@needs_verilator
@pytest.mark.parametrize("every", [1, 4, 16])
def test_memory_read_every_k_cycles(every):
    def body(m):
        c = Signal(12)
        m.d.sync += c.eq(c + 1)
        m.submodules.mem = mem = memory.Memory(shape=32, depth=64, init=range(64))
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(c[:6]), rd.en.eq(c[:4] % every == 0)]
        return rd.data.xor()

    a = _activity(body, 1024)
    (mem,) = a.memories.values()
    assert mem["kind"] == "ebr" and (mem["width"], mem["depth"]) == (32, 64)
    assert mem["reads"] == 1024 // every and mem["writes"] == 0
    assert a.ebr_reads == 2 * (1024 // every)        # 32 bits wide: two 256×16 blocks
    assert a.spram_reads == 0


@needs_verilator
def test_memory_writes_and_spram_shape():
    def body(m):
        c = Signal(12)
        m.d.sync += c.eq(c + 1)
        m.submodules.ram = ram = memory.Memory(shape=16, depth=16384, init=[])
        wr, rd = ram.write_port(), ram.read_port()
        m.d.comb += [wr.addr.eq(c), wr.data.eq(c), wr.en.eq(c[0]),
                     rd.addr.eq(c + 1), rd.en.eq(~c[0] & c[1])]
        return rd.data.xor()

    a = _activity(body, 1024)
    assert a.spram_writes == 512 and a.spram_reads == 256
    assert a.ebr_reads == a.ebr_writes == 0
    moved = a.with_memory_kind(lambda n: True, "ebr")
    assert moved.spram_writes == 0 and moved.ebr_writes == 512 * ebr_blocks_per_access(16, 16384)


@needs_verilator
def test_dsp_constant_versus_random_operands():
    rng = np.random.default_rng(3)
    table = [int(v) for v in rng.integers(0, 256, size=256)]

    def body_for(random):
        def body(m):
            c = Signal(8)
            m.d.sync += c.eq(c + 1)
            m.submodules.rom = rom = memory.Memory(shape=8, depth=256, init=table)
            rd = rom.read_port()
            m.d.comb += [rd.addr.eq(c if random else 0)]
            p = Signal(16)
            m.d.sync += p.eq(rd.data * (rd.data ^ 0x5A))
            return p.xor()
        return body

    const = _activity(body_for(False), 1024)
    rand = _activity(body_for(True), 1024)
    assert const.dsp_ops <= 2                       # the first cycles' operands only
    changes = sum(table[i % 256] != table[(i - 1) % 256] for i in range(1, 1024))
    assert abs(rand.dsp_ops - changes) <= 2
    e_const = energy_of(const, clock_hz=48e6)
    e_rand = energy_of(rand, clock_hz=48e6)
    assert e_rand.breakdown["dsp"] > 900 * ICE40UP5K.dsp_op.value
    assert e_const.breakdown["dsp"] <= 2 * ICE40UP5K.dsp_op.value
    assert e_rand.total > e_const.total


@needs_verilator
def test_calibration_figures_are_what_the_constants_use():
    cal = energy.calibrate(4096)
    assert cal["counter_toggles_per_cycle"] == pytest.approx(energy.CAL_COUNTER_TOGGLES, abs=0.01)
    assert cal["lut_toggles_per_cycle"] == pytest.approx(energy.CAL_LUT_TOGGLES, abs=0.01)
    assert cal["dsp_side_toggles_per_cycle"] == pytest.approx(energy.CAL_DSP_SIDE_TOGGLES, abs=0.01)
    assert cal["dsp_ops_per_cycle"] == pytest.approx(1.0, abs=0.01)


@needs_verilator
def test_real_core_activity_and_pixels():
    from dhq_rtl.gateware.core import InrCore
    from dhq_rtl.golden import GoldenModel
    from dhq_rtl.rtlsim.stimulus import unpack_pixels
    model = random_model(size=12, width=8, depth=2, channels=3, seed=4)
    core = InrCore(model, lanes=4, dsp="generic")
    region = (0, 0, 12, 3)
    report, a = energy.measure(core, region, clock_hz=48e6)
    got = unpack_pixels(a.result.payloads, model, region)
    np.testing.assert_array_equal(got, GoldenModel(model).render(region))
    assert a.cycles >= a.result.cycles and a.pixels == 36
    assert a.ebr_reads > 0 and a.dsp_ops > 0 and a.toggles["ff"] > 0 and a.toggles["lut"] > 0
    assert report.total == pytest.approx(sum(report.breakdown.values()))
    assert all(v > 0 for k, v in report.breakdown.items() if k != "spram")


# ------------------------------------------------------------------- the CLI

def _cli(argv, capsys, factory=None):
    try:
        run_main(lambda a: sim_main(a, core_factory=factory), argv)
    except SystemExit as e:
        return e.code, capsys.readouterr()
    raise AssertionError("run_main did not exit")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from dhq_rtl.model_image import save
    path = tmp_path_factory.mktemp("m") / "small.dhq"
    save(random_model(size=12, width=8, depth=2, channels=3, seed=4), path)
    return path


@needs_verilator
def test_cli_energy_prints_breakdown(capsys, model_file):
    from tests.standin_core import StandinCore
    code, out = _cli(["--model", str(model_file), "--energy", "--no-progress", "--freq", "12"], capsys,
                     factory=lambda model, lanes: StandinCore(model, lanes=lanes, cycles_per_pixel=2))
    assert code == 0, out.err
    assert "energy per image:" in out.out and "12 MHz" in out.out
    for k in CLASSES:
        assert f"  {k} " in out.out
    assert "OK: all 144 pixels" in out.out


@pytest.mark.parametrize("argv, needle", [
    (["--energy", "--engine", "pysim"], "Verilator"),
    (["--energy", "--backend", "cxxrtl"], "Verilator"),
    (["--energy", "--freq", "0"], "--freq"),
    (["--energy", "--freq", "nan"], "--freq"),
])
def test_cli_energy_refuses_in_one_line(capsys, model_file, argv, needle, monkeypatch):
    monkeypatch.setattr("dhq_rtl.rtlsim.compiled.find_toolchain", lambda backend="verilator": None)

    def never(model, lanes):
        raise AssertionError("the core must not be built")

    code, out = _cli(["--model", str(model_file), *argv], capsys, factory=never)
    assert code != 0
    assert needle in out.err and "Traceback" not in out.err
    assert len(out.err.strip().splitlines()) == 1


# ---------------------------------------------------------------- constants

def test_fit_is_least_squares():
    assert _fit({0: 1.0, 1: 3.0, 2: 5.0}) == pytest.approx((2.0, 1.0))


def test_constants_derivation_by_hand():
    pj = lambda ua, mhz: ua * 1e-6 * SUPPLY_V / (mhz * 1e6)
    assert ICE40UP5K.static_w.value == pytest.approx(85.6e-6 * 1.219)
    # 28-LC counter on the HFOSC: 42.8 µA per MHz ≈ 52 pJ per cycle before the split.
    slope, _ = _fit(MEASURED_UA["hfosc_counter"])
    assert slope == pytest.approx(42.76, abs=0.01)
    assert slope * 1e-6 * SUPPLY_V / 1e6 == pytest.approx(52.1e-12, rel=1e-3)
    # Wide counters at 12 MHz: ≈ 14.5 fJ per added LC per cycle.
    assert ICE40UP5K.ff_clock.value == pytest.approx(14.55e-15, rel=1e-3)
    ff = ICE40UP5K.ff_clock.value
    toggle = (pj(996 - 645, 12) - 180 * ff) / energy.CAL_LUT_TOGGLES
    assert ICE40UP5K.toggle.value == pytest.approx(toggle)
    dsp = pj(882 - 645, 12) - 44 * ff - energy.CAL_DSP_SIDE_TOGGLES * toggle
    assert ICE40UP5K.dsp_op.value == pytest.approx(dsp)
    clock = slope * 1e-6 * SUPPLY_V / 1e6 - 28 * ff - energy.CAL_COUNTER_TOGGLES * toggle
    assert ICE40UP5K.clock_cycle.value == pytest.approx(clock)
    assert ICE40UP5K.ebr_access.value == pytest.approx(energy.EBR_TOGGLES * toggle)
    assert ICE40UP5K.spram_access.value == pytest.approx(energy.SPRAM_EBRS * ICE40UP5K.ebr_access.value)
    # Orders of magnitude a reader can check: sub-pJ toggles, tens of pJ per cycle.
    assert 0.1e-12 < toggle < 2e-12 and 40e-12 < clock < 55e-12 and 5e-12 < dsp < 30e-12
    # The model reproduces the measured 12 MHz LUT-math design it was fitted to.
    lut_math = 180 * ff + energy.CAL_LUT_TOGGLES * toggle
    assert lut_math == pytest.approx(pj(351, 12))


def test_estimates_are_marked_and_every_constant_has_a_source():
    for name, value, unit, estimate, source, derivation in ICE40UP5K.table():
        assert value > 0 and unit and source and derivation
        assert estimate == (name in ("ebr_access", "spram_access"))
    assert not ICE40UP5K.relative_only
    ecp5 = constants_for("ecp5")
    assert ecp5.relative_only and "relative only" in ecp5.device
    with pytest.raises(ValueError, match="family"):
        constants_for("xilinx")


def test_constant_validation():
    with pytest.raises(TypeError):
        Constant("1", "J", "s", "d")
    with pytest.raises(ValueError):
        Constant(-1.0, "J", "s", "d")
    with pytest.raises(ValueError):
        Constant(float("inf"), "J", "s", "d")
    with pytest.raises(TypeError):
        EnergyConstants("x", *([1.0] * 7))
    doubled = ICE40UP5K.scaled(ebr_access=2)
    assert doubled.ebr_access.value == 2 * ICE40UP5K.ebr_access.value
    assert doubled.toggle == ICE40UP5K.toggle


def test_resource_mapping_helpers():
    assert CLASS_OF_CELL("$sdffe") == "ff" and CLASS_OF_CELL("$_DFF_P_") == "ff"
    assert CLASS_OF_CELL("$add") == "carry" and CLASS_OF_CELL("$lt") == "carry"
    assert CLASS_OF_CELL("$eq") == "lut" and CLASS_OF_CELL("$lut") == "lut"
    assert CLASS_OF_CELL("$mul") == "mul" and CLASS_OF_CELL("$mem_v2") == "mem"
    assert memory_kind(16, 16384) == "spram" and memory_kind(16, 256) == "ebr"
    assert ebr_blocks_per_access(64, 200) == 4 and ebr_blocks_per_access(8, 512) == 1
    assert ebr_blocks_per_access(16, 1024) == 4
    assert mul_units(8, 8) == 1 and mul_units(16, 16) == 4 and mul_units(24, 24) == 9


# ------------------------------------------------------------------ report

def _fake_activity(**kw):
    base = dict(cycles=1000, toggles={"ff": 500, "lut": 700, "carry": 300, "mul": 99, "mem": 77},
                memories={"w": {"kind": "ebr", "width": 64, "depth": 128, "reads": 100, "writes": 2},
                          "s": {"kind": "spram", "width": 16, "depth": 16384, "reads": 10, "writes": 0}},
                dsp_ops=40, ff_bits=200, pixels=10, seconds=0.0)
    base.update(kw)
    return Activity(**base)


def test_energy_of_adds_up_by_class():
    a = _fake_activity()
    c = ICE40UP5K
    r = energy_of(a, clock_hz=10e6)
    assert r.breakdown["static"] == pytest.approx(c.static_w.value * 1000 / 10e6)
    assert r.breakdown["clock"] == pytest.approx(c.clock_cycle.value * 1000)
    assert r.breakdown["ff_clock"] == pytest.approx(c.ff_clock.value * 1000 * 200)
    assert r.breakdown["ff"] == pytest.approx(c.toggle.value * 500)
    assert r.breakdown["lut"] == pytest.approx(c.toggle.value * 700)
    assert r.breakdown["carry"] == pytest.approx(c.toggle.value * 300)
    assert r.breakdown["ebr"] == pytest.approx(c.ebr_access.value * (100 + 2) * 4)
    assert r.breakdown["spram"] == pytest.approx(c.spram_access.value * 10)
    assert r.breakdown["dsp"] == pytest.approx(c.dsp_op.value * 40)
    assert r.total == pytest.approx(sum(r.breakdown.values()))
    assert r.per_pixel == pytest.approx(r.total / 10)
    assert r.seconds == pytest.approx(1e-4) and r.average_power == pytest.approx(r.total / 1e-4)
    d = r.as_dict()
    for key in ("device", "relative_only", "clock_hz", "cycles", "pixels", "seconds", "energy_j",
                "energy_per_pixel_j", "average_power_w", "breakdown_j", "activity"):
        assert key in d
    assert list(d["breakdown_j"]) == list(CLASSES)
    assert d["activity"]["ebr_reads"] == 400 and d["activity"]["memories"]["s"]["reads"] == 10
    lines = format_report(r)
    assert lines[0].startswith("energy per image:") and "(estimate)" in lines[0]
    assert len(lines) == 1 + len(CLASSES)
    rel = energy_of(a, constants_for("ecp5"), clock_hz=10e6)
    assert "(relative only)" in format_report(rel)[0]
    assert rel.total == pytest.approx(r.total)


def test_static_energy_scales_with_render_time():
    a = _fake_activity()
    slow, fast = energy_of(a, clock_hz=12e6), energy_of(a, clock_hz=48e6)
    assert slow.breakdown["static"] == pytest.approx(4 * fast.breakdown["static"])
    assert slow.total - slow.breakdown["static"] == pytest.approx(fast.total - fast.breakdown["static"])


@pytest.mark.parametrize("clock", [0, -1, float("nan"), "48e6", True])
def test_energy_of_refuses_bad_clock(clock):
    with pytest.raises(ValueError, match="clock_hz"):
        energy_of(_fake_activity(), clock_hz=clock)


def test_energy_of_refuses_bad_constants():
    with pytest.raises(TypeError):
        energy_of(_fake_activity(), {"toggle": 1}, clock_hz=1e6)


# --------------------------------------------------------- counting plumbing

def test_parse_coverage_sums_both_directions_per_net():
    def line(name, count, page="v_toggle/dhq_top"):
        return f"C '\x01f\x02dhq_top.v\x01l\x021\x01page\x02{page}\x01o\x02{name}\x01h\x02TOP.dhq_top' {count}"
    text = "\n".join(["# SystemC::Coverage-3", line("ff_0[0]:0->1", 5), line("ff_0[0]:1->0", 4),
                      line("ff_0[1]:0->1", 2), line("lut_3:0->1", 7), line("x", 100, page="v_line/dhq_top")])
    assert parse_coverage(text) == {"ff_0": 11, "lut_3": 7}


def _bits(n, start):
    return list(range(start, start + n))


def test_instrument_netlist_names_nets_by_driver_and_adds_events():
    q, d, a, b, y, rd = _bits(4, 10), _bits(4, 20), _bits(4, 30), _bits(4, 40), _bits(8, 50), _bits(16, 60)
    cells = {
        "r": {"type": "$dff", "parameters": {"WIDTH": 4}, "port_directions": {"CLK": "input", "D": "input",
              "Q": "output"}, "connections": {"CLK": [2], "D": d, "Q": q}},
        "s": {"type": "$add", "parameters": {}, "port_directions": {"A": "input", "B": "input", "Y": "output"},
              "connections": {"A": q, "B": ["1", "0", "0", "0"], "Y": d}},
        "m": {"type": "$mul", "parameters": {}, "port_directions": {"A": "input", "B": "input", "Y": "output"},
              "connections": {"A": a, "B": b, "Y": y}},
        "mem": {"type": "$mem_v2", "parameters": {"WIDTH": 16, "SIZE": 16384, "RD_PORTS": 1, "WR_PORTS": 0,
                                                  "RD_CLK_ENABLE": "1"},
                "port_directions": {"RD_DATA": "output"}, "connections": {"RD_EN": [3], "RD_DATA": rd}},
    }
    netlist = {"modules": {"dhq_top": {
        "ports": {"clk": {"direction": "input", "bits": [2]}, "en": {"direction": "input", "bits": [3]}},
        "cells": cells,
        "netnames": {"count": {"hide_name": 0, "bits": q, "attributes": {"init": "0101"}}}}}}
    info = instrument_netlist(netlist)
    nets = netlist["modules"]["dhq_top"]["netnames"]
    assert nets["ff_0"]["bits"] == q and nets["ff_0"]["attributes"]["init"] == "0101"
    assert nets["carry_0"]["bits"] == d and nets["mul_0"]["bits"] == y and nets["mem_0"]["bits"] == rd
    assert info["ff_bits"] == 4 and info["classes"] == {"ff": 4, "carry": 4, "mul": 8, "mem": 16}
    kinds = {v["kind"] for v in info["events"].values()}
    assert kinds == {"dsp_op", "spram_read"}
    for ev in info["events"]:
        assert nets[ev]["attributes"]["init"] == "0"
    with pytest.raises(ValueError, match="clk"):
        instrument_netlist({"modules": {"dhq_top": {"ports": {}, "cells": {}, "netnames": {}}}})


def test_activity_from_counts_weights_events():
    classes = {"ff_bits": 7, "events": {
        "ev_rd_1_0": {"kind": "ebr_read", "memory": "w", "width": 48, "depth": 100},
        "ev_wr_1_0": {"kind": "ebr_write", "memory": "w", "width": 48, "depth": 100},
        "ev_mul_2": {"kind": "dsp_op", "units": 4}}}
    a = activity_from_counts({"ff_0": 10, "lut_1": 3, "carry_9": 2, "ev_rd_1_0": 5, "ev_wr_1_0": 1,
                              "ev_mul_2": 6, "clk": 99}, classes, cycles=50)
    assert a.toggles["ff"] == 10 and a.toggles["lut"] == 3 and a.toggles["carry"] == 2
    assert a.ebr_reads == 15 and a.ebr_writes == 3 and a.dsp_ops == 24 and a.ff_bits == 7
    with pytest.raises(ValueError):
        a.with_memory_kind(["w"], "flash")


def test_bench_checks_its_output_before_any_work(tmp_path, capsys, monkeypatch):
    from tests.safety_checks import assert_refused, digests, load_script, run_cli, under_a_file
    bench = load_script("energy")

    def forbidden(*a, **k):
        raise AssertionError("the simulation ran before the output was checked")

    monkeypatch.setattr(bench, "board_energy", forbidden)
    blocked = under_a_file(tmp_path)
    before = digests(tmp_path)
    assert_refused(run_cli(bench.main, ["--json", str(blocked / "e.json")], capsys), "is a file")
    code, _, err = run_cli(bench.main, ["--shapes", "32y8"], capsys)
    assert code == 2 and len(err) == 1 and "WIDTHxBITS" in err[0]
    assert digests(tmp_path) == before


def test_build_energy_hook_reaches_json_and_summary(tmp_path, capsys, monkeypatch):
    """``build --energy``: the entry lands in utilization.json and the summary
    (fake tools; the activity simulation replaced by a fixed activity)."""
    import json
    from dhq_rtl.build import main as build_main
    from dhq_rtl.model_image import save
    from tests.fake_toolchain import install
    from tests.safety_checks import run_cli
    install(tmp_path / "tools", monkeypatch)
    model = tmp_path / "tiny.dhq"
    save(random_model(size=8, width=8, depth=1, seed=0), model)
    calls = []

    def fake_entry(model, board, *, clock_hz, **kw):
        calls.append((board.name, clock_hz, kw["lanes"]))
        entry = energy_of(_fake_activity(), constants_for(board.family), clock_hz=clock_hz).as_dict()
        entry["simulator"] = {"cached": True}
        return entry

    monkeypatch.setattr(energy, "build_entry", fake_entry)
    out = tmp_path / "build"
    code, stdout, err = run_cli(build_main, ["--model", str(model), "--lanes", "4", "--out", str(out), "--energy"],
                                capsys)
    assert code == 0, err
    assert calls == [("icebreaker", 48e6, 4)]
    report = json.loads((out / "utilization.json").read_text())
    assert report["energy"]["energy_j"] > 0 and list(report["energy"]["breakdown_j"]) == list(CLASSES)
    assert "energy:" in stdout and "per image (estimate" in stdout
    # Without --energy nothing is simulated and the report has no entry.
    code, stdout, err = run_cli(build_main, ["--model", str(model), "--lanes", "4", "--out", str(out)], capsys)
    assert code == 0 and len(calls) == 1
    assert "energy" not in json.loads((out / "utilization.json").read_text())


@needs_verilator
def test_counts_are_kept_in_the_cache_entry():
    def body(m):
        c = Signal(6)
        m.d.sync += c.eq(c + 3)
        return c.xor()

    sim = ActivitySim(Block(body))
    region = (0, 0, 16, 16)
    path = sim.folder / "counts-0-0-16-16.json"
    sim.build()
    path.unlink(missing_ok=True)
    first = sim.counts(region)
    assert first.result is not None and path.is_file()
    again = sim.counts(region)
    assert again.result is None
    assert again.as_dict() == first.as_dict()
