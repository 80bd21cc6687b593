"""Shared command-line plumbing: one-line usage errors, values that start with a dash."""

import pytest

from dhq_rtl.cli import ArgumentParser


def _parser():
    p = ArgumentParser(prog="tool")
    p.add_argument("--region")
    p.add_argument("--freq", type=float)
    p.add_argument("--quiet", action="store_true")
    return p


def test_values_may_start_with_a_dash():
    args = _parser().parse_args(["--region", "-1,0,4,4", "--freq", "-5"])
    assert args.region == "-1,0,4,4" and args.freq == -5.0


@pytest.mark.parametrize("option", ["-h", "--quiet"])
def test_an_option_is_not_taken_for_a_value(capsys, option):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["--region", option])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--region" in err[0] and "expected one argument" in err[0]
