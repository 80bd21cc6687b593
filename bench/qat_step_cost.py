"""Cost of a QAT step on the integer model against one on the float fake-quant pass.

``QuantSiren.forward(hardware=True)`` exports the model and runs the integer
datapath (``reference/emulate.py``) at every step; this measures what that
costs, both kinds of step timed alternately in one run (the ratio is the
figure to trust on a shared machine).

    python bench/qat_step_cost.py [--shapes 64:32 128:64] [--steps 20]
"""

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    import torch

    from dhq_rtl.images import load_image, to_signed
    from dhq_rtl.reference.fit import method_specs
    from dhq_rtl.reference.qmodel import QuantSiren, set_act_grid, set_first_weight_grid
    from dhq_rtl.reference.siren import Siren

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["64:32", "128:64"], help="size:width")
    p.add_argument("--bits", type=int, default=6)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for shape in args.shapes:
        size, width = (int(x) for x in shape.split(":"))
        px = load_image(HERE / "images" / "camera.png", size)
        target = torch.tensor(to_signed(px).reshape(-1, 1))
        torch.manual_seed(0)
        specs = set_first_weight_grid(set_act_grid(method_specs("naive", 4, args.bits, args.bits, True), True), True)
        qm = QuantSiren(Siren(width, 3, 1, 30.0), specs, height=size, width=size)
        qm.init_steps("mse")
        opt = torch.optim.Adam(qm.parameters(), 1e-5)
        seconds = {False: 0.0, True: 0.0}
        for _ in range(2):
            for hardware in (False, True):
                t = time.perf_counter()
                for _ in range(args.steps):
                    opt.zero_grad()
                    torch.mean((qm(hardware=hardware) - target) ** 2).backward()
                    opt.step()
                seconds[hardware] += time.perf_counter() - t
        per = {k: v / (2 * args.steps) * 1e3 for k, v in seconds.items()}
        print(f"{size}², width {width}, W{args.bits}A{args.bits}: float fake-quant step {per[False]:.1f} ms, "
              f"integer-model step {per[True]:.1f} ms, ratio {per[True] / per[False]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
