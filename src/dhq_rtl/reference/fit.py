"""The training flow: fit an image, quantize (PTQ or QAT), export, measure.

:func:`fit_image` runs, for one :class:`FitConfig`:

1. full-batch float training of a :class:`~.siren.Siren` on every pixel
   (Adam, cosine learning-rate decay) for ``steps`` steps — ``steps +
   qat_steps`` for ``fp32`` and for configs quantized without QAT (at ≥
   ``ptq_bits`` bits, :meth:`FitConfig.is_ptq`), only ``warmup_steps`` for
   configs trained quantized from the start (at ≤ ``from_start_bits`` bits,
   :meth:`FitConfig.is_from_start`), so every method gets the same training
   budget of ``steps + qat_steps``;
2. the choice of which layer inputs to rotate (``dhq``: all, ``naive`` and
   ``wonly``: none, ``dhq-auto``: per tensor, where the measured
   quantization error of the layer output drops, see :func:`rotation_errors`);
3. step initialisation (clipping-aware MSE steps for ``lsq``, ``max|x|/m``
   for ``minmax``; layer 0's steps grid-searched on the exporter's scale grid,
   ``first_layer_search``, and not learned), error-compensating rounding of
   the weights (``rounding = "gptq"``, :mod:`.gptq`; not for a from-start
   fit), then the rest of the budget as quantization-aware training with
   straight-through gradients (none: post-training quantization); a long
   from-start QAT re-searches layer 0's steps every ``first_layer_research``
   steps (its weights move far; with frozen steps camera W4A4 lost 2 dB)
   and pulls the weights toward the centres of their levels (oscillation
   dampening, ``dampening``); after any QAT the integer codes are refined
   on the exact loss (:mod:`.refine`, ``refine_rounds``). Unrotated sine
   outputs are quantized on the mid-rise grid (``act_grid``, see
   :mod:`.quantizers`), and so are layer 0's weights (``first_weight_grid``);
4. export with :func:`dhq_rtl.export.export_model` and evaluation of the
   float model, the fake-quant model that training optimised (``qat_forward
   = "hardware"``, the default: the exported integer model itself, emulated
   in torch by :class:`~.emulate.DatapathEmulator`, so it equals the golden
   model; ``"float"``: the float pass without phase, table and bias rounding),
   the float fake-quant pass (``psnr_float_fakequant``: what the integer
   model's rounding costs) and the integer golden model.

``fp32`` and ``wonly`` have float activations: they export with
:data:`~.qmodel.WIDE_BITS`-bit (16) activations, no rotation (``fp32`` also
with 16-bit weights), a wide integer baseline for the hardware.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..export import with_float_model
from ..golden import GoldenModel
from ..images import psnr, to_pixels, to_signed
from ..numerics import first_layer_input_matrix
from .gptq import gptq_quantize
from .hadamard_torch import hadamard_orthonormal
from .emulate import DatapathEmulator
from .qmodel import LayerSpec, QuantSiren, integer_coords, set_act_grid, set_first_weight_grid
from .quantizers import bin_offset_penalty, fake_quant, minmax_step, mse_step, qmax
from .refine import refine_codes
from .siren import Siren

__all__ = ["METHODS", "DEFAULT_METHOD", "FitConfig", "FitResult", "fit_image", "parse_bits", "rotation_errors",
           "method_specs", "train_float"]

from .methods import DEFAULT_METHOD, GRIDS, METHODS, RECIPES, parse_bits, recipe_bits  # noqa: E402  (re-exported)


@dataclass
class FitConfig:
    """Everything that determines a fit (the run is reproducible from it)."""

    method: str = "best"
    w_bits: int = 8
    a_bits: int = 8
    width: int = 32
    depth: int = 3
    omega0: float = 30.0
    steps: int = 2000
    qat_steps: int = 500
    seed: int = 0
    lr: float = 1e-3
    qat_lr: float | None = None  # None: 1e-4·2**-(b−4) for b = the smaller bit width (see qat_lr_for)
    step_lr: float = 1e-3
    quantizer: str = "lsq"
    per_channel: bool = True
    qat_forward: str = "hardware"  # QAT's forward values: "hardware" (the integer model, exact) or "float"
    phase_bits: int = 10
    lut_bits: int = 12
    mult_bits: int = 8
    rotate: list | None = None  # explicit per-layer rotations (overrides the method's choice)
    first_layer_search: bool = True  # grid-search layer 0's weight steps (lsq only), then freeze them
    ptq_bits: int = 8  # at ≥ this many bits: the float fit gets the budget but the last fine_tune_steps
    fine_tune_steps: int = 100  # at ≥ ptq_bits: QAT steps at the end of the budget (0: plain PTQ)
    rounding: str = "gptq"  # weight rounding after the float fit: "nearest" or "gptq" (error-compensating)
    from_start_bits: int = 4  # at ≤ this many bits: QAT from (almost) the start, see is_from_start
    warmup_steps: int = 100  # float steps before QAT in a from-start fit
    first_layer_research: int = 100  # from-start QAT: re-search layer 0's steps every this many steps (0: never)
    act_grid: str = "midrise"  # grid of the unrotated sine outputs: "midrise" (2**b levels) or "midtread" (2**b − 1)
    first_weight_grid: str = "midrise"  # grid of layer 0's weights (odd integers in the export when midrise)
    dampening: float = 0.3  # from-start QAT: weight of the bin-offset penalty, ramped up from 0 (0: none)
    refine_rounds: int = 20  # after quantizing: rounds of greedy code refinement (refine.py; 0: none)
    refine_candidates: int = 512  # moves tried per refinement round
    recipe: str = "uniform"  # per-layer bit widths (methods.RECIPES): uniform = every tensor at w_bits/a_bits

    def is_ptq(self):
        """True when this config quantizes a float model trained for (almost)
        the whole budget: ``qat_steps = 0`` (plain PTQ after ``steps``), or the
        smaller bit width is ≥ ``ptq_bits`` (the float fit gets ``steps +
        qat_steps − fine_tune_steps`` steps, QAT the last ``fine_tune_steps``).
        Measured (docs/quantization.md): at 8 bits a long QAT loses to a float
        model trained for the whole budget, and a short QAT on the integer
        model at its end gains."""
        if self.qat_steps == 0:
            return True
        return self._low_bits() >= self.ptq_bits

    def _low_bits(self):
        return self.w_bits if self.resolved_method() == "wonly" else min(self.w_bits, self.a_bits)

    def is_from_start(self):
        """True when QAT runs from (almost) the start: a QAT config at ≤
        ``from_start_bits`` bits. The float fit then gets only ``warmup_steps``
        and QAT the rest of the budget, at the float learning rate. Measured
        (docs/quantization.md): at 4 bits a short QAT after a full float fit
        cannot move the weights far enough (camera W4A4 24.2 dB, from the
        start 25.7 dB); at 6 bits it loses (28.6 vs 28.2 dB)."""
        return (self.resolved_method() != "fp32" and not self.is_ptq()
                and self._low_bits() <= self.from_start_bits)

    def float_steps(self):
        """Float training steps: ``steps + qat_steps`` for fp32, that less
        ``fine_tune_steps`` for :meth:`is_ptq` configs (``steps`` when
        ``qat_steps = 0``), ``min(warmup_steps, steps)`` from the start
        (:meth:`is_from_start`), else ``steps``."""
        total = self.steps + self.qat_steps
        if self.resolved_method() == "fp32":
            return total
        if self.is_ptq() and self.qat_steps > 0:
            return total - min(self.fine_tune_steps, total)
        if self.is_from_start():
            return min(self.warmup_steps, self.steps)
        return self.steps

    def train_qat_steps(self):
        """QAT steps actually run: the rest of the ``steps + qat_steps`` budget."""
        if self.resolved_method() == "fp32" or self.qat_steps == 0:
            return 0
        return self.steps + self.qat_steps - self.float_steps()

    def qat_lr_for(self):
        """QAT learning rate of the network weights. Measured (docs/quantization.md):
        low bit widths need large steps to move weights across quantization
        levels, high ones are hurt by them (an 8-bit model is already close to the
        float optimum), so the default halves per extra bit: 1e-4 at 4 bits,
        2.5e-5 at 6, 6.25e-6 at 8, never below 1e-6."""
        if self.qat_lr is not None:
            return self.qat_lr
        if self.is_from_start():
            return self.lr
        b = self._low_bits()
        return max(1e-6, min(1e-4, 1e-4 * 2.0 ** -(b - 4)))

    def resolved_method(self):
        return DEFAULT_METHOD if self.method == "best" else self.method

    def check(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        for name in ("w_bits", "a_bits"):
            qmax(getattr(self, name))
        for name in ("width", "depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("steps", "qat_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer ≥ 0, got {v!r}")
        if not (isinstance(self.omega0, (int, float)) and math.isfinite(self.omega0) and self.omega0 > 0):
            raise ValueError(f"omega0 must be a positive number, got {self.omega0!r}")
        if self.quantizer not in ("lsq", "minmax"):
            raise ValueError(f"quantizer must be lsq or minmax, got {self.quantizer!r}")
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")
        if self.qat_forward not in ("hardware", "float"):
            raise ValueError(f"qat_forward must be hardware or float, got {self.qat_forward!r}")
        if self.rounding not in ("nearest", "gptq"):
            raise ValueError(f"rounding must be nearest or gptq, got {self.rounding!r}")
        for name in ("act_grid", "first_weight_grid"):
            if getattr(self, name) not in GRIDS:
                raise ValueError(f"{name} must be {' or '.join(GRIDS)}, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "first_layer_research", "refine_rounds", "fine_tune_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer ≥ 0, got {v!r}")
        if isinstance(self.dampening, bool) or not isinstance(self.dampening, (int, float)) \
                or not math.isfinite(self.dampening) or self.dampening < 0:
            raise ValueError(f"dampening must be a number ≥ 0, got {self.dampening!r}")
        if isinstance(self.refine_candidates, bool) or not isinstance(self.refine_candidates, int) \
                or self.refine_candidates < 1:
            raise ValueError(f"refine_candidates must be a positive integer, got {self.refine_candidates!r}")
        rot_methods = ("dhq", "dhq-auto")
        if self.resolved_method() in rot_methods and self.width & (self.width - 1):
            raise ValueError(f"method {self.method} rotates hidden activations: width must be a power of two, "
                             f"got {self.width}")
        return self


@dataclass
class FitResult:
    """What :func:`fit_image` produced and measured."""

    config: FitConfig
    model: object  # ModelImage
    float_layers: list
    rotations: list
    psnr_fp32: float
    psnr_fakequant: float
    psnr_golden: float
    golden_pixels: np.ndarray
    fakequant_pixels: np.ndarray
    fp32_pixels: np.ndarray
    rotation_report: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    refinement: dict | None = None  # refine_codes' report (None: not run)
    psnr_float_fakequant: float = math.nan  # the float fake-quant pass (no phase, table or bias rounding)
    float_fakequant_pixels: np.ndarray | None = None  # the float fake-quant pass's pixels

    def summary(self):
        """JSON-friendly dict of the numbers."""
        m = self.model
        return {
            "method": self.config.resolved_method(),
            "bits": f"w{self.config.w_bits}a{self.config.a_bits}",
            "exported_bits": [[l.weight_bits, l.act_bits] for l in m.layers],
            "rotations": self.rotations,
            "psnr_fp32": round(self.psnr_fp32, 3),
            "psnr_fakequant": round(self.psnr_fakequant, 3),
            "psnr_float_fakequant": round(self.psnr_float_fakequant, 3),
            "psnr_golden": round(self.psnr_golden, 3),
            "max_abs_diff_golden_fakequant": int(np.abs(self.golden_pixels.astype(int)
                                                        - self.fakequant_pixels.astype(int)).max()),
            "size": [m.height, m.width], "channels": m.channels, "width": self.config.width,
            "depth": self.config.depth, "omega0": self.config.omega0, "phase_bits": m.phase_bits,
            "lut_bits": self.config.lut_bits, "steps": self.config.steps, "qat_steps": self.config.qat_steps,
            "float_steps": self.config.float_steps(), "train_qat_steps": self.config.train_qat_steps(),
            "ptq": self.config.is_ptq(), "from_start": self.config.is_from_start(), "rounding": self.config.rounding,
            "first_layer_search": self.config.first_layer_search,
            "quantizer": self.config.quantizer, "per_channel": self.config.per_channel, "seed": self.config.seed,
            "act_grid": self.config.act_grid, "first_weight_grid": self.config.first_weight_grid,
            "qat_forward": self.config.qat_forward, "recipe": self.config.recipe,
            "refinement": None if self.refinement is None else {
                k: round(v, 6) if isinstance(v, float) else v for k, v in self.refinement.items()},
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def method_specs(method, n_layers, w_bits, a_bits, per_channel, rotations=None):
    """Per-layer :class:`~.qmodel.LayerSpec` of a method (``rotations`` for
    ``dhq-auto``: the measured choice), every input on the mid-tread grid
    (:func:`~.qmodel.set_act_grid` chooses the grid)."""
    if method == "fp32":
        return [LayerSpec(None, None, False, True) for _ in range(n_layers)]
    if method == "wonly":
        return [LayerSpec(w_bits, None, False, per_channel) for _ in range(n_layers)]
    if method == "naive":
        rot = [False] * n_layers
    elif method == "dhq":
        rot = [True] * n_layers
    else:
        rot = list(rotations)
    return [LayerSpec(w_bits, a_bits, bool(r), per_channel) for r in rot]


@torch.no_grad()
def rotation_errors(siren, coords_v, w_bits, a_bits, per_channel=True, quantizer="lsq", height=None, width=None,
                    act_midrise=False, first_weight_midrise=False):
    """For each layer, the relative quantization error of its output
    ``‖Q(x)·Q(W)ᵀ − x·Wᵀ‖² / ‖x·Wᵀ‖²`` without and with the Hadamard
    rotation (clipping-aware MSE steps for ``lsq``, min-max for ``minmax``),
    plus the activation and weight errors alone. ``coords_v``: the unrotated
    integer coordinates of every pixel; ``act_midrise``: the unrotated
    activations are on the mid-rise grid (the rotated ones never are);
    ``first_weight_midrise``: so are the first layer's weights.
    Returns a list of dicts."""
    pick = mse_step if quantizer == "lsq" else minmax_step
    rep = []
    c = coords_v @ torch.tensor(first_layer_input_matrix(height, width, False), dtype=torch.float32).T
    _, inputs = siren(c, return_hidden=True)
    for i, lin in enumerate(siren.linears):
        rec = {"layer": i}
        for rot in (False, True):
            key = "rot" if rot else "plain"
            if i == 0:
                v = coords_v if not rot else torch.stack([coords_v[:, 0] + coords_v[:, 1],
                                                          coords_v[:, 0] - coords_v[:, 1]], dim=1)
                w = lin.weight @ torch.tensor(first_layer_input_matrix(height, width, rot), dtype=torch.float32)
                x, xq = v, v
            else:
                a = inputs[i]
                if rot:
                    h = hadamard_orthonormal(a.shape[1])
                    x, w = a @ h.T, lin.weight @ h.T
                else:
                    x, w = a, lin.weight
                mr = act_midrise and not rot
                sx = pick(x, a_bits, midrise=mr)
                xq = fake_quant(x, sx, a_bits, mr)
                rec[f"act_err_{key}"] = float(((xq - x) ** 2).mean() / (x ** 2).mean())
            wm = first_weight_midrise and i == 0
            sw = pick(w, w_bits, per_row=per_channel, midrise=wm)
            wq = fake_quant(w, sw, w_bits, wm)
            rec[f"w_err_{key}"] = float(((wq - w) ** 2).mean() / (w ** 2).mean())
            ref = x @ w.T
            out = xq @ wq.T
            rec[f"out_err_{key}"] = float(((out - ref) ** 2).mean() / (ref ** 2).mean())
        rec["rotate"] = rec["out_err_rot"] < rec["out_err_plain"]
        rep.append(rec)
    return rep


def _cosine(opt, base_lrs, k, total, floor=0.01):
    f = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(k, total) / max(total, 1)))
    for g, lr in zip(opt.param_groups, base_lrs):
        g["lr"] = lr * f


def _progress(total, desc, enabled):
    from tqdm import tqdm

    return tqdm(range(total), desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


def _grid(height, width):
    v = torch.tensor(integer_coords(height, width, False), dtype=torch.float32)
    c = v @ torch.tensor(first_layer_input_matrix(height, width, False), dtype=torch.float32).T
    return v, c


def seeded_start(pixels, cfg):
    """The start of every fit: seeds set (deterministic algorithms), a fresh
    :class:`~.siren.Siren` of ``cfg``'s shape, the target values ``(P, C)`` in
    ``[-1, 1]`` and the real coordinates ``(P, 2)`` of every pixel."""
    height, width, channels = pixels.shape
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    target = torch.tensor(to_signed(pixels).reshape(-1, channels))
    _, c = _grid(height, width)
    return Siren(cfg.width, cfg.depth, channels, cfg.omega0), target, c


def train_float(pixels, cfg, steps, progress=False, horizon=None, snapshots=()):
    """Seeded full-batch float training of a :class:`~.siren.Siren` on ``pixels``
    for ``steps`` Adam steps, the learning rate on a cosine from ``cfg.lr`` to
    1 % of it over ``horizon`` steps (default ``steps``: a fit that is the
    start of a longer budget decays over the whole budget, so that its
    snapshots are the states the longer fit passes through).

    Returns the model; with ``snapshots`` (step counts ≤ ``steps``), a dict
    ``{k: copy of the model after k steps}`` that also holds ``steps``.
    """
    import copy

    siren, target, c = seeded_start(pixels, cfg)
    opt = torch.optim.Adam(siren.parameters(), lr=cfg.lr)
    kept = {0: copy.deepcopy(siren)} if 0 in snapshots else {}
    for k in _progress(steps, "fit fp32", progress):
        _cosine(opt, [cfg.lr], k, steps if horizon is None else horizon)
        opt.zero_grad()
        loss = torch.mean((siren(c) - target) ** 2)
        loss.backward()
        opt.step()
        if k + 1 in snapshots:
            kept[k + 1] = copy.deepcopy(siren)
    if snapshots:
        kept[steps] = siren
        return kept
    return siren


def fit_image(pixels, config=None, progress=False, pretrained=None):
    """Fit ``pixels`` (``(H, W, C)``, uint8 or float on ``0..255``) with ``config`` and return a :class:`FitResult`.

    ``pretrained``: float :class:`~.siren.Siren` models already trained by
    :func:`train_float` with the same config and a horizon of ``steps +
    qat_steps`` (a copy is used; lets a benchmark share float fits between
    methods): a dict ``{steps: siren}`` (the snapshots of one run), or one
    model trained for ``config.steps`` steps. Used only when it holds a model
    of ``config.float_steps()`` steps; otherwise the float model is trained
    here.
    """
    import copy

    cfg = (config or FitConfig()).check()
    method = cfg.resolved_method()
    pixels = np.asarray(pixels)
    # uint8, or floats on the same 0..255 scale (a 16-bit picture keeps its precision).
    if pixels.ndim != 3 or not (pixels.dtype == np.uint8 or np.issubdtype(pixels.dtype, np.floating)):
        raise ValueError("pixels must be a uint8 or float array (H, W, C) on the 0..255 scale")
    height, width, channels = pixels.shape
    t0 = time.perf_counter()
    seconds = {}
    target = torch.tensor(to_signed(pixels).reshape(-1, channels))
    v_plain, c = _grid(height, width)

    # 1. float training
    siren = _float_model(pixels, cfg, pretrained, progress)
    seconds["fit"] = time.perf_counter() - t0
    with torch.no_grad():
        fp32_pixels = to_pixels(siren(c).numpy()).reshape(height, width, channels)
    float_model = _float_parameters(siren)  # the float model psnr_fp32 measures (QAT changes siren)

    # 2. rotations and per-layer bits
    specs, report = _layer_specs(siren, cfg, v_plain, height, width)

    # 3. quantize: PTQ initialisation, QAT, code refinement
    t1 = time.perf_counter()
    qm = QuantSiren(siren, specs, height=height, width=width, quantizer=cfg.quantizer,
                    phase_bits=cfg.phase_bits, mult_bits=cfg.mult_bits, lut_bits=cfg.lut_bits)
    qm.init_steps("mse" if cfg.quantizer == "lsq" else "minmax")
    searched = method != "fp32" and cfg.first_layer_search and qm.search_first_layer_step() is not None
    if method != "fp32" and cfg.rounding == "gptq" and cfg.quantizer == "lsq" and not cfg.is_from_start():
        gptq_quantize(qm, copy.deepcopy(siren))
    if cfg.train_qat_steps():
        _qat(qm, cfg, target, searched, progress)
    refined = None
    if method != "fp32" and cfg.refine_rounds and cfg.quantizer == "lsq":
        # QAT (or PTQ) ends on the rounding of its latent weights: search the codes themselves
        t_r = time.perf_counter()
        refined = refine_codes(qm, target, cfg.refine_rounds, cfg.refine_candidates)
        seconds["refine"] = time.perf_counter() - t_r
    seconds["qat"] = time.perf_counter() - t1

    # 4. export and measure
    t2 = time.perf_counter()
    model, layers = qm.export(channels, _model_meta(cfg, specs, refined))
    model = with_float_model(model, *float_model)
    with torch.no_grad():
        hw_pixels = DatapathEmulator(model).render().numpy().astype(np.uint8)
        float_fq = to_pixels(qm().numpy()).reshape(height, width, channels)
    fq_pixels = hw_pixels if cfg.qat_forward == "hardware" else float_fq
    golden = GoldenModel(model).render()
    seconds["export_eval"] = time.perf_counter() - t2
    seconds["total"] = time.perf_counter() - t0
    return FitResult(config=cfg, model=model, float_layers=layers, rotations=[bool(s.rotate) for s in specs],
                     psnr_fp32=psnr(pixels, fp32_pixels), psnr_fakequant=psnr(pixels, fq_pixels),
                     psnr_golden=psnr(pixels, golden), golden_pixels=golden, fakequant_pixels=fq_pixels,
                     fp32_pixels=fp32_pixels, rotation_report=report, seconds=seconds, refinement=refined,
                     psnr_float_fakequant=psnr(pixels, float_fq), float_fakequant_pixels=float_fq)


def _float_model(pixels, cfg, pretrained, progress):
    """The float model the quantization starts from: ``cfg.float_steps()``
    steps, a copy of ``pretrained``'s snapshot when it has one."""
    import copy

    fp_steps = cfg.float_steps()
    if pretrained is not None and not isinstance(pretrained, dict):
        pretrained = {cfg.steps: pretrained}
    if pretrained and fp_steps in pretrained:
        torch.manual_seed(cfg.seed)
        torch.use_deterministic_algorithms(True)
        return copy.deepcopy(pretrained[fp_steps])
    return train_float(pixels, cfg, fp_steps, progress, horizon=cfg.steps + cfg.qat_steps)


