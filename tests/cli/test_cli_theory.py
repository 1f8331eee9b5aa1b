"""The `sdgmm` command line: output formats agree with the Python API; help texts explain the parameters."""

import io
import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import sdgmm
from cli_helpers import run as _run

# theory.md section 4, table row 1 (logistic, soft, learned bias)
ROW1_ARGS = ["--alpha", "1.5", "--delta", "0.5", "--rho", "0.4", "--theta", "0.2",
             "--lam", "1.5,0.5,2.0", "--beta", "0.8,1.2"]
ROW1_EPS = [0.221427219, 0.344412584, 0.400000000]


def _row1_theory(**kw):
    return sdgmm.theory(sdgmm.Problem(1.5, 0.5, rho=0.4, theta=0.2),
                        sdgmm.make_stages([1.5, 0.5, 2.0], [0.8, 1.2]), **kw)




def test_default_run_prints_a_table(capsys):
    code, out, err = _run(["theory"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert any(line.startswith("# problem: alpha=2 delta=0.5 rho=0.5 theta=0.3") for line in lines)
    assert any("method: tensor" in line for line in lines)
    body = [line for line in lines if not line.startswith("#")]
    assert body[0].split() == ["stage", "lam", "beta", "eps", "eps_error", "m", "b", "Q", "iterations",
                               "converged", "collapsed"]
    assert [row.split()[0] for row in body[1:]] == ["1", "2", "3"]
    # the paper's main setting: defaults are lam 1.0,0.5,0.5, beta 2,2
    ref = sdgmm.theory(sdgmm.Problem(2.0, 0.5, rho=0.5, theta=0.3), sdgmm.make_stages([1.0, 0.5, 0.5], [2.0, 2.0]))
    assert ref.converged.all()
    assert [float(row.split()[3]) for row in body[1:]] == pytest.approx(ref.eps, abs=1e-8)


def test_csv_matches_python_api(capsys):
    code, out, _ = _run(["theory", *ROW1_ARGS, "--format", "csv"], capsys)
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    assert list(df["stage"]) == [1, 2, 3]
    ref = _row1_theory()
    assert max(abs(df["eps"].to_numpy() - ref.eps)) <= 1e-12
    assert df["eps"].to_numpy() == pytest.approx(ROW1_EPS, abs=1e-6)
    assert list(df["lam"]) == [1.5, 0.5, 2.0]


def test_csv_square_loss_and_single_beta(capsys):
    args = ["--alpha", "3", "--rho", "0.4", "--theta", "0.2", "--lam", "1.5,0.5", "--beta", "0.8",
            "--loss", "square", "--format", "csv"]
    code, out, _ = _run(["theory", *args], capsys)
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    ref = sdgmm.theory(sdgmm.Problem(3.0, 0.5, rho=0.4, theta=0.2), sdgmm.make_stages([1.5, 0.5], 0.8), "square")
    assert len(df) == 2
    assert max(abs(df["eps"].to_numpy() - ref.eps)) <= 1e-12


def test_json_holds_eps(capsys):
    code, out, _ = _run(["theory", *ROW1_ARGS, "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["problem"]["alpha"] == 1.5
    assert len(data["eps"]) == 3
    assert max(abs(a - b) for a, b in zip(data["eps"], _row1_theory().eps)) <= 1e-12
    assert data["stages"][1]["beta"] == 0.8


def test_json_nonfinite_values_round_trip(capsys):
    # a forced non-convergence in 'warn' mode leaves NaN rows; NaN and inf read back as the same floats
    code, out, err = _run(["theory", "--max-iter", "1", "--on-nonconvergence", "warn", "--format", "json"], capsys)
    assert code == 0
    assert err.startswith("sdgmm: warning: ") and len(err.splitlines()) == 1
    data = json.loads(out)
    assert all(math.isnan(e) for e in data["eps"]) and len(data["eps"]) == 3
    assert data["converged"] == [False, False, False]
    code, out, _ = _run(["theory", "--lam", "inf,inf", "--hard", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and [s["lam"] for s in data["stages"]] == [math.inf, math.inf]
    assert '"lam": Infinity' in out  # the documented token


def test_nonconvergence_exits_3(capsys):
    code, out, err = _run(["theory", "--max-iter", "1"], capsys)
    assert code == 3 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("sdgmm: error: ") and "converge" in err


def test_hard_labels_with_bias_fixing(capsys):
    # theory.md table row 6: bias fixed at its stage-1 value keeps hard-label SD from collapsing
    args = ["--rho", "0.3", "--theta", "0.2", "--lam", "0.5,0.5,0.5", "--hard", "--bias", "fix_first"]
    code, out, _ = _run(["theory", *args, "--format", "csv"], capsys)
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    assert list(df["beta"].iloc[1:]) == ["hard", "hard"]
    assert list(df["bias_policy"]) == ["learn", "fix_first", "fix_first"]
    assert df["b"].nunique() == 1
    assert df["eps"].to_numpy() == pytest.approx([0.177, 0.127, 0.120], abs=5e-3)
    assert not df["collapsed"].any()

    code, out, _ = _run(["theory", *args], capsys)
    assert code == 0 and "labels=hard bias=fix_first" in out


def test_fixed_bias_and_class_dependent_flips(capsys):
    args = ["--theta-plus", "0.1", "--theta-minus", "0.25", "--lam", "1,0.5", "--bias", "fixed",
            "--bias-value", "-0.1", "--format", "json"]
    code, out, _ = _run(["theory", *args], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["problem"]["theta_plus"] == 0.1 and data["problem"]["theta_minus"] == 0.25
    assert data["b"] == [-0.1, -0.1]


@pytest.mark.parametrize("argv", [["--help"], ["theory", "--help"]])
def test_help_explains_parameters(argv, capsys):
    code, out, _ = _run(argv, capsys)
    assert code == 0
    for word in ("alpha", "delta", "rho", "theta", "lam", "beta", "example"):
        assert word in out, word
    assert "3" in out and "converge" in out  # exit status 3 is documented


def test_theory_help_lists_every_flag(capsys):
    _, out, _ = _run(["theory", "--help"], capsys)
    for flag in ("--alpha", "--delta", "--rho", "--theta", "--theta-plus", "--theta-minus", "--lam", "--beta",
                 "--hard", "--bias", "--bias-value", "--loss", "--method", "--format", "--on-nonconvergence"):
        assert flag in out, flag
    for word in ("M / N", "temperature", "1{u > 0}", "fix_first", "class prior", "ridge"):
        assert word in out, word


def test_version(capsys):
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and sdgmm.__version__ in out


def test_module_entry_point_subprocess():
    proc = subprocess.run([sys.executable, "-m", "sdgmm.cli", "theory", "--lam", "1,0.5", "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["eps"]) == 2


def test_xi_mixes_the_given_labels_into_the_targets(capsys):
    code, out, err = _run(["theory", *ROW1_ARGS, "--xi", "1.5,-0.5", "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    ref = sdgmm.theory(sdgmm.Problem(1.5, 0.5, rho=0.4, theta=0.2),
                       sdgmm.make_stages([1.5, 0.5, 2.0], [0.8, 1.2], xi=[1.5, -0.5]))
    assert data["eps"] == pytest.approx(ref.eps, abs=1e-12)
    assert [s["xi"] for s in data["stages"]] == [1.0, 1.5, -0.5]
    assert abs(ref.eps[1] - ROW1_EPS[1]) > 1e-3  # not pure SD
    code, out, err = _run(["theory", *ROW1_ARGS, "--xi", "1.5,-0.5"], capsys)
    assert "xi=1.5,-0.5" in out


@pytest.mark.parametrize("xi, message", [("nan", "xi must be a finite number"),
                                         ("1,1,1", "xi must hold 2 value")])
def test_bad_xi_exits_2_naming_it(capsys, xi, message):
    code, out, err = _run(["theory", *ROW1_ARGS, "--xi", xi], capsys)
    assert code == 2 and out == ""
    assert message in err
