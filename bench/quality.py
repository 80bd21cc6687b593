"""PSNR of every quantization method at several bit widths, up a ladder of fidelities (the Quality tables).

A *rung* is an image size and a hidden width (``--rungs 64:32 128:32
128:64 128:128``: size:width; depth ``--depth`` for all). For each image,
rung and seed, one float fit of ``--steps + --qat-steps`` steps (one cosine
learning-rate decay over that budget) is shared by all rows: its end is the
``fp32`` row; its state ``fine_tune_steps`` before the end starts the rows at
≥ 8 bits (``FitConfig.is_ptq``: a short QAT on the integer model, then code
refinement), its state after ``--steps`` the rows between (GPTQ, QAT), its
state after the warm-up the rows trained quantized from the start (at ≤ 4
bits) — every row has the same budget. Every row is exported and rendered
by the integer golden model; the tables show the golden PSNR and its Δ to
the float model of the same seed (``fp32``, pixels rounded as the output
layer does). The JSON keeps every number of every row, including the
emulated integer model training optimised (``psnr_fakequant``, equal to the
golden one) and the float fake-quant pass (``psnr_float_fakequant``).

Rows go to ``--json`` as they finish; ``--resume`` skips rows already there,
so a long ladder can be run in pieces. Runs on CPU (``--jobs`` worker
processes, one torch thread each). ``bench/quality_table.py`` merges JSON
files into the ladder tables (means over seeds).

    python bench/quality.py                                    # camera + astronaut, 128², width 32
    python bench/quality.py --images hopper chelsea --rungs 64:32 128:64 --seeds 0 1 2 \\
        --methods fp32 best --json out.json --resume
"""

import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_METHODS = ["fp32", "wonly", "naive", "dhq", "dhq-auto"]
DEFAULT_BITS = ["w8a8", "w6a6", "w4a4"]


def _setup():
    import torch

    torch.set_num_threads(1)


def _image_path(name):
    """A picture given by path, or by name in ``bench/images``."""
    p = Path(name)
    return p if p.exists() else HERE / "images" / f"{name}.png"


def _load(name, size):
    from dhq_rtl.images import load_image

    return load_image(_image_path(name), size)


def _rung(text):
    size, _, width = text.partition(":")
    return int(size), int(width)


def _overrides(args):
    """``--set key=value`` pairs as a dict (values are Python literals)."""
    import ast

    out = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def _config(args, rung, seed, method="fp32", bits="w16a16", recipe="uniform"):
    import dataclasses

    from dhq_rtl.reference.fit import FitConfig, parse_bits

    w, a = parse_bits(bits)
    return dataclasses.replace(FitConfig(method=method, w_bits=w, a_bits=a, width=rung[1], depth=args.depth, omega0=args.omega0,
                     steps=args.steps, qat_steps=args.qat_steps, seed=seed, quantizer=args.quantizer,
                     per_channel=not args.per_tensor, qat_forward=args.qat_forward,
                     phase_bits=args.phase_bits, lut_bits=args.lut_bits, rounding=args.rounding,
                     act_grid=args.act_grid, first_weight_grid=args.first_weight_grid,
                     refine_rounds=args.refine_rounds, dampening=args.dampening,
                     fine_tune_steps=args.fine_tune_steps, recipe=recipe), **_overrides(args)).check()


