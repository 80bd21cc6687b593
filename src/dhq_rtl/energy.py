"""Energy per image from switching activity counted in the compiled simulation.

::

    E_image = Σ_class  activity_class × e_class  +  P_static × cycles / f_clk

The activity of the design rendering a whole image is counted by
:class:`~dhq_rtl.rtlsim.activity.ActivitySim` (Verilator toggle coverage on
a netlist whose nets are named after their resource class, plus event
flip-flops on memory ports and multipliers). The classes and their
constants (:data:`ICE40UP5K`, every one with its source and derivation;
``docs/energy.md`` has the table):

========== ============================================== ==================
class      activity                                        constant
========== ============================================== ==================
static     seconds of rendering (cycles / f_clk)           ``static_w``
clock      cycles                                          ``clock_cycle``
ff_clock   cycles × flip-flop bits (clock load of a LC)    ``ff_clock``
ff         flip-flop output bit toggles                    ``toggle``
lut        logic net bit toggles (proxy for LUT outputs)   ``toggle``
carry      adder/comparator output bit toggles             ``toggle``
ebr        EBR block accesses (reads + writes)             ``ebr_access``
spram      SPRAM accesses (reads + writes)                 ``spram_access``
dsp        8×8 multiplies of new operands                  ``dsp_op``
========== ============================================== ==================

Absolute joules are an estimate (the EBR and SPRAM constants are
assumptions, the LUT toggles a proxy); what the model is for is the ratio
between two designs under the same model. ECP5 figures use the same
constants and are marked relative only.

:func:`measure` takes any elaborated component with the core's interface
(``start``, ``region``, ``busy``, ``pixels``): the integer core, a
floating-point core, a test block.
"""

import math
from dataclasses import dataclass, field

__all__ = ["Constant", "EnergyConstants", "ICE40UP5K", "SUPPLY_V", "EnergyReport", "energy_of", "measure",
           "calibration_design", "calibrate", "CLASSES", "format_report", "constants_for"]

#: Core supply of the published measurements (iCE40UP5K breakout board, Joulescope JS110).
SUPPLY_V = 1.219
SOURCE_POWER = ("tinyvision-ai-inc/ice40_power README (iCE40UP5K breakout board, Joulescope JS110, "
                "core rail 1.219 V)")

#: Published core currents (µA) the constants are derived from.
MEASURED_UA = {
    "blank": 85.6,
    "hfosc_counter": {6: 388.4, 12: 645.0, 24: 1162.0, 48: 2184.0},    # 24-bit counter, 28 LCs
    "ext12_counter_lc": {32: 613.5, 60: 616.65, 116: 624.2, 228: 641.3},  # 28·k-bit counter, 12 MHz
    "math_luts_12": 996.0,     # + two 8-bit counters, 8×8 product in LUTs (208 LCs in all)
    "math_dsp_12": 882.0,      # the same with the product in one SB_MAC16 (72 LCs in all)
}
#: LCs of the 12 MHz designs above (the README's figures).
LC_COUNTER, LC_MATH_LUTS, LC_MATH_DSP = 28, 208, 72

#: Breakdown classes, in report order.
CLASSES = ("static", "clock", "ff_clock", "ff", "lut", "carry", "ebr", "spram", "dsp")


def _fit(points):
    """Least-squares line through ``{x: y}``: ``(slope, intercept)``."""
    xs, ys = list(points), list(points.values())
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def _pj_per_cycle(ua, mhz):
    """Energy per clock cycle (J) of a current ``ua`` (µA) at ``mhz``."""
    return ua * 1e-6 * SUPPLY_V / (mhz * 1e6)


@dataclass(frozen=True)
class Constant:
    """One energy constant: ``value`` in joules (per event) or watts (static)."""

    value: float
    unit: str
    source: str
    derivation: str
    estimate: bool = False

    def __post_init__(self):
        if not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise TypeError(f"value must be a number, not {type(self.value).__name__}")
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"value must be a finite number ≥ 0, got {self.value}")


