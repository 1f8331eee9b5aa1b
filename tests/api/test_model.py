"""Every invalid input gives a clear error that names the parameter: in Python (ValueError) and
through the command line (exit status 2, one line on stderr)."""

import math
import subprocess
import sys

import pytest
import sdgmm
from sdgmm import Problem, Stage, make_stages, theory
from sdgmm.cli import main

NAN, INF = math.nan, math.inf
GOOD = {"alpha": 2.0, "delta": 0.5, "rho": 0.4, "theta": 0.2}


def _problem(**kw):
    return Problem(**{**GOOD, **kw})


# --- Python API ----------------------------------------------------------------------------------

PROBLEM_CASES = [
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": -1.0}, "alpha"),
    ({"alpha": NAN}, "alpha"),
    ({"alpha": INF}, "alpha"),
    ({"delta": 0.0}, "delta"),
    ({"delta": -0.5}, "delta"),
    ({"delta": NAN}, "delta"),
    ({"rho": 0.0}, "rho"),
    ({"rho": 1.0}, "rho"),
    ({"rho": 1.5}, "rho"),
    ({"rho": NAN}, "rho"),
    ({"theta": -0.1}, "theta"),
    ({"theta": 1.0}, "theta"),
    ({"theta": INF}, "theta"),
    ({"theta_plus": -0.1}, "theta_plus"),
    ({"theta_plus": 1.0}, "theta_plus"),
    ({"theta_minus": 1.2}, "theta_minus"),
    ({"theta_minus": NAN}, "theta_minus"),
]


def _ids(cases):
    return [",".join(f"{k}={v}" for k, v in kw.items()) for kw, _ in cases]


