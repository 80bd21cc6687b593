"""``python -m dhq_rtl.train``: fit an image, quantize, export a model image.

Fits a SIREN-style INR to the image, quantizes it with the chosen method
(QAT with straight-through gradients, or PTQ with ``--qat-steps 0``), exports
the integer model with :func:`dhq_rtl.export.export_model`, and reports the
PSNR of the float model, the integer golden model
(:class:`dhq_rtl.golden.GoldenModel`), the model training optimised (the
integer model itself, emulated bit for bit) and the float fake-quant pass,
writing the golden reconstruction as a PNG next to the model file. ``fp32`` exports a wide W16A16 integer model and
``wonly`` a W<b>A16 one (float activations → 16 bits), both without rotation,
so the hardware gets a full-precision baseline.
"""

import json
import os
import sys
from pathlib import Path

from .cli import ArgumentParser, run_main
from .errors import DhqError, OutputError

__all__ = ["main", "build_parser"]


def _bits(text):
    import argparse

    from .reference.methods import parse_bits

    try:
        return parse_bits(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _int_range(lo, hi, what):
    import argparse

    def conv(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be in {lo}..{hi}, got {v}")
        return v
    return conv


def _float(text, allow_zero):
    import argparse
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(f"must be a {'' if allow_zero else 'positive '}number"
                                         f"{' ≥ 0' if allow_zero else ''}, got {text!r}")
    return v


def _positive_float(text):
    return _float(text, False)


def _non_negative_float(text):
    return _float(text, True)


def build_parser():
    from .reference.methods import DEFAULT_METHOD, FIRST_WIDE_BITS, GRIDS, METHODS, RECIPES

    p = ArgumentParser(prog="python -m dhq_rtl.train",
                       description="Fit a sine-MLP (SIREN-style INR) to an image, quantize it and export an "
                                   "integer model image for the accelerator.")
    p.add_argument("--image", default=None,
                   help="PNG/JPEG to fit (default: the bundled 512x512 camera.png); centre-cropped to a square "
                        "and resized with a Lanczos filter")
    p.add_argument("--out", required=True, help="model image to write (.dhq); the golden reconstruction goes "
                                                "next to it as <out>.png")
    p.add_argument("--method", default="best", choices=METHODS,
                   help=f"quantizer: dhq (rotate every layer input), dhq-auto (rotate where the measured "
                        f"error drops), naive (no rotation), wonly (weights only), fp32; best = {DEFAULT_METHOD}")
    p.add_argument("--bits", type=_bits, default=(8, 8), metavar="wXaY",
                   help="weight and activation bits, each 2..16 (default w8a8): with the uniform recipe every "
                        "weight and activation has at most these many bits")
    p.add_argument("--recipe", choices=RECIPES, default="uniform",
                   help="per-layer bit widths: uniform = every tensor at --bits (default); first-wide = layer 0's "
                        f"weights at {FIRST_WIDE_BITS} bits (no multipliers: running sums in hardware), the rest "
                        "at --bits; the recipe and every layer's bits are recorded in the model image")
    p.add_argument("--size", type=_int_range(2, 1024, "--size"), default=128, help="image side N (default 128)")
    p.add_argument("--color", choices=("auto", "gray", "rgb"), default="auto",
                   help="grayscale or RGB target (default: auto from the file)")
    p.add_argument("--width", type=_int_range(1, 1024, "--width"), default=32, help="hidden width (default 32)")
    p.add_argument("--depth", type=_int_range(1, 16, "--depth"), default=3,
                   help="number of sine layers; an output layer follows (default 3)")
    p.add_argument("--omega0", type=_positive_float, default=30.0, help="sine frequency ω0 (default 30)")
    p.add_argument("--steps", type=_int_range(0, 10**7, "--steps"), default=2000,
                   help="float training steps (default 2000; fp32, and configs quantized without QAT, also get "
                        "the --qat-steps: every method has the same budget)")
    p.add_argument("--qat-steps", type=_int_range(0, 10**7, "--qat-steps"), default=500,
                   help="quantization-aware training steps, 0 = post-training quantization (default 500; at "
                        "≥ --ptq-bits bits no QAT is run and the float fit gets these steps)")
    p.add_argument("--ptq-bits", type=_int_range(2, 17, "--ptq-bits"), default=8,
                   help="from this many bits (the smaller of weight and activation bits) on, quantize the float "
                        "model trained for the whole budget but its last --fine-tune-steps, then fine-tune it "
                        "with QAT on the integer model (default 8; 17 = never)")
    p.add_argument("--fine-tune-steps", type=_int_range(0, 10**7, "--fine-tune-steps"), default=100,
                   help="at >= --ptq-bits: QAT steps at the end of the budget (default 100; 0 = plain PTQ)")
    p.add_argument("--from-start-bits", type=_int_range(1, 16, "--from-start-bits"), default=4,
                   help="up to this many bits, train quantized from the start: a float warm-up of --warmup-steps, "
                        "QAT for the rest of the budget (default 4; 1 = never)")
    p.add_argument("--warmup-steps", type=_int_range(0, 10**7, "--warmup-steps"), default=100,
                   help="float steps before a from-start QAT (default 100)")
    p.add_argument("--rounding", choices=("gptq", "nearest"), default="gptq",
                   help="weight rounding after the float fit: gptq = layer by layer with error compensation "
                        "(default), nearest = round each weight to the nearest level")
    p.add_argument("--dampening", type=_non_negative_float, default=0.3,
                   help="QAT from the start: weight of the penalty that pulls weights to the centres of their "
                        "levels, ramped up over QAT (default 0.3; 0 = none)")
    p.add_argument("--refine-rounds", type=_int_range(0, 10**4, "--refine-rounds"), default=20,
                   help="after QAT, rounds of greedy integer-code refinement on the exact loss (default 20; 0 = none)")
    p.add_argument("--act-grid", choices=GRIDS, default="midrise",
                   help="grid of the unrotated sine outputs: midrise = all 2**b codes, each meaning code + 1/2 "
                        "(default; the 1/2 folds into the bias), midtread = 2**b - 1 levels with zero")
    p.add_argument("--first-weight-grid", choices=GRIDS, default="midrise",
                   help="grid of layer 0's weights: midrise = all 2**b codes, exported as the odd integers "
                        "2*code + 1 of half a step (default; layer 0 is running sums in hardware, so free), "
                        "midtread = 2**b - 1 levels with zero")
    p.add_argument("--no-first-layer-search", action="store_true",
                   help="keep the MSE weight steps of layer 0 (default: grid-search them on the exporter's scale "
                        "grid, then freeze them)")
    p.add_argument("--quantizer", choices=("lsq", "minmax"), default="lsq",
                   help="lsq: clipping-aware initial steps, learned during QAT; minmax: max|x| steps")
    p.add_argument("--per-tensor", action="store_true", help="one weight step per tensor (default: per channel)")
    p.add_argument("--phase-bits", type=_int_range(4, 16, "--phase-bits"), default=10,
                   help="sine-table address bits (default 10)")
    p.add_argument("--lut-bits", type=_int_range(2, 16, "--lut-bits"), default=12,
                   help="sine-table width of rotated layers (default 12)")
    p.add_argument("--seed", type=_int_range(0, 2**31 - 1, "--seed"), default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=_int_range(1, 2, "--threads"), default=1, help="torch CPU threads (1 or 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def reconstruction_path(out):
    """Where the golden reconstruction of the model ``out`` goes: ``<out>`` with
    the suffix ``.png`` (``<out>.png`` if ``out`` is a PNG name already)."""
    return out.with_suffix(".png") if out.suffix.lower() != ".png" else out.with_name(out.name + ".png")


def _check_outputs(out, image):
    """Check both outputs before any work: neither may be the input picture,
    ``--out`` only replaces a model image, and the reconstruction next to it
    only replaces a picture this package wrote or that of a model at ``--out``."""
    from .images import written_by_dhq_rtl
    from .outputs import check_output_file, is_model_image

    check_output_file(out, f"--out {out}", inputs={"--image": image}, keeps=(is_model_image, "a model image"))
    png = reconstruction_path(out)
    ours = (lambda p: written_by_dhq_rtl(p) or is_model_image(out),
            "a reconstruction written by dhq_rtl")
    check_output_file(png, f"the reconstruction {png} (written next to --out)",
                      inputs={"--image": image, "--out": out}, keeps=ours, fix="choose another --out name")
    return out, png


def _save_model(model, out):
    """Write the trained model; if that fails, save it in the temporary folder
    instead, so that a full disk does not throw away a finished training."""
    import tempfile

    from . import model_image

    try:
        model_image.save(model, out)
    except OutputError as e:
        rescue = None
        try:
            fd, rescue = tempfile.mkstemp(prefix=f"{out.stem}-", suffix=".dhq")
            os.close(fd)
            model_image.save(model, rescue)
        except (OSError, OutputError):
            if rescue:
                Path(rescue).unlink(missing_ok=True)
            raise OutputError(f"{e}; the trained model could not be saved anywhere") from None
        raise OutputError(f"{e}; the trained model was saved to {rescue} instead") from None


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .images import default_image_path, load_image, save_png
    from .model_image import layer_bits_text
    from .reference.methods import DEFAULT_METHOD

    image = Path(args.image) if args.image else default_image_path()
    out, png = _check_outputs(Path(args.out), image)
    method = DEFAULT_METHOD if args.method == "best" else args.method
    if method in ("dhq", "dhq-auto") and args.width & (args.width - 1):
        raise DhqError(f"--method {args.method} rotates hidden activations: --width must be a power of two, "
                       f"got {args.width}")
    pixels = load_image(image, args.size, args.color)
    if args.steps + args.qat_steps == 0:
        print("warning: --steps 0 and --qat-steps 0: nothing is trained, the exported model is the random "
              "initialization, quantized", file=sys.stderr)

    import torch  # only now: argument and file errors are reported without loading PyTorch

    from .reference.fit import FitConfig, fit_image

    torch.set_num_threads(args.threads)
    w_bits, a_bits = args.bits
    cfg = FitConfig(method=args.method, w_bits=w_bits, a_bits=a_bits, width=args.width, depth=args.depth,
                    omega0=args.omega0, steps=args.steps, qat_steps=args.qat_steps, seed=args.seed,
                    quantizer=args.quantizer, per_channel=not args.per_tensor,
                    phase_bits=args.phase_bits, lut_bits=args.lut_bits, ptq_bits=args.ptq_bits,
                    first_layer_search=not args.no_first_layer_search, rounding=args.rounding,
                    from_start_bits=args.from_start_bits, warmup_steps=args.warmup_steps,
                    act_grid=args.act_grid, first_weight_grid=args.first_weight_grid,
                    refine_rounds=args.refine_rounds, dampening=args.dampening,
                    fine_tune_steps=args.fine_tune_steps, recipe=args.recipe)
    try:
        cfg.check()
        res = fit_image(pixels, cfg, progress=not (args.quiet or args.json) and sys.stderr.isatty())
    except ValueError as e:
        raise DhqError(str(e)) from None
    res.model.meta["image"] = image.name
    _save_model(res.model, out)
    try:
        save_png(res.golden_pixels, png)
    except OutputError as e:
        raise OutputError(f"wrote the model {out}, but {e}") from None
    summary = res.summary()
    summary.update(image=str(image), model=str(out), golden_png=str(png))
    if args.json:
        print(json.dumps(summary))
        return 0
    method = summary["method"]
    wide = method in ("fp32", "wonly")
    depth = "8-bit" if pixels.dtype == "uint8" else "16-bit"
    print(f"image     {image} -> {pixels.shape[0]}x{pixels.shape[1]}, {pixels.shape[2]} channel(s), {depth}")
    print(f"model     width {args.width}, depth {args.depth} (+ output layer), omega0 {args.omega0:g}, "
          f"method {method}, {args.quantizer}, {'per-tensor' if args.per_tensor else 'per-channel'} weight steps")
    if wide:
        print(f"export    {method}: float activations, exported as a wide W{res.model.layers[1].weight_bits}"
              f"A16 integer model without rotation (full-precision baseline for the hardware)")
    print(f"rotation  {''.join('R' if r else '-' for r in res.rotations)} (layer 0..{len(res.rotations) - 1})")
    print(f"bits      {layer_bits_text(res.model)}")
    if res.refinement:
        rf = res.refinement
        print(f"refined   {rf['moves']} weight codes moved one level in {rf['rounds']} rounds "
              f"({rf['psnr_gain_db']:+.2f} dB on the integer model's loss, {summary['seconds']['refine']:.0f} s)")
    print(f"PSNR      fp32 {res.psnr_fp32:.2f} dB | golden integer {res.psnr_golden:.2f} dB | trained model "
          f"{res.psnr_fakequant:.2f} dB | float fake-quant {res.psnr_float_fakequant:.2f} dB")
    print(f"wrote     {out} and {png} ({summary['seconds']['total']:.0f} s)")
    return 0


if __name__ == "__main__":
    run_main(main)