def _float_fit(args, image, rung, seed, snapshot_steps):
    """One float fit over the whole budget, and its states at ``snapshot_steps``
    (read from ``--fit-cache`` when a fit of the same picture and settings is
    there; a new fit is stored there)."""
    _setup()
    import hashlib

    import torch

    from dhq_rtl.reference.fit import train_float

    px = _load(image, rung[0])
    cfg = _config(args, rung, seed)
    total = args.steps + args.qat_steps
    cached = None
    if args.fit_cache:
        key = hashlib.sha256(px.tobytes() + repr((px.shape, cfg.width, cfg.depth, cfg.omega0, cfg.seed, cfg.lr,
                                                  total, torch.__version__)).encode()).hexdigest()[:24]
        cached = Path(args.fit_cache) / f"{image}-{rung[0]}-{rung[1]}-s{seed}-{key}.pt"
        if cached.exists():
            states = torch.load(cached)
            if set(snapshot_steps) <= set(states):
                return {k: states[k] for k in snapshot_steps}, 0.0
    t = time.perf_counter()
    keep = set(snapshot_steps) | ({min(cfg.warmup_steps, args.steps), args.steps, total - cfg.fine_tune_steps}
                                  if cached else set())
    kept = train_float(px, cfg, total, snapshots={k for k in keep if 0 <= k <= total})
    states = {k: m.state_dict() for k, m in kept.items()}
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        torch.save(states, tmp)
        os.replace(tmp, cached)
    return {k: states[k] for k in snapshot_steps}, time.perf_counter() - t


def _row(args, image, rung, seed, method, bits, recipe, states):
    _setup()
    from dhq_rtl.reference.fit import fit_image
    from dhq_rtl.reference.siren import Siren

    px = _load(image, rung[0])
    cfg = _config(args, rung, seed, method, bits, recipe)
    pre = {}
    for steps, st in states.items():
        pre[steps] = Siren(rung[1], args.depth, px.shape[2], args.omega0)
        pre[steps].load_state_dict(st)
    s = fit_image(px, cfg, pretrained=pre).summary()
    s.update(image=image, requested_bits=bits, rung=f"{rung[0]}:{rung[1]}", recipe=recipe,
             overrides=_overrides(args))
    return s


def row_key(image, rung, seed, method, bits, recipe, overrides=None):
    """What identifies a row (``--resume`` skips rows with a key already in the JSON)."""
    return f"{image}|{rung}|{seed}|{method}|{bits}|{recipe}|{sorted((overrides or {}).items())}"


def _key_of(r):
    return row_key(r["image"], r["rung"], r["seed"], r["method"], r["requested_bits"], r.get("recipe", "uniform"),
                   r.get("overrides"))


def _plan(args):
    """The rows to run, grouped by the float fit they share: ``{(image, rung, seed): [row, …]}``."""
    from dhq_rtl.reference.methods import DEFAULT_METHOD

    plan = {}
    for image in args.images:
        for rung_text in args.rungs:
            rung = _rung(rung_text)
            for seed in args.seeds:
                rows = []
                for m in args.methods:
                    method = DEFAULT_METHOD if m == "best" else m
                    if m == "fp32":
                        rows.append((method, "w16a16", "uniform"))
                        continue
                    for b in args.bits:
                        for recipe in args.recipes:
                            rows.append((method, b, recipe))
                plan[(image, f"{rung[0]}:{rung[1]}", seed)] = rows
    return plan


