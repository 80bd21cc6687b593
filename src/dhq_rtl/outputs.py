"""Output files: checked before any work, written atomically.

Every command (train, sim, build, the host tool, the bench scripts) follows
one rule: it never destroys an input or a previous good result. Two helpers
carry it out:

* :func:`check_output_file` and :func:`check_output_folder` run before any
  long work. They refuse, with one line that names the problem and the fix, an
  output path that is a folder (or a file, for a folder output), lies under a
  file, sits in a missing or unwritable folder, or is the same file as one of
  the command's inputs (the same resolved path, or the same inode: a hard
  link). An existing file of another kind (``keeps``) is refused as well.
* :func:`write_file` writes to a temporary file in the target's folder,
  flushes and fsyncs it, then renames it over the target: a failed write (a
  full disk, an interrupt) leaves the previous file byte for byte as it was.

Both raise :class:`~dhq_rtl.errors.OutputError`.
"""

import os
import stat
import tempfile
from pathlib import Path

from .errors import OutputError

__all__ = ["check_output_file", "check_output_folder", "write_file", "same_file", "is_png", "is_model_image"]


def same_file(a, b):
    """True if paths ``a`` and ``b`` name the same file: the same resolved
    path (whether or not it exists), or the same inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _starts_with(path, magic):
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def is_png(path):
    """True if ``path`` is a file that starts with the PNG signature."""
    return _starts_with(path, b"\x89PNG\r\n\x1a\n")


def is_model_image(path):
    """True if ``path`` is a file that starts with the model image magic."""
    return _starts_with(path, b"DHQM")


def _reason(e):
    return e.strerror or str(e) or type(e).__name__


def _first_existing(path):
    """``path`` or its nearest ancestor that exists (``lstat`` sees it)."""
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_writable_folder(folder, what, *, must_exist):
    """Refuse a folder that lies under a file, does not exist (``must_exist``)
    or cannot be written: a temporary file is created and removed, which
    answers for permissions, read-only file systems and root alike."""
    existing = _first_existing(folder)
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
        raise OutputError(f"{what}: {problem}; choose a path in an existing folder", problem)
    if existing != Path(os.path.abspath(folder)) and must_exist:
        raise OutputError(f"{what}: folder {folder} does not exist; create it first or choose another path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".dhq_rtl-probe-")
    except OSError as e:
        problem = f"folder {existing} is not writable ({_reason(e)})"
        raise OutputError(f"{what}: {problem}; choose another path", problem) from None
    os.close(fd)
    os.unlink(probe)


def _check_inputs(path, what, inputs, fix):
    for label, source in (inputs or {}).items():
        if source is not None and same_file(path, source):
            raise OutputError(f"{what} is the same file as {label} {source}; writing it would destroy that "
                              f"input: {fix}")


def check_output_file(path, what, *, inputs=None, keeps=None, create_folder=False,
                      fix="choose another output path"):
    """Check, before any work, that the file ``path`` can be written.

    ``what`` names the output in messages (``"--out model.dhq"``);
    ``inputs`` maps a label (``"--image"``) to each input path of the command.
    ``keeps = (test, description)``: an existing file at ``path`` is only
    replaced if ``test(path)`` is true (e.g. ``(is_png, "a PNG")``: a picture
    never overwrites something that is not a picture). ``create_folder``: a
    missing folder is fine (the command creates it). ``fix`` ends the message
    when the output is an input. Returns ``Path(path)``.
    """
    if not str(path).strip():
        raise OutputError(f"{what}: the path is empty")
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{what} is a folder; give a file path")
    _check_writable_folder(p.parent, what, must_exist=not create_folder)
    _check_inputs(p, what, inputs, fix)
    if keeps is not None and os.path.lexists(p):
        test, description = keeps
        if not test(p):
            raise OutputError(f"{what} exists and is not {description}; refusing to overwrite it "
                              f"(move it away or choose another path)")
    return p


def check_output_folder(path, what, *, inputs=None, products=()):
    """Check, before any work, that the folder ``path`` can hold the output.

    It may not exist yet (its nearest existing ancestor must be a writable
    folder). ``products`` are the file names the command will write into it;
    none may be one of the ``inputs`` (label → path). Returns ``Path(path)``.
    """
    if not str(path).strip():
        raise OutputError(f"{what}: the path is empty")
    p = Path(path)
    if os.path.lexists(p) and not p.is_dir():
        raise OutputError(f"{what} is a file, not a folder; give a folder path")
    _check_writable_folder(p, what, must_exist=False)
    for name in products:
        _check_inputs(p / name, f"{what}: the output {p / name}", inputs, "choose another folder")
    return p


def _open_temp(fd, path):
    """The temporary file ``path`` (open as ``fd``) as a binary file object;
    the tests simulate a full disk here."""
    return os.fdopen(fd, "wb")


def _new_file_mode(target):
    """An existing target keeps its permissions; a new file gets 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder):
    """Make the rename itself durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file(path, content):
    """Write ``content`` to ``path`` atomically; returns ``Path(path)``.

    ``content``: ``bytes``, ``str`` (written as UTF-8) or a function that
    writes to the binary file object it is given (``lambda f: img.save(f,
    "PNG")``). The data goes to a temporary file in the same folder, which is
    flushed, fsynced and renamed over ``path``; a symbolic link at ``path``
    keeps pointing where it did and its target is replaced. On any failure
    the temporary file is removed and the previous ``path`` is untouched;
    an ``OSError`` becomes one :class:`OutputError` line.
    """
    target = Path(os.path.realpath(path))
    existed = target.exists()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with _open_temp(fd, tmp) as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else bytes(content))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        kept = f"; the previous {path} is unchanged" if existed else ""
        raise OutputError(f"cannot write {path}: {_reason(e)}{kept}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _fsync_folder(target.parent)
    return Path(path)
