"""Load and render-to-host times over the board's link, and the largest model per envelope.

::

    python bench/link.py [--models A.dhq B.dhq ...] [--json out.json] [--markdown]

For every model (default: the bundled one; each run on the envelope that
holds it, ``default`` first), a fresh simulated iCEBreaker
(``sim://icebreaker/ENVELOPE``: the compiled, cycle-accurate simulation of
the board's core and link, UART at bit level at the default 3 Mbaud,
:mod:`dhq_rtl.rtlsim.board`) loads the model and renders the whole image to
the host, every pixel checked against the golden model. Times are
simulated: clock cycles at the board's 48 MHz, as the hardware would take
them (the host's own latency on a real USB link comes on top). Printed per
model: the load image's bytes, the load time and its rate against the
line's (10 bits a byte), the render time to the host against the core's
compute time alone and the pixel bytes' line time, and the PSNR against the
picture the model was fitted to, when it is one of the bundled images.

Then the largest model of each envelope on each board: the envelope's
widest, deepest model, its cycles per pixel and which bound applies
(:meth:`CorePlan.bounds`), and whether the envelope's build fits the board
by the resource estimate.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from dhq_rtl.boards import get_board  # noqa: E402
from dhq_rtl.envelope import ENVELOPES  # noqa: E402
from dhq_rtl.estimate import estimate  # noqa: E402
from dhq_rtl.firmware import default_model  # noqa: E402
from dhq_rtl.firmware.host import Board, _SimPort  # noqa: E402
from dhq_rtl.gateware.plan import CorePlan  # noqa: E402
from dhq_rtl.golden import GoldenModel  # noqa: E402
from dhq_rtl.model_image import load  # noqa: E402
from dhq_rtl.rtlsim.board import SimulatedBoard, simulated_top  # noqa: E402
from dhq_rtl.synthetic import random_model  # noqa: E402


def _psnr(model, img):
    from dhq_rtl.images import default_image_path, load_image, psnr
    name = model.meta.get("image")
    # A model records its picture's file name: look for it where the
    # pictures are (the bundled one, the benchmark's).
    places = [Path(name)] if name else [Path(default_image_path())]
    if name:
        places += [Path(default_image_path()).parent / Path(name).name, HERE / "images" / Path(name).name]
    path = next((p for p in places if p.is_file()), None)
    if path is None or model.width != model.height:
        return None
    ref = load_image(path, model.width, color="gray" if model.channels == 1 else "rgb")
    return round(float(psnr(ref, img)), 2)


def run_model(model, name, board_name="icebreaker"):
    board = get_board(board_name)
    env_name = next(n for n, e in ENVELOPES.items() if e.fits(model))
    envelope = ENVELOPES[env_name]
    start = default_model()[0]
    top = simulated_top(start, board, envelope=envelope)
    t0 = time.monotonic()
    with SimulatedBoard(top) as sim:
        port = _SimPort(sim)
        host = Board(port)
        info = host.info()
        plan = info.plan(model)
        loaded, load_s, nbytes = host.load(model, force=True)
        image, render_s = host.render()
    wall = time.monotonic() - t0
    exact = bool(np.array_equal(image, GoldenModel(model).render()))
    baud = top.pll_hz / top.divisor
    npix = model.width * model.height
    pixel_bytes = npix * model.channels * (1 if model.pixel_bits <= 8 else 2)
    cpp = plan.cycles_per_pixel()
    return {
        "model": name, "size": f"{model.width}x{model.height}", "channels": model.channels,
        "hidden_width": model.hidden_width, "sine_layers": model.depth, "envelope": env_name,
        "lanes": plan.lanes, "clock_mhz": top.pll_hz / 1e6, "baud": round(baud),
        "load_bytes": nbytes, "load_s": round(load_s, 4),
        "load_line_s": round(nbytes * 10 / baud, 4), "load_rate_of_line": round(nbytes * 10 / baud / load_s, 3),
        "render_s": round(render_s, 4), "compute_s": round(npix * cpp / top.pll_hz, 4),
        "pixel_line_s": round(pixel_bytes * 10 / baud, 4), "cycles_per_pixel": round(cpp, 2),
        "binding_bound": plan.binding_bound()[0], "bandwidth_efficiency": round(plan.bandwidth_efficiency(), 3),
        "bit_exact": exact, "psnr_db": _psnr(model, image), "wall_s": round(wall, 1),
    }


def largest(envelope_name, board_name):
    env = ENVELOPES[envelope_name]
    board = get_board(board_name)
    model = random_model(width=env.max_width, depth=env.max_layers - 1, size=min(env.max_size, 128),
                         channels=env.max_channels, seed=0, rotate=False, lut_bits=env.lut_bits)
    plan = CorePlan.for_board(model, board, envelope=env)
    est = estimate(default_model()[0], board, envelope=env)
    fits = all(est.get(k, 0) <= v for k, v in board.budget.items())
    return {"board": board_name, "envelope": envelope_name, "largest": f"2-{'-'.join([str(env.max_width)] * (env.max_layers - 1))}-{env.max_channels}",
            "lanes": plan.lanes, "weights_in": "SPRAM" if plan.weights_in_spram else "block RAM",
            "cycles_per_pixel": round(plan.cycles_per_pixel(), 1), "binding_bound": plan.binding_bound()[0],
            "estimate": {k: v for k, v in est.items() if k != "details"}, "fits_by_estimate": fits}


def markdown(rows, big):
    out = ["| model | envelope | lanes | load bytes | load s (line s, rate) | render to host s | compute s | pixel line s | cycles/px (bound) | PSNR dB | exact |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} ({r['size']}, {r['channels']} ch, w{r['hidden_width']}×{r['sine_layers']}) | "
                   f"{r['envelope']} | {r['lanes']} | {r['load_bytes']} | {r['load_s']} ({r['load_line_s']}, "
                   f"{r['load_rate_of_line']:.0%}) | {r['render_s']} | {r['compute_s']} | {r['pixel_line_s']} | "
                   f"{r['cycles_per_pixel']} ({r['binding_bound']}) | {r['psnr_db']} | {r['bit_exact']} |")
    out += ["", "| board | envelope | largest model | lanes | weights | cycles/px (bound) | estimate | fits |",
            "|---|---|---|---|---|---|---|---|"]
    for b in big:
        est = ", ".join(f"{k.upper()} {v}" for k, v in b["estimate"].items() if k != "pll")
        out.append(f"| {b['board']} | {b['envelope']} | {b['largest']} | {b['lanes']} | {b['weights_in']} | "
                   f"{b['cycles_per_pixel']} ({b['binding_bound']}) | {est} | {b['fits_by_estimate']} |")
    return "\n".join(out)


def main(argv=None):
    from dhq_rtl.cli import ArgumentParser
    from dhq_rtl.outputs import check_output_file
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", default=[], help="model images (default: the bundled one only)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = p.parse_args(argv)
    if args.json:
        check_output_file(args.json, f"--json {args.json}",
                          inputs={f"--models {m}": m for m in args.models})
    models = [(default_model()[0], "default.dhq")] + [(load(m), Path(m).name) for m in args.models]
    rows = []
    for model, name in models:
        row = run_model(model, name)
        print(json.dumps(row), flush=True)
        rows.append(row)
    big = [largest(e, b) for b in ("icebreaker", "ulx3s") for e in ENVELOPES]
    for b in big:
        print(json.dumps(b), flush=True)
    if args.json:
        from dhq_rtl.outputs import write_file
        write_file(args.json, json.dumps({"models": rows, "largest": big}, indent=1) + "\n")
    if args.markdown:
        print(markdown(rows, big))
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    from dhq_rtl.cli import run_main
    run_main(main)