def main(argv=None):
    from dhq_rtl.cli import ArgumentParser
    from dhq_rtl.errors import OutputError
    from dhq_rtl.outputs import check_output_file, same_file, write_file
    from dhq_rtl.reference.methods import GRIDS, RECIPES  # no torch: the parser stays light

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", default=["camera", "astronaut"])
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    p.add_argument("--bits", nargs="+", default=DEFAULT_BITS)
    p.add_argument("--recipes", nargs="+", default=["uniform"], choices=RECIPES)
    p.add_argument("--rungs", nargs="+", default=["128:32"], help="size:width pairs")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--omega0", type=float, default=30.0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--qat-steps", type=int, default=500)
    p.add_argument("--fine-tune-steps", type=int, default=100)
    p.add_argument("--quantizer", default="lsq", choices=("lsq", "minmax"))
    p.add_argument("--rounding", default="gptq", choices=("gptq", "nearest"))
    p.add_argument("--act-grid", default="midrise", choices=GRIDS)
    p.add_argument("--first-weight-grid", default="midrise", choices=GRIDS)
    p.add_argument("--refine-rounds", type=int, default=20)
    p.add_argument("--dampening", type=float, default=0.3)
    p.add_argument("--per-tensor", action="store_true")
    p.add_argument("--qat-forward", default="hardware", choices=("hardware", "float"))
    p.add_argument("--phase-bits", type=int, default=10)
    p.add_argument("--lut-bits", type=int, default=12)
    p.add_argument("--jobs", type=int, default=1, help="worker processes (1 torch thread each)")
    p.add_argument("--fit-cache", help="folder for the float fits (reused by later runs with the same settings)")
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE",
                   help="override FitConfig fields of the quantized rows (ablations), e.g. qat_lr=5e-5")
    p.add_argument("--json", help="write every row (all numbers) to this JSON file")
    p.add_argument("--resume", action="store_true", help="keep the rows already in --json and skip them")
    p.add_argument("--markdown", help="write the tables to this file")
    args = p.parse_args(argv)
    for rung in args.rungs:
        try:
            size, width = _rung(rung)
        except ValueError:
            raise OutputError(f"--rungs {rung}: give size:width, e.g. 128:32") from None
    inputs = {f"--images {name}": _image_path(name) for name in args.images}
    for option in ("json", "markdown"):
        if getattr(args, option) is not None:
            check_output_file(getattr(args, option), f"--{option} {getattr(args, option)}", inputs=inputs)
    if args.json is not None and args.markdown is not None and same_file(args.json, args.markdown):
        raise OutputError(f"--json and --markdown name the same file {args.json}; give two files")
    if args.resume and not args.json:
        raise OutputError("--resume needs --json (the rows to keep)")

    rows = []
    if args.resume and Path(args.json).exists():
        rows = json.loads(Path(args.json).read_text())["rows"]
    done = {_key_of(r) for r in rows}
    plan = {fit: [row for row in todo if row_key(*fit, *row, _overrides(args)) not in done]
            for fit, todo in _plan(args).items()}
    plan = {fit: todo for fit, todo in plan.items() if todo}

    def save(extra=None):
        if args.json:  # after every row, so a run cut short keeps what it measured
            write_file(args.json, json.dumps({"args": vars(args), "rows": rows, **(extra or {})}, indent=1))

    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending = {}
        for fit, todo in plan.items():
            snaps = {_config(args, _rung(fit[1]), fit[2], m, b, rc).float_steps() for m, b, rc in todo}
            pending[pool.submit(_float_fit, args, fit[0], _rung(fit[1]), fit[2], snaps)] = ("fit", fit, todo)
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for f in finished:
                kind, fit, todo = pending.pop(f)
                if kind == "fit":
                    states, _ = f.result()
                    for m, b, rc in todo:
                        steps = _config(args, _rung(fit[1]), fit[2], m, b, rc).float_steps()
                        sub = {steps: states[steps]}
                        pending[pool.submit(_row, args, fit[0], _rung(fit[1]), fit[2], m, b, rc, sub)] = \
                            ("row", fit, None)
                    continue
                r = f.result()
                rows.append(r)
                save()
                print(f"{r['image']:10s} {r['rung']:7s} s{r['seed']} {r['method']:9s} {r['requested_bits']:7s} "
                      f"{r['recipe']:10s} rot {''.join('R' if x else '-' for x in r['rotations'])} "
                      f"fp {r['psnr_fp32']:.2f}  fq {r['psnr_fakequant']:.2f}  golden {r['psnr_golden']:.2f}  "
                      f"({r['seconds']['total']:.0f} s)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    from quality_table import format_tables  # noqa: E402  (bench/ is the script's folder)

    table = format_tables(rows)
    print(table)
    print(f"\nwall time {wall:.0f} s, {args.jobs} job(s), {os.cpu_count()} CPUs")
    save({"wall_s": wall})
    if args.markdown:
        write_file(args.markdown, table + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from dhq_rtl.cli import run_main

    run_main(main)
