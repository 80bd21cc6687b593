"""Shared command-line plumbing: user errors become one line and exit code 2."""

import argparse
import sys

from .errors import DhqError

__all__ = ["ArgumentParser", "run_main"]


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors are one line and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def run_main(main, argv=None):
    """Call ``main(argv)``; turn :class:`DhqError` into a one-line message and
    exit status 2 (no traceback), and Ctrl-C into status 130."""
    try:
        code = main(argv)
    except DhqError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)
