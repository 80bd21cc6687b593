"""Checks shared by the board build tests."""

import json


def check_build_outputs(out, report, bitstream):
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
