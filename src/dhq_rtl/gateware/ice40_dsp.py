"""iCE40 ``SB_MAC16`` DSP instances used as registered signed multipliers.

``synth_ice40 -dsp`` maps every inferred multiply to a whole ``SB_MAC16``,
even an 8×8 one; the DSP can do two independent 8×8 products per cycle
(``MODE_8x8``), which only an explicit instance gets. The two helpers here
build such instances (parameters as in Yosys's ``ice40/cells_sim.v`` model
and Lattice's "DSP Function Usage Guide for iCE40 Devices"):

* :func:`dual_mul8x8` — ``MODE_8x8 = 1``, ``A_SIGNED = B_SIGNED = 1``: the
  top product ``A[15:8]·B[15:8]`` (register F) appears on ``O[31:16]``, the
  bottom product ``A[7:0]·B[7:0]`` (register G) on ``O[15:0]``, each a 16-bit
  signed value, registered once inside the DSP (``TOP/BOT_8x8_MULT_REG``).
* :func:`mul16x16` — ``MODE_8x8 = 0``, 16×16 with each operand signed or
  unsigned, product on ``O[31:0]`` through the second pipeline register
  (``PIPELINE_16x16_MULT_REG2``).

Both have a latency of exactly one clock (when ``ce`` is high), like a
registered ``a * b`` in fabric, so the generic and iCE40 datapaths have the
same timing. The multiplier registers are not reset (nothing needs them to
be: the valid bits travelling beside them are).

These instances must not go through Yosys's ``ice40_dsp`` pass (what
``synth_ice40 -dsp`` runs): it takes every ``SB_MAC16`` for a multiplier to
pack, rewrites it as a 16×16 product (``MODE_8x8 = 0``) and drops the
registers it did not find in fabric (``CLK`` tied low). The builds therefore
synthesize iCE40 designs without ``-dsp`` and every DSP of the design is an
explicit instance (:data:`dhq_rtl.synthesis.ICE40_SYNTH`); the build checks
the synthesized netlist's ``SB_MAC16`` cells against the instances
(:func:`dhq_rtl.synthesis.check_dsp_cells`).
"""

from amaranth.hdl import C, Cat, ClockSignal, Instance, Signal

__all__ = ["dual_mul8x8", "mul16x16", "MAX_DUAL_BITS", "MAX_SINGLE_BITS"]

#: Widest signed operand of one half of the dual 8×8 mode.
MAX_DUAL_BITS = 8
#: Widest signed operand of the 16×16 mode.
MAX_SINGLE_BITS = 16

_COMMON_INPUTS = ("AHOLD", "BHOLD", "CHOLD", "DHOLD", "IRSTTOP", "IRSTBOT", "ORSTTOP", "ORSTBOT",
                  "OLOADTOP", "OLOADBOT", "ADDSUBTOP", "ADDSUBBOT", "OHOLDTOP", "OHOLDBOT",
                  "CI", "ACCUMCI", "SIGNEXTIN")


def _instance(params, a, b, ce, o, domain):
    kwargs = {f"p_{k}": v for k, v in params.items()}
    kwargs.update({f"i_{k}": C(0, 1) for k in _COMMON_INPUTS})
    return Instance("SB_MAC16", **kwargs,
                    i_CLK=ClockSignal(domain), i_CE=ce,
                    i_A=a, i_B=b, i_C=C(0, 16), i_D=C(0, 16),
                    o_O=o)


def _common_params(a_signed=True, b_signed=True):
    return {
        "NEG_TRIGGER": C(0, 1), "C_REG": C(0, 1), "A_REG": C(0, 1), "B_REG": C(0, 1), "D_REG": C(0, 1),
        "TOPADDSUB_LOWERINPUT": C(0, 2), "TOPADDSUB_UPPERINPUT": C(0, 1), "TOPADDSUB_CARRYSELECT": C(0, 2),
        "BOTADDSUB_LOWERINPUT": C(0, 2), "BOTADDSUB_UPPERINPUT": C(0, 1), "BOTADDSUB_CARRYSELECT": C(0, 2),
        "A_SIGNED": C(int(a_signed), 1), "B_SIGNED": C(int(b_signed), 1),
    }


