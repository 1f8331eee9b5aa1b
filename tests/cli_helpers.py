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
