"""Switching activity of a design, counted in its compiled simulation.

:class:`ActivitySim` is a :class:`~.compiled.CompiledSim` whose simulator
counts, over a whole run, every bit toggle of the design's nets and every
memory access and multiply, sorted into the resource classes of the energy
model (:mod:`dhq_rtl.energy`). It takes any elaborated component with the
core's interface (``start``, ``region``, ``busy``, ``pixels``).

How it counts
-------------
1. Yosys reads the RTLIL, runs ``proc``, ``flatten``, ``opt`` (enable
   and reset multiplexers fold into the flip-flops, as synthesis does) and
   ``memory_collect`` and writes the netlist as JSON.
2. Python renames every net after the cell that drives it, so that a net's
   name says its resource class (:data:`CLASS_OF_CELL`): ``ff_N`` (a
   flip-flop's output, except one that registers a multiplier's product:
   that is the DSP's own output register, ``mul``), ``carry_N`` (an adder, subtractor or magnitude
   comparator: a carry chain on the FPGA), ``lut_N`` (any other logic
   cell), ``mul_N`` (a multiplier's product), ``mem_N`` (a memory's read
   data). Each bit has exactly one name, so no toggle is counted twice.
   It then adds *event* flip-flops, one bit each, that toggle in every
   cycle in which an event happens, so that their toggle count is the
   number of events:

   * ``ev_rd_M_P`` / ``ev_wr_M_P``: read port ``P`` of memory ``M`` enabled
     (a synchronous read) / any write enable of write port ``P`` high;
   * ``ev_mul_K``: the operands of multiplier ``K`` differ from the
     previous cycle's (a multiply of new operands; constant operands cost
     no operation).
3. Yosys writes Verilog; Verilator compiles it with ``--coverage-toggle``:
   every bit of every net gets a counter of its value changes between
   settled states (zero-delay: glitches are not seen). The driver
   (``sim/driver.cpp``, built with ``VM_COVERAGE``) writes the counters at
   the end of the run; :meth:`ActivitySim.run` sums them by class.

The event and class maps are kept in the cache entry beside the binary
(``classes.json``), so a cached activity simulator starts at once.
"""

import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError, ToolchainError
from ..outputs import write_file
from .compiled import TOP, VERILATOR_FLAGS, CompiledSim, _run, _yosys

__all__ = ["ActivitySim", "Activity", "CLASS_OF_CELL", "instrument_netlist", "parse_coverage",
           "memory_kind", "ebr_blocks_per_access", "mul_units"]

#: Verilator flags of the activity build (besides the compiled engine's).
COVERAGE_FLAGS = ("--coverage-toggle", "--coverage-max-width", "65536")

#: Part of the activity simulators' cache key; raised when the counting changes.
ACTIVITY_FORMAT = 3


def flatten_script(lut_map=False):
    """The Yosys script that turns the RTLIL into the flat netlist that is counted."""
    return (f"read_rtlil {TOP}.il\nhierarchy -top {TOP}\nproc -norom\nflatten\n"
            + ("synth -lut 4\n" if lut_map else "opt\nmemory_collect\n")
            + "opt_clean\nwrite_json netlist.json\n")


_FF_TYPES = {"$dff", "$dffe", "$adff", "$adffe", "$sdff", "$sdffe", "$sdffce", "$aldff", "$aldffe",
             "$dffsr", "$dffsre", "$ff", "$dlatch", "$adlatch", "$dlatchsr"}
_CARRY_TYPES = {"$add", "$sub", "$neg", "$lt", "$le", "$gt", "$ge", "$alu", "$macc", "$fa", "$lcu"}


def CLASS_OF_CELL(cell_type):
    """The resource class of the nets a cell of ``cell_type`` drives
    (word-level cells, and the gate-level ones of a LUT-mapped netlist)."""
    if cell_type in _FF_TYPES or cell_type.startswith(("$_DFF", "$_SDFF", "$_DFFE", "$_ALDFF", "$_DLATCH",
                                                         "$_FF_", "$_SR")):
        return "ff"
    if cell_type in _CARRY_TYPES:
        return "carry"
    if cell_type == "$mul":
        return "mul"
    if cell_type.startswith("$mem"):
        return "mem"
    return "lut"