@dataclass(frozen=True)
class EnergyConstants:
    """The per-class constants of one device (see the module docstring)."""

    device: str
    static_w: Constant
    clock_cycle: Constant
    ff_clock: Constant
    toggle: Constant
    ebr_access: Constant
    spram_access: Constant
    dsp_op: Constant
    relative_only: bool = False

    def __post_init__(self):
        for name in ("static_w", "clock_cycle", "ff_clock", "toggle", "ebr_access", "spram_access", "dsp_op"):
            if not isinstance(getattr(self, name), Constant):
                raise TypeError(f"{name} must be a Constant")

    def scaled(self, **factors):
        """A copy with some constants multiplied (a sensitivity study):
        ``scaled(ebr_access=2)``."""
        from dataclasses import replace
        changes = {}
        for name, f in factors.items():
            c = getattr(self, name)
            changes[name] = replace(c, value=c.value * f, derivation=f"{f:g} × ({c.derivation})")
        return replace(self, **changes)

    def table(self):
        """``[(name, value, unit, estimate, source, derivation)]`` for reports and docs."""
        rows = []
        for name in ("static_w", "clock_cycle", "ff_clock", "toggle", "ebr_access", "spram_access", "dsp_op"):
            c = getattr(self, name)
            rows.append((name, c.value, c.unit, c.estimate, c.source, c.derivation))
        return rows


# ----------------------------------------------------------------- derivation
#
# Calibration: the two published 12 MHz "math" designs, rebuilt here
# (:func:`calibration_design`) and run through the same activity counting,
# give the toggles per cycle the measured currents paid for. The figures
# below were measured with :func:`calibrate` (tests/test_energy.py checks
# that they still are); the math designs' extra energy per cycle over the
# counter alone is then split into per-LC clock load, toggles and the DSP.

#: Toggles per cycle of the math design with the product in 4-input LUTs
#: (``calibrate()["lut_toggles_per_cycle"]``).
CAL_LUT_TOGGLES = 67.22
#: Toggles per cycle (flip-flops, carries, logic) of the math design beside
#: its one multiplier (``calibrate()["dsp_side_toggles_per_cycle"]``).
CAL_DSP_SIDE_TOGGLES = 13.94
#: Toggles per cycle of the 24-bit counter alone (``calibrate()["counter_toggles_per_cycle"]``).
CAL_COUNTER_TOGGLES = 4.00


def _derive():
    m = MEASURED_UA
    static = m["blank"] * 1e-6 * SUPPLY_V
    slope_ua_per_mhz, _ = _fit(m["hfosc_counter"])
    per_cycle_counter = slope_ua_per_mhz * 1e-6 * SUPPLY_V / 1e6
    lc_slope, _ = _fit(m["ext12_counter_lc"])
    ff_clock = _pj_per_cycle(lc_slope, 12)
    e_lut_math = _pj_per_cycle(m["math_luts_12"] - m["hfosc_counter"][12], 12)
    e_dsp_math = _pj_per_cycle(m["math_dsp_12"] - m["hfosc_counter"][12], 12)
    toggle = (e_lut_math - (LC_MATH_LUTS - LC_COUNTER) * ff_clock) / CAL_LUT_TOGGLES
    dsp = e_dsp_math - (LC_MATH_DSP - LC_COUNTER) * ff_clock - CAL_DSP_SIDE_TOGGLES * toggle
    clock = per_cycle_counter - LC_COUNTER * ff_clock - CAL_COUNTER_TOGGLES * toggle
    return dict(static=static, slope=slope_ua_per_mhz, per_cycle_counter=per_cycle_counter, lc_slope=lc_slope,
                ff_clock=ff_clock, e_lut_math=e_lut_math, e_dsp_math=e_dsp_math, toggle=toggle, dsp=dsp,
                clock=clock)


_D = _derive()

#: Ratio of an EBR access to a LC output toggle (assumption, see ``ebr_access``).
EBR_TOGGLES = 32
#: Ratio of an SPRAM access to an EBR access (assumption, see ``spram_access``).
SPRAM_EBRS = 4

