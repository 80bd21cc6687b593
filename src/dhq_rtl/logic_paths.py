"""Logic paths of a synthesized iCE40 netlist, deepest first, before placement.

Place-and-route on the iCE40UP5K takes minutes and reports one critical path
per clock; closing timing needs every path that is too long, and it needs them
after synthesis (seconds to a minute). This module reads Yosys's JSON netlist
of a ``synth_ice40`` run (the ``top.json`` every iCE40 build writes) and times
every register-to-register path with a simple delay model:

* a path starts at a register's output (``SB_DFF*`` ``Q``, block RAM and
  SPRAM read data, DSP outputs, I/O inputs) with its clock-to-output delay;
* it goes through ``SB_LUT4`` cells (logic delay plus the routing into the
  LUT) and ``SB_CARRY`` cells (the dedicated carry chain: no routing between
  neighbouring carries, nor from a carry into the LUT of the same logic cell);
* it ends at any input of a sequential cell other than its clock (a register's
  ``D``, clock enable or reset; a RAM's address, data or enables; a DSP's
  operands), with the register's setup time.

Routing delay grows with the driving net's fanout (``_route``): nextpnr's
reports on this device show 1.8 ns for a neighbour and 4–7 ns for nets that
fan out widely. The constants come from nextpnr's iCE40UP5K timing reports of
this project's builds (LUT 0.87–1.23 ns, clock-to-output 1.39 ns, routing
1.76–7.5 ns); on the default build the model is about 10 % pessimistic
(docs/timing.md). It ranks paths, it does not replace place-and-route.
What it gives that place-and-route does not: every endpoint's worst path, in
seconds, so that a design change can be checked against all of them.

``python -m dhq_rtl.logic_paths top.json [--top N] [--mhz F]`` prints the
worst endpoints of a netlist with their paths; ``python -m dhq_rtl.logic_paths
--board icebreaker [--fixed-model] [--model M]`` first synthesizes the board's
design exactly as its build does (:func:`synthesize_board`, Yosys only, about
a minute) and reports that. :func:`deepest_paths` is the library form.
"""

import argparse
import heapq
import json
import math
import sys
from dataclasses import dataclass, field

from .errors import DhqError


# Delays in ns (module docstring: where they come from).
CLOCK_TO_Q = {"SB_DFF": 1.39, "SB_RAM40_4K": 2.25, "SB_SPRAM256KA": 2.6, "SB_MAC16": 2.0}
LUT_DELAY = 1.0
CARRY_DELAY = 0.35         # carry in → carry out (0.28, and 0.56 between tiles every 8 bits)
CARRY_OPERAND_DELAY = 0.68  # an operand input → carry out
SETUP = 0.1
ROUTE_NEAR = 1.8           # a net with one load
ROUTE_PER_DOUBLING = 0.55  # more for each doubling of the fanout

COMBINATIONAL = ("SB_LUT4", "SB_CARRY")
CLOCK_PORTS = frozenset({"C", "CLK", "RCLK", "WCLK", "CLOCK", "CLKHF", "INPUT_CLK", "OUTPUT_CLK",
                         "REFERENCECLK", "PACKAGEPIN"})


def _route(fanout):
    return ROUTE_NEAR + ROUTE_PER_DOUBLING * math.log2(max(1, fanout))


def _base_type(cell_type):
    """``$paramod$…\\SB_RAM40_4K`` → ``SB_RAM40_4K``; every register flavour → ``SB_DFF``."""
    name = cell_type.rsplit("\\", 1)[-1]
    return "SB_DFF" if name.startswith("SB_DFF") else name


@dataclass(order=True)
class Path:
    """One endpoint's worst path: ``delay`` in ns and the nets it goes through."""

    delay: float
    endpoint: str = field(compare=False)
    levels: int = field(compare=False)
    nets: list = field(compare=False)

    @property
    def mhz(self):
        return 1000.0 / self.delay


def _top_module(netlist):
    modules = netlist.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise DhqError("the netlist has no modules; give the JSON netlist Yosys writes (write_json) after synth_ice40")
    tops = [m for m in modules.values() if str(m.get("attributes", {}).get("top", "0")).strip("0") != ""]
    if len(tops) != 1:
        if len(modules) == 1:
            return next(iter(modules.values()))
        raise DhqError("the netlist has no single top module; give the flattened netlist of synth_ice40")
    return tops[0]