#: Depth of one iCE40UP5K SPRAM (``SB_SPRAM256KA``, 16 bits wide): a memory
#: of this shape is an SPRAM (the model of :mod:`~dhq_rtl.gateware.spram`).
SPRAM_SHAPE = (16, 16384)
_ICE40_EBR = ((16, 256), (8, 512), (4, 1024), (2, 2048))


def memory_kind(width, depth):
    """``"spram"`` for the SPRAM model's shape, else ``"ebr"``."""
    return "spram" if (width, depth) == SPRAM_SHAPE else "ebr"


def ebr_blocks_per_access(width, depth):
    """iCE40 ``SB_RAM40_4K`` blocks active in one access of a ``width × depth``
    memory: the blocks side by side across the word, in the narrowest
    configuration deep enough for the memory (256×16 … 2048×2); blocks
    stacked for depth are not counted (one of them holds the word)."""
    for w, d in _ICE40_EBR:
        if depth <= d:
            return math.ceil(width / w)
    return math.ceil(width / 2)


def mul_units(a_width, b_width):
    """8×8 products a multiply of these operand widths costs (one ``SB_MAC16``
    half in dual 8×8 mode is one unit; a 16×16 multiply is four)."""
    return math.ceil(a_width / 8) * math.ceil(b_width / 8)


def _bin(v, width=32):
    return format(v, f"0{width}b")


def _int_param(v):
    if isinstance(v, int):
        return v
    v = str(v).strip()
    if set(v) <= {"0", "1"}:
        return int(v, 2)
    return int(v)


class _Builder:
    """Adds cells and nets to a flattened JSON module."""

    def __init__(self, module):
        self.mod = module
        bits = [b for n in module["netnames"].values() for b in n["bits"] if isinstance(b, int)]
        for c in module["cells"].values():
            for v in c["connections"].values():
                bits += [b for b in v if isinstance(b, int)]
        self.next_bit = max(bits, default=1) + 1
        self.n = 0

    def bits(self, width):
        out = list(range(self.next_bit, self.next_bit + width))
        self.next_bit += width
        return out

    def cell(self, type_, params, ports, name=None):
        self.n += 1
        dirs = {k: ("output" if k in ("Y", "Q") else "input") for k in ports}
        self.mod["cells"][name or f"$energy${self.n}"] = {
            "hide_name": 1, "type": type_, "attributes": {},
            "parameters": {k: _bin(v) for k, v in params.items()},
            "port_directions": dirs, "connections": ports}

    def binop(self, type_, a, b):
        y = self.bits(1 if type_ in ("$ne", "$eq") else max(len(a), len(b)))
        self.cell(type_, {"A_SIGNED": 0, "B_SIGNED": 0, "A_WIDTH": len(a), "B_WIDTH": len(b),
                          "Y_WIDTH": len(y)}, {"A": a, "B": b, "Y": y})
        return y

    def reduce_or(self, a):
        if len(a) == 1:
            return a
        y = self.bits(1)
        self.cell("$reduce_or", {"A_SIGNED": 0, "A_WIDTH": len(a), "Y_WIDTH": 1}, {"A": a, "Y": y})
        return y

    def dff(self, clk, d):
        q = self.bits(len(d))
        self.cell("$dff", {"WIDTH": len(d), "CLK_POLARITY": 1}, {"CLK": clk, "D": d, "Q": q})
        return q

    def event(self, clk, en):
        """A flip-flop that toggles in every cycle in which ``en`` is high."""
        q = self.bits(1)
        d = self.binop("$xor", q, en)
        self.cell("$dff", {"WIDTH": 1, "CLK_POLARITY": 1}, {"CLK": clk, "D": d, "Q": q})
        return q


