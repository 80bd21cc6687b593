"""The iCE40 (SB_MAC16) form of the FP32 units, bit-exact in Verilog simulation.

Amaranth's simulator cannot run ``SB_MAC16`` instances, so ``dsp="ice40"``
is converted to Verilog and simulated with Yosys's own iCE40 cell models
(``share/ice40/cells_sim.v``) under Verilator, with random stalls on both
stream sides; every output is compared with the numpy twin. This checks the
unsigned 16×16 DSP configuration, the piece offsets and, for the shared
multiplier of ``Fp32Sine(ii=…)``, the slot schedule.
"""

import numpy as np
import pytest

from dhq_rtl import float32_ref as ref
from dhq_rtl.gateware.float32 import Fp32Mul, Fp32Sine

from tests import fp32_vectors as vec
from tests.verilog_stream import stream_outputs as verilog_stream

pytestmark = pytest.mark.slow


def test_mul_sb_mac16_bit_exact(tmp_path):
    rng = np.random.default_rng(21)
    sets = [vec.all_pairs(vec.specials()), vec.mul_ties(rng, 500), vec.mul_carries(rng, 500),
            vec.mul_range_edges(rng, 500), (vec.random_normal(rng, 1500), vec.random_normal(rng, 1500))]
    a = np.concatenate([s[0] for s in sets]).astype(np.uint64)
    b = np.concatenate([s[1] for s in sets]).astype(np.uint64)
    dut = Fp32Mul(dsp="ice40")
    assert dut.dsp_count == 4
    got = verilog_stream(dut, a | (b << np.uint64(32)), tmp_path)
    want = ref.mul(a.astype(np.uint32), b.astype(np.uint32))
    assert np.array_equal(got.astype(np.uint32), want)


@pytest.mark.parametrize("ii", [1, 11])
def test_sine_sb_mac16_bit_exact(tmp_path, ii):
    t = vec.sine_phases(np.random.default_rng(22 + ii), 1500 if ii == 1 else 300)
    dut = Fp32Sine(dsp="ice40", ii=ii)
    assert dut.dsp_count == (9 if ii == 1 else 1)
    got = verilog_stream(dut, t, tmp_path, seed=ii)
    assert np.array_equal(got.astype(np.uint32), ref.sin_turns(t))
