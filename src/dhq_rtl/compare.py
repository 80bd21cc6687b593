"""``python -m dhq_rtl.compare``: the DHQ integer cores against the FP32 core, paper style.

::

    python -m dhq_rtl.compare [--model M [--model M2 …]] [--bits w8a8 w6a6 w4a4] [--board B …]
                              [--lanes N] [--image PNG] [--out DIR] [--json F] [--png F]
                              [--fp32-patch N] [--seed N] [--fabric-products]

One float model, several cores. The first ``--model`` (default: the bundled
model) is the W8A8 integer model; the float model it carries is the one
the FP32 core runs. Each further bit width of ``--bits`` is an integer
model *of the same float fit*: a further ``--model`` of that width (it
must share the first one's picture and shape), or else derived here: the
seeded float fit that made the first model (its recorded
:class:`~dhq_rtl.reference.fit.FitConfig`) is run again with snapshots, the
snapshot at the first model's float steps is checked against the float
model it carries (bit for bit: same fit), and each width is quantized from
its own snapshot with :func:`~dhq_rtl.reference.fit.fit_image` — the
sharing ``bench/quality.py`` does. The float fit and the derived models are
cached in ``<out>/models``.

Per board (:func:`board_mode`):

* **iso-board** (iCE40 boards): each core as large as the board allows —
  the FP32 core with the most lanes that fit, the integer cores with the
  board's lanes around the tightest envelope of their model;
* **iso-architecture** (other boards, e.g. the ULX3S): every core with the
  same ``--lanes`` (default :data:`DEFAULT_LANES`).

``--fabric-products`` adds, on iso-architecture boards, a row per integer
width with the MAC products in fabric logic ("DHQ WxAy (fabric products)":
``build(..., multipliers="fabric")``, no DSP for them, more LUTs), beside
the row with the board's DSPs.

Each core is built (:func:`dhq_rtl.build.build`) in its own sub-folder of
``--out``; a sub-folder whose build has the same model (CRC-32 of the model
image), configuration and package sources (:func:`source_digest`: a change
of the gateware or the flow builds again) is reused, so an interrupted run
resumes. A core
whose estimate does not fit the board is a row that says so (with the
reason), not an error. Per core: PSNR of its golden model against the
picture, Fmax and clock from the build, cycles per pixel, latency and
energy per image from the activity-counting compiled simulation
(:func:`dhq_rtl.energy.board_energy`; the float core on a
``--fp32-patch``² patch scaled to the image), every resource type; each
with its ratio to the FP32 row and the change in %. docs/compare.md says
how each figure is obtained and which are estimates.
"""

import dataclasses
import json
import math
import sys
import zlib
from pathlib import Path

from .cli import ArgumentParser, run_main
from .errors import DhqError, FitError, ModelImageError

__all__ = ["main", "Core", "core_folder", "source_digest", "board_mode", "bits_of", "versus", "targets", "markdown", "derive_models",
           "DEFAULT_BITS", "DEFAULT_BOARDS", "DEFAULT_LANES", "TARGETS"]

DEFAULT_BITS = ("w8a8", "w6a6", "w4a4")
DEFAULT_BOARDS = ("icebreaker", "ulx3s")
#: Lanes of every core in an iso-architecture comparison: a count both the
#: float and the integer core build on the ULX3S in a few minutes.
DEFAULT_LANES = 8
#: The float core renders this square patch in the activity simulation (it
#: takes thousands of cycles a pixel on the iCEBreaker); figures are scaled
#: to the image.
DEFAULT_FP32_PATCH = 16
#: What the comparison aims at (docs/compare.md): W8A8 against FP32 on the
#: iso-board comparison, and the best resource reduction at equal lanes.
TARGETS = {"latency_change_percent": -50.0, "energy_change_percent": -50.0, "psnr_loss_db": 0.2,
           "best_resource_reduction_percent": 98.5}
#: Resource types in table order; a board reports those of its family.
RESOURCES = ("lc", "lut", "ff", "ebr", "spram", "dsp")
#: Bumped when a row's measurement changes meaning: older rows are measured again.
ROW_VERSION = 1
ROW_FILE = "compare-row.json"


def bits_of(model):
    """``"wXaY"``: the widest weight and activation bits of ``model``'s MAC layers."""
    mac = model.layers[1:] or model.layers
    return f"w{max(l.weight_bits for l in mac)}a{max(l.act_bits for l in mac)}"


def model_crc(model):
    """The CRC-32 a model image file ends with: that of all its bytes before
    it (integer model, float model and meta)."""
    from .model_image import dumps
    return f"{zlib.crc32(dumps(model)[:-4]) & 0xFFFFFFFF:08x}"


def board_mode(board):
    """``"iso-board"`` on iCE40 boards (each core as large as the board
    allows), ``"iso-architecture"`` elsewhere (every core at the same lanes)."""
    return "iso-board" if board.family == "ice40" else "iso-architecture"