ICE40UP5K = EnergyConstants(
    device="iCE40UP5K",
    static_w=Constant(
        _D["static"], "W", SOURCE_POWER,
        f"blank design core current {MEASURED_UA['blank']} µA × {SUPPLY_V} V (datasheet FPGA-DS-02008: "
        f"75 µA typical standby)"),
    clock_cycle=Constant(
        _D["clock"], "J/cycle", SOURCE_POWER,
        f"HFOSC 24-bit counter (28 LCs) at 6/12/24/48 MHz: least-squares slope "
        f"{_D['slope']:.2f} µA/MHz → {_D['per_cycle_counter'] * 1e12:.2f} pJ/cycle, less the counter's own "
        f"{LC_COUNTER} LC clock loads and its {CAL_COUNTER_TOGGLES:g} toggles/cycle (FF and carry bits, "
        f"simulated)"),
    ff_clock=Constant(
        _D["ff_clock"], "J/(FF·cycle)", SOURCE_POWER,
        f"12 MHz counters of 32/60/116/228 LCs: slope {_D['lc_slope']:.4f} µA per LC → per LC per cycle "
        f"(the added bits of a wide counter do not toggle: clock load of a clocked LC)"),
    toggle=Constant(
        _D["toggle"], "J/toggle", SOURCE_POWER,
        f"'math' design at 12 MHz (two 8-bit counters +3/+5, 8×8 product in LUTs): "
        f"({MEASURED_UA['math_luts_12']} − {MEASURED_UA['hfosc_counter'][12]}) µA → "
        f"{_D['e_lut_math'] * 1e12:.2f} pJ/cycle, less {LC_MATH_LUTS - LC_COUNTER} LC clock loads, over "
        f"{CAL_LUT_TOGGLES} LC output toggles/cycle of that design mapped to 4-input LUTs and simulated "
        f"(zero-delay; glitch energy is folded into the constant)"),
    ebr_access=Constant(
        EBR_TOGGLES * _D["toggle"], "J/(block·access)", "assumption (no published iCE40 EBR measurement)",
        f"{EBR_TOGGLES} LC output toggles per 256×16 block access: the 16-bit word and its address "
        f"decode, each bit charging a bit line pair and a routed output; an estimate",
        estimate=True),
    spram_access=Constant(
        SPRAM_EBRS * EBR_TOGGLES * _D["toggle"], "J/access", "assumption (no published SPRAM measurement)",
        f"{SPRAM_EBRS} EBR accesses per 16 384×16 SPRAM access (64× the bits of an EBR behind one 16-bit "
        f"port: longer word and bit lines); an estimate", estimate=True),
    dsp_op=Constant(
        _D["dsp"], "J/(8×8 op)", SOURCE_POWER,
        f"the same 'math' design with the product in one SB_MAC16: "
        f"({MEASURED_UA['math_dsp_12']} − {MEASURED_UA['hfosc_counter'][12]}) µA → "
        f"{_D['e_dsp_math'] * 1e12:.2f} pJ/cycle, less {LC_MATH_DSP - LC_COUNTER} LC clock loads and "
        f"{CAL_DSP_SIDE_TOGGLES} simulated toggles/cycle of the counters and reductions, one multiply of new "
        f"operands per cycle"),
)


def constants_for(family):
    """The constants used for a device ``family`` (``"ice40"`` or ``"ecp5"``):
    ECP5 reuses the iCE40UP5K's, marked relative only."""
    if family == "ice40":
        return ICE40UP5K
    if family == "ecp5":
        from dataclasses import replace
        return replace(ICE40UP5K, device="ECP5 (iCE40UP5K constants: relative only)", relative_only=True)
    raise ValueError(f"family must be 'ice40' or 'ecp5', not {family!r}")


# ---------------------------------------------------------------------- model

@dataclass
class EnergyReport:
    """Energy of one run: ``breakdown`` (J per class, :data:`CLASSES`),
    ``total`` (J), ``seconds`` of rendering at ``clock_hz``."""

    device: str
    clock_hz: float
    cycles: int
    pixels: int
    breakdown: dict
    relative_only: bool
    activity: dict = field(default_factory=dict)

    @property
    def total(self):
        return sum(self.breakdown.values())

    @property
    def seconds(self):
        return self.cycles / self.clock_hz

    @property
    def per_pixel(self):
        return self.total / self.pixels if self.pixels else float("nan")

    @property
    def average_power(self):
        return self.total / self.seconds if self.seconds else float("nan")

    def as_dict(self):
        return {"device": self.device, "relative_only": self.relative_only, "clock_hz": self.clock_hz,
                "cycles": self.cycles, "pixels": self.pixels, "seconds": self.seconds,
                "energy_j": self.total, "energy_per_pixel_j": self.per_pixel,
                "average_power_w": self.average_power,
                "breakdown_j": {k: self.breakdown[k] for k in CLASSES}, "activity": self.activity}


