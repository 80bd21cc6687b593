"""The build folder: attempts, publishing, what a previous build is."""

import json

from dhq_rtl.build_folder import KNOWN_PRODUCTS, BuildFolder


def _attempt(folder, files):
    attempt = folder.start_attempt()
    for name, content in files.items():
        (attempt / name).write_text(content)
    return attempt


def test_previous_build_kinds(tmp_path):
    folder = BuildFolder(tmp_path / "b")
    assert folder.previous() is None and not folder.holds_timing_met_build() and folder.kept_note() == ""
    folder.path.mkdir()
    (folder.path / "top.bin").write_bytes(b"bits")
    assert folder.previous() == {} and folder.holds_timing_met_build()   # unknown timing: kept
    (folder.path / "utilization.json").write_text(json.dumps({"timing_met": False}))
    assert not folder.holds_timing_met_build()
    (folder.path / "utilization.json").write_text("{broken")
    assert folder.previous() == {} and "is unchanged" in folder.kept_note()


def test_publish_moves_files_and_removes_only_stale_build_files(tmp_path):
    folder = BuildFolder(tmp_path / "b")
    first = _attempt(folder, {"top.bin": "1", "top.attempt1.tim": "1", "utilization.json": "{}"})
    report = {"files": ["top.bin", "top.attempt1.tim", "utilization.json", "notes.txt"], "timing_met": True}
    (first / "utilization.json").write_text(json.dumps(report))
    folder.publish(first, ["top.bin", "top.attempt1.tim", "utilization.json"])
    assert not first.exists()
    (folder.path / "notes.txt").write_text("mine")          # listed by the report, but no build file name
    second = _attempt(folder, {"top.bin": "2", "utilization.log": "log", "utilization.json": "{}"})
    folder.publish(second, folder.files(second))
    assert (folder.path / "top.bin").read_text() == "2"
    assert not (folder.path / "top.attempt1.tim").exists()
    assert (folder.path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.path.iterdir()) == ["notes.txt", "top.bin", "utilization.json",
                                                              "utilization.log"]


def test_old_folder_without_a_file_list(tmp_path):
    folder = BuildFolder(tmp_path / "b")
    folder.path.mkdir()
    for name in ("top.bit", "top.config", "utilization.json", "model.dhq"):
        (folder.path / name).write_text("old")
    attempt = _attempt(folder, {"top.bin": "new", "utilization.json": "{}"})
    folder.publish(attempt, folder.files(attempt))
    # The other family's bitstream went; a file no build writes stayed.
    assert sorted(p.name for p in folder.path.iterdir()) == ["model.dhq", "top.bin", "utilization.json"]
    assert "model.dhq" not in KNOWN_PRODUCTS


def test_empty_attempts_are_removed(tmp_path):
    folder = BuildFolder(tmp_path / "b")
    empty = folder.start_attempt()
    assert folder.discard_if_empty(empty) and not empty.exists()
    used = _attempt(folder, {"top.rpt": "log"})
    assert not folder.discard_if_empty(used) and used.exists()
