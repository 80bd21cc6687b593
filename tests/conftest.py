"""Fixtures shared by the test modules.

Helper code that test modules import lives beside this file in the
``tests`` package (``tests.testbench``: stream testbenches for gateware
blocks; ``tests.standin_core``: a stand-in with the core's interface for the
simulation harness). Tests that run Yosys, nextpnr or Verilator are marked
``slow`` (``pytest -m "not slow"`` leaves them out).
"""

import json

import pytest

from dhq_rtl.firmware import default_model as _bundled_model


def pytest_addoption(parser):
    parser.addoption("--ice40-synth", default=None, metavar="COMMANDS",
                     help="the Yosys synthesis the gate-level checks (tests/test_netlist_sim.py) run instead of "
                          "the board build's, e.g. 'synth_ice40 -top {top}'")


@pytest.fixture(scope="session")
def ice40_synth(request):
    """The Yosys synthesis of the gate-level checks: ``--ice40-synth`` or
    the board build's (:data:`dhq_rtl.rtlsim.netlist.ICE40_SYNTH`)."""
    from dhq_rtl.rtlsim.netlist import ICE40_SYNTH
    return request.config.getoption("--ice40-synth") or ICE40_SYNTH


@pytest.fixture(scope="session")
def default_model():
    """The bundled default model image (``firmware/default.dhq``)."""
    return _bundled_model()[0]


def _check_build_outputs(out, report, bitstream):
    """The bitstream and the reports exist, ``utilization.json`` equals the
    returned report, and every resource fits its budget; returns the JSON."""
    assert (out / bitstream).stat().st_size > 100_000
    for name in ("top.rpt", "top.tim", "utilization.log"):
        assert (out / name).exists()
    data = json.loads((out / "utilization.json").read_text())
    assert data == json.loads(json.dumps(report))
    for key, r in data["resources"].items():
        assert r["used"] <= r["available"], key
    return data


@pytest.fixture
def check_build_outputs():
    """:func:`_check_build_outputs`: the checks every board build test makes."""
    return _check_build_outputs