def energy_of(activity, constants=ICE40UP5K, *, clock_hz):
    """The :class:`EnergyReport` of an :class:`~dhq_rtl.rtlsim.activity.Activity`."""
    if not isinstance(constants, EnergyConstants):
        raise TypeError("constants must be an EnergyConstants")
    if isinstance(clock_hz, bool) or not isinstance(clock_hz, (int, float)) or not clock_hz > 0:
        raise ValueError(f"clock_hz must be a positive number, got {clock_hz!r}")
    c, a = constants, activity
    t = a.toggles
    breakdown = {
        "static": c.static_w.value * a.cycles / clock_hz,
        "clock": c.clock_cycle.value * a.cycles,
        "ff_clock": c.ff_clock.value * a.cycles * a.ff_bits,
        "ff": c.toggle.value * t.get("ff", 0),
        "lut": c.toggle.value * t.get("lut", 0),
        "carry": c.toggle.value * t.get("carry", 0),
        "ebr": c.ebr_access.value * (a.ebr_reads + a.ebr_writes),
        "spram": c.spram_access.value * (a.spram_reads + a.spram_writes),
        "dsp": c.dsp_op.value * a.dsp_ops,
    }
    return EnergyReport(device=c.device, clock_hz=float(clock_hz), cycles=a.cycles, pixels=a.pixels,
                        breakdown=breakdown, relative_only=c.relative_only, activity=a.as_dict())


def measure(design, region, *, clock_hz, constants=ICE40UP5K, log=None, progress=None):
    """Simulate ``design`` (any component with the core's interface) over
    ``region`` counting its activity: ``(EnergyReport, Activity)``; the
    activity's ``result`` holds the pixels."""
    from .rtlsim.activity import ActivitySim
    sim = ActivitySim(design, log=log)
    activity = sim.run(region, progress=progress)
    return energy_of(activity, constants, clock_hz=clock_hz), activity


#: Clock of the energy figures when none is given: the iCEBreaker build's default.
DEFAULT_MHZ = 48.0


def check_energy_options(*, engine, backend, freq_mhz):
    """The clock (Hz) of an energy run; one-line errors for options that
    cannot count activity."""
    from .errors import DhqError
    if engine not in ("auto", "compiled") or backend != "verilator":
        raise DhqError("--energy counts activity in the Verilator simulation: use --engine compiled or auto "
                       "with --backend verilator")
    mhz = DEFAULT_MHZ if freq_mhz is None else freq_mhz
    if not (isinstance(mhz, (int, float)) and math.isfinite(mhz) and 0 < mhz <= 1000):
        raise DhqError(f"--freq must be a clock in MHz in (0, 1000], got {freq_mhz}")
    return mhz * 1e6