def _layer_specs(siren, cfg, v_plain, height, width):
    """Per-layer :class:`~.qmodel.LayerSpec` of ``cfg``: the method's
    rotations (measured for ``dhq-auto``, :func:`rotation_errors`; ``cfg.rotate``
    overrides), the recipe's bits, the grids. Returns ``(specs, rotation report)``."""
    method = cfg.resolved_method()
    midrise = cfg.act_grid == "midrise"
    first_midrise = cfg.first_weight_grid == "midrise"
    report = rotation_errors(siren, v_plain, cfg.w_bits, cfg.a_bits, cfg.per_channel, cfg.quantizer,
                             height, width, midrise, first_midrise) if method not in ("fp32", "wonly") else []
    auto = [r["rotate"] for r in report] if report else None
    specs = method_specs(method, siren.n_layers, cfg.w_bits, cfg.a_bits, cfg.per_channel, auto)
    for s, (wb, _) in zip(specs, recipe_bits(cfg.recipe, siren.n_layers, cfg.w_bits, cfg.a_bits)):
        if s.w_bits is not None:
            s.w_bits = wb
    if cfg.rotate is not None and method not in ("fp32", "wonly"):
        if len(cfg.rotate) != siren.n_layers:
            raise ValueError(f"rotate needs {siren.n_layers} entries")
        for s, r in zip(specs, cfg.rotate):
            s.rotate = bool(r)
    set_act_grid(specs, midrise)
    set_first_weight_grid(specs, first_midrise)
    return specs, report


