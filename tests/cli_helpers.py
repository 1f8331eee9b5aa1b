"""Helpers shared by the command-line tests."""

import io

import pandas as pd
from sdgmm.cli import main


def run(args, capsys):
    """Run `sdgmm args` in-process; returns (exit code, stdout, stderr)."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(text):
    return pd.read_csv(io.StringIO(text))


def reject_constant(token):
    """json.loads(parse_constant=...) hook: NaN / Infinity are not valid JSON."""
    raise ValueError(f"invalid JSON constant {token}")