def simulate_energy(design, region, *, clock_hz, constants=ICE40UP5K, stall=0.0, seed=1, progress=True,
                    log=None):
    """:func:`dhq_rtl.sim.simulate` with activity counting:
    ``(SimResult, info, EnergyReport)``."""
    import sys
    import time
    from .rtlsim.activity import ActivitySim
    log = log or (lambda msg: print(msg, file=sys.stderr))
    x0, y0, x1, y1 = region
    t0 = time.perf_counter()
    sim = ActivitySim(design, log=log)
    info = {"export_seconds": time.perf_counter() - t0, "cached": sim.cached}
    if not sim.cached:
        log("building the activity simulator (Verilator, toggle coverage); it is cached for the next runs")
    t0 = time.perf_counter()
    sim.build()
    info["build_seconds"] = time.perf_counter() - t0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=(x1 - x0) * (y1 - y0), unit="px", desc="simulating (activity)", file=sys.stderr,
                   dynamic_ncols=True, leave=False)
    try:
        activity = sim.run(region, stall=stall, seed=seed, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    info["engine"] = activity.result.engine
    return activity.result, info, energy_of(activity, constants, clock_hz=clock_hz)


def _si(v, unit):
    for f, p in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(v) >= f:
            return f"{v / f:.3g} {p}{unit}"
    return f"{v:.3g} {unit}"


def format_report(report, what="image"):
    """Lines: the total, per pixel, power, and the breakdown by class."""
    rel = " (relative only)" if report.relative_only else " (estimate)"
    lines = [f"energy per {what}: {_si(report.total, 'J')}{rel}; {_si(report.per_pixel, 'J')} per pixel; "
             f"{report.cycles} cycles = {_si(report.seconds, 's')} at {report.clock_hz / 1e6:g} MHz; "
             f"average {_si(report.average_power, 'W')} on {report.device}"]
    for k in CLASSES:
        v = report.breakdown[k]
        share = v / report.total if report.total else 0.0
        lines.append(f"  {k:<9} {_si(v, 'J'):>10}  {100 * share:5.1f} %")
    return lines


# ---------------------------------------------------------------- calibration

def calibration_design(product):
    """The published 'math' design (two 8-bit counters, +3 and +5, their 8×8
    product AND-reduced with each counter onto one output) with the core's
    interface, for :func:`calibrate`. ``product``: ``"dsp"`` (a multiplier
    cell), ``"luts"`` (the same, to be mapped to LUTs) or ``"none"`` (only
    the 24-bit counter of the baseline)."""
    if product not in ("dsp", "luts", "none"):
        raise ValueError(f"product must be 'dsp', 'luts' or 'none', not {product!r}")
    from amaranth.hdl import Module, Signal, unsigned
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out
    from .gateware.coords import region_layout

    class MathDesign(wiring.Component):
        def __init__(self):
            super().__init__({"start": In(1), "region": In(region_layout(1024, 1024)), "busy": Out(1),
                              "pixels": Out(stream.Signature(unsigned(1)))})

        def elaborate(self, platform):
            m = Module()
            counter = Signal(24)
            m.d.sync += counter.eq(counter + 1)
            out = counter[-1]
            if product != "none":
                a, b = Signal(8), Signal(8)
                m.d.sync += [a.eq(a + 3), b.eq(b + 5)]
                out = out | a.all() | b.all() | (a * b).xor()
            m.d.comb += [self.pixels.valid.eq(1), self.pixels.payload.eq(out), self.busy.eq(0)]
            return m

    return MathDesign()


def calibrate(cycles=4096, log=None):
    """Toggles per cycle of the calibration designs, counted as the model
    counts them (the LUT product mapped to 4-input LUTs first): the figures
    :data:`CAL_LUT_TOGGLES`, :data:`CAL_DSP_SIDE_TOGGLES` and
    :data:`CAL_COUNTER_TOGGLES` hold."""
    from .rtlsim.activity import ActivitySim
    if not isinstance(cycles, int) or not 16 <= cycles <= 1 << 20 or cycles % 16:
        raise ValueError(f"cycles must be a multiple of 16 in [16, 2^20], got {cycles!r}")
    region = (0, 0, cycles // 16, 16)
    out = {}
    runs = {"counter": ("none", False), "counter_luts": ("none", True), "lut": ("luts", True),
            "dsp": ("dsp", False)}
    acts = {key: ActivitySim(calibration_design(product), log=log, lut_map=lut_map).run(region)
            for key, (product, lut_map) in runs.items()}
    per = lambda a: (a.toggles["ff"] + a.toggles["lut"] + a.toggles["carry"]) / a.cycles
    out["counter_toggles_per_cycle"] = per(acts["counter"])
    out["lut_toggles_per_cycle"] = per(acts["lut"]) - per(acts["counter_luts"])
    out["dsp_side_toggles_per_cycle"] = per(acts["dsp"]) - per(acts["counter"])
    out["dsp_ops_per_cycle"] = acts["dsp"].dsp_ops / acts["dsp"].cycles
    return out


# ------------------------------------------------------------ board / build

#: Name of the MAC array's weight memory in the flattened netlist.
WEIGHT_MEMORY = "mac.weights"


def simulation_core(plan):
    """The core of ``plan`` with generic multipliers and its weights in block
    RAM: what the compiled simulation runs. The ``SB_MAC16`` instances have
    the same one-cycle latency as the generic products, and the SPRAM weight
    path the same one-cycle read, so the cycles are the board core's; a
    board that keeps the weights in SPRAM is accounted for by
    :meth:`~dhq_rtl.rtlsim.activity.Activity.with_memory_kind`. A float
    core's plan (:class:`~dhq_rtl.gateware.float32.plan.FloatCorePlan`)
    keeps its units' latencies, buffers and registers; only its 16×16
    pieces become generic products."""
    from .gateware.core import InrCore
    from .gateware.float32.plan import FloatCorePlan
    from .gateware.plan import CorePlan
    if isinstance(plan, FloatCorePlan):
        sim_plan = FloatCorePlan(plan.model, lanes=plan.lanes, dsp="generic", buffers=plan.buffers, units=plan.units,
                                 link_timing_registers=plan.link_timing_registers,
                                 weight_register=plan.weight_register)
        return InrCore(plan.model, plan=sim_plan)
    sim_plan = CorePlan(plan.model, lanes=plan.lanes, dsp="generic", buffers=plan.buffers,
                        act_word_bits=plan.act_word_bits, envelope=plan.envelope if plan.loadable else None,
                        spram=False, direct=plan.direct, scaler_multiplier=plan.scaler_multiplier,
                        loadable=plan.loadable)
    return InrCore(plan.model, plan=sim_plan)


def board_plan(model, board, *, lanes=None, envelope=None, buffers=None, arith="int", fixed_model=False):
    """The plan of the core a build for ``board`` makes (``arith``: ``"int"``
    or ``"fp32"``, the float core; ``fixed_model``: the integer core without
    its load path)."""
    if arith == "fp32":
        from .gateware.float32.plan import FloatCorePlan
        return FloatCorePlan.for_board(model, board, lanes=lanes, buffers=buffers)
    from .gateware.plan import CorePlan
    return CorePlan.for_board(model, board, lanes=lanes, buffers=6 if buffers is None else buffers,
                              envelope=envelope, loadable=not fixed_model)


def board_energy(model, board, *, clock_hz=None, lanes=None, envelope=None, buffers=None, log=None, progress=None,
                 arith="int", region=None, fixed_model=False):
    """Energy of one whole image of ``model`` on the core a build for
    ``board`` makes: ``(EnergyReport, Activity, info)``; ``info`` says how
    long the activity simulator took to build (0 when cached) and to run
    (0 when the counts of this design's whole image are in the cache).
    ``arith="fp32"``: the float core; ``region`` ``(x0, y0, x1, y1)``: only
    those pixels (default the whole image)."""
    import time
    from .rtlsim.activity import ActivitySim
    plan = board_plan(model, board, lanes=lanes, envelope=envelope, buffers=buffers, arith=arith,
                      fixed_model=fixed_model)
    clock_hz = board.clock_hz(None) if clock_hz is None else clock_hz
    t0 = time.perf_counter()
    sim = ActivitySim(simulation_core(plan), log=log)
    cached = sim.cached
    sim.build()
    t1 = time.perf_counter()
    activity = sim.counts(region or (0, 0, model.width, model.height), progress=progress)
    t2 = time.perf_counter()
    if getattr(plan, "weights_in_spram", False):
        activity = activity.with_memory_kind([WEIGHT_MEMORY], "spram")
    report = energy_of(activity, constants_for(board.family), clock_hz=clock_hz)
    info = {"cached": cached, "build_seconds": round(t1 - t0, 1), "run_seconds": round(t2 - t1, 1),
            "weights_in": "spram" if getattr(plan, "weights_in_spram", False) else "ebr", "lanes": plan.lanes,
            "arith": arith}
    return report, activity, info


def build_entry(model, board, *, clock_hz, lanes=None, envelope=None, buffers=None, log=None, arith="int",
                fixed_model=False):
    """The ``energy`` entry of ``utilization.json``: the energy per image of
    the built core at the build's clock (see :func:`board_energy`)."""
    report, activity, info = board_energy(model, board, clock_hz=clock_hz, lanes=lanes, envelope=envelope,
                                          buffers=buffers, log=log, arith=arith, fixed_model=fixed_model)
    entry = report.as_dict()
    entry.update({"estimate": True, "model_doc": "docs/energy.md", "simulator": info})
    return entry


def summary_line(entry):
    """One line for the build summary."""
    rel = "relative only" if entry.get("relative_only") else "estimate"
    parts = sorted(((v, k) for k, v in entry["breakdown_j"].items()), reverse=True)[:3]
    top = ", ".join(f"{k} {100 * v / entry['energy_j']:.0f}%" for v, k in parts)
    return (f"energy: {_si(entry['energy_j'], 'J')} per image ({rel}; {top}), average "
            f"{_si(entry['average_power_w'], 'W')} at {entry['clock_hz'] / 1e6:g} MHz")
