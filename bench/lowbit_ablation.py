"""One low-bit training schedule, measured end to end (the ablations of docs/quantization.md).

A float SIREN is trained for ``--warm`` steps on a cosine learning-rate decay
over the whole budget ``--total``, then quantized (``naive``: no rotation;
per-channel LSQ steps, clipping-aware init, layer 0 grid-searched) and
trained quantized for the rest of the budget. Knobs, each one an ablation:
the QAT learning rate (``--qlr``; default: continue the float cosine), step
learning rate, layer-0 step re-search, GPTQ rounding before QAT, an EMA of
the weights, bit-width annealing, a float-to-quantized blend, quantization
noise during the float fit, per-layer bit widths and the scale multiplier
width, the grid of the sine outputs (``--act-grid``) and integer-code
refinement after QAT (``--refine``). Prints one JSON line: PSNR of the float model at the switch, the
fake-quant model, the exported model's numpy fake-quant and the integer
golden model.

    python bench/lowbit_ablation.py --bits 4,4 --warm 100 --research 100     # QAT from the start
    python bench/lowbit_ablation.py --bits 6,6 --warm 2000 --gptq --qlr 2.5e-5
"""

import argparse
import copy
import math
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


class OscillationFreezer:
    """Freezes hidden/output weights whose integer keeps changing direction
    (an oscillation between two levels under straight-through gradients):
    per weight, an EMA of "the integer moved opposite to its last move"; above
    ``threshold`` the weight is fixed to its running-average integer."""

    def __init__(self, qm, threshold, start=0.5, momentum=0.99):
        self.qm, self.threshold, self.start, self.momentum = qm, threshold, start, momentum
        self.layers = [i for i in range(1, qm.siren.n_layers) if qm.specs[i].w_bits is not None]
        self.state = {}
        for i in self.layers:
            q = self._ints(i)
            z = torch.zeros_like(q)
            self.state[i] = {"q": q, "dir": z.clone(), "freq": z.clone(), "avg": q.clone(),
                             "frozen": torch.zeros_like(q, dtype=torch.bool)}

    @torch.no_grad()
    def _ints(self, i):
        step = self.qm.weight_step(i).detach()
        return torch.round(self.qm.effective_weight(i) / step)

    @torch.no_grad()
    def after_step(self, progress):
        m = self.momentum
        for i in self.layers:
            st = self.state[i]
            q = self._ints(i)
            move = torch.sign(q - st["q"])
            flipped = (move != 0) & (st["dir"] != 0) & (move != st["dir"])
            st["dir"] = torch.where(move != 0, move, st["dir"])
            st["freq"] = m * st["freq"] + (1 - m) * flipped.to(q.dtype)
            st["avg"] = m * st["avg"] + (1 - m) * q
            newly = (st["freq"] > self.threshold) & ~st["frozen"] & (progress >= self.start)
            st["frozen"] |= newly
            st["q"] = torch.where(st["frozen"], st["q"], q)
            st["q"] = torch.where(newly, torch.round(st["avg"]), st["q"])
            lin = self.qm.siren.linears[i]
            step = self.qm.weight_step(i).detach()
            lin.weight.copy_(torch.where(st["frozen"], st["q"] * step, lin.weight))

    def frozen_fraction(self):
        n = sum(self.state[i]["frozen"].numel() for i in self.layers)
        return sum(int(self.state[i]["frozen"].sum()) for i in self.layers) / max(n, 1)


