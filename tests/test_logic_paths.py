# amaranth: UnusedElaboratable=no
"""Logic paths of a synthesized iCE40 netlist: the path model on hand-made
netlists, the command line's errors, and a real synthesis (slow)."""

import json

import pytest
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dhq_rtl import logic_paths
from dhq_rtl.errors import DhqError
from dhq_rtl.logic_paths import deepest_paths


class _Netlist:
    """A flattened netlist in Yosys's JSON form, built cell by cell."""

    def __init__(self):
        self.cells, self.netnames, self.next_bit = {}, {}, 2

    def net(self, name):
        bit = self.next_bit
        self.next_bit += 1
        self.netnames[name] = {"bits": [bit], "hide_name": 0}
        return bit

    def dff(self, name, d, q, e=None):
        conns, dirs = {"C": [0], "D": [d], "Q": [q]}, {"C": "input", "D": "input", "Q": "output"}
        if e is not None:
            conns["E"], dirs["E"] = [e], "input"
        self.cells[name] = {"type": "SB_DFFE" if e is not None else "SB_DFF", "connections": conns,
                            "port_directions": dirs}

    def lut(self, name, inputs, o):
        ports = ("I0", "I1", "I2", "I3")
        conns = {p: [i] for p, i in zip(ports, inputs)}
        conns["O"] = [o]
        self.cells[name] = {"type": "SB_LUT4", "connections": conns,
                            "port_directions": dict({p: "input" for p in ports[:len(inputs)]}, O="output")}

    def carry(self, name, i0, i1, ci, co):
        self.cells[name] = {"type": "SB_CARRY", "connections": {"I0": [i0], "I1": [i1], "CI": [ci], "CO": [co]},
                            "port_directions": {"I0": "input", "I1": "input", "CI": "input", "CO": "output"}}

    def json(self):
        return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                    "cells": self.cells, "netnames": self.netnames}}}


def _chain(levels):
    """q → ``levels`` LUTs in a row → d, every net of fanout one."""
    n = _Netlist()
    q, d = n.net("start"), n.net("stop_d")
    n.dff("src", d=n.net("unused"), q=q)
    prev = q
    for i in range(levels):
        out = d if i == levels - 1 else n.net(f"l{i}")
        n.lut(f"lut{i}", [prev], out)
        prev = out
    n.dff("dst", d=d, q=n.net("stop"))
    return n


@pytest.mark.parametrize("levels", [1, 3, 6])
def test_a_lut_chain_counts_its_levels_and_delay(levels):
    path = next(p for p in deepest_paths(_chain(levels).json()) if p.endpoint == "stop.D")
    assert path.levels == levels
    route = logic_paths.ROUTE_NEAR
    expect = logic_paths.CLOCK_TO_Q["SB_DFF"] + levels * (route + logic_paths.LUT_DELAY) + route + logic_paths.SETUP
    assert path.delay == pytest.approx(expect, abs=0.01)
    assert path.nets[0] == "start" and path.nets[-1] == "stop_d" and len(path.nets) == levels + 1


def test_paths_are_ranked_worst_first_and_fanout_costs_routing():
    n = _Netlist()
    q = n.net("q")
    n.dff("a", d=n.net("a_d_unused"), q=q)
    # q drives 8 LUTs (fanout 8) into 8 registers, and one register through 2 LUTs of fanout 1.
    for i in range(8):
        o = n.net(f"wide{i}")
        n.lut(f"w{i}", [q], o)
        n.dff(f"r{i}", d=o, q=n.net(f"r{i}_q"))
    q2, mid, d2 = n.net("q2"), n.net("mid"), n.net("deep_d")
    n.dff("b", d=n.net("b_d_unused"), q=q2)
    n.lut("m", [q2], mid)
    n.lut("e", [mid], d2)
    n.dff("deep", d=d2, q=n.net("deep_q"))
    paths = deepest_paths(n.json(), count=3)
    assert [p.delay for p in paths] == sorted((p.delay for p in paths), reverse=True)
    assert paths[0].endpoint == "deep_q.D"
    wide = next(p for p in deepest_paths(n.json(), count=20) if p.endpoint == "r0_q.D")
    assert wide.levels == 1
    assert wide.delay > logic_paths.CLOCK_TO_Q["SB_DFF"] + 2 * logic_paths.ROUTE_NEAR + logic_paths.LUT_DELAY


def _counter_compare(bits):
    """A register into a ``bits``-long carry chain whose carry out enables a register."""
    n = _Netlist()
    q = n.net("count")
    n.dff("c", d=n.net("count_d_unused"), q=q)
    prev = n.net("ci")
    n.lut("ci_lut", [q], prev)
    for i in range(bits):
        co = n.net(f"co{i}")
        n.carry(f"carry{i}", q, q, prev, co)
        prev = co
    en = n.net("enable")
    n.lut("en_lut", [q, prev], en)
    n.dff("r", d=q, q=n.net("held"), e=en)
    (path,) = [p for p in deepest_paths(n.json(), count=10) if p.endpoint == "held.E"]
    return path


