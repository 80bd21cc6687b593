"""Resource estimate of the accelerator before place-and-route.

:func:`estimate` adds up what the core's plan (:class:`~dhq_rtl.gateware.plan.CorePlan`,
the same object :class:`~dhq_rtl.gateware.core.InrCore` elaborates from) and
the board top instantiate, from the model and the parameters alone (no
elaboration, no tools): block RAM per memory of the plan (the cheapest legal
aspect ratio of the board's RAM blocks; memories below :data:`MIN_RAM_BITS`
and small constant tables are counted as logic, as Yosys maps them), DSPs
(dual 8×8 pairs or one per lane), and logic cells from per-block models
calibrated against Yosys/nextpnr on the iCEBreaker build (see
``docs/RESULTS.md`` for how close they came). :func:`check_fit` raises
:class:`~dhq_rtl.errors.FitError` naming every resource that does not fit
and by how much.

The float core (``arith="fp32"``, :class:`~dhq_rtl.gateware.float32.plan.FloatCorePlan`)
is estimated the same way: its plan's memories, its DSPs (four 16×16
pieces per FP32 multiplier, the sine's shared pieces), and logic from the
FP32 units' measured sizes plus the float control (:func:`_float_logic`).
:func:`default_float_lanes` is the largest lane count whose estimate fits a
board: the float core's default lanes.
"""

import math

from .errors import FitError
from .gateware.plan import CorePlan

__all__ = ["estimate", "check_fit", "fabric_product_luts", "fabric_adder_bits", "lanes_that_fit",
           "default_float_lanes", "MIN_RAM_BITS", "MAX_LOGIC_ROM_DEPTH"]

#: Memories smaller than this many bits are counted as flip-flops.
MIN_RAM_BITS = 256
#: Constant tables (ROMs) at most this deep become logic, not block RAM
#: (what Yosys's memory_libmap chooses for iCE40), unless they ask for block RAM.
MAX_LOGIC_ROM_DEPTH = 32
#: Block RAMs of the board top beside the core (the host link's INFO ROM).
LINK_ROM_BLOCKS = 1

#: Block RAM aspect ratios (width, depth).
_ICE40_EBR = ((16, 256), (8, 512), (4, 1024), (2, 2048))
_ECP5_EBR = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
#: ECP5 distributed RAM (TRELLIS_DPR16X4: depth, width) and Yosys
#: memory_libmap's costs for it (its techlib's ``cost``; the pass adds half a
#: unit per bit of the read multiplexer and per write-enable of the row
#: decoder when the depth takes several rows) and for a DP16KD block: a
#: memory goes to the cheaper. The block's cost is the techlib's 128 plus a
#: margin measured on the ULX3S builds: Yosys chose distributed RAM at costs
#: of 129.5 (the fixed-model activation buffers) and 131 (the W4A4 core's
#: accumulator FIFO), block RAM at 153 (the W6A6 core's): the crossover is
#: taken between, at 140. ``logic_rom_bits``: a constant table this small
#: that does not ask for block RAM becomes logic (memory_libmap's "FF
#: mapping": the fixed-model core's 8 × 256 sine table did, the float core's
#: 62 × 256 one went to block RAM); the bound is taken between the two.
#: ``bare_block_cost``: the block's cost for a memory whose read-during-write
#: data is undefined (:mod:`dhq_rtl.gateware.ram`): the techlib's alone, no
#: read-first emulation to add (the bundled model's fixed-model activation
#: buffers, cost 129.5 as distributed RAM, went to block RAM once they
#: were such a memory).
_ECP5_DISTRIBUTED = {"shape": (16, 4), "cost": 4, "block_cost": 140, "bare_block_cost": 128, "mux_cost": 0.5,
                     "logic_rom_bits": 4096}


def _blocks(width, depth, shapes):
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in shapes)


def _distributed(width, depth, blocks, distributed, bare=False):
    """Whether Yosys maps a memory to distributed RAM instead of ``blocks``
    block RAMs (``distributed``: :data:`_ECP5_DISTRIBUTED`, or None;
    ``bare``: its read-during-write data is undefined)."""
    if distributed is None:
        return False
    d, w = distributed["shape"]
    rows = math.ceil(depth / d)
    cost = distributed["cost"] * rows * math.ceil(width / w)
    if rows > 1:
        cost += distributed["mux_cost"] * ((rows - 1) * width + rows)
    return cost < distributed["bare_block_cost" if bare else "block_cost"] * blocks


