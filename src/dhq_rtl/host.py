"""``python -m dhq_rtl.host``: talk to a board (or its simulation) over the checked link.

The host side lives with what the board is fed, in :mod:`dhq_rtl.firmware.host`.
"""

from .cli import run_main
from .firmware.host import main

__all__ = ["main"]

if __name__ == "__main__":
    run_main(main)