@dataclasses.dataclass
class Core:
    """One row: a core of one model on one board."""

    board: object
    arith: str              # "int" or "fp32"
    model: object
    lanes: int | None       # None: the build's default (iso-board)
    provenance: str
    multipliers: str = "dsp"    # the MAC products: "dsp" or "fabric" (dhq_rtl.build.MULTIPLIERS)

    def __post_init__(self):
        if self.arith not in ("int", "fp32"):
            raise ValueError(f"arith must be int or fp32, got {self.arith!r}")
        if self.multipliers not in ("dsp", "fabric") or (self.arith == "fp32" and self.multipliers != "dsp"):
            raise ValueError(f"multipliers must be 'dsp' or (integer cores) 'fabric', got {self.multipliers!r}")
        if self.lanes is not None and (isinstance(self.lanes, bool) or not isinstance(self.lanes, int)
                                       or self.lanes < 1):
            raise ValueError(f"lanes must be a positive integer or None, got {self.lanes!r}")

    @property
    def label(self):
        if self.arith == "fp32":
            return "FP32"
        fabric = " (fabric products)" if self.multipliers == "fabric" else ""
        return f"DHQ {bits_of(self.model).upper()}{fabric}"

    @property
    def folder(self):
        return core_folder(self.board, self.arith, None if self.arith == "fp32" else bits_of(self.model), self.lanes,
                           self.multipliers)


def core_folder(board, arith, bits, lanes, multipliers="dsp"):
    """The sub-folder of ``--out`` a core is built in."""
    what = "fp32" if arith == "fp32" else f"int-{bits}"
    fabric = "-fabric" if multipliers == "fabric" else ""
    return f"{board.name}-{what}-{lanes if lanes else 'max'}{fabric}"


# ------------------------------------------------------------------ models


def _check_same_target(first, other, where):
    for attr in ("width", "height", "channels", "hidden_width", "depth", "omega0"):
        if getattr(first, attr) != getattr(other, attr):
            raise ModelImageError(f"{where}: its {attr} {getattr(other, attr)} differs from the first --model's "
                                  f"{getattr(first, attr)}; the compared models must share one target and shape")
    a, b = first.meta.get("image"), other.meta.get("image")
    if a != b:
        raise ModelImageError(f"{where}: fitted to {b!r}, the first --model to {a!r}; the compared models must "
                              f"share one target")


def _fit_config(model, bits):
    """The :class:`FitConfig` that made ``model`` (from its recorded meta), at ``bits``."""
    from .reference.fit import FitConfig, parse_bits
    meta = model.meta
    needed = ("steps", "qat_steps", "seed", "method", "width", "depth")
    if meta.get("source") != "dhq_rtl.train" or any(k not in meta for k in needed):
        raise ModelImageError("the first --model does not record how dhq_rtl.train made it, so its float fit "
                              "cannot be repeated; give a model of every --bits width with --model")
    w, a = parse_bits(bits)
    known = {k: meta[k] for k in ("quantizer", "per_channel", "first_layer_search", "rounding", "act_grid",
                                  "qat_forward", "recipe") if k in meta}
    cfg = FitConfig(method=meta["method"], w_bits=w, a_bits=a, width=meta["width"], depth=meta["depth"],
                    omega0=model.omega0, steps=meta["steps"], qat_steps=meta["qat_steps"], seed=meta["seed"],
                    phase_bits=model.phase_bits, **known)
    return cfg.check()


def _float_fit(pixels, cfg, snapshots, cache, log):
    """The seeded float fit of ``cfg`` over its whole budget, its states at
    ``snapshots`` (state dicts), cached in ``cache``."""
    import hashlib
    import os

    import torch

    from .reference.fit import train_float

    total = cfg.steps + cfg.qat_steps
    settings = (pixels.shape, cfg.width, cfg.depth, cfg.omega0, cfg.seed, cfg.lr, total, torch.__version__,
                torch.get_num_threads())
    key = hashlib.sha256(pixels.tobytes() + repr(settings).encode()).hexdigest()[:16]
    path = cache / f"float-fit-{key}.pt"
    if path.exists():
        try:
            states = torch.load(path)
            if set(snapshots) <= set(states):
                log(f"float fit: reused {path}")
                return {k: states[k] for k in snapshots}
        except Exception:       # a damaged cache entry: fit again
            pass
    log(f"float fit: {total} steps (snapshots at {sorted(snapshots)}), cached in {path}")
    kept = train_float(pixels, cfg, total, snapshots=set(snapshots))
    states = {k: m.state_dict() for k, m in kept.items()}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(states, tmp)
    os.replace(tmp, path)
    return {k: states[k] for k in snapshots}


def _digest(*parts):
    import hashlib
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
    return h.hexdigest()[:8]