def _memory_blocks(plan, shapes, distributed=None):
    """``(block RAMs, SPRAMs, flip-flop bits, details)`` of the plan's memories."""
    ebr, spram, ff_bits, details = 0, 0, 0, []
    for mem in plan.memories:
        if mem.kind == "spram":
            spram += 1
            blocks = 0
        elif mem.rom and not mem.block_ram and (mem.depth <= MAX_LOGIC_ROM_DEPTH or (
                distributed is not None and mem.bits <= distributed["logic_rom_bits"])):
            ff_bits += mem.width * max(1, mem.depth // 16)
            blocks = 0
        elif mem.bits < MIN_RAM_BITS and not mem.block_ram:
            ff_bits += mem.bits
            blocks = 0
        else:
            blocks = _blocks(mem.width, mem.depth, shapes)
            if not mem.block_ram and _distributed(mem.width, mem.depth, blocks, distributed,
                                                  mem.undefined_collisions):
                blocks = 0
                details.append({"memory": mem.role, "path": mem.path, "width": mem.width, "depth": mem.depth,
                                "blocks": 0, "kind": "distributed"})
                continue
            ebr += blocks
        details.append({"memory": mem.role, "path": mem.path, "width": mem.width, "depth": mem.depth,
                        "blocks": blocks, "kind": mem.kind})
    for stage, depth, width, in_ram in getattr(plan, "delay_lines", ()):
        if not in_ram:
            ff_bits += width * depth
            details.append({"memory": f"butterfly stage {stage} (flip-flops)", "path": f"post.butterfly.stage{stage}",
                            "width": width, "depth": depth, "blocks": 0, "kind": "flip-flops"})
    return ebr, spram, ff_bits, details


def _logic_cells(plan, board, ff_bits):
    """Logic cells: per-block models (LUT4 + carry ≈ one logic cell per result
    bit of each adder, one per register bit that is not packed with a LUT)."""
    P = plan.lanes
    tree = sum((P >> (t + 1)) * (plan.act_bits + plan.weight_bits + t + 1)
               for t in range(int(math.log2(P)))) if P > 1 else 0
    if plan.dsp == "fabric":
        products = P * fabric_product_luts(plan.act_bits, plan.weight_bits)
    elif board.family == "ice40" and not plan.dual and board.dsp != "ice40":
        products = P * (plan.act_bits + plan.weight_bits)
    else:
        products = 0
    mac = tree + plan.acc_bits * 2 + products
    t_width = plan.scaler_acc_bits + plan.mult_bits + 2
    scaler = (plan.mult_bits + 1) * t_width * 2 if plan.scaler_multiplier == "logic" else 3 * t_width
    # The butterfly without back-pressure (the core's): per stage its sum and
    # difference and one output register, a flip-flop per bit of a delay
    # line outside block RAM. Calibrated on the iCEBreaker fixed-model
    # builds of rotated width-32 W8A8/W6A6/W4A4 models (3612/3441/3760 LC;
    # docs/RESULTS.md, "Timing closure").
    bfly = 0
    for stage, depth, width, in_ram in getattr(plan, "delay_lines", ()):
        data_bits = plan.lut_bits + stage + 1
        bfly += 3 * data_bits + 20 + (0 if in_ram else data_bits * depth)
    requant = 3 * (plan.lut_bits + int(math.log2(max(plan.rot_n, 1))) + 8)
    coords = 4 * (plan.model.layers[0].shift + plan.phase_bits) + 60
    # Calibrated: iCEBreaker build of the default model (the small queues,
    # counted in ff_bits, included), before the block RAMs dropped Yosys's
    # read-first emulation (taken off below).
    control = 1022 + 12 * plan.buffers
    # The running job's input vector, the next one's (flip-flops) and the
    # registered chunk that feeds the MAC array (none with direct reads).
    vector_regs = 0 if plan.direct else 2 * plan.cpow * P * plan.act_bits + P * plan.act_bits
    if board.family == "ecp5":
        # ECP5 slices hold a LUT and a flip-flop each: registers cost no LUT
        # (the vector registers, the small memories in flip-flops), and the
        # control and link terms above, counted in iCE40 logic cells, hold
        # registers that do not share a cell with logic.
        offset = _ECP5_INT_OFFSET if plan.loadable else _ECP5_FIXED_INT_OFFSET
        return int(mac + scaler + bfly + requant + coords + control + _link(plan, board) + offset)
    emulation = _READ_FIRST_EMULATION if plan.loadable else _READ_FIRST_EMULATION_FIXED
    return int(mac + scaler + bfly + requant + coords + control + vector_regs + _link(plan, board) + ff_bits
               - emulation)


#: Logic cells the iCE40 builds spent on Yosys's emulation of read-first
#: block RAMs before :mod:`dhq_rtl.gateware.ram` made their collisions
#: undefined, taken off the iCE40 models above (calibrated with it). The
#: loadable core (seven ports: activation buffers, FIFOs, the loadable
#: tables): the default build, 5019 → 4598 LC. A fixed model (its tables
#: are constants, so only the buffers and FIFOs had it): the mean of what
#: the model counted over the bundled model's and the rotated
#: W8A8/W6A6/W4A4 models' fixed-model builds without it (211–288 LC; the
#: builds 2688 → 2479, 3612 → 3399, 3441 → 3250, 3760 → 3547 LC). The ECP5
#: models have offsets of their own, calibrated after the change
#: (``_ECP5_INT_OFFSET``).
_READ_FIRST_EMULATION = 421
_READ_FIRST_EMULATION_FIXED = 260


def _link(plan, board):
    """The loadable core's load path with the host link (:func:`_load_path`),
    or for a fixed model (``plan.loadable`` false) the fixed link
    (:data:`_FIXED_LINK`) and what of the load path's logic stays: the
    scaler's barrel shifter (the shift still changes from layer to layer)
    and the per-layer look-ups of the constant descriptors
    (:data:`_FIXED_INT_LOOKUPS`)."""
    if plan.loadable:
        return _load_path(plan)
    fam = "ice40" if board.family == "ice40" else "ecp5"
    t_width = plan.scaler_acc_bits + plan.mult_bits + 2
    return _FIXED_LINK[fam] + t_width * plan.shift_width + _FIXED_INT_LOOKUPS


#: The ECP5 integer core's LUTs less the iCE40 model without its registers,
#: calibrated on the comparison's ULX3S builds at 8 lanes (docs/RESULTS.md,
#: "The paper's comparison"). After the second timing pass: W8A8/W6A6/W4A4
#: 4075/3883/3812 LUTs with DSP products, 5310/4577/4120 with products in
#: fabric (offset −878, each within 2.5 %). Once the block RAMs needed no
#: read-first logic (:mod:`dhq_rtl.gateware.ram`): 3911/3732/3512 and
#: 5209/4476/3873. The DSP builds lost 150–300 LUTs, the fabric ones
#: 8–250 (the bypass multiplexers had merged into the fabric products'
#: LUTs; the W4A4 builds also moved their accumulator FIFO from distributed
#: to block RAM): one offset, 155 lower, keeps all six within 3.5 %
#: (``tests/test_estimate.py``).
_ECP5_INT_OFFSET = -878 - 155
#: The same for the fixed-model core (no load path, whose logic the second
#: timing pass shrank): the ULX3S --fixed-model build of the default model,
#: 3257 LUTs, then 2994 once its block RAMs needed no read-first logic
#: (:mod:`dhq_rtl.gateware.ram`; its activation buffers moved from
#: distributed to block RAM: 12 → 13 DP16KD).
_ECP5_FIXED_INT_OFFSET = -778


def fabric_product_luts(act_bits, weight_bits):
    """Logic of one lane's product in fabric (``MacArray`` ``dsp="fabric"``,
    :func:`~dhq_rtl.gateware.mac.fabric_product`): a LUT per partial-product
    bit (``act_bits · weight_bits`` ANDs, some inverted), one per adder bit
    of the tree that sums the rows (:func:`fabric_adder_bits`) and 2 more.
    ECP5 LUTs (``LUT4`` and two per ``CCU2C``, a carry cell of two bits),
    calibrated on Yosys ``synth_ecp5`` of the bare
    :class:`~dhq_rtl.gateware.mac.MacArray`, ``*`` against fabric products
    (``bench/fabric_products.py``: 4×4 34, 6×6 76, 8×8 136, 8×4 73, 4×8 87
    per lane; this model within 1 of each; docs/RESULTS.md, "Products in fabric";
    ``tests/test_estimate.py``); iCE40 logic cells (a LUT4 with its carry)
    taken as the same count."""
    return act_bits * weight_bits + fabric_adder_bits(act_bits, weight_bits) + 2


def fabric_adder_bits(act_bits, weight_bits):
    """Result bits of the adders of :func:`~dhq_rtl.gateware.mac.fabric_product`
    once synthesis drops what is cut off: the same balanced tree over the
    same ``(width, offset)`` rows (row ``j``: ``act_bits`` bits at offset
    ``j``, a constant bit more on rows ``0`` (``a = w``) and ``w − 1``; a
    constant row when ``a ≠ w``), each sum ``max(x − d, y) + 1`` bits above
    the lower row's first ``d`` bits, none past the product's width."""
    n, m = act_bits, weight_bits
    width = n + m
    rows = [(n + (j == m - 1 or (j == 0 and n == m)), j) for j in range(m)] + ([(width, 0)] if n != m else [])
    total = 0
    while len(rows) > 1:
        nxt = []
        for j in range(0, len(rows), 2):
            if j + 1 == len(rows):
                nxt.append(rows[j])
                continue
            (xl, xo), (yl, yo) = sorted(rows[j:j + 2], key=lambda r: r[1])
            d = yo - xo
            if d >= xl:         # no overlap: side by side, no adder
                length = d + yl
            else:
                bits = min(max(xl - d, yl) + 1, width - xo - d)
                total += bits
                length = d + bits
            nxt.append((min(length, width - xo), xo))
        rows = nxt
    return total


def _load_path(plan):
    """Logic cells of what makes the core loadable and the host link: the
    descriptor registers and their per-layer look-ups, the scaler's barrel
    shifter, the installer (its entry assembly register and counters), the
    SPRAM port multiplexers, the UART, the frame receiver and transmitter
    with their CRC units and the command handler (calibrated on the
    iCEBreaker builds of docs/RESULTS.md, "Loadable core")."""
    from .gateware.descriptors import descriptor_layout
    descriptors = descriptor_layout(plan).size
    lookups = 3 * plan.layer_width * descriptors // max(1, plan.max_layers)
    t_width = plan.scaler_acc_bits + plan.mult_bits + 2
    barrel = t_width * plan.shift_width
    installer = 16 * max(s.words for s in plan.sections) + 200
    sprams = 4 * (14 + 16) * 2 if plan.weights_in_spram else 0
    # The UART, frame receiver and transmitter, CRC unit and command handler
    # (fixed), and what the per-block models above leave out of the loadable
    # core (its descriptor look-ups, control that grows with the index widths):
    # calibrated on the iCEBreaker build of the default envelope
    # (docs/RESULTS.md).
    link = 1450 + 170 * plan.index_width
    return descriptors + lookups + barrel + installer + sprams + link


#: Logic of one FP32 unit as the float core uses it: ECP5 LUT4s (Yosys
#: ``synth_ecp5``) with every register cut, and iCE40 logic cells with the
#: cuts the iCE40 build keeps (:meth:`FloatCorePlan.board_defaults
#: <dhq_rtl.gateware.float32.plan.FloatCorePlan.board_defaults>`: mul 2,
#: add 3, sine 5 stages): nextpnr ``ICESTORM_LC`` of the unit alone with
#: every cut (mul 294, add 826, sine 2175, measured with
#: ``bench/fp32_units.py``, docs/RESULTS.md, "FP32 units") less the
#: flip-flops of the cuts it does without (Yosys: mul 137, add 312, sine 889).
_FP32_UNIT_LOGIC = {
    "ice40": {"mul": 157, "add": 514, "sine": 1286},
    "ecp5": {"mul": 177, "add": 553, "sine": 651},
}
#: The rest of the float core: control, queues, coordinate generator, pixel
#: conversion, and (iCE40) those flip-flops of the removed cuts that shared
#: a logic cell with logic (so removing them saved no cell). iCE40:
#: calibrated on the iCEBreaker float build (docs/float32.md, "On the
#: board"): 5169 LC with the link and the weights as its plan builds them
#: (with the link's timing registers and the weight register it packed
#: into 5341, the terms below); ECP5: with :data:`_FP32_LANE`, the least
#: squares line through the ULX3S float builds of ``bench/fp32_core.py``
#: (TRELLIS_COMB 8444, 12820, 20908 at 4, 8, 16 lanes; docs/RESULTS.md,
#: "The float core (FP32) on both boards"). iCE40 less the read-first
#: logic its queues' block RAMs no longer need (:mod:`dhq_rtl.gateware.ram`):
#: the comparison's iCEBreaker float build, 5152 → 5003 LC (the ULX3S
#: 8-lane build 12820 → 12723 LUTs, within the ECP5 line's error).
_FP32_CONTROL = {"ice40": 2198 - 175, "ecp5": 2423}
#: Logic per lane beyond its units and chunk registers (the lane's weight
#: and activation words through the memories' read multiplexers and the
#: pipeline's registers): ECP5 from the same builds (1035 LUTs a lane
#: measured, 858 in the units' figures and the chunk registers); iCE40: one
#: lane only fits, its share is in the control term.
_FP32_LANE = {"ice40": 0, "ecp5": 177}
#: The host link of a board whose model is fixed (the float core): UART,
#: frame receiver and transmitter, one CRC unit, the command handler without
#: the load path (docs/float32.md, "On the board"). iCE40: 855 SB_LUT4 in
#: the first iCEBreaker float build, plus the registers of the link's and
#: controller's registered decisions, calibrated on the float build after
#: them (5350 LC at 3 buffers, 5294 at 2); ``synth_ecp5``: 920 LUT4 and 113
#: CCU2C before them.
_FIXED_LINK = {"ice40": 855 + 106, "ecp5": 920 + 2 * 113}
#: The integer core with a fixed model: the per-layer look-ups of its
#: constant descriptors and the control they feed, beside the fixed link:
#: calibrated on the iCEBreaker --fixed-model build of the default model
#: (2785 LC at seed 1; docs/RESULTS.md, "A fixed model").
_FIXED_INT_LOOKUPS = 61
#: What the iCE40 float build leaves out (its plan: ``link_timing_registers``
#: and ``weight_register`` false; ECP5 builds keep both), measured on the
#: iCEBreaker float build (nextpnr logic cells after packing, one lane): the
#: link's timing registers (5341 → 5208, with the fixed model's command
#: arguments kept narrow) and, per lane, the weights' second register with
#: the activations and control beside it (5208 → 5169, the build that fits).
_LINK_TIMING_REGISTERS = {"ice40": 133}
_WEIGHT_REGISTER = {"ice40": 39}


def _float_logic(plan, board, ff_bits):
    """Logic cells (iCE40) or LUTs (ECP5) of the float core: ``lanes``
    multipliers, ``lanes − 1`` tree adders and the accumulator's adder, the
    sine, the chunk registers (four of ``32·lanes`` bits: fetched, staged,
    current, the beat), the control, and the small memories kept in
    flip-flops, the host link."""
    fam = "ice40" if board.family == "ice40" else "ecp5"
    unit = _FP32_UNIT_LOGIC[fam]
    units = plan.lanes * unit["mul"] + plan.lanes * unit["add"] + unit["sine"]
    chunk_regs = 4 * 32 * plan.lanes
    link = _FIXED_LINK[fam] - (0 if plan.link_timing_registers else _LINK_TIMING_REGISTERS.get(fam, 0))
    weights = 0 if plan.weight_register else plan.lanes * _WEIGHT_REGISTER.get(fam, 0)
    lanes = plan.lanes * _FP32_LANE[fam]
    return int(units + chunk_regs + lanes - weights + _FP32_CONTROL[fam] + link + 12 * plan.buffers + ff_bits)


def _plan(model, board, lanes, buffers, arith, envelope, fixed_model=False):
    if arith == "int" and fixed_model:
        if envelope is not None:
            raise ValueError("a fixed model has no envelope")
        return CorePlan.for_board(model, board, lanes=lanes, buffers=6 if buffers is None else buffers,
                                  loadable=False)
    if arith == "fp32":
        from .gateware.float32.plan import FloatCorePlan
        return FloatCorePlan.for_board(model, board, lanes=lanes, buffers=buffers)
    if arith != "int":
        raise ValueError(f"arith must be 'int' or 'fp32', got {arith!r}")
    if envelope is None:
        from .envelope import Envelope
        envelope = Envelope.for_board(model, board)
    return CorePlan.for_board(model, board, lanes=lanes, buffers=6 if buffers is None else buffers,
                              envelope=envelope)


def estimate(model, board, *, lanes=None, buffers=None, envelope=None, arith="int", fixed_model=False):
    """Estimated resources of the whole design on ``board``: a dict with the
    board's budget keys plus ``"details"`` (per-memory block counts).
    ``arith``: ``"int"`` (the integer core for ``envelope``, default the
    tightest around ``model`` for the board: :meth:`Envelope.for_board
    <dhq_rtl.envelope.Envelope.for_board>`, with ``model`` loaded) or
    ``"fp32"`` (the float core of ``model``, ``lanes`` default 1; no
    envelope). ``buffers``: default 6, or the float core's board default.
    ``fixed_model``: the integer core for ``model`` alone
    (:class:`~dhq_rtl.gateware.plan.CorePlan` ``loadable=False``: no
    envelope, no staging memory, the weights in block RAM, the fixed link);
    the float core is fixed anyway."""
    if not isinstance(fixed_model, bool):
        raise TypeError(f"fixed_model must be a bool, not {fixed_model!r}")
    if arith == "fp32" and envelope is not None:
        raise ValueError("the float core has no envelope (its model is fixed)")
    plan = _plan(model, board, lanes, buffers, arith, envelope, fixed_model)
    if board.family == "ice40":
        ebr, spram, ff_bits, details = _memory_blocks(plan, _ICE40_EBR)
    else:
        ebr, spram, ff_bits, details = _memory_blocks(plan, _ECP5_EBR, _ECP5_DISTRIBUTED)
    if arith == "fp32":
        dsp = plan.dsp_blocks
        lc = _float_logic(plan, board, ff_bits)
    else:
        if board.family == "ice40":
            dsp = plan.dsp_blocks + (plan.scaler_dsp_blocks if plan.scaler_multiplier == "dsp" else 0)
        elif plan.dsp == "fabric":
            dsp = 0
        else:
            dsp = plan.lanes * (1 if plan.act_bits <= 18 and plan.weight_bits <= 18 else 4)
        lc = _logic_cells(plan, board, ff_bits)
    # The host link's INFO reply constants: one block RAM.
    ebr += LINK_ROM_BLOCKS
    details.append({"memory": "host link INFO constants", "path": "controller.info_rom", "width": 8,
                    "depth": 128, "blocks": LINK_ROM_BLOCKS, "kind": "ram"})
    est = {"ebr": ebr, "dsp": dsp, "pll": 1 if board.pll else 0, "details": details}
    if board.family == "ice40":
        est["lc"] = lc
        est["spram"] = spram
    else:
        est["lut"] = lc
    return est


def check_fit(est, board, fitting_lanes=None):
    """Raise :class:`FitError` if any estimated resource exceeds the budget.

    ``fitting_lanes``: a function returning the largest lane count that fits
    (or None); the message suggests ``--lanes`` only when one does.
    """
    over = []
    for key, avail in board.budget.items():
        need = est.get(key, 0)
        if need > avail:
            over.append(f"{key.upper()} needs {need} of {avail} (over by {need - avail})")
    if over:
        lanes = fitting_lanes() if fitting_lanes is not None else None
        if lanes is not None:
            advice = f"--lanes {lanes} fits (slower), or use a smaller model or a larger board"
        elif fitting_lanes is not None:
            advice = "no lane count fits: use a smaller model or a larger board"
        else:
            advice = "use a smaller model or a larger board"
        raise FitError(f"the model does not fit the {board.name}: " + "; ".join(over) + " — " + advice)
    return True


def lanes_that_fit(model, board, *, below, buffers=None, envelope=None, arith="int", fixed_model=False):
    """The largest power-of-two lane count under ``below`` whose estimate
    fits ``board``, or None."""
    lanes = 1 << ((below - 1).bit_length() - 1) if below > 1 else 0
    while lanes >= 1:
        try:
            est = estimate(model, board, lanes=lanes, buffers=buffers, envelope=envelope, arith=arith,
                           fixed_model=fixed_model)
        except ValueError:      # a lane count this model's core cannot use
            est = None
        if est is not None and all(est.get(k, 0) <= v for k, v in board.budget.items()):
            return lanes
        lanes //= 2
    return None


def default_float_lanes(model, board, *, buffers=None):
    """The float core's default lane count on ``board``: the largest power of
    two whose estimate fits (None if not even one lane fits)."""
    from .gateware.plan import MAX_LANES
    return lanes_that_fit(model, board, below=MAX_LANES + 1, buffers=buffers, arith="fp32")
