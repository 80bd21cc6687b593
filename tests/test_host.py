"""The host tool: its output is checked before the board is asked and written atomically."""

import numpy as np
import pytest
from PIL import Image

import dhq_rtl.firmware.host as host

from tests.safety_checks import assert_refused, digests, fill_disk, run_cli, under_a_file


@pytest.fixture
def board(monkeypatch):
    """A board that answers with a 4×3 RGB image; records whether it was asked."""
    asked = []

    def render(port, baud=1_000_000, timeout=10.0):
        asked.append(port)
        return np.arange(36, dtype=np.uint8).reshape(3, 4, 3), 0.01, 8

    monkeypatch.setattr(host, "render_on_board", render)
    return asked


def test_writes_the_png(tmp_path, board, capsys):
    out = tmp_path / "board.png"
    code, stdout, err = run_cli(host.main, ["--port", "/dev/null", "--out", str(out)], capsys)
    assert code == 0 and board == ["/dev/null"]
    assert np.array_equal(np.asarray(Image.open(out)), np.arange(36, dtype=np.uint8).reshape(3, 4, 3))


def test_wide_pixels_become_a_16bit_png(tmp_path, board, capsys, monkeypatch):
    monkeypatch.setattr(host, "render_on_board", lambda *a, **k: (np.full((2, 2, 1), 1023, np.uint16), 0.0, 10))
    assert run_cli(host.main, ["--port", "/dev/null", "--out", str(tmp_path / "w.png")], capsys)[0] == 0
    assert np.asarray(Image.open(tmp_path / "w.png")).max() == 65535


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
    assert_refused(run_cli(host.main, ["--port", str(port), "--out", str(out)], capsys), needle)
    assert board == [] and digests(tmp_path) == before


def test_bad_baud(tmp_path, board, capsys):
    assert_refused(run_cli(host.main, ["--port", "/dev/null", "--baud", "0", "--out", str(tmp_path / "x.png")],
                           capsys), "--baud must be a positive integer")
    assert board == []


def test_full_disk_keeps_the_previous_png(tmp_path, board, capsys, monkeypatch):
    out = tmp_path / "board.png"
    assert run_cli(host.main, ["--port", "/dev/null", "--out", str(out)], capsys)[0] == 0
    before = digests(out)
    fill_disk(monkeypatch, room=30)
    assert_refused(run_cli(host.main, ["--port", "/dev/null", "--out", str(out)], capsys),
                   "cannot write", "No space left on device", "unchanged")
    assert digests(out) == before
