"""sdgmm figure: each figure writes its PNG and CSV; bad names and directories are refused."""

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run
from sdgmm import figures


@pytest.fixture
def few_alphas(monkeypatch):
    monkeypatch.setattr(figures, "ALPHAS", np.array([0.5, 1.0, 2.0]))


def test_f1_writes_png_and_csv_of_the_optimal_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "ALPHAS", np.array([1.0]))  # one alpha: hard T = 6 optima cost seconds each
    paths = figures.make_figure("F1", str(tmp_path))
    assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "csv"]
    df = pd.read_csv(paths[1])
    assert set(df["loss"]) == {"logistic", "square"} and set(df["n_stages"]) == {1, 2, 3, 6}
    one = df[(df["alpha"] == 1.0) & (df["loss"] == "logistic")].set_index("n_stages")["eps"]
    assert one[1] == pytest.approx(0.243117, abs=1e-6)  # mean-difference classifier
    assert one[1] > one[2] > one[3] > one[6]
    with open(paths[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_f6_mixed_sd_is_no_worse_than_pure_and_its_xi_exceeds_one(tmp_path, few_alphas):
    paths = figures.make_figure("F6", str(tmp_path))
    df = pd.read_csv(paths[1])
    pure, mixed = (df[(df["mixed"] == m) & (df["n_stages"] == 2)].set_index("alpha") for m in (False, True))
    assert (mixed["eps"] <= pure["eps"] + 1e-9).all()
    assert (pure["eps"] - mixed["eps"]).max() > 1e-3  # the mixed search finds the gain (alpha 1: 0.0020)
    assert (mixed["xi_2"] > 1.0).all()


def test_cli_figure_refuses_bad_input(tmp_path, capsys):
    code, _, err = run(["figure", "F9", "--out", str(tmp_path)], capsys)
    assert code == 2 and "NAME" in err
    code, _, err = run(["figure", "F1", "--out", str(tmp_path / "missing")], capsys)
    assert code == 2 and "--out" in err
    assert list(tmp_path.iterdir()) == []
