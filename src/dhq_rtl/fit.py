"""Resource estimate of the accelerator before place-and-route.

:func:`estimate` adds up what :class:`~dhq_rtl.gateware.core.InrCore` and the
board top instantiate, from the model and the parameters alone (no
elaboration, no tools): block RAM per memory (the cheapest legal aspect ratio
of the board's RAM blocks; memories below :data:`MIN_RAM_BITS` are counted as
flip-flops, as Yosys maps them), DSPs (dual 8×8 pairs or one per lane), and
logic cells from per-block models calibrated against Yosys/nextpnr on the
iCEBreaker build (see ``docs/RESULTS.md`` for how close they came).
:func:`check_fit` raises :class:`~dhq_rtl.errors.FitError` naming every
resource that does not fit and by how much.
"""

import math

from .errors import FitError
from .gateware.plan import CorePlan
from .gateware.coords import first_layer_constants

__all__ = ["estimate", "check_fit", "memories", "MIN_RAM_BITS"]

#: Memories smaller than this many bits are counted as flip-flops.
MIN_RAM_BITS = 256
#: Constant tables (ROMs) at most this deep become logic, not block RAM
#: (what Yosys's memory_libmap chooses for iCE40).
MAX_LOGIC_ROM_DEPTH = 32

#: Block RAM aspect ratios (width, depth).
_ICE40_EBR = ((16, 256), (8, 512), (4, 1024), (2, 2048))
_ECP5_EBR = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))


def _blocks(width, depth, shapes):
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in shapes)


def memories(plan):
    """``[(name, width, depth)]`` of every memory of the core."""
    m = plan.model
    L = plan.n_layers
    P = plan.lanes
    out = [
        ("activation buffers", plan.act_word * plan.act_bits, plan.buffers * plan.load_words),
        ("weights", P * plan.weight_bits, plan.weight_rows),
    ]
    # Scaler table: one word per (layer, channel slot) of every layer.
    chw = max(1, math.ceil(math.log2(max(l.out_features for l in m.layers))))
    bias_lo = min(min(int(l.bias.min()) for l in m.layers), 0)
    bias_hi = max(max(int(l.bias.max()) for l in m.layers), 0)
    bias_w = max(bias_lo.bit_length(), bias_hi.bit_length()) + 1
    out.append(("scaler table", max(l.mult_bits for l in m.layers) + bias_w, L << chw))
    stored = (1 << m.phase_bits) // (4 if plan.quarter_wave else 1)
    out.append(("sine tables", plan.lut_bits, stored * len(plan.tables)))
    if plan.rot_n >= 2:
        lw = max(1, (L - 1).bit_length())
        bw = max(1, (plan.buffers - 1).bit_length())
        for s in range(int(math.log2(plan.rot_n))):
            out.append((f"butterfly stage {s}", plan.lut_bits + s + 1 + lw + bw, 1 << s))
    n0 = m.layers[0].out_features
    mod_bits = first_layer_constants(m)[3]
    kw0 = max(1, (n0 - 1).bit_length())
    out += [("first-layer constants (ROM)", 3 * mod_bits, n0),
            ("first-layer running sums (R and T)", mod_bits, 2 << kw0)]
    acc_depth = 1 << max(0, (plan.out_max + 4 - 1).bit_length())
    out.append(("accumulator FIFO", plan.acc_bits + max(1, (L - 1).bit_length()), acc_depth))
    return out


def estimate(model, board, *, lanes=None, buffers=6):
    """Estimated resources of the whole design on ``board``: a dict with the
    board's budget keys plus ``"details"`` (per-memory block counts)."""
    lanes = board.default_lanes if lanes is None else lanes
    plan = CorePlan(model, lanes=lanes, dsp=board.dsp, buffers=buffers)
    shapes = _ICE40_EBR if board.family == "ice40" else _ECP5_EBR
    ebr, ff_bits, details = 0, 0, []
    for name, width, depth in memories(plan):
        bits = width * depth
        if "(ROM)" in name and depth <= MAX_LOGIC_ROM_DEPTH:
            ff_bits += width * max(1, depth // 16)
            details.append({"memory": name, "width": width, "depth": depth, "blocks": 0})
        elif bits < MIN_RAM_BITS:
            ff_bits += bits
            details.append({"memory": name, "width": width, "depth": depth, "blocks": 0})
        else:
            b = _blocks(width, depth, shapes)
            ebr += b
            details.append({"memory": name, "width": width, "depth": depth, "blocks": b})
    # DSPs.
    if board.family == "ice40":
        dsp = plan.dsp_blocks
    else:
        dsp = lanes * (1 if plan.act_bits <= 18 and plan.weight_bits <= 18 else 4)
    # Logic: per-block models (LUT4 + carry ≈ one logic cell per result bit of
    # each adder, one per register bit that is not packed with a LUT).
    m = model
    P = lanes
    tree = sum((P >> (t + 1)) * (plan.act_bits + plan.weight_bits + t + 1)
               for t in range(int(math.log2(P)))) if P > 1 else 0
    mac = tree + plan.acc_bits * 2 + (P * (plan.act_bits + plan.weight_bits) if board.family == "ice40" and not plan.dual and board.dsp != "ice40" else 0)
    t_width = plan.acc_bits + plan.mult_bits + 2
    scaler = (plan.mult_bits + 1) * t_width * 2
    bfly = 0
    if plan.rot_n >= 2:
        for s in range(int(math.log2(plan.rot_n))):
            w = plan.lut_bits + s + 1
            depth = 1 << s
            bfly += 4 * w + 30 + (w * depth * 2 if depth * w < MIN_RAM_BITS else 0)
    requant = 3 * (plan.lut_bits + int(math.log2(max(plan.rot_n, 1))) + 8)
    coords = 4 * first_layer_constants(m)[3] + 60
    control = 1100 + 12 * plan.buffers   # calibrated: iCEBreaker build of the default model
    # The running job's input vector, the next one's (flip-flops) and the
    # registered chunk that feeds the MAC array.
    vector_regs = 2 * plan.cpow * P * plan.act_bits + P * plan.act_bits
    uart_top = 150
    lc = int(mac + scaler + bfly + requant + coords + control + vector_regs + uart_top + ff_bits)
    est = {"ebr": ebr, "dsp": dsp, "pll": 1 if board.pll else 0, "details": details}
    if board.family == "ice40":
        est["lc"] = lc
        est["spram"] = 0
    else:
        est["lut"] = lc
    est["plan"] = plan.summary()
    return est


def check_fit(est, board):
    """Raise :class:`FitError` if any estimated resource exceeds the budget."""
    over = []
    for key, avail in board.budget.items():
        need = est.get(key, 0)
        if need > avail:
            over.append(f"{key.upper()} needs {need} of {avail} (over by {need - avail})")
    if over:
        raise FitError(f"the model does not fit the {board.name}: " + "; ".join(over)
                       + " — use fewer lanes (--lanes), a smaller model, or a larger board")
    return True
