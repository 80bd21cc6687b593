"""Where the quantization loss is: one float fit, then post-training quantization
with chosen bit widths per tensor group (docs/quantization.md, "High fidelity").

The float model is trained once (``--steps`` Adam steps on one cosine, as the
``fp32`` row of the quality tables); each ``--config`` then quantizes a copy
with its own per-layer weight bits ``lw`` and input bits ``la`` (16 =
effectively float: the wide export), optionally rotations, phase bits,
GPTQ rounding and rounds of integer-code refinement, exports it and renders
it with the golden model. Prints one line per config: golden PSNR and its
difference to the float model.

    python bench/tensor_ablation.py --image camera --size 64 --width 32 --seed 1 \\
        --config '{"name": "W8A8", "lw": [8, 8, 8, 8], "la": [8, 8, 8, 8]}' \\
        --config '{"name": "layer 1 weights", "lw": [16, 8, 16, 16], "la": [16, 16, 16, 16]}'

Config keys: ``name``, ``lw``, ``la`` (one entry per layer; ``la[0]`` is
unused: layer 0's input is the exact coordinate), ``rot`` (per layer,
default none), ``phase_bits`` (10), ``gptq`` (true), ``refine`` (rounds, 0),
``candidates`` (512).
"""

import copy
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_config(siren, px, spec, omega0):
    """Quantize a copy of ``siren`` as ``spec`` says; return the golden PSNR and the refinement report."""
    import torch

    from dhq_rtl.golden import GoldenModel
    from dhq_rtl.images import psnr, to_signed
    from dhq_rtl.reference.gptq import gptq_quantize
    from dhq_rtl.reference.qmodel import LayerSpec, QuantSiren, set_act_grid, set_first_weight_grid
    from dhq_rtl.reference.refine import refine_codes

    n = siren.n_layers
    lw, la = spec["lw"], spec["la"]
    if len(lw) != n or len(la) != n:
        raise ValueError(f"config {spec['name']!r}: lw and la need {n} entries (one per layer)")
    rot = spec.get("rot", [False] * n)
    specs = [LayerSpec(lw[i], la[i], bool(rot[i]), True) for i in range(n)]
    set_act_grid(specs, True)
    set_first_weight_grid(specs, True)
    model = copy.deepcopy(siren)
    height, width, channels = px.shape
    qm = QuantSiren(model, specs, height=height, width=width, phase_bits=spec.get("phase_bits", 10))
    qm.init_steps("mse")
    qm.search_first_layer_step()
    if spec.get("gptq", True):
        gptq_quantize(qm, copy.deepcopy(model))
    report = None
    if spec.get("refine", 0):
        target = torch.tensor(to_signed(px).reshape(-1, channels))
        report = refine_codes(qm, target, spec["refine"], spec.get("candidates", 512))
    image, _ = qm.export()
    return psnr(px, GoldenModel(image).render()), report


def main(argv=None):
    import argparse

    import torch

    from dhq_rtl.images import load_image, psnr, to_pixels
    from dhq_rtl.reference.fit import FitConfig, _grid, train_float

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default="camera", help="name in bench/images or a path")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--config", action="append", required=True, help="a JSON object (see the module docstring)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    path = Path(args.image) if Path(args.image).exists() else HERE / "images" / f"{args.image}.png"
    px = load_image(path, args.size)
    cfg = FitConfig(width=args.width, depth=args.depth, seed=args.seed)
    siren = train_float(px, cfg, args.steps)
    height, width, channels = px.shape
    with torch.no_grad():
        fp = psnr(px, to_pixels(siren(_grid(height, width)[1]).numpy()).reshape(height, width, channels))
    print(f"{args.image} {args.size}², width {args.width}, depth {args.depth}, seed {args.seed}, "
          f"{args.steps} float steps: float model {fp:.2f} dB")
    for text in args.config:
        spec = json.loads(text)
        t = time.perf_counter()
        golden, report = run_config(siren, px, spec, cfg.omega0)
        extra = f", refinement {report['moves']} moves" if report else ""
        print(f"{spec['name']:32s} golden {golden:.2f} dB ({golden - fp:+.2f}){extra} "
              f"[{time.perf_counter() - t:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