def derive_models(base, bits_list, pixels, cache, log=print):
    """Integer models of ``base``'s float fit at each of ``bits_list``:
    ``{bits: (model, provenance)}`` (see the module docstring). The fit is
    repeated from ``base``'s recorded config; its snapshot at ``base``'s
    float steps must equal the float model ``base`` carries."""
    import numpy as np
    import torch

    from .model_image import load, save
    from .reference.fit import fit_image
    from .reference.siren import Siren

    # One thread, as dhq_rtl.train runs by default: the thread count changes
    # the order of the sums, and with it the fit.
    torch.set_num_threads(1)
    base_cfg = _fit_config(base, bits_of(base))
    cfgs = {b: _fit_config(base, b) for b in bits_list}
    # The state the first model's float model is: its recorded float steps
    # (a model made before fine-tuning existed has all 2500).
    base_steps = int(base.meta.get("float_steps", base_cfg.float_steps()))
    if not 0 < base_steps <= base_cfg.steps + base_cfg.qat_steps:
        raise ModelImageError(f"the first --model records {base_steps} float steps, outside its budget")
    steps = {c.float_steps() for c in cfgs.values()} | {base_steps}
    # A cached model is one of this first model, picture and fit config.
    paths = {b: cache / f"{b}-of-{model_crc(base)}-{_digest(pixels.tobytes(), repr(cfgs[b]))}.dhq"
             for b in bits_list}
    out, todo = {}, []
    for b in bits_list:
        if paths[b].exists():
            try:
                model = load(paths[b])
                out[b] = (model, json.loads(model.meta.get("derived", "{}")).get("provenance", ""))
                log(f"model {b}: reused {paths[b]}")
                continue
            except (ModelImageError, ValueError, AttributeError):
                pass        # damaged or foreign: derive it again
        todo.append(b)
    if not todo:
        return out
    states = _float_fit(pixels, base_cfg, steps, cache, log)

    def siren(state):
        s = Siren(base_cfg.width, base_cfg.depth, pixels.shape[2], base_cfg.omega0)
        s.load_state_dict(state)
        return s

    check = siren(states[base_steps])
    diff = max(max(float(np.max(np.abs(lin.weight.detach().numpy().astype(np.float32) - layer.float_weight))),
                   float(np.max(np.abs(lin.bias.detach().numpy().astype(np.float32) - layer.float_bias))))
               for lin, layer in zip(check.linears, base.layers))
    same = "the repeated fit reproduces the first model's float model bit for bit" if diff == 0 else \
        f"WARNING: the repeated fit (step {base_steps}) differs from the first model's float model (max |Δ| {diff:.3g})"
    if diff:
        log(same)
    for b in todo:
        cfg = cfgs[b]
        log(f"model {b}: quantizing the float fit's state after {cfg.float_steps()} steps "
            f"({cfg.train_qat_steps()} QAT steps)")
        res = fit_image(pixels, cfg, pretrained={cfg.float_steps(): siren(states[cfg.float_steps()])})
        model = res.model
        provenance = (f"derived: the float fit of the first model (seed {cfg.seed}, {cfg.steps + cfg.qat_steps} "
                      f"steps) at step {cfg.float_steps()}, quantized to {b.upper()} by fit_image; {same}")
        model.meta["image"] = base.meta.get("image")
        model.meta["derived"] = json.dumps({"from_crc": model_crc(base), "provenance": provenance})
        cache.mkdir(parents=True, exist_ok=True)
        save(model, paths[b])
        out[b] = (model, provenance)
    return out


# ------------------------------------------------------------------ one row


#: iCE40 flow of a build: 2 = synthesis without ``-dsp`` (the DSP instances
#: as designed; earlier iCE40 builds had their SB_MAC16s rewritten by Yosys),
#: 3 = and nextpnr's ``--opt-timing``. A build of another flow is not reused.
ICE40_FLOW = 3


def source_digest(root=None):
    """A digest of the package's Python sources (the path and the code of
    each): a build made by other gateware or another flow is not reused.
    The code is the module's syntax tree without its docstrings, so an edit
    of comments, docstrings or layout alone keeps the builds."""
    import hashlib
    root = Path(root) if root is not None else Path(__file__).parent
    digest = hashlib.sha256()
    # This module measures rows, it builds nothing (ROW_VERSION versions it).
    for f in sorted(f for f in root.rglob("*.py") if f != root / "compare.py"):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + _code_of(f.read_bytes()) + b"\0")
    return digest.hexdigest()[:16]


def _code_of(source):
    """The code of Python ``source`` (bytes) as bytes: its syntax tree with
    every docstring taken out (the bytes themselves if it does not parse)."""
    import ast
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _build_stamp(core, seed, source):
    stamp = {"version": ROW_VERSION, "model_crc": model_crc(core.model), "board": core.board.name,
             "arith": core.arith, "lanes": core.lanes, "seed": seed, "multipliers": core.multipliers,
             "source": source}
    if core.board.family == "ice40":
        stamp["ice40_flow"] = ICE40_FLOW
    return stamp