def _net_names(module):
    names = {}
    for name, net in module.get("netnames", {}).items():
        hidden = bool(net.get("hide_name", 0))
        for bit in net.get("bits", []):
            if isinstance(bit, str):
                continue
            best = names.get(bit)
            key = (hidden, len(name))
            if best is None or key < best[0]:
                names[bit] = (key, name)
    return {bit: name for bit, (key, name) in names.items()}


def deepest_paths(netlist, *, count=20, per_group=1):
    """The ``count`` worst endpoints of a flattened ``synth_ice40`` netlist.

    ``netlist`` is the parsed JSON. With ``per_group`` = 1 only the worst
    endpoint of each signal (a register's bits share a name) is listed.
    """
    module = _top_module(netlist)
    cells = module.get("cells", {})
    names = _net_names(module)

    drivers = {}  # bit → (cell name, port)
    fanout = {}
    for cname, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            for bit in bits:
                if isinstance(bit, str):
                    continue
                if dirs.get(port) == "output":
                    drivers[bit] = (cname, port)
                elif dirs.get(port) == "input":
                    fanout[bit] = fanout.get(bit, 0) + 1

    arrival = {}   # bit → (ns, levels, previous bit)
    state = {}

    def arrive(bit):
        """Arrival time at a net bit (iterative depth-first: deep carry chains)."""
        if bit in arrival:
            return arrival[bit]
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in arrival:
                stack.pop()
                continue
            driver = drivers.get(b)
            if driver is None:
                arrival[b] = (0.0, 0, None)
                stack.pop()
                continue
            cname, port = driver
            cell = cells[cname]
            kind = _base_type(cell["type"])
            if kind not in COMBINATIONAL:
                arrival[b] = (CLOCK_TO_Q.get(kind, 1.39), 0, None)
                stack.pop()
                continue
            conns = cell["connections"]
            inputs = [(p, conns[p][0]) for p in (("I0", "I1", "I2", "I3") if kind == "SB_LUT4" else ("I0", "I1", "CI"))
                      if p in conns and not isinstance(conns[p][0], str)]
            pending = [i for p, i in inputs if i not in arrival]
            if pending:
                if state.get(b) == "visiting":
                    raise DhqError(f"the netlist has a combinational loop through {names.get(b, b)}")
                state[b] = "visiting"
                stack.extend(pending)
                continue
            best = (0.0, 0, None)
            for p, i in inputs:
                t, lv, _ = arrival[i]
                src_kind = _base_type(cells[drivers[i][0]]["type"]) if i in drivers else None
                if kind == "SB_CARRY":
                    t += CARRY_DELAY if p == "CI" else _route(fanout.get(i, 1)) + CARRY_OPERAND_DELAY
                else:
                    near = src_kind == "SB_CARRY" and p == "I3"
                    t += (0.0 if near else _route(fanout.get(i, 1))) + LUT_DELAY
                    lv += 1
                if t > best[0]:
                    best = (t, lv, i)
            arrival[b] = best
            stack.pop()
        return arrival[bit]

    worst = {}
    for cname, cell in cells.items():
        kind = _base_type(cell["type"])
        if kind in COMBINATIONAL or kind.startswith("$"):
            continue
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            if dirs.get(port) != "input" or port in CLOCK_PORTS:
                continue
            for bit in bits:
                if isinstance(bit, str) or bit not in drivers:
                    continue
                t, lv, _ = arrive(bit)
                delay = t + _route(fanout.get(bit, 1)) + SETUP
                group = _endpoint_group(cname, cell, port, names)
                if group not in worst or delay > worst[group][0]:
                    worst[group] = (delay, lv, bit, f"{group}.{port}")
    ranked = heapq.nlargest(count, worst.values(), key=lambda w: w[0])
    paths = []
    for delay, lv, bit, endpoint in ranked:
        nets = []
        b = bit
        while b is not None:
            nets.append(names.get(b, f"${b}"))
            b = arrival.get(b, (0, 0, None))[2]
        paths.append(Path(round(delay, 2), endpoint, lv, nets[::-1]))
    return paths


def _endpoint_group(cname, cell, port, names):
    """A name for the endpoint: the register's output signal, else the cell."""
    kind = _base_type(cell["type"])
    if kind == "SB_DFF":
        q = cell["connections"].get("Q", [None])[0]
        name = names.get(q, cname)
        return name.split(" ")[0]
    return cname