def instrument_netlist(netlist, top=TOP):
    """Rename the nets of the flattened ``netlist`` (Yosys JSON, changed in
    place) after their drivers' classes and add the event flip-flops.

    Returns the map kept beside the simulator: ``{"events": {name: {...}},
    "ff_bits": N, "classes": {class: bits}}``.
    """
    mod = netlist["modules"][top]
    ports = mod["ports"]
    if "clk" not in ports:
        raise ValueError(f"the design {top!r} has no clk port")
    clk = ports["clk"]["bits"]
    cells = list(mod["cells"].items())
    b = _Builder(mod)
    names, events, class_bits = {}, {}, {}
    counters = {}
    ff_bits = 0

    def name(cls, bits):
        k = counters.get(cls, 0)
        counters[cls] = k + 1
        names[f"{cls}_{k}"] = bits
        class_bits[cls] = class_bits.get(cls, 0) + len(bits)

    mul_bits = {x for _, c in cells if c["type"] == "$mul" for x in c["connections"]["Y"] if isinstance(x, int)}

    def registers_product(c):
        """A flip-flop that holds a multiplier's product: on the FPGA it is the
        DSP's own output register (``SB_MAC16`` ``*_MULT_REG``), not fabric."""
        d = [x for x in c["connections"].get("D", []) if isinstance(x, int)]
        return bool(d) and all(x in mul_bits for x in d)

    for cname, c in cells:
        cls = CLASS_OF_CELL(c["type"])
        if cls == "ff" and registers_product(c):
            cls = "mul"
        for port, direction in c.get("port_directions", {}).items():
            if direction != "output":
                continue
            bits = [x for x in c["connections"][port] if isinstance(x, int)]
            if not bits:
                continue
            name(cls, c["connections"][port])
            if cls == "ff":
                ff_bits += len(bits)
    for mi, (cname, c) in enumerate(cells):
        t, p, conn = c["type"], c["parameters"], c["connections"]
        if t == "$mem_v2":
            width, depth = _int_param(p["WIDTH"]), _int_param(p["SIZE"])
            kind = memory_kind(width, depth)
            nrd, nwr = _int_param(p["RD_PORTS"]), _int_param(p["WR_PORTS"])
            rd_sync = _int_param(p["RD_CLK_ENABLE"]) if nrd else 0
            for port in range(nrd):
                if not (rd_sync >> port) & 1:
                    continue   # an asynchronous read port: no block RAM read (logic)
                en = conn["RD_EN"][port:port + 1]
                if en == ["0"]:
                    continue
                q = b.event(clk, en)
                ev = f"ev_rd_{mi}_{port}"
                names[ev] = q
                events[ev] = {"kind": f"{kind}_read", "memory": cname, "width": width,
                              "depth": depth}
            for port in range(nwr):
                en = conn["WR_EN"][port * width:(port + 1) * width]
                if all(x == "0" for x in en):
                    continue
                q = b.event(clk, b.reduce_or([x for x in en if x != "0"] or en))
                ev = f"ev_wr_{mi}_{port}"
                names[ev] = q
                events[ev] = {"kind": f"{kind}_write", "memory": cname, "width": width,
                              "depth": depth}
        elif t == "$mul":
            a, bb = conn["A"], conn["B"]
            ops = a + bb
            changed = b.binop("$ne", ops, b.dff(clk, ops))
            q = b.event(clk, changed)
            ev = f"ev_mul_{mi}"
            names[ev] = q
            events[ev] = {"kind": "dsp_op", "units": mul_units(len(a), len(bb)), "cell": cname,
                          "a_width": len(a), "b_width": len(bb)}
    # Initial values (the flip-flops' reset values: the simulation starts
    # from them) are attributes of the nets; they move to the new names.
    init_of = {}
    for n in mod["netnames"].values():
        value = n.get("attributes", {}).get("init")
        if value is None:
            continue
        value = value if isinstance(value, str) else format(int(value), f"0{len(n['bits'])}b")
        for bit, ch in zip(n["bits"], reversed(value)):
            if isinstance(bit, int) and ch in "01":
                init_of[bit] = ch
    for n, bits in names.items():
        if n.startswith("ev_"):
            init_of.update({x: "0" for x in bits})

    def net(bits):
        entry = {"hide_name": 0, "bits": bits, "attributes": {}}
        if any(isinstance(x, int) and x in init_of for x in bits):
            entry["attributes"]["init"] = "".join(init_of.get(x, "x") for x in reversed(bits))
        return entry

    netnames = {pname: net(pdata["bits"]) for pname, pdata in ports.items()}
    for n, bits in names.items():
        netnames[n] = net(bits)
    mod["netnames"] = netnames
    return {"events": events, "ff_bits": ff_bits, "classes": class_bits}


