"""Reports: the tools' reports read, the build's reports written.

Read: :func:`parse_yosys_stat` (cell counts from Yosys ``stat -json``),
:func:`parse_nextpnr_report` (utilization and Fmax from nextpnr's
``--report`` JSON, a :class:`NextpnrReport`).

Written: :func:`make_report` combines the nextpnr report (used/available per
resource, Fmax per clock), the Yosys cell counts, the resource estimate and
the core's schedule into one dict (``utilization.json``); :func:`format_log`
is the human-readable ``utilization.log``; :func:`write_reports` writes both
files; :func:`summary_lines` is the short summary the build prints.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .outputs import write_file

__all__ = ["parse_yosys_stat", "parse_nextpnr_report", "NextpnrReport",
           "make_report", "write_reports", "summary_lines", "format_log"]


def parse_yosys_stat(data, module=None):
    """Cell counts by type from the output of Yosys ``stat -json``.

    ``data`` is the JSON text, the parsed dict, or a path to the file. Returns
    the ``num_cells_by_type`` of the whole design (``"design"`` entry; it
    includes submodules when the design is hierarchical), or of ``module``
    (its name with or without Yosys's leading backslash) when given. The
    result is a plain ``dict[str, int]`` sorted by cell type, without
    ``$scopeinfo`` (hierarchy names kept in a flattened design, not hardware).
    """
    if isinstance(data, (str, os.PathLike)) and not str(data).lstrip().startswith("{"):
        data = Path(data).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise ValueError("Yosys stat JSON must be an object")
    if module is None:
        entry = data.get("design")
        if entry is None:
            modules = data.get("modules", {})
            if len(modules) != 1:
                raise ValueError("Yosys stat JSON has no 'design' entry and not exactly one module")
            entry = next(iter(modules.values()))
    else:
        modules = data.get("modules", {})
        entry = modules.get(module) or modules.get("\\" + module)
        if entry is None:
            raise ValueError(f"module {module!r} not in Yosys stat JSON (has {sorted(modules)})")
    cells = entry.get("num_cells_by_type")
    if not isinstance(cells, dict):
        raise ValueError("Yosys stat JSON entry has no 'num_cells_by_type'")
    # $scopeinfo cells only carry hierarchy names of a flattened design.
    return {str(k): int(v) for k, v in sorted(cells.items()) if k != "$scopeinfo"}


@dataclass
class NextpnrReport:
    """What nextpnr's ``--report`` JSON says.

    ``utilization``: bel type → ``(used, available)``;
    ``fmax``: clock name → achieved MHz; ``constraint``: clock name →
    requested MHz; ``critical_paths``: the register-to-register critical
    path of each clock, as :func:`_critical_path` summarizes it.
    """

    utilization: dict = field(default_factory=dict)
    fmax: dict = field(default_factory=dict)
    constraint: dict = field(default_factory=dict)
    critical_paths: list = field(default_factory=list)

    def used(self, bel):
        return self.utilization.get(bel, (0, 0))[0]


def parse_nextpnr_report(data):
    """Parse nextpnr's ``--report`` JSON (text, dict, or file path) into a
    :class:`NextpnrReport`. Clock names are given as nextpnr reports them
    (e.g. ``"clk$SB_IO_IN_$glb_clk"``); a design without register-to-register
    paths has an empty ``fmax``."""
    if isinstance(data, (str, os.PathLike)) and not str(data).lstrip().startswith("{"):
        data = Path(data).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict) or "utilization" not in data:
        raise ValueError("not a nextpnr report: no 'utilization' entry")
    util = {str(k): (int(v["used"]), int(v["available"])) for k, v in data["utilization"].items()}
    fmax, constraint = {}, {}
    for clk, v in data.get("fmax", {}).items():
        fmax[str(clk)] = float(v["achieved"])
        if "constraint" in v:
            constraint[str(clk)] = float(v["constraint"])
    paths = [_critical_path(p) for p in data.get("critical_paths", [])
             if "<async>" not in (p.get("from"), p.get("to"))]
    return NextpnrReport(util, fmax, constraint, paths)


def _critical_path(path):
    """One of nextpnr's ``critical_paths``: its start and end cells, total
    delay, the logic and routing parts and the number of logic steps."""
    steps = path.get("path", [])
    logic = sum(float(s["delay"]) for s in steps if s.get("type") in ("logic", "clk-to-q", "setup"))
    routing = sum(float(s["delay"]) for s in steps if s.get("type") == "routing")
    return {"clock": f"{path.get('from', '')} -> {path.get('to', '')}",
            "from": steps[0]["from"]["cell"] if steps else "", "to": steps[-1]["to"]["cell"] if steps else "",
            "ns": round(logic + routing, 2), "logic_ns": round(logic, 2), "routing_ns": round(routing, 2),
            "logic_steps": sum(1 for s in steps if s.get("type") == "logic")}



def make_report(*, board, model_info, params, pnr, cells, estimate, plan, clock_hz, build_seconds,
                logic_paths=None):
    """The content of ``utilization.json`` (see module docstring).

    ``pnr``: a :class:`NextpnrReport`; ``plan``: the core's
    :class:`~dhq_rtl.gateware.plan.CorePlan`; ``logic_paths``: the netlist's
    deepest paths (:func:`dhq_rtl.logic_paths.deepest_paths`), or None.
    """
    resources = {}
    for key, avail in board.budget.items():
        name = board.pnr_names.get(key)
        used, available = pnr.utilization.get(name, (0, avail)) if name else (0, avail)
        est = estimate.get(key)
        entry = {"nextpnr_name": name, "used": used, "available": available,
                 "percent": round(100.0 * used / available, 1) if available else 0.0,
                 "estimated": est}
        if est is not None and used:
            entry["estimate_error_percent"] = round(100.0 * (est - used) / used, 1)
        resources[key] = entry
    target_mhz = clock_hz / 1e6
    clocks = {}
    for clk, fmax in pnr.fmax.items():
        constraint = pnr.constraint.get(clk)
        clocks[clk] = {"fmax_mhz": round(fmax, 2), "constraint_mhz": round(constraint, 2) if constraint else None,
                       "met": constraint is None or fmax >= constraint}
    timing_met = all(c["met"] for c in clocks.values())
    core_fmax = min((c["fmax_mhz"] for c in clocks.values()
                     if c["constraint_mhz"] and abs(c["constraint_mhz"] - target_mhz) < 0.5),
                    default=min((c["fmax_mhz"] for c in clocks.values()), default=0.0))
    cpp = plan.cycles_per_pixel()
    npix = plan.model.width * plan.model.height
    # Every figure names its clock: "at_clock" = the core clock the PLL makes
    # (what the board runs at; guaranteed only when timing is met),
    # "at_fmax" = the achieved Fmax of place-and-route (the timing limit).
    arith = getattr(plan, "arith", "int")
    perf = {
        "cycles_per_pixel": round(cpp, 3),
        "cycles_per_pixel_kind": ("bound: the busier of the MAC lanes and the arbiter at the sine's pace"
                                  if arith == "fp32" else "schedule model (equal to the RTL)"),
        "mac_cycles_per_pixel": plan.mac_cycles_per_pixel(),
        "ideal_cycles_per_pixel": plan.ideal_cycles_per_pixel(),
        "macs_per_pixel": plan.macs_per_pixel(),
        "first_layer": ("a float32 MAC job like the others" if arith == "fp32"
                        else "running sums, no multiplier (0 MACs)"),
        "multipliers": plan.multipliers,
        "multiplier_efficiency": round(plan.efficiency(), 4),
        "clock_mhz": target_mhz,
        "core_fmax_mhz": core_fmax,
        "pixels_per_second_at_clock": round(target_mhz * 1e6 / cpp),
        "ms_per_image_at_clock": round(1e3 * npix * cpp / (target_mhz * 1e6), 3),
        "pixels_per_second_at_fmax": round(core_fmax * 1e6 / cpp) if core_fmax else None,
        "ms_per_image_at_fmax": round(1e3 * npix * cpp / (core_fmax * 1e6), 3) if core_fmax else None,
        "uart_baud": params.get("baud"),
        "uart_ms_per_image": round(1e3 * npix * plan.model.channels
                                   * (1 if plan.model.pixel_bits <= 8 else 2) * 10 / params["baud"], 1)
        if params.get("baud") else None,
    }
    return {
        "board": board.name, "device": board.device, "arith": arith, "model": model_info, "parameters": params,
        "resources": resources, "cells": cells, "clocks": clocks, "timing_met": timing_met,
        "performance": perf, "estimate_details": estimate.get("details", []),
        "critical_paths": pnr.critical_paths,
        "logic_paths": [{"endpoint": p.endpoint, "model_ns": p.delay, "lut_levels": p.levels, "start": p.nets[0]}
                        for p in (logic_paths or [])],
        "build_seconds": round(build_seconds, 1),
    }


def format_log(report):
    """The human-readable utilization log."""
    arith = {"int": "integer (DHQ) core", "fp32": "float core (IEEE-754 binary32)"}.get(report.get("arith", "int"))
    lines = [f"dhq_rtl build report — {report['board']} ({report['device']}), {arith}", ""]
    mi = report["model"]
    lines.append("model: " + ", ".join(f"{k}={v}" for k, v in mi.items()))
    lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in report["parameters"].items()))
    lines += ["", f"{'resource':<10}{'used':>8}{'avail':>8}{'% dev':>8}{'estim.':>9}{'est.err':>9}"]
    for key, r in report["resources"].items():
        err = r.get("estimate_error_percent")
        lines.append(f"{key:<10}{r['used']:>8}{r['available']:>8}{r['percent']:>7.1f}%"
                     f"{'' if r['estimated'] is None else r['estimated']:>9}"
                     f"{'' if err is None else f'{err:+.1f}%':>9}")
    lines += ["", "clocks:"]
    for clk, c in report["clocks"].items():
        verdict = "met" if c["met"] else "FAILED"
        lines.append(f"  {clk}: fmax {c['fmax_mhz']:.2f} MHz vs constraint {c['constraint_mhz']} MHz — {verdict}")
    if not report["timing_met"]:
        lines.append("  *** TIMING FAILED: the design is not guaranteed to work at the constrained clock ***")
    for c in report.get("critical_paths", []):
        lines.append(f"  critical path ({c['clock']}): {c['ns']} ns, {c['logic_steps']} logic steps, "
                     f"routing {c['routing_ns']} ns ({100 * c['routing_ns'] / c['ns']:.0f} %): "
                     f"{c['from']} -> {c['to']}" if c["ns"] else f"  critical path ({c['clock']}): empty")
    if report.get("logic_paths"):
        lines.append("  deepest logic paths of the netlist (model delay, docs/timing.md):")
        lines += [f"    {q['model_ns']:6.2f} ns  {q['lut_levels']} LUT  {q['endpoint']}  (from {q['start']})"
                  for q in report["logic_paths"]]
    p = report["performance"]
    lines += ["", "performance:",
              f"  cycles/pixel {p['cycles_per_pixel']:g} (MAC array alone {p['mac_cycles_per_pixel']}, "
              f"ideal {p['ideal_cycles_per_pixel']:.1f} = {p['macs_per_pixel']} MACs / {p['multipliers']} "
              f"multipliers; first layer: {p['first_layer']})",
              f"  multiplier efficiency {p['multiplier_efficiency']:.3f}",
              f"  at the core clock {p['clock_mhz']:g} MHz"
              + ("" if report["timing_met"] else " (TIMING FAILED: not guaranteed)")
              + f": {p['pixels_per_second_at_clock']} pixels/s, {p['ms_per_image_at_clock']} ms per image "
              f"(compute)",
              f"  at the achieved fmax {p['core_fmax_mhz']} MHz (timing limit): "
              f"{p['pixels_per_second_at_fmax']} pixels/s, {p['ms_per_image_at_fmax']} ms per image",
              f"  UART {p['uart_baud']} baud: {p['uart_ms_per_image']} ms per image"]
    for i, a in enumerate(report.get("clock_attempts", []), 1):
        lines.append(f"  clock attempt {i}: {a['clock_mhz']:g} MHz -> fmax {a['fmax_mhz']} MHz, "
                     + ("met" if a["timing_met"] else "FAILED") + f" ({a['build_seconds']} s)")
    lines += [
              "", "cells (yosys): " + ", ".join(f"{k} {v}" for k, v in sorted(report["cells"].items())),
              f"build time: {report['build_seconds']} s"]
    return "\n".join(lines) + "\n"


def write_reports(report, out_dir):
    """Write ``utilization.log``, then ``utilization.json`` (each atomically)."""
    out = Path(out_dir)
    write_file(out / "utilization.log", format_log(report))
    write_file(out / "utilization.json", json.dumps(report, indent=2) + "\n")
    return out / "utilization.json", out / "utilization.log"


def summary_lines(report):
    r = report["resources"]
    p = report["performance"]
    parts = [f"{k.upper()} {v['used']}/{v['available']} ({v['percent']:.0f}%)" for k, v in r.items()]
    lines = [f"{report['board']} ({report.get('arith', 'int')}): " + ", ".join(parts)]
    if report["parameters"].get("fixed_model") and report.get("arith", "int") == "int":
        lines.append("model: fixed (--fixed-model), no load path: the board renders this model only")
    if report["parameters"].get("multipliers") == "fabric":
        lines.append("MAC products: in fabric logic (--multipliers fabric), no DSP")
    if report["model"].get("bits_text"):
        lines.append(f"model bits: {report['model']['bits_text']}")
    for clk, c in report["clocks"].items():
        lines.append(f"clock {clk}: fmax {c['fmax_mhz']:.1f} MHz (target {c['constraint_mhz']} MHz)"
                     + ("" if c["met"] else "  *** TIMING FAILED ***"))
    lines.append(f"{p['cycles_per_pixel']:g} cycles/pixel (ideal {p['ideal_cycles_per_pixel']:.1f}), "
                 f"multiplier efficiency {p['multiplier_efficiency']:.2f}, "
                 f"{p['ms_per_image_at_clock']} ms/image at {p['clock_mhz']:g} MHz")
    if report.get("energy"):
        from .energy import summary_line
        lines.append(summary_line(report["energy"]))
    attempts = report.get("clock_attempts", [])
    if len(attempts) > 1:
        lines.append("clock attempts: " + "; ".join(
            f"{a['clock_mhz']:g} MHz -> fmax {a['fmax_mhz']} MHz " + ("met" if a["timing_met"] else "FAILED")
            for a in attempts))
    if not report["timing_met"]:
        lines.append("*** TIMING FAILED: the bitstream is not guaranteed to work at "
                     f"{p['clock_mhz']:g} MHz ***")
    return lines