@pytest.mark.parametrize(("kw", "name"), PROBLEM_CASES, ids=_ids(PROBLEM_CASES))
def test_problem_rejects(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        _problem(**kw)


STAGE_CASES = [
    ("lam0_stage1", lambda: make_stages([0.0, 1.0, 1.0], [1.0, 1.0]), r"lam of stage 1 must be > 0"),
    ("lam_neg_stage1", lambda: make_stages([-1.0, 1.0, 1.0], [1.0, 1.0]), r"lam of stage 1 must be > 0"),
    ("lam_neg_stage3", lambda: make_stages([1.0, 1.0, -1.0], [1.0, 1.0]), r"lam of stage 3 must be > 0"),
    ("lam_nan", lambda: make_stages([NAN, 1.0], [1.0]), r"lam of stage 1 must be > 0 .*got nan"),
    ("lam_minus_inf", lambda: make_stages([1.0, -INF], [1.0]), r"lam of stage 2 must be > 0"),
    ("beta_neg_stage2", lambda: make_stages([1.0, 1.0, 1.0], [-1.0, 1.0]), r"beta of stage 2 must be > 0"),
    ("beta_neg_stage3", lambda: make_stages([1.0, 1.0, 1.0], [1.0, -0.5]), r"beta of stage 3 must be > 0"),
    ("beta_nan", lambda: make_stages([1.0, 1.0], [NAN]), r"beta of stage 2 .*finite"),
    ("beta_inf", lambda: make_stages([1.0, 1.0], [INF]), r"beta of stage 2 .*finite"),
    ("empty", list, r"stages"),
    ("beta_stage1", lambda: [Stage(1.0, beta=2.0)], r"beta of stage 1"),
    ("beta_stage1_of_2", lambda: [Stage(1.0, beta=2.0), Stage(1.0, beta=2.0)], r"beta of stage 1"),
    ("soft_without_beta", lambda: [Stage(1.0), Stage(0.5)], r"beta of stage 2 is required"),
    ("beta_on_hard_stage", lambda: [Stage(1.0), Stage(1.0, beta=2.0, hard=True)], r"beta of stage 2"),
    ("fix_first_stage1", lambda: [Stage(1.0, bias="fix_first")], r"bias of stage 1"),
    ("bias_value_nan", lambda: make_stages([1.0, 1.0], [1.0], bias="fixed", bias_value=NAN), r"bias_value"),
    ("bias_value_inf", lambda: make_stages([1.0, 1.0], [1.0], bias="fixed", bias_value=INF), r"bias_value"),
]


@pytest.mark.parametrize(("build", "match"), [c[1:] for c in STAGE_CASES], ids=[c[0] for c in STAGE_CASES])
def test_theory_rejects_stages(build, match):
    with pytest.raises(ValueError, match=match):
        theory(_problem(), build())


MAKE_STAGES_CASES = [
    ("empty_lam", {"lam": []}, r"lam"),
    ("soft_without_beta", {"lam": [1.0, 1.0]}, r"beta is required"),
    ("too_many_betas", {"lam": [1.0, 1.0, 1.0], "beta": [1.0, 2.0, 3.0]}, r"beta must hold 2"),
    ("too_few_betas", {"lam": [1.0, 1.0, 1.0, 1.0], "beta": [1.0, 2.0]}, r"beta must hold 3"),
    ("beta_single_stage", {"lam": [1.0], "beta": [2.0]}, r"beta must not be given"),
    ("unknown_bias", {"lam": [1.0, 1.0], "beta": 1.0, "bias": "frozen"}, r"bias"),
]


@pytest.mark.parametrize(("kw", "match"), [c[1:] for c in MAKE_STAGES_CASES], ids=[c[0] for c in MAKE_STAGES_CASES])
def test_make_stages_rejects(kw, match):
    with pytest.raises(ValueError, match=match):
        make_stages(**kw)


def test_stage_rejects_unknown_bias():
    with pytest.raises(ValueError, match=r"^bias"):
        Stage(1.0, bias="frozen")


OPTION_CASES = [
    ({"loss": "hinge"}, r"^loss"),
    ({"method": "simpson"}, r"^method"),
    ({"on_nonconvergence": "ignore"}, r"^on_nonconvergence"),
    ({"gh_nodes": 1}, r"^gh_nodes"),
    ({"gh_nodes": 401}, r"^gh_nodes"),
    ({"qmc_gh_nodes": 1}, r"^qmc_gh_nodes"),
    ({"split_nodes": 1}, r"^split_nodes"),
    ({"qmc_points": 0}, r"^qmc_points"),
    ({"qmc_replicates": 1}, r"^qmc_replicates"),
    ({"mc_samples": 0}, r"^mc_samples"),
    ({"tol": 0.0}, r"^tol"),
    ({"tol": -1e-9}, r"^tol"),
    ({"tol": NAN}, r"^tol"),
    ({"seed": -1}, r"^seed"),
    ({"max_iter": 0}, r"^max_iter"),
    ({"prune": -1.0}, r"^prune"),
    ({"qmc_prune": 1e-3}, r"^qmc_prune"),
    ({"threads": -1}, r"^threads"),
]


@pytest.mark.parametrize(("kw", "match"), OPTION_CASES, ids=_ids(OPTION_CASES))
def test_theory_rejects_options(kw, match):
    with pytest.raises(ValueError, match=match):
        theory(_problem(), make_stages([1.0, 0.5], 2.0), **kw)


# --- Stage 1 and message details ------------------------------------------------------------------


def test_beta_zero_is_rejected():
    with pytest.raises(ValueError, match=r"beta of stage 2 must be > 0"):
        theory(_problem(), make_stages([1.0, 1.0], [0.0]))


def test_hard_flag_on_stage1_is_rejected():
    with pytest.raises(ValueError, match=r"stage 1"):
        theory(_problem(), [Stage(1.0, hard=True)])


def test_message_shows_the_offending_value():
    with pytest.raises(ValueError, match=r"lam of stage 1 must be > 0 .*\(got -1(\.0*)?e-0?9\)"):
        theory(_problem(), [Stage(-1e-9)])


# --- Command line ---------------------------------------------------------------------------------

CLI_CASES = [
    (["--alpha", "0"], "alpha"),
    (["--alpha", "-2"], "alpha"),
    (["--alpha", "nan"], "alpha"),
    (["--alpha", "inf"], "alpha"),
    (["--alpha", "two"], "--alpha"),
    (["--delta", "0"], "delta"),
    (["--rho", "0"], "rho"),
    (["--rho", "1"], "rho"),
    (["--rho", "1.5"], "rho"),
    (["--theta", "-0.1"], "theta"),
    (["--theta", "-inf"], "theta"),
    (["--theta", "1.0"], "theta"),
    (["--theta-plus", "1.0"], "theta_plus"),
    (["--theta-minus", "-0.2"], "theta_minus"),
    (["--lam", "0,1,1"], "lam of stage 1"),
    (["--lam", "1,1,-1"], "lam of stage 3"),
    (["--lam", "-1,1,1"], "lam of stage 1"),
    (["--lam", "-1e-3"], "lam of stage 1"),
    (["--lam", "nan,1,1"], "lam of stage 1"),
    (["--lam", "1,-inf"], "lam of stage 2"),
    (["--lam", "1,x"], "--lam"),
    (["--lam", ""], "--lam"),
    (["--lam", "1,,2"], "--lam"),
    (["--lam"], "--lam"),
    (["--beta", "-1,2"], "beta of stage 2"),
    (["--beta=-1,2"], "beta of stage 2"),
    (["--beta", "2,-.5"], "beta of stage 3"),
    (["--beta", "nan"], "beta of stage 2"),
    (["--beta", "2,inf"], "beta of stage 3"),
    (["--beta", "a"], "--beta"),
    (["--beta", "1,2,3"], "beta"),
    (["--lam", "1", "--beta", "2"], "beta"),
    (["--hard", "--beta", "2"], "beta"),
    (["--loss", "hinge"], "--loss"),
    (["--method", "simpson"], "--method"),
    (["--bias", "frozen"], "--bias"),
    (["--bias-value", "1"], "bias_value"),
    (["--bias", "fixed", "--bias-value", "nan"], "bias_value"),
    (["--format", "xml"], "--format"),
    (["--on-nonconvergence", "ignore"], "--on-nonconvergence"),
    (["--gh-nodes", "1"], "gh_nodes"),
    (["--gh-nodes", "2.5"], "--gh-nodes"),
    (["--qmc-replicates", "1"], "qmc_replicates"),
    (["--tol", "0"], "tol"),
    (["--seed", "-1"], "seed"),
    (["--max-iter", "0"], "max_iter"),
    (["--no-such-flag"], "--no-such-flag"),
]


@pytest.mark.parametrize(("args", "name"), CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_rejects(args, name, capsys):
    assert main(["theory", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sdgmm: error: ")
    assert name in lines[0]


@pytest.mark.parametrize("argv", [[], ["nonsense"]])
def test_cli_needs_a_known_subcommand(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("sdgmm: error: ")


@pytest.mark.parametrize(("args", "name"), [(["--lam", "1,x"], "--lam"), (["--rho", "1.5"], "rho"),
                                            (["--lam", "1,1,-1"], "lam of stage 3")])
def test_cli_subprocess_rejects(args, name):
    proc = subprocess.run([sys.executable, "-m", "sdgmm.cli", "theory", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sdgmm: error: ") and name in lines[0]
    assert "Traceback" not in proc.stderr


def test_errors_are_valueerrors_not_convergence():
    # user errors and non-convergence are distinct exception types (exit 2 vs exit 3)
    assert not issubclass(sdgmm.ConvergenceError, ValueError)


# --- defaults and types, in the project's words -------------------------------------------------


def test_problem_defaults_are_the_clis():
    from sdgmm.cli import build_parser
    from sdgmm.cli._common import problem_from_args

    p, cli = Problem(), problem_from_args(build_parser().parse_args(["theory"]))  # --delta unset: the default
    assert (p.alpha, p.delta, p.rho, p.theta) == (cli.alpha, cli.delta, cli.rho, cli.theta) == (2.0, 0.5, 0.5, 0.3)
    assert Problem(alpha=1, theta=0.3) == Problem(1.0, 0.5, 0.5, 0.3)  # the README's call


WRONG_TYPES = [
    (lambda: Problem(alpha="2"), TypeError, r"^alpha must be a number"),
    (lambda: Problem(delta="0.5"), TypeError, r"^delta must be a number"),
    (lambda: Problem(rho=True), TypeError, r"^rho must be a number"),
    (lambda: Problem(theta_plus="0.1"), TypeError, r"^theta_plus must be a number"),
    (lambda: Stage("1"), TypeError, r"^lam must be a number"),
    (lambda: Stage(), TypeError, r"missing 1 required positional argument: 'lam'"),
    (lambda: Stage(1.0, hard="yes"), TypeError, r"^hard must be True or False"),
    (lambda: Stage(1.0, bias="frozen"), ValueError, r"^bias must be one of"),
    (lambda: make_stages(["a"]), TypeError, r"^lam must be a number"),
    (lambda: theory({"alpha": 1}, make_stages([1.0])), TypeError, r"^problem must be an sdgmm.Problem"),
    (lambda: theory(Problem(), [1.0]), TypeError, r"^stages must be a list of sdgmm.Stage"),
    (lambda: sdgmm.simulate("p", make_stages([1.0])), TypeError, r"^problem must be an sdgmm.Problem"),
]


@pytest.mark.parametrize(("call", "kind", "match"), WRONG_TYPES)
def test_wrong_types_are_named_without_a_binding_signature(call, kind, match):
    with pytest.raises(kind, match=match) as info:
        call()
    assert "incompatible function arguments" not in str(info.value)