def _qat(qm, cfg, target, searched, progress):
    """``cfg.train_qat_steps()`` steps of QAT on ``qm`` (in place), keeping the best iterate."""
    siren, specs = qm.siren, qm.specs
    qat_steps = cfg.train_qat_steps()
    from_start = cfg.is_from_start()
    groups = [{"params": list(siren.parameters()), "lr": cfg.qat_lr_for()}]
    if cfg.quantizer == "lsq":
        w_steps = list(qm.log_w_step)[1 if searched else 0:]  # a searched step is not learned
        groups.append({"params": w_steps + list(qm.log_a_step), "lr": cfg.step_lr})
    opt = torch.optim.Adam(groups)
    base = [g["lr"] for g in groups]
    # from the start: one cosine over the whole budget, continued from the float warm-up
    offset, horizon = (cfg.float_steps(), cfg.steps + cfg.qat_steps) if from_start else (0, qat_steps)
    research = cfg.first_layer_research if searched and from_start else 0
    dampen = cfg.dampening if from_start and cfg.quantizer == "lsq" else 0.0
    # QAT with straight-through gradients does not descend monotonically (the
    # quantized model jumps when weights cross levels): keep the best iterate.
    # The loss is the fitting objective itself (every pixel of the image).
    best = (math.inf, None)
    hardware = cfg.qat_forward == "hardware"
    for k in _progress(qat_steps, f"QAT {cfg.resolved_method()} w{cfg.w_bits}a{cfg.a_bits}", progress):
        if research and k and k % research == 0:
            qm.search_first_layer_step()  # layer 0's weights moved: follow them with its steps
        _cosine(opt, base, offset + k, horizon)
        opt.zero_grad()
        loss = fit = torch.mean((qm(hardware=hardware) - target) ** 2)
        if dampen:
            # oscillation dampening, ramped up on a half cosine, relative to the fit loss
            ramp = dampen * 0.5 * (1 - math.cos(math.pi * k / qat_steps))
            pen = sum(bin_offset_penalty(qm.effective_weight(i), qm.weight_step(i).detach(), s.w_bits)
                      for i, s in enumerate(specs) if i > 0 and s.w_bits is not None)
            loss = fit + ramp * pen * fit.detach()
        if fit.item() < best[0]:  # parameters only: the coordinate buffers never change
            best = (fit.item(), [p.detach().clone() for p in qm.parameters()])
        loss.backward()
        opt.step()
    if research:
        qm.search_first_layer_step()
    with torch.no_grad():
        if torch.mean((qm(hardware=hardware) - target) ** 2).item() > best[0]:
            for p, kept in zip(qm.parameters(), best[1]):
                p.copy_(kept)


