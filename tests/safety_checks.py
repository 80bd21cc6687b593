"""Helpers of the tests that check no command destroys an input or a previous result."""

import errno
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from dhq_rtl import outputs
from dhq_rtl.cli import run_main


def digests(*paths):
    """SHA-256 of every file under ``paths`` (files or folders), by path."""
    out = {}
    for p in map(Path, paths):
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


class _FullDisk:
    """A file object that accepts ``room`` bytes, then fails like a full disk."""

    def __init__(self, f, room):
        self._f, self._room = f, room

    def write(self, data):
        data = bytes(data)
        if len(data) > self._room:
            self._f.write(data[:self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fill_disk(monkeypatch, room=64, under=None):
    """From now on every atomic write (under the folder ``under``, if given)
    fails with ENOSPC after ``room`` bytes: midway through the file."""
    real = outputs._open_temp

    def open_temp(fd, path):
        f = real(fd, path)
        if under is None or Path(path).resolve().is_relative_to(Path(under).resolve()):
            return _FullDisk(f, room)
        return f

    monkeypatch.setattr(outputs, "_open_temp", open_temp)


def temp_leftovers(folder):
    """Temporary files an atomic write would leave behind after a failure."""
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def run_cli(main, argv, capsys):
    """Run a command's ``main`` as its entry point does; ``(status, stdout, stderr lines)``."""
    try:
        run_main(main, argv)
    except SystemExit as e:
        captured = capsys.readouterr()
        return e.code, captured.out, captured.err.strip().splitlines()
    raise AssertionError("run_main did not exit")


def assert_refused(result, *needles, status=2):
    """Exit status 2 and exactly one line on stderr, an error naming all of ``needles``."""
    code, _, err = result
    assert code == status, (code, err)
    assert len(err) == 1 and err[0].startswith("error:"), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    assert "Traceback" not in err[0]


def under_a_file(tmp_path):
    """A folder path that cannot be created, for root as well: it lies under a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "folder"


def png16_bytes(samples, filters=(0,), interlace=False):
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA by the last axis) of
    ``samples``, rows filtered with the PNG filter types in ``filters`` in turn
    (0 none … 4 Paeth), optionally Adam7-interlaced: the encodings that a
    decoder must undo. Written here, independently of the package's writer."""
    import struct
    import zlib

    a = np.asarray(samples).astype(">u2")
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    bpp = 2 * c
    rows_done = [0]

    def scanlines(img):
        rows = np.ascontiguousarray(img).reshape(img.shape[0], -1).view(np.uint8).astype(np.int32)
        prev = np.zeros(rows.shape[1], np.int32)
        out = b""
        for r in rows:
            ft = int(filters[rows_done[0] % len(filters)])
            rows_done[0] += 1
            enc = []
            for i in range(len(r)):
                left = r[i - bpp] if i >= bpp else 0
                up, upleft = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if ft == 0:
                    pred = 0
                elif ft == 1:
                    pred = left
                elif ft == 2:
                    pred = up
                elif ft == 3:
                    pred = (left + up) // 2
                else:
                    pa, pb, pc = abs(up - upleft), abs(left - upleft), abs(left + up - 2 * upleft)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else upleft
                enc.append((r[i] - pred) & 255)
            out += bytes([ft]) + bytes(enc)
            prev = r
        return out

    if interlace:
        raw = b"".join(scanlines(a[y0::dy, x0::dx]) for x0, y0, dx, dy in
                       ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                        (0, 1, 1, 2)) if a[y0::dy, x0::dx].size)
    else:
        raw = scanlines(a)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    color = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, int(interlace)))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def load_script(name):
    """A bench script as a module (the bench folder is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