_BIT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(\[(?P<bit>\d+)\])?")


def parse_coverage(text):
    """``{net name: total toggles}`` from a Verilator ``coverage.dat``."""
    totals = {}
    for line in text.splitlines():
        if not line.startswith("C '"):
            continue
        body, _, count = line[3:].rpartition("' ")
        fields = dict(kv.split("\x02", 1) for kv in body.split("\x01") if "\x02" in kv)
        if fields.get("page", "").split("/")[0] != "v_toggle":
            continue
        m = _BIT.match(fields.get("o", ""))
        if not m:
            continue
        totals[m.group("name")] = totals.get(m.group("name"), 0) + int(count)
    return totals


@dataclass
class Activity:
    """What a run did: cycles, toggles by class and memory accesses.

    ``toggles``: bit value changes per class (``ff``, ``lut``, ``carry``,
    ``mul``, ``mem``); ``memories``: per memory (the netlist's cell name)
    its ``kind`` (``"ebr"`` or ``"spram"``), ``width``, ``depth``, ``reads``
    and ``writes`` (port accesses); ``dsp_ops``: 8×8 multiply units with
    new operands; ``ff_bits``: flip-flop bits of the design (each is clocked
    every cycle); ``cycles``: clock cycles simulated (from ``start`` to
    ``busy`` low).
    """

    cycles: int
    toggles: dict
    memories: dict
    dsp_ops: int
    ff_bits: int
    pixels: int
    seconds: float
    result: object = field(default=None, repr=False)

    def _accesses(self, kind, op):
        total = 0
        for mem in self.memories.values():
            if mem["kind"] == kind:
                blocks = ebr_blocks_per_access(mem["width"], mem["depth"]) if kind == "ebr" else \
                    math.ceil(mem["width"] / SPRAM_SHAPE[0])
                total += mem[op] * blocks
        return total

    @property
    def ebr_reads(self):
        """EBR block reads (an access to a memory ``b`` blocks wide counts ``b``)."""
        return self._accesses("ebr", "reads")

    @property
    def ebr_writes(self):
        return self._accesses("ebr", "writes")

    @property
    def spram_reads(self):
        """SPRAM reads (a memory wider than 16 bits counts one per SPRAM side by side)."""
        return self._accesses("spram", "reads")

    @property
    def spram_writes(self):
        return self._accesses("spram", "writes")

    def with_memory_kind(self, names, kind):
        """A copy in which the memories ``names`` (cell names, or a predicate
        on them) are of ``kind`` (``"ebr"``/``"spram"``): e.g. the weight
        memory that a build keeps in SPRAM while the simulated core keeps it
        in block RAM (same accesses, same cycles)."""
        if kind not in ("ebr", "spram"):
            raise ValueError(f"kind must be 'ebr' or 'spram', not {kind!r}")
        pick = names if callable(names) else (lambda n, s=frozenset(names): n in s)
        memories = {n: dict(m, kind=kind) if pick(n) else dict(m) for n, m in self.memories.items()}
        from dataclasses import replace
        return replace(self, memories=memories)

    def per_cycle(self):
        c = max(self.cycles, 1)
        return {**{f"{k}_toggles": v / c for k, v in self.toggles.items()},
                "ebr_reads": self.ebr_reads / c, "ebr_writes": self.ebr_writes / c,
                "spram_reads": self.spram_reads / c, "spram_writes": self.spram_writes / c,
                "dsp_ops": self.dsp_ops / c}

    def as_dict(self):
        return {"cycles": self.cycles, "pixels": self.pixels, "toggles": dict(self.toggles),
                "ebr_reads": self.ebr_reads, "ebr_writes": self.ebr_writes, "spram_reads": self.spram_reads,
                "spram_writes": self.spram_writes, "dsp_ops": self.dsp_ops, "ff_bits": self.ff_bits,
                "memories": {n: dict(m) for n, m in sorted(self.memories.items())},
                "simulation_seconds": round(self.seconds, 3)}


