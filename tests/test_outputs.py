"""Output paths checked before the work, files written atomically."""

import os
import stat

import pytest

from dhq_rtl.errors import DhqError, OutputError
from dhq_rtl.outputs import check_output_file, check_output_folder, is_model_image, is_png, same_file, write_file

from tests.safety_checks import digests, fill_disk, temp_leftovers, under_a_file


def test_same_file_by_path_link_and_inode(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    (tmp_path / "hard.png").hardlink_to(a)
    (tmp_path / "soft.png").symlink_to(a)
    (tmp_path / "sub").mkdir()
    assert same_file(a, tmp_path / "sub" / ".." / "a.png")
    assert same_file(a, tmp_path / "hard.png") and same_file(a, tmp_path / "soft.png")
    assert not same_file(a, tmp_path / "b.png")
    assert same_file(tmp_path / "new.png", tmp_path / "sub" / ".." / "new.png")  # neither exists


def test_check_output_file_refusals(tmp_path):
    picture = tmp_path / "in.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\nrest")
    (tmp_path / "link.png").hardlink_to(picture)
    cases = [
        (tmp_path, "is a folder"),
        (under_a_file(tmp_path) / "x.png", "is a file, not a folder"),
        (tmp_path / "missing" / "x.png", "does not exist"),
        (picture, "same file as --image"),
        (tmp_path / "link.png", "same file as --image"),
        ("", "empty"),
    ]
    for path, needle in cases:
        with pytest.raises(OutputError, match=needle) as e:
            check_output_file(path, f"--out {path}", inputs={"--image": picture})
        assert "\n" not in str(e.value) and isinstance(e.value, DhqError)
    assert check_output_file(tmp_path / "missing" / "x.png", "--out", create_folder=True)
    assert check_output_file(tmp_path / "new.png", "--out", inputs={"--image": picture}) == tmp_path / "new.png"


def test_check_output_file_keeps_other_kinds(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(OutputError, match="exists and is not a PNG"):
        check_output_file(notes, "--out", keeps=(is_png, "a PNG"))
    model = tmp_path / "m.dhq"
    model.write_bytes(b"DHQM....")
    assert is_model_image(model) and not is_model_image(notes)
    check_output_file(model, "--out", keeps=(is_model_image, "a model image"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_unwritable_folder_as_a_user(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_file(locked / "x.png", "--out")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_check_output_folder(tmp_path):
    model = tmp_path / "build" / "top.bin"
    model.parent.mkdir()
    model.write_bytes(b"model")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_folder(model, "--out")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_folder(under_a_file(tmp_path), "--out")
    with pytest.raises(OutputError, match="same file as --model"):
        check_output_folder(tmp_path / "build", "--out", inputs={"--model": model}, products=["top.bin"])
    assert check_output_folder(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()      # checking creates nothing


def test_write_file_bytes_text_and_writer(tmp_path):
    write_file(tmp_path / "a.bin", b"\x00\x01")
    write_file(tmp_path / "b.txt", "grüße")
    write_file(tmp_path / "c.bin", lambda f: f.write(b"abc"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text() == "grüße"
    assert (tmp_path / "c.bin").read_bytes() == b"abc"
    assert temp_leftovers(tmp_path) == []


def test_write_file_keeps_mode_and_symlink(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_file(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_full_disk_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    old = tmp_path / "model.dhq"
    old.write_bytes(b"previous good model " * 100)
    before = digests(old)
    fill_disk(monkeypatch, room=100)
    with pytest.raises(OutputError, match="No space left on device.*previous .* is unchanged") as e:
        write_file(old, b"new model " * 1000)
    assert "\n" not in str(e.value)
    assert digests(old) == before
    assert temp_leftovers(tmp_path) == []


def test_failing_writer_leaves_nothing(tmp_path):
    def writer(f):
        f.write(b"half")
        raise ValueError("the encoder failed")

    with pytest.raises(ValueError):
        write_file(tmp_path / "x.png", writer)
    assert list(tmp_path.iterdir()) == []


def test_write_file_into_a_file_is_one_line(tmp_path):
    with pytest.raises(OutputError, match="cannot write") as e:
        write_file(under_a_file(tmp_path) / "x.bin", b"data")
    assert "\n" not in str(e.value)
