"""The host command: everything a user can get wrong is refused with one line
before the board is asked; the PNG is written atomically; through sim:// it
renders the bundled model's image on the simulated board."""

import numpy as np
import pytest
from PIL import Image

import dhq_rtl.firmware.host as host

from tests.safety_checks import assert_refused, digests, fill_disk, run_cli, under_a_file


class _Info:
    def __init__(self):
        from dhq_rtl.envelope import ENVELOPES
        self.envelope = ENVELOPES["default"]


@pytest.fixture
def board(monkeypatch):
    """A board that answers with a 4×3 RGB image; records whether a port was opened."""
    opened = []

    class FakePort:
        def close(self):
            pass

    def open_port(name, baud=None, log=None):
        opened.append(name)
        return FakePort()

    monkeypatch.setattr(host, "open_port", open_port)
    monkeypatch.setattr(host.Board, "info", lambda self: _Info())
    monkeypatch.setattr(host.Board, "render",
                        lambda self, region=None: (np.arange(36, dtype=np.uint8).reshape(3, 4, 3), 0.01))
    return opened


def test_writes_the_png(tmp_path, board, capsys):
    out = tmp_path / "board.png"
    code, stdout, err = run_cli(host.main, ["--port", "/dev/null", "render", "--out", str(out)], capsys)
    assert code == 0 and board == ["/dev/null"]
    assert np.array_equal(np.asarray(Image.open(out)), np.arange(36, dtype=np.uint8).reshape(3, 4, 3))


@pytest.mark.parametrize("make_out, needle", [
    (lambda d: d / "port", "is the same file as --port"),
    (lambda d: under_a_file(d) / "x.png", "is a file, not a folder"),
    (lambda d: d / "notes.txt", "exists and is not a PNG"),
    (lambda d: d, "is a folder"),
])
def test_bad_out_is_refused_before_the_board_is_asked(tmp_path, board, capsys, make_out, needle):
    port = tmp_path / "port"
    port.write_text("a serial device stand-in")
    (tmp_path / "notes.txt").write_text("my notes")
    out = make_out(tmp_path)
    before = digests(tmp_path)
    assert_refused(run_cli(host.main, ["--port", str(port), "render", "--out", str(out)], capsys), needle)
    assert board == [] and digests(tmp_path) == before


@pytest.mark.parametrize("args, needle", [
    (["--baud", "0", "info"], "--baud must be a positive integer"),
    (["--retries", "0", "info"], "--retries must be at least 1"),
    (["--timeout-scale", "-1", "info"], "--timeout-scale must be a positive number"),
    (["render", "--region", "1,2,3", "--out", "x.png"], "--region must be x0,y0,x1,y1"),
    (["load", "missing.dhq"], "cannot read model image missing.dhq"),
])
def test_bad_arguments_are_refused_before_the_board_is_asked(tmp_path, board, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    assert_refused(run_cli(host.main, ["--port", "/dev/null", *args], capsys), needle)
    assert board == []


def test_a_serial_port_without_pyserial_is_one_line(tmp_path, capsys, monkeypatch):
    import builtins
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError()) if name == "serial"
                        else real(name, *a, **k))
    assert_refused(run_cli(host.main, ["--port", str(tmp_path / "tty"), "info"], capsys), "needs pyserial")


def test_full_disk_keeps_the_previous_png(tmp_path, board, capsys, monkeypatch):
    out = tmp_path / "board.png"
    assert run_cli(host.main, ["--port", "/dev/null", "render", "--out", str(out)], capsys)[0] == 0
    before = digests(out)
    fill_disk(monkeypatch, room=30)
    assert_refused(run_cli(host.main, ["--port", "/dev/null", "render", "--out", str(out)], capsys),
                   "cannot write", "No space left on device", "unchanged")
    assert digests(out) == before


def test_faulty_port_checks_its_rate():
    with pytest.raises(ValueError, match="fault rate"):
        host.FaultyPort(None, 1.5)


