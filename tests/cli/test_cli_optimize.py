"""`sdgmm optimize` and `sdgmm curve`: output agrees with sdgmm.optimize / sdgmm.curve, files are written
only on success, bad input is one 'sdgmm: error:' line with exit status 2; sdgmm.plot_curve; and the
input checks of sdgmm.optimize / sdgmm.curve.

Kept fast: the square loss with soft labels (the cheapest engine path) or hard logistic with 2 stages,
two alphas, stage counts 1,2, few or no random restarts."""

import inspect
import json
import math

import numpy as np
import pandas as pd
import pytest
import sdgmm
from cli_helpers import read_csv as _csv
from cli_helpers import run as _run
from sdgmm.cli import build_parser
from sdgmm.cli._common import problem_from_args

PROBLEM_ARGS = ["--alpha", "1", "--delta", "0.5", "--rho", "0.5", "--theta", "0.3"]
PROBLEM = sdgmm.Problem(1.0, 0.5, rho=0.5, theta=0.3)
SQUARE_SOFT = ["--loss", "square", "--labels", "soft"]
CURVE_ARGS = ["--alphas", "0.5,2", "--stage-counts", "1,2", *SQUARE_SOFT, "--restarts", "0"]
CURVE_KW = {"delta": 0.5, "rho": 0.5, "theta": 0.3, "stage_counts": (1, 2), "loss": "square", "labels": "soft",
            "restarts": 0}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"





def _H(x):
    return 0.5 * math.erfc(x / math.sqrt(2.0))


# --- sdgmm optimize --------------------------------------------------------------------------------


