"""Per-layer weight and activation histograms before and after the Hadamard
rotation, with excess kurtosis (the DHQ paper's distribution analysis).

Fits the float model (same defaults as ``python -m dhq_rtl.train``), then for
every layer plots the weight ``W`` (layer 0: ``W·F`` on the integer
coordinates) and ``W·Hᵀ``, and the layer input ``a`` and ``H·a``. Saves
``docs/img/distributions.png`` and prints a kurtosis table (markdown).

    python bench/distributions.py [--image bench/images/camera.png] [--steps 2000]
"""

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def excess_kurtosis(x):
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x - x.mean()
    v = np.mean(x ** 2)
    return float(np.mean(x ** 4) / v ** 2 - 3.0) if v > 0 else float("nan")


def main(argv=None):
    from dhq_rtl.cli import ArgumentParser
    from dhq_rtl.outputs import check_output_file, write_file

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=str(ROOT / "bench" / "images" / "camera.png"))
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--out", default=str(ROOT / "docs" / "img" / "distributions.png"))
    args = p.parse_args(argv)
    check_output_file(args.out, f"--out {args.out}", inputs={"--image": args.image}, create_folder=True)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from dhq_rtl.numerics import first_layer_input_matrix
    from dhq_rtl.images import load_image
    from dhq_rtl.reference.fit import FitConfig, train_float
    from dhq_rtl.reference.hadamard_torch import hadamard_orthonormal
    from dhq_rtl.reference.qmodel import integer_coords

    torch.set_num_threads(1)
    px = load_image(args.image, args.size)
    siren = train_float(px, FitConfig(width=args.width, depth=args.depth), args.steps)
    n = args.size
    v = torch.tensor(integer_coords(n, n, False), dtype=torch.float32)
    c = v @ torch.tensor(first_layer_input_matrix(n, n, False), dtype=torch.float32).T
    with torch.no_grad():
        _, inputs = siren(c, return_hidden=True)
    rows = []
    fig, axes = plt.subplots(siren.n_layers, 4, figsize=(14, 2.6 * siren.n_layers))
    for i, lin in enumerate(siren.linears):
        w = lin.weight.detach()
        a = inputs[i].detach()
        if i == 0:
            h = torch.tensor([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
            w = w @ torch.tensor(first_layer_input_matrix(n, n, False), dtype=torch.float32)
            a = v
        else:
            h = hadamard_orthonormal(a.shape[1])
        panels = [("W", w), ("W·Hᵀ", w @ h.T), ("input a", a), ("H·a", a @ h.T)]
        rec = {"layer": i}
        for j, (name, t) in enumerate(panels):
            x = t.numpy().ravel()
            k = excess_kurtosis(x)
            rec[name] = k
            ax = axes[i, j]
            ax.hist(x, bins=60, color="C0" if j % 2 == 0 else "C1")
            ax.set_title(f"layer {i}: {name}  (kurtosis {k:+.2f})", fontsize=9)
            ax.tick_params(labelsize=7)
        rows.append(rec)
    fig.suptitle(f"{Path(args.image).name} {n}², width {args.width}, depth {args.depth}, {args.steps} steps "
                 f"(excess kurtosis: 0 Gaussian, −1.2 uniform, −1.5 arcsine/U-shaped)", fontsize=10)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_file(args.out, lambda f: fig.savefig(f, format="png", dpi=80))
    print("| layer | W | W·Hᵀ | input a | H·a |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layer']} | {r['W']:+.2f} | {r['W·Hᵀ']:+.2f} | {r['input a']:+.2f} | {r['H·a']:+.2f} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from dhq_rtl.cli import run_main

    run_main(main)