def dual_mul8x8(m, a_lo, b_lo, a_hi, b_hi, *, ce, domain="sync", name=None):
    """Two registered signed 8×8 products in one ``SB_MAC16``.

    Adds the instance to module ``m`` (as submodule ``name``) and returns the
    two products ``(a_lo·b_lo, a_hi·b_hi)`` as ``signed(16)`` signals, valid
    one ``domain`` clock after the operands (the DSP's pipeline advances only
    while ``ce`` is high). Operands are signed values of at most 8 bits each.
    """
    ops = []
    for v in (a_lo, b_lo, a_hi, b_hi):
        v = v.as_signed()
        if len(v) > MAX_DUAL_BITS:
            raise ValueError(f"dual 8×8 mode needs operands of at most {MAX_DUAL_BITS} bits, got {len(v)}")
        ops.append(Cat(v, v[-1].replicate(MAX_DUAL_BITS - len(v))) if len(v) < MAX_DUAL_BITS else v)
    a_lo, b_lo, a_hi, b_hi = ops
    o = Signal(32, name=f"{name}_o" if name else None)
    params = _common_params()
    params.update({
        "MODE_8x8": C(1, 1), "TOP_8x8_MULT_REG": C(1, 1), "BOT_8x8_MULT_REG": C(1, 1),
        "PIPELINE_16x16_MULT_REG1": C(0, 1), "PIPELINE_16x16_MULT_REG2": C(0, 1),
        "TOPOUTPUT_SELECT": C(2, 2), "BOTOUTPUT_SELECT": C(2, 2),
    })
    inst = _instance(params, Cat(a_lo, a_hi), Cat(b_lo, b_hi), ce, o, domain)
    if name is None:
        m.submodules += inst
    else:
        m.submodules[name] = inst
    return o[:16].as_signed(), o[16:].as_signed()


def mul16x16(m, a, b, *, ce, domain="sync", name=None, signed=True, b_signed=None):
    """One registered 16×16 product in one ``SB_MAC16``: returns ``a·b``,
    valid one clock after the operands. ``signed``: ``a`` is a signed
    operand of at most 16 bits (sign-extended), else an unsigned one
    (zero-extended); ``b_signed`` the same for ``b`` (default: as ``a``).
    The result is ``signed(32)`` when either operand is signed (a signed
    16-bit by unsigned 16-bit product fits), else ``unsigned(32)``."""
    if b_signed is None:
        b_signed = signed
    ops = []
    for v, is_signed in ((a, signed), (b, b_signed)):
        v = v.as_signed() if is_signed else v.as_unsigned()
        if len(v) > MAX_SINGLE_BITS:
            raise ValueError(f"16×16 mode needs operands of at most {MAX_SINGLE_BITS} bits, got {len(v)}")
        if len(v) < MAX_SINGLE_BITS:
            pad = v[-1].replicate(MAX_SINGLE_BITS - len(v)) if is_signed else C(0, MAX_SINGLE_BITS - len(v))
            v = Cat(v, pad)
        ops.append(v)
    o = Signal(32, name=f"{name}_o" if name else None)
    params = _common_params(signed, b_signed)
    params.update({
        "MODE_8x8": C(0, 1), "TOP_8x8_MULT_REG": C(0, 1), "BOT_8x8_MULT_REG": C(0, 1),
        "PIPELINE_16x16_MULT_REG1": C(0, 1), "PIPELINE_16x16_MULT_REG2": C(1, 1),
        "TOPOUTPUT_SELECT": C(3, 2), "BOTOUTPUT_SELECT": C(3, 2),
    })
    inst = _instance(params, ops[0], ops[1], ce, o, domain)
    if name is None:
        m.submodules += inst
    else:
        m.submodules[name] = inst
    return o.as_signed() if signed or b_signed else o
