"""A stand-in for Yosys, nextpnr and the bitstream packers, for build tests.

:func:`install` writes small Python programs named like the tools and points
the build at them (``DHQ_TOOLCHAIN=system`` with ``YOSYS``, ``NEXTPNR_ICE40``,
... as the README describes). They write, in well under a second, the files
the build reads: a Yosys log and cell counts, a nextpnr log and report
(``FAKE_FMAX`` MHz against a 48 MHz constraint) and a bitstream that contains
``FAKE_TAG``. The tool named by ``FAKE_FAIL`` exits with status 1 instead.
``FAKE_LEGALISE``: nextpnr fails to legalise its placement (as nextpnr-ice40
does at the utilisation limit) — ``once``: unless its heap placer's
density is raised (``--placer-heap-beta``), ``always``: every time.
"""

import os
import sys
from pathlib import Path

PROGRAM = r'''
import json, os, sys
from pathlib import Path

tool = Path(sys.argv[0]).name
args = sys.argv[1:]

def option(name):
    return args[args.index(name) + 1] if name in args else None

if os.environ.get("FAKE_FAIL") == tool:
    if tool == "yosys":
        Path("top.rpt").write_text("ERROR: synthesis failed on purpose\n")
    print(f"{tool}: failing on purpose", file=sys.stderr)
    sys.exit(1)
if tool == "yosys":
    Path("top.rpt").write_text("fake yosys\n")
    Path("top.json").write_text(json.dumps({"modules": {}}))
    Path("top.stat.json").write_text(json.dumps({"design": {"num_cells_by_type": {"SB_LUT4": 100}}}))
elif tool.startswith("nextpnr"):
    legalise = os.environ.get("FAKE_LEGALISE")
    if legalise == "always" or (legalise == "once" and "--placer-heap-beta" not in args):
        Path(option("--log")).write_text("ERROR: Unable to find legal placement for all cells, design is "
                                         "probably at utilisation limit.\n")
        sys.exit(1)
    fmax = float(os.environ.get("FAKE_FMAX", "60"))
    Path(option("--log")).write_text(f"fake nextpnr, fmax {fmax}\n")
    report = {"utilization": {"ICESTORM_LC": {"used": 100, "available": 5280}},
              "fmax": {"clk": {"achieved": fmax, "constraint": 48.0}}}
    if option("--report"):
        Path(option("--report")).write_text(json.dumps(report))
    Path(option("--asc") or option("--textcfg")).write_text("fake placed design\n")
else:   # icepack top.asc top.bin / ecppack --input top.config --bit top.bit
    target = option("--bit") or args[1]
    Path(target).write_bytes(b"fake bitstream " + os.environ.get("FAKE_TAG", "").encode())
'''

TOOL_VARIABLES = {"yosys": "YOSYS", "nextpnr-ice40": "NEXTPNR_ICE40", "icepack": "ICEPACK",
                  "nextpnr-ecp5": "NEXTPNR_ECP5", "ecppack": "ECPPACK"}


def install(folder, monkeypatch):
    """Write the fake tools into ``folder`` and select them for this test."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, variable in TOOL_VARIABLES.items():
        path = folder / name
        path.write_text(f"#!{sys.executable}\n{PROGRAM}")
        path.chmod(0o755)
        monkeypatch.setenv(variable, str(path))
    monkeypatch.setenv("DHQ_TOOLCHAIN", "system")
    for variable in ("FAKE_FAIL", "FAKE_FMAX", "FAKE_TAG", "FAKE_LEGALISE"):
        monkeypatch.delenv(variable, raising=False)
    return folder