@pytest.mark.slow
def test_sim_port_renders_the_bundled_model(tmp_path, capsys, default_model):
    """``host --port sim://icebreaker``: the default envelope's board starts
    with the bundled model; info names it, a region renders bit-exact."""
    from dhq_rtl.golden import GoldenModel
    out = tmp_path / "region.png"
    code, stdout, _ = run_cli(host.main, ["--port", "sim://icebreaker", "--no-progress", "info"], capsys)
    assert code == 0 and "envelope default: hidden width ≤ 64" in stdout and "128×128, 1 channel" in stdout
    code, stdout, _ = run_cli(host.main, ["--port", "sim://icebreaker", "--no-progress", "render", "--region",
                                          "40,50,104,54", "--out", str(out)], capsys)
    assert code == 0, stdout
    got = np.asarray(Image.open(out))
    assert np.array_equal(got, GoldenModel(default_model).render(region=(40, 50, 104, 54))[..., 0])


def test_a_fixed_model_board_is_described_and_refuses_loads_before_sending(default_model):
    """INFO of a float-core board (load format FIXED_MODEL_FORMAT): no
    envelope, its model's shape, a load refused before a byte is sent, a
    cycles-per-pixel bound above the float core's own."""
    from dhq_rtl import protocol
    from dhq_rtl.boards import get_board
    from dhq_rtl.errors import DhqError
    from dhq_rtl.gateware.controller import info_constants
    from dhq_rtl.gateware.float32.plan import FloatCorePlan
    plan = FloatCorePlan.for_board(default_model, get_board("icebreaker"))
    fields = dict(info_constants(plan, clock_hz=48e6, divisor=16), model_valid=1, model_crc=7,
                  width=default_model.width, height=default_model.height, channels=default_model.channels)
    info = host.BoardInfo(protocol.pack_fields(protocol.INFO_FIELDS, fields))
    assert info.fixed and info.envelope is None and info.pixel_bits == default_model.pixel_bits
    assert "fp32 core with a fixed model (not loadable)" in info.describe()
    with pytest.raises(DhqError, match="holds a fixed model"):
        info.plan(default_model)
    assert info.cycles_per_pixel_bound() > plan.cycles_per_pixel()


@pytest.mark.slow
@pytest.mark.parametrize("core", ["fp32", "fixed"])
def test_sim_port_renders_from_a_fixed_model_core(tmp_path, capsys, default_model, core):
    """``host --port sim://icebreaker/fp32`` (the float core's build) and
    ``sim://icebreaker/fixed`` (the integer core's ``--fixed-model`` build)
    behind the same link: info says the model is fixed, a region renders
    bit-exact with the core's golden model, a load is refused before it is
    sent."""
    from dhq_rtl.golden import GoldenModel
    from dhq_rtl.golden_float32 import FloatGoldenModel
    from dhq_rtl.model_image import save
    from dhq_rtl.synthetic import random_model
    golden = FloatGoldenModel(default_model) if core == "fp32" else GoldenModel(default_model)
    out = tmp_path / "region.png"
    port = f"sim://icebreaker/{core}"
    code, stdout, _ = run_cli(host.main, ["--port", port, "--no-progress", "info"], capsys)
    assert code == 0 and "fixed model" in stdout and "128×128, 1 channel" in stdout
    assert ("int core" in stdout) is (core == "fixed")
    code, stdout, _ = run_cli(host.main, ["--port", port, "--no-progress", "render", "--region", "60,10,76,12",
                                          "--out", str(out)], capsys)
    assert code == 0, stdout
    got = np.asarray(Image.open(out))
    assert np.array_equal(got, golden.render(region=(60, 10, 76, 12))[..., 0])
    model_file = tmp_path / "other.dhq"
    save(random_model(width=8, depth=1, size=8, seed=1), model_file)
    assert_refused(run_cli(host.main, ["--port", port, "--no-progress", "load", str(model_file)], capsys),
                   "holds a fixed model", "--fixed-model")