def _same_build(record, stamp):
    """Whether a row's recorded build stamp is ``stamp`` (a stamp from before
    the products' kind was recorded is one of a build with DSP products)."""
    old = record.get("build_stamp")
    return isinstance(old, dict) and dict({"multipliers": "dsp"}, **old) == stamp


def _read_row(folder):
    try:
        return json.loads((folder / ROW_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _save_row(folder, record):
    from .outputs import write_file
    write_file(folder / ROW_FILE, json.dumps(record, indent=1) + "\n")


def _from_report(board, report):
    """The row's build figures from ``utilization.json``."""
    res = report["resources"]
    resources = {k: res[k]["used"] for k in RESOURCES if k in res}
    prefixes = ("SB_DFF", "TRELLIS_FF") if board.family in ("ice40", "ecp5") else ("DFF",)
    resources["ff"] = sum(v for k, v in report.get("cells", {}).items() if k.startswith(prefixes))
    perf = report["performance"]
    return {"resources": {k: resources[k] for k in RESOURCES if k in resources},
            "lanes": report["parameters"]["lanes"], "fmax_mhz": perf["core_fmax_mhz"],
            "clock_mhz": report["parameters"]["clock_mhz"], "timing_met": report["timing_met"],
            "baud": report["parameters"].get("baud"),
            "schedule_cycles_per_pixel": perf["cycles_per_pixel"],
            "crc": report["model"].get("model_image_crc") or report["model"].get("load_image_crc"),
            "envelope": report.get("envelope")}


def _simulate(core, lanes, clock_hz, patch, log):
    """Cycles per pixel and energy per image from the activity-counting
    simulation at ``clock_hz`` (the float core on a ``patch``² patch)."""
    from .energy import board_energy
    from .gateware.top import board_core_shape

    m = core.model
    if core.arith == "fp32":
        region = (0, 0, min(patch, m.width), min(patch, m.height))
        envelope = None
    else:
        region = (0, 0, m.width, m.height)
        envelope, _ = board_core_shape(m, core.board, lanes=lanes)
    report, activity, info = board_energy(m, core.board, clock_hz=clock_hz, lanes=lanes, envelope=envelope,
                                          arith=core.arith, region=region, log=log)
    npix = (region[2] - region[0]) * (region[3] - region[1])
    scale = m.width * m.height / npix
    return {"region": list(region), "cycles_per_pixel": activity.cycles / npix,
            "energy_mj": 1e3 * report.total * scale, "energy_relative_only": bool(report.relative_only),
            "energy_clock_mhz": clock_hz / 1e6, "simulator": info}


def _psnr(core, lanes, picture):
    from .golden import GoldenModel
    from .golden_float32 import FloatGoldenModel
    from .images import psnr
    render = FloatGoldenModel(core.model, lanes).render() if core.arith == "fp32" else \
        GoldenModel(core.model).render()
    return round(float(psnr(picture, render)), 3)


def _run_mhz(board, row):
    """The clock the core runs at: its build's when timing is met, else the
    fastest the board's PLL makes at or below the Fmax (and the build's
    clock) that the UART divides to its baud rate (that clock is not built
    and checked), else the Fmax itself."""
    from .build import fallback_clock_hz
    if row["timing_met"] or not row["fmax_mhz"]:
        return row["clock_mhz"]
    hz = fallback_clock_hz(board, min(row["fmax_mhz"], row["clock_mhz"]), margin=0, baud=row.get("baud"))
    return hz / 1e6 if hz else min(row["fmax_mhz"], row["clock_mhz"])


def measure(core, out, picture, *, seed=1, patch=DEFAULT_FP32_PATCH, log=print, source=None):
    """Build (or reuse) and measure ``core`` in ``out / core.folder``: the row dict.
    ``source``: the package's :func:`source_digest` (default: computed now;
    a run passes the one it took at its start, so its rows share it)."""
    from .build import build

    folder = out / core.folder
    stamp = _build_stamp(core, seed, source_digest() if source is None else source)
    row = {"core": core.label, "arith": core.arith, "board": core.board.name, "folder": str(folder),
           "model_crc": stamp["model_crc"], "provenance": core.provenance,
           "bits": None if core.arith == "fp32" else bits_of(core.model), "requested_lanes": core.lanes,
           "multipliers": core.multipliers}
    record = _read_row(folder)
    # The row's own build report is kept in its record: a build that fails
    # timing leaves an earlier build that met it in the folder.
    if _same_build(record, stamp) and isinstance(record.get("report"), dict):
        report = record["report"]
        row["reused"] = True
        log(f"{core.folder}: reused the build in {folder}")
    else:
        log(f"{core.folder}: building into {folder}")
        try:
            report = build(core.model, core.board, folder, source=core.provenance, lanes=core.lanes,
                           seed=seed, arith=core.arith, multipliers=core.multipliers, log=lambda m: log(f"  {m}"))
        except FitError as e:
            log(f"{core.folder}: does not fit: {e}")
            return dict(row, status="does not fit", reason=str(e), reused=False)
        except ValueError as e:     # a lane count this core cannot use
            return dict(row, status="cannot build", reason=str(e), reused=False)
        row["reused"] = False
        record = {"build_stamp": stamp, "report": report}
    row.update(_from_report(core.board, report))
    row["status"] = "ok" if row["timing_met"] else "timing failed"
    run_mhz = _run_mhz(core.board, row)
    sim_stamp = {"run_mhz": run_mhz, "patch": patch if core.arith == "fp32" else None}
    if record.get("sim_stamp") == sim_stamp and "sim" in record and "psnr_db" in record:
        sim, psnr_db = record["sim"], record["psnr_db"]
    else:
        log(f"{core.folder}: simulating ({'a ' + str(patch) + '² patch' if core.arith == 'fp32' else 'the image'}"
            f" with activity counting) and rendering its golden model")
        sim = _simulate(core, row["lanes"], run_mhz * 1e6, patch, lambda m: log(f"  {m}"))
        psnr_db = _psnr(core, row["lanes"], picture)
        record.update(sim_stamp=sim_stamp, sim=sim, psnr_db=psnr_db)
    _save_row(folder, record)
    pixels = core.model.width * core.model.height
    row.update(psnr_db=psnr_db, run_mhz=run_mhz, cycles_per_pixel=round(sim["cycles_per_pixel"], 2),
               latency_ms=1e3 * pixels * sim["cycles_per_pixel"] / (run_mhz * 1e6),
               energy_mj=sim["energy_mj"], energy_relative_only=sim["energy_relative_only"],
               sim_region=sim["region"])
    return row


# ------------------------------------------------------------------ arithmetic


#: The figures each row is compared on, with the FP32 row: (key, table heading).
METRICS = (("psnr_db", "PSNR dB"), ("fmax_mhz", "Fmax MHz"), ("run_mhz", "clock MHz"),
           ("cycles_per_pixel", "cycles/px"), ("latency_ms", "ms/image"), ("energy_mj", "mJ/image"))


def _ratio(value, ref):
    if value is None or ref is None:
        return None
    if ref == 0:
        return None if value else {"ratio": 1.0, "change_percent": 0.0}
    r = value / ref
    return {"ratio": r, "change_percent": 100.0 * (r - 1.0)}


def versus(row, ref):
    """``row``'s figures against the FP32 row ``ref``: ratio and change in %
    for every metric and resource (PSNR: the difference in dB); None when
    either row was not measured."""
    if row.get("status") not in ("ok", "timing failed") or ref is None or \
            ref.get("status") not in ("ok", "timing failed"):
        return None
    out = {"psnr_delta_db": round(row["psnr_db"] - ref["psnr_db"], 3)}
    for key, _ in METRICS[1:]:
        out[key] = _ratio(row[key], ref[key])
    out["resources"] = {k: _ratio(v, ref["resources"].get(k)) for k, v in row["resources"].items()}
    return out


def targets(result):
    """The targets (:data:`TARGETS`), each with its measured value and
    whether it is met (None: not measured, with the reason)."""
    out = []

    def entry(name, goal, value, met, why=None):
        out.append({"target": name, "goal": goal, "value": value, "met": met, **({"why": why} if why else {})})

    iso_board = [b for b in result["boards"] if b["mode"] == "iso-board"]
    for b in iso_board:
        w8 = next((r for r in b["rows"] if r.get("bits") == "w8a8"), None)
        vs = w8 and w8.get("vs_fp32")
        why = None if vs else (f"the FP32 core on the {b['board']}: {b['rows'][0].get('status')} "
                               f"({b['rows'][0].get('reason', '')})" if b["rows"] and b["rows"][0].get("status") != "ok"
                               else "no W8A8 row")
        t = TARGETS
        for name, key, goal in (("latency", "latency_ms", t["latency_change_percent"]),
                                ("energy", "energy_mj", t["energy_change_percent"])):
            v = vs[key]["change_percent"] if vs and vs.get(key) else None
            entry(f"{b['board']} W8A8 vs FP32 {name} change %", f"≤ {goal:g} %",
                  None if v is None else round(v, 1), None if v is None else v <= goal, why)
        loss = -vs["psnr_delta_db"] if vs else None
        entry(f"{b['board']} W8A8 vs FP32 PSNR loss dB", f"≤ {t['psnr_loss_db']:g} dB", loss,
              None if loss is None else loss <= t["psnr_loss_db"], why)
    for b in result["boards"]:
        if b["mode"] != "iso-architecture":
            continue
        # The PSNR loss does not depend on the board: measured here as well.
        w8 = next((r for r in b["rows"] if r.get("bits") == "w8a8"), None)
        loss = -w8["vs_fp32"]["psnr_delta_db"] if w8 and w8.get("vs_fp32") else None
        entry(f"{b['board']} W8A8 vs FP32 PSNR loss dB", f"≤ {TARGETS['psnr_loss_db']:g} dB", loss,
              None if loss is None else loss <= TARGETS["psnr_loss_db"],
              None if loss is not None else "the FP32 core or the W8A8 core was not measured")
        best = None
        for r in b["rows"][1:]:
            for k, q in ((r.get("vs_fp32") or {}).get("resources") or {}).items():
                if q is not None and (best is None or -q["change_percent"] > best[0]):
                    best = (-q["change_percent"], k, r["core"])
        goal = TARGETS["best_resource_reduction_percent"]
        entry(f"{b['board']} best resource reduction at {b['lanes']} lanes %", f"≥ {goal:g} %",
              None if best is None else round(best[0], 1), None if best is None else best[0] >= goal,
              None if best is not None else "the FP32 core was not measured")
        if best is not None:
            out[-1]["where"] = f"{best[1].upper()}, {best[2]}"
            row = next(r for r in b["rows"] if r["core"] == best[2])
            lut = (row["vs_fp32"]["resources"] or {}).get("lut")
            if best[1] != "lut" and lut is not None:
                out[-1]["where"] += f"; LUT {lut['change_percent']:+.1f} %"
    return out


# ------------------------------------------------------------------ output


def _num(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"


def _vs(q):
    if q is None:
        return ""
    return f" ({q['ratio']:.3g}×, {q['change_percent']:+.1f} %)"


def cells(board_result):
    """The table of one board: heading and rows of strings."""
    rows = board_result["rows"]
    kinds = [k for k in RESOURCES if any(k in (r.get("resources") or {}) for r in rows)]
    head = ["core", "lanes", "state"] + [h for _, h in METRICS] + [k.upper() for k in kinds]
    body = []
    for r in rows:
        if r.get("status") not in ("ok", "timing failed"):
            body.append([r["core"], _num(r.get("requested_lanes")), f"{r['status']}: {r.get('reason', '')}"]
                        + [""] * (len(METRICS) + len(kinds)))
            continue
        vs = r.get("vs_fp32") or {}
        line = [r["core"], str(r["lanes"]), r["status"] + (" (reused)" if r.get("reused") else "")]
        line.append(f"{r['psnr_db']:.2f}" + (f" ({vs['psnr_delta_db']:+.2f} dB)" if vs else ""))
        for key, _ in METRICS[1:]:
            v = r[key]
            if key == "energy_mj" and r.get("energy_relative_only"):
                text = "relative only" if vs else f"{v:.3g} (relative only)"
            else:
                text = _num(v, 4)
            line.append(text + _vs(vs.get(key)))
        for k in kinds:
            v = (r.get("resources") or {}).get(k)
            line.append(_num(v) + _vs((vs.get("resources") or {}).get(k)))
        body.append(line)
    return head, body


def markdown(result):
    """The tables and targets as Markdown."""
    out = []
    for b in result["boards"]:
        lanes = f", {b['lanes']} lanes each" if b["mode"] == "iso-architecture" else ", each core as large as fits"
        out.append(f"### {b['board']} ({b['device']}): {b['mode']}{lanes}\n")
        head, body = cells(b)
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out += ["| " + " | ".join(line) + " |" for line in body]
        out.append("")
    out.append("Ratios and changes are against the FP32 row of the same board.\n")
    out.append("Models:")
    for m in result["models"]:
        out.append(f"- {m['role']}: {m['bits']}, CRC {m['crc']}, {m['provenance']}")
    out.append("\nTargets:")
    for t in result["targets"]:
        state = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        extra = f" ({t['why']})" if t.get("why") else (f" ({t['where']})" if t.get("where") else "")
        out.append(f"- {t['target']}: {_num(t['value'], 4)} (goal {t['goal']}): {state}{extra}")
    return "\n".join(out)


def write_png(result, path):
    """The tables as a picture (matplotlib)."""
    import io
    import textwrap

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .outputs import write_file

    tables = [(b, *cells(b)) for b in result["boards"]]
    # Each table as tall as its rows (a longer table would run into the title above it).
    heights = [1.4 + 0.35 * (len(body) + 1) for _, _, body in tables]
    fig, axes = plt.subplots(len(tables), 1, figsize=(22, sum(heights) + 0.3), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (b, head, body) in zip(axes[:, 0], tables):
        ax.axis("off")
        lanes = f"{b['lanes']} lanes each" if b["mode"] == "iso-architecture" else "each core as large as fits"
        ax.set_title(f"{b['board']} ({b['device']}): {b['mode']}, {lanes}; (ratio to FP32, change)",
                     fontsize=10, loc="left")
        # A row that was not measured says why under the table, not in its cell.
        notes = [f"{r['core']}: {r['status']}: {r.get('reason', '')}" for r in b["rows"]
                 if r.get("status") not in ("ok", "timing failed")]
        text = [[c.replace(" (", "\n(", 1) if i > 2 else (c.split(":")[0] if i == 2 else c)
                 for i, c in enumerate(line)] for line in body]
        t = ax.table(cellText=text or [[""] * len(head)], colLabels=head, loc="center", cellLoc="center")
        if notes:
            ax.text(0, -0.02, "\n".join(textwrap.fill(n, 200) for n in notes), transform=ax.transAxes,
                    fontsize=7, va="top")
        t.auto_set_font_size(False)
        t.set_fontsize(7)
        t.scale(1, 2.2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_file(path, buf.getvalue())


# ------------------------------------------------------------------ command


def _picture(model, image):
    """The picture ``model`` was fitted to: ``image`` if given, else the one
    its meta names (the bundled picture or one in ``bench/images``)."""
    from .images import default_image_path, load_image
    color = "gray" if model.channels == 1 else "rgb"
    if image is None:
        name = model.meta.get("image")
        candidates = [default_image_path()] if name == default_image_path().name else []
        candidates.append(Path(__file__).resolve().parents[2] / "bench" / "images" / str(name))
        found = next((p for p in candidates if name and p.exists()), None)
        if found is None:
            raise DhqError(f"the model does not name a picture this command can find ({name!r}); give it with "
                           f"--image")
        image = found
    return load_image(image, model.width, color, note=lambda m: None)


def _check_toolchains(boards, toolchain=None):
    from .build import TOOLS
    from .toolchain import toolchain_env, toolchain_kind
    import os
    kind = toolchain or toolchain_kind()
    environ = dict(os.environ, DHQ_TOOLCHAIN=kind)
    for family in {b.family for b in boards}:
        toolchain_env(TOOLS[family], environ)       # a missing tool: ToolchainError, one line
    from .rtlsim.compiled import find_toolchain
    find_toolchain("verilator")


def _check_outputs(args, boards, bits_list, inputs):
    """Every output of the run (``--out``, each build folder, the model
    cache, ``--json``, ``--png``) checked before any training or build;
    returns the ``--out`` folder."""
    from .build_folder import KNOWN_PRODUCTS
    from .errors import OutputError
    from .outputs import check_output_file, check_output_folder, is_png, same_file

    out = check_output_folder(args.out, f"--out {args.out}", inputs=inputs)
    if args.json:
        check_output_file(args.json, f"--json {args.json}", inputs=inputs, create_folder=True)
    if args.png:
        check_output_file(args.png, f"--png {args.png}", inputs=inputs, keeps=(is_png, "a PNG"), create_folder=True)
    if args.json and args.png and same_file(args.json, args.png):
        raise OutputError(f"--json and --png name the same file {args.json}; give two files")
    for board in boards:
        lanes = None if board_mode(board) == "iso-board" else args.lanes
        for arith, bits, kind in [("fp32", None, "dsp")] + [("int", b, k) for b in bits_list
                                                             for k in _multipliers(board, args.fabric_products)]:
            name = core_folder(board, arith, bits, lanes, kind)
            check_output_folder(out / name, f"--out {args.out}: the build folder {out / name}", inputs=inputs,
                                products=KNOWN_PRODUCTS + (ROW_FILE,))
    check_output_folder(out / "models", f"--out {args.out}: the model cache {out / 'models'}", inputs=inputs)
    return out


def _parser():
    p = ArgumentParser(prog="python -m dhq_rtl.compare",
                       description="Compare the DHQ integer cores with the FP32 core of the same float model.")
    p.add_argument("--model", action="append",
                   help="the W8A8 model, whose float model the FP32 core runs (default: the bundled model); "
                        "repeat to give the models of further --bits widths")
    p.add_argument("--bits", nargs="+", default=list(DEFAULT_BITS),
                   help="integer bit widths to compare (default w8a8 w6a6 w4a4); a width no --model has is "
                        "derived from the first model's float fit")
    p.add_argument("--board", action="append", help=f"board (repeat; default: {' '.join(DEFAULT_BOARDS)})")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES,
                   help=f"lanes of every core on iso-architecture boards (default {DEFAULT_LANES})")
    p.add_argument("--image", help="the picture the models were fitted to (default: the one their meta names)")
    p.add_argument("--out", default="build/compare", help="folder of the builds and derived models "
                                                          "(reused when the model and configuration match)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--png", help="write the tables as a picture here")
    p.add_argument("--fp32-patch", type=int, default=DEFAULT_FP32_PATCH,
                   help=f"side of the patch the float core renders in the activity simulation (default "
                        f"{DEFAULT_FP32_PATCH})")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed of every build")
    p.add_argument("--fabric-products", action="store_true",
                   help="on iso-architecture boards, also a row per integer width with the MAC products in "
                        "fabric logic (no DSP for them, more LUTs)")
    return p


def main(argv=None):
    from .boards import get_board
    from .firmware import default_model
    from .model_image import load
    from .outputs import write_file
    from .reference.methods import parse_bits

    args = _parser().parse_args(argv)

    try:
        bits_list = list(dict.fromkeys(f"w{w}a{a}" for w, a in (parse_bits(b) for b in args.bits)))
    except ValueError as e:
        raise DhqError(f"--bits: {e}") from None
    if isinstance(args.lanes, bool) or args.lanes < 1 or args.lanes & (args.lanes - 1):
        raise DhqError(f"--lanes must be a power of two ≥ 1, got {args.lanes}")
    if args.fp32_patch < 1:
        raise DhqError(f"--fp32-patch must be ≥ 1, got {args.fp32_patch}")
    boards = [get_board(name) for name in dict.fromkeys(args.board or DEFAULT_BOARDS)]
    inputs = {f"--model {m}": m for m in args.model or []}
    if args.image:
        inputs["--image"] = args.image
    out = _check_outputs(args, boards, bits_list, inputs)
    # Models: the first (W8A8 + the float model), further given ones, the rest derived.
    if args.model:
        first, first_source = load(args.model[0]), args.model[0]
    else:
        first, first_source = default_model()
    from .golden_float32 import require_float
    require_float(first)
    given = {bits_of(first): (first, f"given: {first_source}")}
    for path in (args.model or [])[1:]:
        m = load(path)
        _check_same_target(first, m, f"--model {path}")
        if bits_of(m) in given:
            raise DhqError(f"--model {path}: a second {bits_of(m)} model; give one model per bit width")
        given[bits_of(m)] = (m, f"given: {path}")
    picture = _picture(first, args.image)
    if picture.shape[:2] != (first.height, first.width):
        raise DhqError(f"the picture is {picture.shape[1]}×{picture.shape[0]}, the model {first.width}×"
                       f"{first.height}")
    _check_toolchains(boards)
    missing = [b for b in bits_list if b not in given]
    if missing:
        import numpy as np
        pixels = np.asarray(picture)
        given.update(derive_models(first, missing, pixels, out / "models",
                                   log=lambda m: print(m, file=sys.stderr, flush=True)))
    models = [(b, *given[b]) for b in bits_list]

    def log(m):
        print(m, file=sys.stderr, flush=True)

    result = {"command": "python -m dhq_rtl.compare " + " ".join(argv if argv is not None else sys.argv[1:]),
              "models": [{"role": "FP32 core", "bits": "float32", "crc": model_crc(first),
                          "provenance": f"the float model carried by the first model ({first_source}, "
                                        f"{first.meta.get('float_steps', '?')} float steps)"}]
              + [{"role": f"DHQ {b.upper()} core", "bits": b, "crc": model_crc(m), "provenance": prov}
                 for b, m, prov in models],
              "targets_goal": TARGETS, "boards": []}
    def save():
        # After every row: a run cut short leaves what it measured.
        result["targets"] = targets(result)
        if args.json:
            write_file(args.json, json.dumps(result, indent=1, default=_json_default) + "\n")

    source = source_digest()
    for board in boards:
        mode = board_mode(board)
        lanes = None if mode == "iso-board" else args.lanes
        cores = [Core(board, "fp32", first, lanes, result["models"][0]["provenance"])]
        cores += [Core(board, "int", m, lanes, prov, kind) for _, m, prov in models
                  for kind in _multipliers(board, args.fabric_products)]
        rows = []
        result["boards"].append({"board": board.name, "device": board.device, "mode": mode, "lanes": lanes,
                                 "rows": rows})
        for c in cores:
            rows.append(measure(c, out, picture, seed=args.seed, patch=args.fp32_patch, log=log, source=source))
            if len(rows) > 1:
                rows[-1]["vs_fp32"] = versus(rows[-1], rows[0])
            save()
    save()
    print(markdown(result))
    if args.png:
        write_png(result, args.png)
    return 0


def _multipliers(board, fabric_products):
    """The product kinds of the integer rows on ``board``: the DSPs, and with
    ``--fabric-products`` on iso-architecture boards the fabric as well."""
    return ("dsp", "fabric") if fabric_products and board_mode(board) == "iso-architecture" else ("dsp",)


def _json_default(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"not JSON: {type(v).__name__}")


if __name__ == "__main__":
    run_main(main)