def _model_meta(cfg, specs, refined):
    """What the model image records of how it was made."""
    return {"source": "dhq_rtl.train", "method": cfg.resolved_method(), "bits": f"w{cfg.w_bits}a{cfg.a_bits}",
            "quantizer": cfg.quantizer, "per_channel": cfg.per_channel, "width": cfg.width, "depth": cfg.depth,
            "steps": cfg.steps, "qat_steps": cfg.qat_steps, "seed": cfg.seed, "float_steps": cfg.float_steps(),
            "ptq": cfg.is_ptq(), "first_layer_search": cfg.first_layer_search, "rounding": cfg.rounding,
            "from_start": cfg.is_from_start(), "act_grid": cfg.act_grid,
            "first_weight_grid": "midrise" if specs[0].w_midrise else "midtread",
            "refine_rounds": cfg.refine_rounds if refined else 0,
            "fine_tune_steps": cfg.train_qat_steps() if cfg.is_ptq() else 0,
            "dampening": cfg.dampening if cfg.is_from_start() else 0.0, "qat_forward": cfg.qat_forward,
            "recipe": cfg.recipe}


def _float_parameters(siren):
    """``(weights, biases)`` of a float :class:`~.siren.Siren`, float32, for the
    model image (:func:`dhq_rtl.export.with_float_model`)."""
    return ([lin.weight.detach().numpy().astype(np.float32) for lin in siren.linears],
            [lin.bias.detach().numpy().astype(np.float32) for lin in siren.linears])


def config_dict(cfg):
    return asdict(cfg)
