"""A build folder: every build runs in a fresh attempt folder inside it and
replaces the previous build only once it has succeeded.

The tools write into ``<out>/attempt-<time>-<random>/``. When the build
succeeds, its files are moved into ``<out>`` (the reports last, so that
``utilization.json`` always describes the bitstream beside it), files of the
previous build that the new one does not have (``top.attempt1.tim``, the
other family's bitstream) are removed, and the attempt folder goes. A build
that fails or is interrupted leaves the previous bitstream and its reports
untouched, and its attempt folder stays with the logs.

A build that completes but fails timing is not a success: it replaces a
previous build only if that one failed timing as well (or there is none);
otherwise it stays in its attempt folder.

Files in ``<out>`` that no build wrote are never touched.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .outputs import check_output_folder

__all__ = ["BuildFolder", "REPORT", "KNOWN_PRODUCTS"]

#: The report that marks a complete build; written and moved last.
REPORT = "utilization.json"
#: The human-readable report, moved just before :data:`REPORT`.
REPORT_LOG = "utilization.log"
#: Every file a build of either family may leave in its folder. A report
#: lists its build's files; for a folder whose report has no list (built by
#: an older version), these names are taken as the previous build's files.
KNOWN_PRODUCTS = (
    "build_top.bat", "build_top.json", "build_top.sh",
    "top.il", "top.ys", "top.debug.v", "top.pcf", "top.lpf", "top.rpt", "top.json", "top.tim",
    "top.attempt1.tim", "top.stat.json", "top.report.json",
    "top.asc", "top.bin", "top.config", "top.bit", "top.svf",
    REPORT_LOG, REPORT,
)
ATTEMPT_PREFIX = "attempt-"


class BuildFolder:
    """The output folder of ``python -m dhq_rtl.build`` (see the module docstring)."""

    def __init__(self, path):
        self.given = str(path)      # as the user wrote it: Path("") would be "."
        self.path = Path(path)

    def check(self, inputs=None):
        """Refuse, before any work, a folder path that is empty or a file,
        lies under a file or cannot be written, or a build whose files would
        replace one of ``inputs`` (label → path)."""
        check_output_folder(self.given, f"--out {self.given}", inputs=inputs, products=KNOWN_PRODUCTS)

    def previous(self):
        """The build now in the folder: its report (a dict), ``{}`` for a
        bitstream without a readable report, or None when there is none."""
        try:
            report = json.loads((self.path / REPORT).read_text())
            if isinstance(report, dict):
                return report
        except (OSError, ValueError):
            pass
        if any((self.path / name).is_file() for name in ("top.bin", "top.bit")):
            return {}
        return None

    def holds_timing_met_build(self):
        """True if the previous build met timing (or its timing is unknown:
        a bitstream without a report is kept rather than risked)."""
        prev = self.previous()
        return prev is not None and prev.get("timing_met", True) is not False

    def start_attempt(self):
        """A new, empty attempt folder inside the build folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path(tempfile.mkdtemp(prefix=f"{ATTEMPT_PREFIX}{stamp}-", dir=self.path)).resolve()

    @staticmethod
    def files(attempt):
        """Names of the files in an attempt folder (what the build wrote)."""
        return sorted(p.name for p in Path(attempt).iterdir() if p.is_file())

    def publish(self, attempt, files):
        """Move the finished build ``files`` from ``attempt`` into the folder,
        the reports last; remove the previous build's files that the new one
        does not have; remove the attempt folder."""
        prev = self.previous()
        old = set(prev.get("files", KNOWN_PRODUCTS) if prev else KNOWN_PRODUCTS) & set(KNOWN_PRODUCTS)
        order = [f for f in files if f not in (REPORT_LOG, REPORT)] + [f for f in (REPORT_LOG, REPORT) if f in files]
        # The old report goes first: until the new one is in place, no report
        # describes a mixture of the two builds.
        (self.path / REPORT).unlink(missing_ok=True)
        for name in order:
            os.replace(attempt / name, self.path / name)
        for name in sorted(old - set(files)):
            target = self.path / name
            if target.is_file() and not target.is_symlink():
                target.unlink()
        shutil.rmtree(attempt, ignore_errors=True)

    @staticmethod
    def discard_if_empty(attempt):
        """Remove an attempt folder in which nothing was written; True if it was empty."""
        try:
            Path(attempt).rmdir()
            return True
        except OSError:
            return False

    def kept_note(self):
        """What a failed attempt left in place, for its error message."""
        return f"; the previous build in {self.path} is unchanged" if self.previous() is not None else ""
