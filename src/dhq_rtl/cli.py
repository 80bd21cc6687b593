"""Shared command-line plumbing: user errors become one line and exit code 2."""

import argparse
import sys

from .errors import DhqError

__all__ = ["ArgumentParser", "run_main"]


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors are one line and exit code 2.

    An option's value may start with a dash (``--region -1,0,4,4``): plain
    ``argparse`` takes such a value for an unknown option and reports a
    missing argument, hiding the real problem (a negative coordinate), which
    the option's own check then names.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._join_dash_values(args), namespace)

    def _join_dash_values(self, args):
        """``[--opt, -value]`` → ``[--opt=-value]`` for options that take one
        value, unless ``-value`` is itself an option of this parser."""
        takes_value = {s for a in self._actions if a.nargs is None and a.option_strings for s in a.option_strings}
        out, i = [], 0
        while i < len(args):
            arg = args[i]
            nxt = args[i + 1] if i + 1 < len(args) else None
            if (arg in takes_value and arg.startswith("--") and isinstance(nxt, str) and nxt.startswith("-")
                    and not nxt.startswith("--") and nxt not in self._option_string_actions):
                out.append(f"{arg}={nxt}")
                i += 2
            else:
                out.append(arg)
                i += 1
        return out


def parse_region(text):
    """``--region x0,y0,x1,y1`` as four integers (:class:`DhqError` otherwise;
    whether the region lies in the image is the command's check)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise DhqError(f"--region must be x0,y0,x1,y1 (four integers), got {text!r}")
    return values


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
