"""ECP5 (ULX3S) build: the Yosys script fix and one real bitstream build.

Yosys 0.70's ``synth_ecp5`` maps LUTs with ABC9; when it writes the mapped
netlist back it names bit ``k`` of a wire ``x`` ``x[k]``. Amaranth's RTLIL
also has wires literally called ``x[k]`` (the elements of an array view, next
to the whole wire ``x``), so two different nets can end up under one name and
synthesis stops on ``Assert GetSize(conn.first) == GetSize(conn.second)``
(rtlil.cc:3091) — as the ULX3S build of the default model did. The build
renames those element wires to private names before synthesis
(:data:`dhq_rtl.build.ECP5_SCRIPT_AFTER_READ`).

The real build takes about 3 minutes with YoWASP on a shared 2-core machine
(synthesis ~40 s, place-and-route of the 85k device most of the rest); it is
marked ``slow`` like the iCEBreaker build and runs in the default test run.
"""


import pytest
from amaranth.build import run as amaranth_run

from dhq_rtl.boards import get_board
from dhq_rtl.build import ECP5_SCRIPT_AFTER_READ, ICE40_NEXTPNR_OPTS, build
from dhq_rtl.errors import ToolchainError
from dhq_rtl.gateware.ram import YOSYS_SCRIPT as RAM_SCRIPT
from dhq_rtl.firmware import default_model
from dhq_rtl.synthesis import run_tool


class _Stop(Exception):
    pass


def _plan_files(board_name, tmp_path, monkeypatch):
    """The files of the build plan that ``build`` would execute for the
    default model on ``board_name`` (the tools are not run)."""
    captured = {}

    def fake_execute(self, root="build", **kwargs):
        captured.update(self.files)
        raise _Stop()

    monkeypatch.setattr(amaranth_run.BuildPlan, "execute_local", fake_execute)
    model, source = default_model()
    with pytest.raises(ToolchainError):
        build(model, get_board(board_name), tmp_path, source=source, fallback=False, log=lambda *a: None)
    return captured


def _script_lines(files):
    return [line.strip() for line in files["top.ys"].splitlines() if line.strip()]


def _block_between(lines, block, first, last):
    """Whether the lines of ``block`` stand together in ``lines`` after the
    line ``first`` and before the line ``last``."""
    block = block.splitlines()
    start = lines.index(block[0])
    return (lines[start:start + len(block)] == block
            and lines.index(first) < start and start + len(block) <= lines.index(last))


def test_ecp5_script_renames_before_synthesis(tmp_path, monkeypatch):
    lines = _script_lines(_plan_files("ulx3s", tmp_path, monkeypatch))
    synth = [l for l in lines if l.startswith("synth_ecp5")]
    assert len(synth) == 1
    assert _block_between(lines, ECP5_SCRIPT_AFTER_READ, "read_rtlil top.il", synth[0])
    after_read = ECP5_SCRIPT_AFTER_READ.splitlines()
    assert "rename -hide w:*]" in after_read and RAM_SCRIPT.splitlines() == after_read[:-1]


def test_ice40_script_has_no_dsp_inference(tmp_path, monkeypatch):
    """The iCE40 build synthesizes without -dsp (Yosys's ice40_dsp pass
    would rewrite the design's SB_MAC16 instances) and without the ECP5
    name fix."""
    files = _plan_files("icebreaker", tmp_path, monkeypatch)
    lines = _script_lines(files)
    assert "rename -hide w:*]" not in lines
    synth = [l for l in lines if l.startswith("synth_ice40")]
    assert len(synth) == 1 and "-dsp" not in synth[0].split()
    # The block RAMs' collision marks (dhq_rtl.gateware.ram) come first.
    assert _block_between(lines, RAM_SCRIPT, "read_rtlil top.il", synth[0])
    # nextpnr runs its post-placement timing pass.
    script = files["build_top.sh"]
    script = script.decode() if isinstance(script, bytes) else script
    pnr = [l for l in script.splitlines() if "NEXTPNR_ICE40" in l and "--json" in l]
    assert len(pnr) == 1 and ICE40_NEXTPNR_OPTS in pnr[0]


def _bracketed_public_wires(work, prelude):
    """Public wire names ending in ``]`` in the flattened ULX3S design after
    ``prelude`` (Yosys commands), as ``select -list`` prints them."""
    script = ["read_rtlil top.il", *prelude, "hierarchy -top top", "flatten",
              "tee -q -o wires.txt select -list w:*]", "tee -q -o ports.txt select -list top/x:*"]
    (work / "names.ys").write_text("\n".join(script) + "\n")
    run_tool("yosys", ["-q", "-l", "names.log", "-s", "names.ys"], cwd=work, log="names.log", timeout=300)
    wires = [l.strip() for l in (work / "wires.txt").read_text().splitlines() if l.strip()]
    ports = sorted(l.strip() for l in (work / "ports.txt").read_text().splitlines() if l.strip())
    return wires, ports


@pytest.mark.slow
def test_ecp5_rename_leaves_no_array_element_names(tmp_path, monkeypatch):
    """Without the rename the flattened ULX3S design has public ``x[k]``
    wires beside ``x`` (the names ABC9 reuses); with it none remain and the
    top-level ports are untouched."""
    files = _plan_files("ulx3s", tmp_path / "plan", monkeypatch)
    work = tmp_path / "yosys"
    work.mkdir()
    (work / "top.il").write_text(files["top.il"])
    before, ports_before = _bracketed_public_wires(work, [])
    assert before, "the design has no array-view element wires; this test no longer checks anything"
    # Each element wire x[k] has its whole wire x beside it: the clash ABC9 trips on.
    wholes = {w.rsplit("[", 1)[0] for w in before}
    assert len(wholes) < len(before)
    after, ports_after = _bracketed_public_wires(work, [ECP5_SCRIPT_AFTER_READ])
    assert after == []
    assert ports_after == ports_before and ports_after


@pytest.mark.slow
def test_ulx3s_build_default_model(tmp_path, check_build_outputs):
    model, source = default_model()
    board = get_board("ulx3s")
    report = build(model, board, tmp_path, source=source, fallback=False, log=lambda *a: None)
    data = check_build_outputs(tmp_path, report, "top.bit")
    res = data["resources"]
    # 32 lanes of fabric `*` → one MULT18X18D each; the weights in DP16KD.
    assert data["parameters"]["lanes"] == board.default_lanes == 32
    assert res["dsp"]["used"] == 32 and data["cells"].get("MULT18X18D") == 32
    assert data["cells"].get("DP16KD", 0) >= 1 and res["ebr"]["used"] >= 1
    assert res["lut"]["used"] > 1000 and res["pll"]["used"] == 1
    assert data["clocks"] and all(c["fmax_mhz"] > 0 for c in data["clocks"].values())
    assert isinstance(data["timing_met"], bool)
    assert data["parameters"]["clock_mhz"] == board.default_mhz