def main(argv=None):
    from dhq_rtl.reference.methods import GRIDS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default="camera", help="name in bench/images or a path")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--bits", default="4,4", help="weight,activation bits")
    p.add_argument("--lw", help="per-layer weight bits, e.g. 16,6,6,6 (16 = float)")
    p.add_argument("--la", help="per-layer activation bits (16 = float)")
    p.add_argument("--total", type=int, default=2500, help="training budget (steps)")
    p.add_argument("--warm", type=int, default=2000, help="float steps before quantizing")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--qlr", type=float, help="QAT weight learning rate on a fresh cosine (default: continue)")
    p.add_argument("--slr", type=float, default=1e-3, help="LSQ step learning rate")
    p.add_argument("--research", type=int, default=0, help="re-search layer 0's steps every N QAT steps")
    p.add_argument("--l0learn", action="store_true", help="learn layer 0's steps instead (LSQ)")
    p.add_argument("--gptq", action="store_true", help="GPTQ rounding before QAT")
    p.add_argument("--ema", type=float, default=0, help="EMA decay of the weights during QAT (0: off)")
    p.add_argument("--sched", help="bit annealing, b:step,b:step (QAT step where b bits start)")
    p.add_argument("--blend", type=float, default=0,
                   help="fraction of QAT over which the forward pass moves from float to quantized")
    p.add_argument("--noise", type=float, default=0,
                   help="uniform noise of this many quantization steps on weights and activations in the float fit")
    p.add_argument("--best", action="store_true", help="keep the QAT iterate with the lowest loss")
    p.add_argument("--floor", type=float, default=0.01, help="the cosine's final fraction of the learning rate")
    p.add_argument("--freeze", type=float, default=0,
                   help="freeze a hidden weight whose integer oscillates more often than this (EMA of "
                        "direction changes per step; Nagel et al. 2022); 0: off")
    p.add_argument("--freeze-after", type=float, default=0.5, help="fraction of QAT before freezing starts")
    p.add_argument("--mult-bits", type=int, default=8)
    p.add_argument("--omega0", type=float, default=30.0)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", type=int, default=0, help="print the fake-quant PSNR every N QAT steps")
    p.add_argument("--act-grid", default="midtread", choices=GRIDS,
                   help="grid of the unrotated sine outputs (the tables above: midtread)")
    p.add_argument("--first-weight-grid", default="midtread", choices=GRIDS,
                   help="grid of layer 0's weights (the tables above: midtread)")
    p.add_argument("--refine", type=int, default=0, help="rounds of integer-code refinement after QAT")
    p.add_argument("--dampen", type=float, default=0,
                   help="oscillation dampening: weight of Σ((w − Q(w))/s)², ramped up over QAT (0: off)")
    p.add_argument("--hlr", type=float, default=1.0, help="learning-rate factor of the hidden and output weights")
    p.add_argument("--tag", default="")
    a = p.parse_args(argv)
    torch.set_num_threads(1)

    import dhq_rtl.reference.qmodel as qmodel
    from dhq_rtl.export import export_model
    from dhq_rtl.golden import GoldenModel
    from dhq_rtl.images import load_image, psnr, to_pixels
    from dhq_rtl.reference.fit import FitConfig, _cosine, method_specs, seeded_start
    from dhq_rtl.reference.gptq import gptq_quantize
    from dhq_rtl.reference.refine import refine_codes
    from dhq_rtl.reference.quantizers import bin_offset_penalty, fake_quant, qmax
    from dhq_rtl.synthetic import fakequant_forward

    wb, ab = map(int, a.bits.split(","))
    path = Path(a.image) if Path(a.image).exists() else HERE / "images" / f"{a.image}.png"
    px = load_image(path, a.size)
    h, w, ch = px.shape
    siren, target, c = seeded_start(px, FitConfig(width=a.width, depth=3, omega0=a.omega0, seed=a.seed))

    def measure(model):
        with torch.no_grad():
            return psnr(px, to_pixels(model().numpy()).reshape(h, w, ch))

    def noisy_forward():
        x = c
        for i, lin in enumerate(siren.linears):
            wt = lin.weight
            step = wt.detach().abs().amax(1, keepdim=True) / qmax(wb)
            wt = wt + a.noise * step * (torch.rand_like(wt) - 0.5)
            if i > 0:
                x = x + a.noise / qmax(ab) * (torch.rand_like(x) - 0.5)
            z = x @ wt.T + lin.bias
            x = z if i == siren.n_layers - 1 else torch.sin(siren.omega0 * z)
        return x

    t0 = time.time()
    opt = torch.optim.Adam(siren.parameters(), lr=a.lr)
    for k in range(a.warm):
        _cosine(opt, [a.lr], k, a.total, a.floor)
        opt.zero_grad()
        loss = torch.mean(((noisy_forward() if a.noise else siren(c)) - target) ** 2)
        loss.backward()
        opt.step()
    fp_at_switch = measure(lambda: siren(c))

    specs = method_specs("naive", siren.n_layers, wb, ab, True)
    for spec, b in zip(specs, (a.lw or "").split(",") if a.lw else []):
        spec.w_bits = None if int(b) >= 16 else int(b)
    for spec, b in zip(specs, (a.la or "").split(",") if a.la else []):
        spec.a_bits = None if int(b) >= 16 else int(b)
    qmodel.set_act_grid(specs, a.act_grid == "midrise")
    qmodel.set_first_weight_grid(specs, a.first_weight_grid == "midrise")
    qm = qmodel.QuantSiren(siren, specs, height=h, width=w, mult_bits=a.mult_bits)
    qm.init_steps("mse")
    qm.search_first_layer_step()
    if a.gptq:
        gptq_quantize(qm, copy.deepcopy(siren))
    q_steps = a.total - a.warm
    w_steps = list(qm.log_w_step) if a.l0learn else list(qm.log_w_step)[1:]
    hidden = [lin.weight for lin in siren.linears[1:]]
    rest = [q for q in siren.parameters() if all(q is not h for h in hidden)]
    groups = [{"params": rest, "lr": a.qlr or a.lr},
              {"params": w_steps + list(qm.log_a_step), "lr": a.slr},
              {"params": hidden, "lr": (a.qlr or a.lr) * a.hlr}]
    qopt = torch.optim.Adam(groups)
    base = [g["lr"] for g in groups]
    ema = copy.deepcopy(qm) if a.ema else None
    sched = {int(x.split(":")[1]): int(x.split(":")[0]) for x in a.sched.split(",")} if a.sched else {}
    damper = OscillationFreezer(qm, a.freeze, a.freeze_after) if a.freeze else None
    blend = [1.0]
    best = (float("inf"), None)
    if a.blend:  # the forward pass sees x + λ·(Q(x) − x), λ ramping 0 → 1
        qmodel.fake_quant = lambda x, s, b: x + blend[0] * (fake_quant(x, s, b) - x)
    for k in range(q_steps):
        if a.qlr:
            _cosine(qopt, base, k, q_steps, a.floor)
        else:
            _cosine(qopt, base, a.warm + k, a.total, a.floor)
        if a.blend:
            blend[0] = min(1.0, k / (a.blend * q_steps))
        if k in sched:
            for spec in qm.specs:
                spec.w_bits, spec.a_bits = max(sched[k], wb), max(sched[k], ab)
            qm.init_steps("mse")
            qm.search_first_layer_step()
        if a.research and k and k % a.research == 0:
            qm.search_first_layer_step()
        qopt.zero_grad()
        loss = fit = torch.mean((qm() - target) ** 2)
        if a.dampen:  # oscillation dampening: pull the latent weights to their bin centres
            ramp = a.dampen * 0.5 * (1 - math.cos(math.pi * k / q_steps))
            pen = sum(bin_offset_penalty(qm.effective_weight(i), qm.weight_step(i).detach(), s.w_bits)
                      for i, s in enumerate(qm.specs) if i > 0 and s.w_bits is not None)
            loss = fit + ramp * pen * fit.detach()
        if a.best and fit.item() < best[0]:
            best = (fit.item(), copy.deepcopy(qm.state_dict()))
        loss.backward()
        qopt.step()
        if a.freeze:
            damper.after_step(k / q_steps)
        if ema is not None:
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), qm.parameters()):
                    pe.mul_(a.ema).add_(pm, alpha=1 - a.ema)
        if a.log and k % a.log == 0:
            print(k, round(measure(qm), 2), file=sys.stderr, flush=True)
    qmodel.fake_quant = fake_quant
    if ema is not None:
        qm = ema
    if a.research:
        qm.search_first_layer_step()
    if a.best:
        with torch.no_grad():
            if torch.mean((qm() - target) ** 2).item() > best[0]:
                qm.load_state_dict(best[1])
    before_refine = measure(qm)
    refined = refine_codes(qm, target, a.refine) if a.refine else None
    layers = qm.float_layers()
    model = export_model(layers, height=h, width=w, channels=ch, omega0=a.omega0, mult_bits=a.mult_bits)
    fq = fakequant_forward(layers, qmodel.integer_coords(h, w, layers[0].rotate), a.omega0, model.pixel_bits)
    fq_px = np.clip(np.floor(fq + 0.5), 0, 255).astype(np.uint8).reshape(h, w, ch)
    golden = GoldenModel(model).render()
    print(json.dumps({"tag": a.tag, "args": vars(a), "fp_at_switch": round(fp_at_switch, 2),
                      "frozen": round(damper.frozen_fraction(), 4) if damper else 0.0,
                      "fakequant_torch_before_refine": round(before_refine, 2),
                      "refined_moves": refined["moves"] if refined else 0,
                      "fakequant_torch": round(measure(qm), 2), "fakequant": round(psnr(px, fq_px), 2),
                      "golden": round(psnr(px, golden), 2), "seconds": round(time.time() - t0)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