def activity_from_counts(totals, classes, cycles, pixels=0, seconds=0.0, result=None):
    """Sum coverage ``totals`` (:func:`parse_coverage`) by class and event."""
    toggles = {k: 0 for k in ("ff", "lut", "carry", "mul", "mem")}
    memories, dsp_ops = {}, 0
    for name, info in classes["events"].items():
        count = totals.get(name, 0)
        if info["kind"] == "dsp_op":
            dsp_ops += count * info["units"]
            continue
        kind, op = info["kind"].split("_")
        mem = memories.setdefault(info["memory"], {"kind": kind, "width": info["width"], "depth": info["depth"],
                                                   "reads": 0, "writes": 0})
        mem["reads" if op == "read" else "writes"] += count
    for name, count in totals.items():
        if name.startswith("ev_"):
            continue
        cls = name.rsplit("_", 1)[0]
        if cls in toggles:
            toggles[cls] += count
    return Activity(cycles=int(cycles), toggles=toggles, memories=memories, dsp_ops=dsp_ops,
                    ff_bits=int(classes["ff_bits"]), pixels=int(pixels), seconds=float(seconds), result=result)


class ActivitySim(CompiledSim):
    """A compiled simulator of ``design`` that counts its switching activity
    (module docstring). Verilator only. :meth:`run` returns an
    :class:`Activity` (its ``result`` is the run's
    :class:`~.stimulus.SimResult`, pixels included)."""

    def __init__(self, design, *, toolchain=None, log=None, lut_map=False):
        if not isinstance(lut_map, bool):
            raise TypeError(f"lut_map must be a bool, not {type(lut_map).__name__}")
        super().__init__(design, backend="verilator", toolchain=toolchain, log=log)
        import hashlib
        #: Map the logic to 4-input LUTs before counting (calibration designs
        #: only: a whole core takes far too long to map).
        self.lut_map = lut_map
        tag = f"activity {ACTIVITY_FORMAT}|{' '.join(COVERAGE_FLAGS)}|{flatten_script(lut_map)}|{self.key}"
        self.key = hashlib.sha256(tag.encode()).hexdigest()[:20]
        self._locate(self.folder.parent)

    def _convert(self, core):
        """The RTLIL text of ``core`` without the simulation-only check of
        block-RAM collisions (:mod:`dhq_rtl.gateware.ram`): its logic would
        count as the hardware's."""
        from ..gateware.ram import no_collision_check
        with no_collision_check():
            return super()._convert(core)

    def _locate(self, root):
        self.folder = root / f"activity-{getattr(self, 'key', 'none')}"
        self.binary = self.folder / "simulator"

    ENTRY_FILES = ("simulator", "classes.json")
    ENTRY_NAME = "activity simulator"

    def _compile(self, tmp):
        self._build_activity(tmp)

    def _build_activity(self, tmp):
        tc = self.toolchain
        root = Path(tc.verilator_root)
        self.log("flattening the netlist with Yosys")
        self._timed("yosys", _yosys, flatten_script(self.lut_map), tmp)
        t0 = time.perf_counter()
        netlist = json.loads((tmp / "netlist.json").read_text())
        classes = instrument_netlist(netlist)
        (tmp / "instrumented.json").write_text(json.dumps(netlist))
        (tmp / "classes.json").write_text(json.dumps(classes, indent=1) + "\n")
        self.build_times["instrument"] = time.perf_counter() - t0
        self._timed("yosys", _yosys, f"read_json instrumented.json\nwrite_verilog -norename -noattr {TOP}.v\n", tmp)
        self.log("translating with Verilator (toggle coverage)")
        env = dict(os.environ, VERILATOR_ROOT=str(root))
        self._timed("verilator", _run, [str(root / "bin" / "verilator"), "--cc", f"{TOP}.v", "--top-module", TOP,
                                        "--prefix", f"V{TOP}", *VERILATOR_FLAGS, *COVERAGE_FLAGS,
                                        "--Mdir", "obj"], tmp, "verilator", env)
        sources = sorted((tmp / "obj").glob("*.cpp"))
        inc = root / "include"
        (tmp / "unity.cpp").write_text("".join(f'#include "obj/{s.name}"\n' for s in sources)
                                       + '#include "verilated_cov.h"\n#include "verilated_cov.cpp"\n'
                                       + '#include "driver.cpp"\n')
        runtime = self._timed("runtime", self._verilator_runtime)
        self.log(f"compiling the activity simulator with {Path(tc.cxx).name}")
        self._timed("c++", self._cxx, ["-DDHQ_VERILATOR", "-DVM_COVERAGE=1", "-I", "obj", "-I", str(inc),
                                       "-I", str(inc / "vltstd"), "unity.cpp", *map(str, runtime), "-pthread",
                                       "-o", "simulator"], tmp, "compiling the activity simulator")
        for f in ("netlist.json", "instrumented.json"):
            (tmp / f).unlink()

    def classes(self):
        self.build()
        return json.loads((self.folder / "classes.json").read_text())

    def run(self, region, *, stall=0.0, seed=1, idle_limit=1_000_000, progress=None):
        """Simulate ``region`` and count its activity; returns an :class:`Activity`."""
        self.build()
        with tempfile.TemporaryDirectory(prefix="dhq_rtl-activity-") as d:
            path = Path(d) / "coverage.dat"
            old = os.environ.get("DHQ_COVERAGE_FILE")
            os.environ["DHQ_COVERAGE_FILE"] = str(path)
            try:
                result = super().run(region, stall=stall, seed=seed, idle_limit=idle_limit, progress=progress)
            finally:
                if old is None:
                    os.environ.pop("DHQ_COVERAGE_FILE", None)
                else:
                    os.environ["DHQ_COVERAGE_FILE"] = old
            if not path.is_file():
                raise ToolchainError("the activity simulator wrote no coverage counts")
            totals = parse_coverage(path.read_text(errors="replace"))
        return activity_from_counts(totals, self.classes(), result.busy_cycles, pixels=result.pixels,
                                    seconds=result.seconds, result=result)

    def counts(self, region, *, progress=None):
        """The activity of ``region`` without back-pressure, from this
        simulator's cache entry when an earlier call counted it (the counts
        only: ``result`` is None), else by :meth:`run` (and kept there)."""
        self.build()
        path = self.folder / ("counts-{}-{}-{}-{}.json".format(*(int(v) for v in region)))
        try:
            d = json.loads(path.read_text())
            return Activity(cycles=d["cycles"], toggles=d["toggles"], memories=d["memories"],
                            dsp_ops=d["dsp_ops"], ff_bits=d["ff_bits"], pixels=d["pixels"],
                            seconds=d["simulation_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        activity = self.run(region, progress=progress)
        try:
            write_file(path, json.dumps(activity.as_dict(), indent=1) + "\n")
        except OutputError:
            pass     # a read-only cache: counted again next time
        return activity