def synthesize_board(model, board, out, *, envelope=None, fixed_model=False, arith="int", lanes=None,
                     log=print):
    """Synthesize the design :func:`dhq_rtl.build.build` would build (same
    checks, same Yosys script), without place-and-route, into ``out``;
    returns the netlist's path (``out/top.json``)."""
    from pathlib import Path
    from .build import _checked_core
    from .gateware.top import BoardTop
    from .synthesis import run_tool

    board, baud, envelope, lanes, fixed_model, _ = _checked_core(
        model, board, arith=arith, multipliers="dsp", baud=None, fixed_model=fixed_model, envelope=envelope,
        lanes=lanes, buffers=None, freq_mhz=None, seed=1)
    if board.family != "ice40":
        raise DhqError(f"logic paths are modelled for iCE40 netlists; {board.name} is {board.family}")
    top = BoardTop(model, board, envelope=envelope, lanes=lanes, baud=baud, arith=arith,
                   fixed_model=fixed_model and arith == "int")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "top.json").unlink(missing_ok=True)
    log(f"synthesizing {board.name}, {lanes} lanes{', fixed model' if fixed_model else ''} into {out}")
    board.platform().build(top, name="top", build_dir=str(out), do_build=False).extract(str(out))
    run_tool("yosys", ["-q", "-l", "top.rpt", "top.ys"], cwd=out, log="top.rpt")
    return out / "top.json"


def format_paths(paths, mhz=None):
    lines = []
    for p in paths:
        flag = ""
        if mhz is not None:
            flag = "  (fails)" if p.delay > 1000.0 / mhz else ""
        lines.append(f"{p.delay:6.2f} ns {p.mhz:6.1f} MHz {p.levels} LUT  {p.endpoint}{flag}")
        for n in p.nets:
            lines.append(f"         {n}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dhq_rtl.logic_paths",
                                     description="The deepest logic paths of a synthesized iCE40 netlist (Yosys JSON).")
    parser.add_argument("netlist", nargs="?", help="the JSON netlist (an iCE40 build's top.json)")
    parser.add_argument("--board", help="synthesize this board's design first (instead of a netlist)")
    parser.add_argument("--model", help="with --board: the model image (default: the bundled default model)")
    parser.add_argument("--fixed-model", action="store_true", help="with --board: the fixed-model core")
    parser.add_argument("--arith", choices=("int", "fp32"), default="int",
                        help="with --board: the integer core (default) or the float core")
    parser.add_argument("--out", default=None, help="with --board: the synthesis folder (default: build/paths-BOARD)")
    parser.add_argument("--top", type=int, default=20, help="how many endpoints to list (default 20)")
    parser.add_argument("--mhz", type=float, default=None, help="mark the paths this clock would fail")
    parser.add_argument("--brief", action="store_true", help="one line per endpoint, without its path")
    args = parser.parse_args(argv)
    try:
        if (args.board is None) == (args.netlist is None):
            raise DhqError("give either a netlist (top.json) or --board")
        if args.board is not None:
            args.netlist = _synthesize_for(args)
        try:
            with open(args.netlist) as f:
                netlist = json.load(f)
        except OSError as e:
            raise DhqError(f"cannot read {args.netlist}: {e.strerror}") from None
        except ValueError as e:
            raise DhqError(f"{args.netlist} is not a JSON netlist ({e}); give the top.json of an iCE40 build") from None
        paths = deepest_paths(netlist, count=args.top)
    except DhqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.brief:
        for p in paths:
            print(f"{p.delay:6.2f} ns {p.mhz:6.1f} MHz {p.levels} LUT  {p.endpoint}")
    else:
        print(format_paths(paths, args.mhz))
    return 0


def _synthesize_for(args):
    import os
    from .boards import get_board
    from .envelope import get_envelope
    from .firmware import default_model
    from .model_image import load
    model = load(args.model) if args.model else default_model()[0]
    envelope = None if args.model or args.fixed_model or args.arith == "fp32" else get_envelope("default")
    out = args.out or os.path.join("build", f"paths-{args.board}")
    return synthesize_board(model, get_board(args.board), out, envelope=envelope, fixed_model=args.fixed_model,
                            arith=args.arith)


if __name__ == "__main__":
    sys.exit(main())