def test_optimize_table(capsys):
    code, out, err = _run(["optimize", *PROBLEM_ARGS, "--n-stages", "2", *SQUARE_SOFT, "--restarts", "0"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "# problem: alpha=1 delta=0.5 rho=0.5 theta=0.3"
    assert any(line.startswith("# search: loss=square labels=soft bias=learn") for line in lines)
    ref = sdgmm.optimize(PROBLEM, 2, loss="square", labels="soft", restarts=0)
    assert (f"# T* = {ref.best_n_stages}: the fewest stages with the lowest optimal final eps, to within integration "
            "error (marked *)") in lines
    body = [line for line in lines if not line.startswith("#")]
    assert body[0].split() == ["T", "eps", "eps_error", "lam", "beta", "evaluations", "seconds", "converged",
                               "at_bound", "best"]
    rows = [row.split() for row in body[1:]]
    assert [r[0] for r in rows] == ["1", "2"]
    assert [float(r[1]) for r in rows] == pytest.approx([o.eps_final for o in ref.optima], abs=1e-8)
    assert rows[0][4] == "-" and rows[1][3] == "inf"  # lam_1 = lam_2 = inf: shown once; beta_2
    assert [r[-1] == "*" for r in rows] == [o.n_stages == ref.best_n_stages for o in ref.optima]


def test_optimize_csv_equals_python_api(capsys):
    args = ["optimize", *PROBLEM_ARGS, "--max-stages", "3", *SQUARE_SOFT, "--restarts", "1", "--seed", "5",
            "--lam-bounds", "1e-3,1e2", "--beta-bounds", "0.1,10", "--gain-tol", "1e-5", "--format", "csv"]
    code, out, err = _run(args, capsys)
    assert code == 0 and err == ""
    df = _csv(out)
    ref = sdgmm.optimize(PROBLEM, max_stages=3, loss="square", labels="soft", restarts=1, seed=5, gain_tol=1e-5,
                         bounds={"lam": (1e-3, 1e2), "beta": (0.1, 10)})
    expected = ref.to_dataframe()
    assert list(df["n_stages"]) == list(expected["n_stages"])
    assert max(abs(df["eps"].to_numpy() - expected["eps"].to_numpy())) <= 1e-12
    for col in [c for c in expected.columns if c.startswith(("lam_", "beta_"))]:
        np.testing.assert_allclose(df[col], expected[col], rtol=1e-12)
        values = df[col].dropna()  # lam = inf: the limit beyond the box
        assert ((values <= (1e2 if col.startswith("lam") else 10) * (1 + 1e-9)) | (values == np.inf)).all()
    assert list(df["best"]) == [n == ref.best_n_stages for n in expected["n_stages"]]


def test_optimize_hard_logistic_two_stages(capsys):
    args = ["optimize", *PROBLEM_ARGS, "--n-stages", "2", "--restarts", "0", "--format", "csv"]
    code, out, _ = _run(args, capsys)
    assert code == 0
    df = _csv(out)
    ref = sdgmm.optimize(PROBLEM, 2, loss="logistic", labels="hard", restarts=0)
    assert max(abs(df["eps"].to_numpy() - ref.to_dataframe()["eps"].to_numpy())) <= 1e-12
    assert math.isinf(df["beta_2"].iloc[1])  # hard labels: no temperature


def test_optimize_json_parses(capsys):
    args = ["optimize", *PROBLEM_ARGS, "--n-stages", "2", *SQUARE_SOFT, "--restarts", "0", "--format", "json"]
    code, out, _ = _run(args, capsys)
    assert code == 0
    data = json.loads(out)
    ref = sdgmm.optimize(PROBLEM, 2, loss="square", labels="soft", restarts=0)
    assert data["problem"]["alpha"] == 1.0 and data["labels"] == "soft" and data["n_stages"] == 2
    assert data["best_n_stages"] == ref.best_n_stages
    assert [o["n_stages"] for o in data["optima"]] == [1, 2]
    assert [len(o["eps"]) for o in data["optima"]] == [1, 2]  # every stage's eps at each optimum
    assert max(abs(o["eps_final"] - r.eps_final) for o, r in zip(data["optima"], ref.optima)) <= 1e-12
    assert data["optima"][1]["beta"] == pytest.approx(list(ref.optima[1].beta), rel=1e-12)


def test_optimize_defaults_come_from_the_api():
    args = build_parser().parse_args(["optimize"])
    sig = inspect.signature(sdgmm.optimize).parameters
    for name in ("restarts", "gain_tol", "seed", "loss", "labels", "bias"):
        assert getattr(args, name) == sig[name].default, name
    p = problem_from_args(args)  # --delta unset: the API's default
    assert (p.alpha, p.delta, p.rho, p.theta) == (2.0, 0.5, 0.5, 0.3)
    assert args.n_stages is None and args.max_stages is None  # the run then uses --max-stages 6
    assert args.lam_bounds == (1e-4, 1e3) and args.beta_bounds == (1e-2, 1e2)


# --- sdgmm curve -----------------------------------------------------------------------------------


def test_curve_defaults_are_the_papers_setting():
    args = build_parser().parse_args(["curve"])
    np.testing.assert_allclose(args.alphas, np.geomspace(0.1, 100, 20), rtol=1e-15)
    assert args.alphas[0] == 0.1 and args.alphas[-1] == 100.0
    assert args.stage_counts == [1, 2, 6]
    p = problem_from_args(args, alpha=1.0)  # --delta unset: the API's default
    assert (p.delta, p.rho, p.theta) == (0.5, 0.5, 0.3)
    sig = inspect.signature(sdgmm.curve).parameters
    for name in ("restarts", "seed", "loss", "labels", "bias"):
        assert getattr(args, name) == sig[name].default, name


@pytest.mark.parametrize(("text", "expected"), [
    ("0.1:100:4", [0.1, 1.0, 10.0, 100.0]),
    ("2:8:1", [2.0]),
    ("2,0.5,1,2", [0.5, 1.0, 2.0]),
    ("3", [3.0]),
])
def test_alpha_grid(text, expected):
    args = build_parser().parse_args(["curve", "--alphas", text])
    assert args.alphas == pytest.approx(expected, rel=1e-14)


def test_curve_writes_csv_and_plot(tmp_path, capsys):
    csv_path, png_path = tmp_path / "curve.csv", tmp_path / "curve.png"
    code, out, err = _run(["curve", *CURVE_ARGS, "--csv", str(csv_path), "--plot", str(png_path), "--format", "csv"],
                          capsys)
    assert code == 0  # stderr is no terminal: no progress bar, only where the files went
    assert err.splitlines() == [f"sdgmm curve: wrote {csv_path}", f"sdgmm curve: wrote {png_path}"]
    assert png_path.read_bytes()[:8] == PNG_MAGIC
    df = pd.read_csv(csv_path)
    assert csv_path.read_text() == out  # --format csv prints the same table
    assert list(df["alpha"]) == [0.5, 0.5, 2.0, 2.0] and list(df["n_stages"]) == [1, 2, 1, 2]
    for alpha, noiseless, bayes in zip(df["alpha"], df["noiseless"], df["bayes"]):
        assert noiseless == pytest.approx(_H(1 / math.sqrt(0.5 * (1 + 0.5 / alpha))), rel=1e-12)
        assert bayes == pytest.approx(_H(1 / math.sqrt(0.5)), rel=1e-12)
    ref = sdgmm.curve([0.5, 2.0], **CURVE_KW)
    assert max(abs(df["eps"].to_numpy() - ref["eps"].to_numpy())) <= 1e-12


def test_curve_table_json_and_progress(capsys):
    code, out, err = _run(["curve", *CURVE_ARGS, "--progress"], capsys)
    assert code == 0
    assert "2/2 alphas" in err and err.endswith("\n") and "error" not in err
    lines = out.splitlines()
    assert lines[0] == "# curve: delta=0.5 rho=0.5 theta=0.3; 2 alphas from 0.5 to 2; stage counts 1,2"
    body = [line for line in lines if not line.startswith("#")]
    assert body[0].split() == ["alpha", "SD", "eps", "eps_error", "lam", "beta", "at_bound", "noiseless"]
    assert [row.split()[1] for row in body[1:]] == ["0-SD", "1-SD", "0-SD", "1-SD"]
    assert max(len(line) for line in lines) <= 100

    code, out, _ = _run(["curve", *CURVE_ARGS, "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["alphas"] == [0.5, 2.0] and data["stage_counts"] == [1, 2]
    assert [(r["alpha"], r["n_stages"]) for r in data["rows"]] == [(0.5, 1), (0.5, 2), (2.0, 1), (2.0, 2)]
    assert math.isnan(data["rows"][0]["lam_2"])  # no stage 2 at T = 1
    assert data["rows"][1]["lam_1"] == math.inf  # the limit round-trips


def test_plot_curve_api(tmp_path):
    from matplotlib.figure import Figure
    from sdgmm import plot_curve

    df = pd.DataFrame({"alpha": [0.5, 0.5, 2.0, 2.0], "n_stages": [1, 2, 1, 2], "eps": [0.3, 0.25, 0.19, 0.13],
                       "noiseless": [0.16, 0.16, 0.10, 0.10], "bayes": [0.079] * 4})
    fig = plot_curve(df, path=tmp_path / "p.png", title="t")
    assert isinstance(fig, Figure)
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["0-SD", "1-SD", "noiseless 0-SD", "Bayes (alpha->inf)"]
    assert ax.get_xscale() == "log" and ax.get_title() == "t"
    other = Figure()
    target = other.add_subplot()
    assert plot_curve(df, ax=target) is other and len(target.get_lines()) == 4


# --- bad input: command line -----------------------------------------------------------------------

OPTIMIZE_CASES = [
    (["--lam-bounds", "10,1"], "--lam-bounds"),
    (["--beta-bounds", "1,1"], "--beta-bounds"),
    (["--lam-bounds", "0,1"], "--lam-bounds"),
    (["--lam-bounds", "1"], "--lam-bounds"),
    (["--n-stages", "0"], "--n-stages"),
    (["--max-stages", "0"], "--max-stages"),
    (["--n-stages", "2", "--max-stages", "3"], "--max-stages"),
    (["--restarts", "-1"], "restarts"),
    (["--seed", "-1"], "seed"),
    (["--gain-tol", "nan"], "gain_tol"),
    (["--delta", "0"], "delta"),
    (["--labels", "medium"], "--labels"),
    (["--bias", "fixed"], "--bias"),
]


def _assert_one_error_line(code, out, err, name):
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"sdgmm: error: {name}") or lines[0].startswith(f"sdgmm: error: argument {name}")


@pytest.mark.parametrize(("args", "name"), OPTIMIZE_CASES, ids=[" ".join(a) for a, _ in OPTIMIZE_CASES])
def test_optimize_rejects(args, name, capsys):
    _assert_one_error_line(*_run(["optimize", *SQUARE_SOFT, *args], capsys), name)


CURVE_CASES = [
    (["--alphas", ""], "--alphas"),
    (["--alphas", "1:0.1:3"], "--alphas"),
    (["--alphas", "0.1:1:0"], "--alphas"),
    (["--alphas", "0:1:3"], "--alphas"),
    (["--alphas", "1:2"], "--alphas"),
    (["--alphas", "1,,2"], "--alphas"),
    (["--alphas", "1,-2"], "--alphas"),
    (["--alphas", "1,nan"], "--alphas"),
    (["--stage-counts", "0"], "--stage-counts"),
    (["--stage-counts", "1,x"], "--stage-counts"),
    (["--lam-bounds", "10,1"], "--lam-bounds"),
    (["--restarts", "-1"], "restarts"),
    (["--rho", "1"], "rho"),
    (["--plot", "{tmp}/missing/curve.png"], "--plot"),
    (["--csv", "{tmp}/missing/curve.csv"], "--csv"),
    (["--csv", "{tmp}"], "--csv"),
    (["--plot", "{tmp}/curve.xyz"], "--plot"),
]


@pytest.mark.parametrize(("args", "name"), CURVE_CASES, ids=[" ".join(a) for a, _ in CURVE_CASES])
def test_curve_rejects_and_writes_nothing(args, name, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    outputs = ["--csv", str(tmp_path / "out.csv"), "--plot", str(tmp_path / "out.png")]
    if "--csv" in args:
        outputs = outputs[2:]
    if "--plot" in args:
        outputs = outputs[:2]
    code, out, err = _run(["curve", *CURVE_ARGS, *outputs, *args], capsys)
    _assert_one_error_line(code, out, err, name)
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_new_subcommands(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0
    assert "optimize" in out and "curve" in out and "sdgmm curve --" in out
    _, out, _ = _run(["optimize", "--help"], capsys)
    for flag in ("--max-stages", "--n-stages", "--gain-tol", "--lam-bounds", "--beta-bounds", "--restarts",
                 "--seed", "--labels", "T*", "at_bound", "exit status"):
        assert flag in out, flag
    _, out, _ = _run(["curve", "--help"], capsys)
    for flag in ("--alphas", "A:B:K", "--stage-counts", "--plot", "--csv", "--progress", "noiseless", "Bayes"):
        assert flag in out, flag


# --- bad input: Python API -------------------------------------------------------------------------

OPTIMIZE_API_CASES = [
    ({"n_stages": 1, "bounds": {"lam": (10, 1)}}, "bounds"),
    ({"n_stages": 1, "bounds": {"beta": (1.0, 1.0)}}, "bounds"),
    ({"n_stages": 1, "bounds": {"lam": (1,)}}, "bounds"),
    ({"n_stages": 1, "bias": "tune", "bounds": {"bias": (1.0, -1.0)}}, "bounds"),
    ({"n_stages": 0}, "n_stages"),
    ({"max_stages": 0}, "max_stages"),
    ({"n_stages": 2, "max_stages": 3}, "n_stages / max_stages"),
    ({}, "n_stages / max_stages"),
    ({"n_stages": 1, "restarts": -1}, "restarts"),
    ({"n_stages": 1, "seed": -1}, "seed"),
    ({"n_stages": 1, "labels": "medium"}, "labels"),
]


@pytest.mark.parametrize(("kw", "name"), OPTIMIZE_API_CASES, ids=[str(kw) for kw, _ in OPTIMIZE_API_CASES])
def test_optimize_api_rejects(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        sdgmm.optimize(PROBLEM, **kw)


CURVE_API_CASES = [
    ([], {}, "alphas"),
    ([1.0, -1.0], {}, "alphas"),
    ([1.0], {"stage_counts": [0]}, "stage_counts"),
    ([1.0], {"stage_counts": []}, "stage_counts"),
    ([1.0], {"bounds": {"lam": (10, 1)}}, "bounds"),
    ([1.0], {"max_stages": 2}, "max_stages"),
]


@pytest.mark.parametrize(("alphas", "kw", "name"), CURVE_API_CASES, ids=[n for *_, n in CURVE_API_CASES])
def test_curve_api_rejects(alphas, kw, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        sdgmm.curve(alphas, **{**CURVE_KW, **kw})


def test_optimize_tuned_bias_column(capsys):
    args = ["optimize", "--alpha", "2", "--rho", "0.3", "--theta", "0.2", "--n-stages", "1", "--bias", "tune",
            "--restarts", "0"]
    code, out, err = _run(args, capsys)
    assert err == ""
    ref = sdgmm.optimize(sdgmm.Problem(alpha=2, delta=0.5, rho=0.3, theta=0.2), n_stages=1, bias="tune", restarts=0)
    rows = [line.split() for line in out.splitlines() if not line.startswith("#")]
    assert code == 0 and rows[0][5] == "B"
    assert float(rows[1][5]) == pytest.approx(ref.optima[0].bias_value, abs=1e-3)


def test_mix_tunes_xi_and_prints_it(capsys):
    code, out, err = _run(["optimize", "--alpha", "0.5", "--n-stages", "2", "--mix", "--restarts", "0",
                           "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    ref = sdgmm.optimize(sdgmm.Problem(alpha=0.5), n_stages=2, restarts=0, mix=True)
    assert data["mix"] and data["optima"][1]["xi"] == pytest.approx(ref.optima[1].xi, abs=1e-12)
    code, out, err = _run(["optimize", "--alpha", "0.5", "--n-stages", "2", "--mix", "--restarts", "0"], capsys)
    assert "xi in [-5, 20] (mixed)" in out and " xi " in out.splitlines()[5]
    code, out, err = _run(["optimize", "--mix", "--xi-bounds", "2,1"], capsys)
    assert code == 2 and "xi-bounds" in err