def test_a_carry_chain_is_cheap_per_bit_and_enables_are_endpoints():
    short, long = _counter_compare(16), _counter_compare(32)
    assert short.levels == long.levels == 2     # the LUT before the chain and the one after it
    assert long.nets[1:3] == ["ci", "co0"] and long.nets[-2:] == ["co31", "enable"]
    # 16 more carries cost 16 carry delays (and the wider fanout of the counter's bits).
    fanout_cost = logic_paths._route(2 * 32 + 3) - logic_paths._route(2 * 16 + 3)
    assert long.delay - short.delay == pytest.approx(16 * logic_paths.CARRY_DELAY + fanout_cost, abs=0.02)


def test_a_combinational_loop_is_refused():
    n = _Netlist()
    a, b = n.net("a"), n.net("b")
    n.lut("la", [b], a)
    n.lut("lb", [a], b)
    n.dff("r", d=a, q=n.net("q"))
    with pytest.raises(DhqError, match="combinational loop"):
        deepest_paths(n.json())


def test_the_command_line_refuses_what_is_not_a_netlist(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    assert logic_paths.main([str(bad)]) == 2
    assert "is not a JSON netlist" in capsys.readouterr().err
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"modules": {}}))
    assert logic_paths.main([str(empty)]) == 2
    assert "has no modules" in capsys.readouterr().err
    assert logic_paths.main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert logic_paths.main([]) == 2
    assert "either a netlist" in capsys.readouterr().err
    good = tmp_path / "chain.json"
    good.write_text(json.dumps(_chain(2).json()))
    assert logic_paths.main([str(good), "--brief", "--top", "1"]) == 0
    assert "stop.D" in capsys.readouterr().out


class _WideAnd(wiring.Component):
    """A 32-input AND into a register: at least three LUT4 levels, or, with
    ``pipelined``, the four 8-input ANDs registered first (two levels each)."""
    i: In(32)
    o: Out(1)

    def __init__(self, pipelined):
        self.pipelined = pipelined
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        inputs = Signal(32)
        m.d.sync += inputs.eq(self.i)
        if self.pipelined:
            parts = Signal(4)
            m.d.sync += parts.eq(Cat(inputs[8 * k:8 * k + 8].all() for k in range(4)))
            m.d.sync += self.o.eq(parts.all())
        else:
            m.d.sync += self.o.eq(inputs.all())
        return m


@pytest.mark.slow
def test_a_synthesized_design_shows_its_pipelining(tmp_path):
    from dhq_rtl.synthesis import synth_ice40
    deep = deepest_paths(json.loads(synth_ice40(_WideAnd(False), workdir=tmp_path / "a").netlist.read_text()))
    flat = deepest_paths(json.loads(synth_ice40(_WideAnd(True), workdir=tmp_path / "b").netlist.read_text()))
    assert deep[0].levels >= 3
    assert flat[0].levels <= 2 and flat[0].delay < deep[0].delay


#: The deepest logic path each iCEBreaker design may have, in the model's ns
#: (docs/timing.md): its worst path today plus about 1 ns — the default
#: (loadable) build 21.9 ns (the staging row's adder in the model store), the
#: fixed-model core of a rotated width-32 W8A8 model 22.0 ns (the job
#: sequencer's free-buffer choice behind the accumulator queue's read); 30.2
#: and 27.9 ns before the timing-closure work, 26.2 ns after its first pass.
#: A change that adds a deeper path fails here, in a minute, instead of in a
#: place-and-route that misses its clock; a change that shortens the worst
#: path should lower it.
ICEBREAKER_PATH_BUDGET_NS = {"loadable": 23.0, "fixed-model rotated": 23.0}


@pytest.mark.slow
@pytest.mark.parametrize("design", sorted(ICEBREAKER_PATH_BUDGET_NS))
def test_the_icebreaker_designs_stay_within_their_path_budget(tmp_path, default_model, design):
    from dhq_rtl.boards import get_board
    from dhq_rtl.envelope import get_envelope
    from dhq_rtl.synthetic import random_model
    if design == "loadable":
        model, kw = default_model, {"envelope": get_envelope("default")}
    else:
        model, kw = random_model(width=32, depth=3, size=128, seed=0), {"fixed_model": True}
        assert all(layer.rotate for layer in model.layers[1:-1])
    netlist = logic_paths.synthesize_board(model, get_board("icebreaker"), tmp_path, log=lambda *a: None, **kw)
    worst = deepest_paths(json.loads(netlist.read_text()), count=5)
    budget = ICEBREAKER_PATH_BUDGET_NS[design]
    assert worst[0].delay <= budget, logic_paths.format_paths(worst)
