"""The linear probe end to end on scikit-learn's digits (3 vs 8): noise protocol, reproducibility, and that
the test set is never seen while tuning."""

import math
import warnings

import numpy as np
import pytest
from sdgmm.realdata import METHODS, SELECTED, probe
from sdgmm.realdata import _data as probe_data
from sdgmm.realdata import _tuning as probe_tuning
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SMALL = {"classes": (3, 8), "M": [60, 120], "theta": [0.2, 0.3], "trials": 2, "validation": 3, "seed": 7}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def result(digits):
    X_train, X_test, y_train, y_test = digits
    return probe(X_train, y_train, X_test, y_test, **SMALL)


def test_runs_end_to_end(result, digits):
    df = result.trials
    assert len(df) == 2 * 2 * 2 * (len(METHODS) + 1)  # and the row of the method selected by validation
    assert result.N == 64 and result.classes == (3, 8)
    # exact protocol: floor(theta M / 2) flips in each class
    for (M, theta), part in df.groupby(["M", "theta"]):
        assert set(part["realised_flips"]) == {2 * math.floor(theta * M / 2)}
    assert df["test_error"].between(0, 0.5).all()
    n_test = np.isin(digits[3], (3, 8)).sum()
    assert np.allclose(df["test_error"] * n_test, np.round(df["test_error"] * n_test))  # errors count test points
    summary = result.summary()
    assert len(summary) == 2 * 2 * (len(METHODS) + 1)
    assert (summary["test_error_se"] > 0).any()
    row = summary[(summary.M == 120) & (summary.theta == 0.2) & (summary.method == "0-SD")].iloc[0]
    errors = df[(df.M == 120) & (df.theta == 0.2) & (df.method == "0-SD")]["test_error"]
    assert row["test_error"] == pytest.approx(errors.mean())
    assert row["test_error_se"] == pytest.approx(errors.std(ddof=1) / math.sqrt(2))
    assert (df[df.method == "hard T-SD"]["n_stages"] >= 2).all()
    # mixed 1-SD's search starts at hard 1-SD's optimum (xi = 1), so it never validates worse
    hard, mixed = (df[df.method == m].set_index(["M", "theta", "trial"]) for m in ("hard 1-SD", "mixed 1-SD"))
    assert (mixed["val_error"] <= hard.loc[mixed.index, "val_error"]).all()
    assert mixed["xi"].isin(probe_tuning.DEFAULT_XI_GRID).all() and (hard["xi"] == 1.0).all()
    assert df[df.method == "0-SD"]["xi"].isna().all() and summary["xi"].notna().sum() == len(summary) - 4


def test_reproducible_with_a_seed(result, digits):
    X_train, X_test, y_train, y_test = digits
    again = probe(X_train, y_train, X_test, y_test, **SMALL)
    cols = ["M", "theta", "trial", "method", "test_error", "val_error", "lam", "beta", "n_stages"]
    assert again.trials[cols].equals(result.trials[cols])
    other = probe(X_train, y_train, X_test, y_test, **{**SMALL, "seed": 8})
    assert not other.trials["test_error"].equals(result.trials["test_error"])


def test_tuning_never_sees_the_test_set(result, digits, monkeypatch):
    X_train, X_test, y_train, y_test = digits
    # Sentinel 1: every array the tuner receives is a part of the M-point training subset.
    seen = []
    original = probe_tuning.StageCache.__init__

    def recording(self, X_fit, y_fit, X_val, y_val, *args, **kwargs):
        seen.append((len(X_fit), len(X_val)))
        original(self, X_fit, y_fit, X_val, y_val, *args, **kwargs)

    monkeypatch.setattr(probe_tuning.StageCache, "__init__", recording)
    # Sentinel 2: a garbage test set (noise features, labels swapped) changes no tuned value.
    rng = np.random.default_rng(0)
    junk = probe(X_train, y_train, rng.normal(size=X_test.shape), np.where(y_test == 3, 8, 3), **SMALL)
    assert all(f + v in SMALL["M"] for f, v in seen)
    tuned = ["M", "theta", "trial", "method", "val_error", "lam", "beta", "n_stages"]
    assert junk.trials[tuned].equals(result.trials[tuned])
    assert not junk.trials["test_error"].equals(result.trials["test_error"])


def test_coordinate_search_finds_the_grid_minimum():
    table = np.add.outer((np.arange(7) - 4.0) ** 2, (np.arange(5) - 1.0) ** 2)  # separable: exact in one sweep
    key, score = probe_tuning.coordinate_search(lambda k: (table[k], 0.0), tuple, [0, 0], [7, 5])
    assert key == (4, 1) and score == (0.0, 0.0)


def test_noise_protocols():
    y = np.r_[np.zeros(50, int), np.ones(50, int)]
    rng = np.random.default_rng(0)
    ranks, uniforms = probe_data.flip_order(y, rng), rng.random(100)
    low = probe_data.noisy_labels(y, 0.2, "exact", ranks, uniforms)
    high = probe_data.noisy_labels(y, 0.4, "exact", ranks, uniforms)
    assert np.sum((low != y) & (y == 0)) == 10 and np.sum((low != y) & (y == 1)) == 10
    assert np.all(high[low != y] != y[low != y])  # nested across theta
    bern = probe_data.noisy_labels(y, 0.3, "bernoulli", ranks, uniforms)
    np.testing.assert_array_equal(bern != y, uniforms < 0.3)
    idx = probe_data.draw_subset(np.r_[np.zeros(30, int), np.ones(70, int)], 40, rng, "stratified")
    assert len(idx) == 40 and np.sum(idx >= 30) == 28


def test_paired_differences(result):
    diff = result.paired_differences()
    df = result.trials
    assert set(diff["method"]) == set(METHODS) - {"0-SD"} | {SELECTED}
    row = diff[(diff.M == 60) & (diff.theta == 0.3) & (diff.method == "hard 1-SD")].iloc[0]
    cell = df[(df.M == 60) & (df.theta == 0.3)]
    d = (cell[cell.method == "hard 1-SD"]["test_error"].to_numpy() - cell[cell.method == "0-SD"]["test_error"].to_numpy())
    assert row["difference"] == pytest.approx(d.mean())
    assert row["difference_se"] == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)))


@pytest.mark.parametrize("bias", ["learn", "fix_first"])
def test_tuning_fits_in_principal_coordinates_are_the_estimators(bias):
    # The search fits (principal coordinates, tolerance 1e-4) against the estimator refit on the features.
    from sdgmm.estimator import SelfDistillationClassifier
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    for M in (100, 20):  # M > N = 30, and M < N (null directions dropped)
        rows = np.r_[np.flatnonzero(y == 0)[: M // 2], np.flatnonzero(y == 1)[: M // 2]]
        Xs, ys = np.ascontiguousarray(StandardScaler().fit_transform(X[rows])), y[rows]
        Z = probe_tuning.principal_coordinates(Xs)
        grids = probe_tuning.Grids(np.array([0.1, 1.0]), np.array([2.0]), np.array([-0.5, 1.5]))
        cache = probe_tuning.StageCache(Z, ys, Z, ys, grids, bias, 0, Xs.shape[1] / Z.shape[1])
        hard = probe_tuning.HARD
        for key, labels, xi in ((((0, None), (1, 0), (1, 0)), "soft", 1.0),
                                (((0, None), (1, hard), (1, hard)), "hard", 1.0),
                                (((0, None), (1, hard, 0)), "hard", -0.5), (((0, None), (1, hard, 1)), "hard", 1.5)):
            fit = cache.stage(key)
            b, logits = fit.b, fit.logits
            est = SelfDistillationClassifier(n_stages=len(key), lam=[3.0] + [30.0] * (len(key) - 1), labels=labels,
                                             beta=2.0, bias=bias, xi=xi)
            est.fit(Xs, ys)
            assert abs(b - est.intercept_[0]) < 1e-3
            np.testing.assert_allclose(logits, est.decision_function(Xs), rtol=1e-3, atol=1e-3)  # search tol 1e-4
        assert Z.shape[1] == min(Xs.shape[0] - 1, Xs.shape[1])  # standardised: rank M - 1 at most


def _raw_pixels(pair=(3, 8)):
    """Digits' raw pixels: border pixels are (nearly) constant, so standardised columns reach |x| = 30."""
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, pair)
    return train_test_split(X[keep], y[keep], test_size=1 / 3, stratify=y[keep], random_state=0)


def test_raw_pixels_with_weak_penalties_give_no_warnings_and_honest_validation():
    # Before the solver's line search was made finite, lam = 1e-4 N gave NaN fits: 'invalid value encountered
    # in logaddexp' warnings, and soft 1-SD's validation error at theta = 0 was 0.053 against a test error of
    # 0.020 (NaN folds scored as predictions).
    X_train, X_test, y_train, y_test = _raw_pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = probe(X_train, y_train, X_test, y_test, classes=(3, 8), M=[100, 200], theta=[0.0], trials=3,
                    lam_grid=10.0 ** np.arange(-4.0, 3.01, 1.0), seed=0)
    summary = res.summary()
    assert (summary["failed"] == 0).all() and (summary["excluded_fits"] == 0).all()
    # Clean validation labels at theta = 0: validation error estimates test error (measured gaps <= 0.014).
    assert np.abs(summary["val_error"] - summary["test_error"]).max() < 0.03


def test_selected_is_the_method_that_validates_best(result):
    df = result.trials
    for _, trial in df.groupby(["M", "theta", "trial"]):
        chosen = trial[trial.method == SELECTED].iloc[0]
        methods = trial[trial.method.isin(METHODS)]
        best = methods["val_error"].min()
        assert chosen["val_error"] == best
        picked = methods[methods.method == chosen["selected"]].iloc[0]
        assert picked["val_error"] == best and picked["test_error"] == chosen["test_error"]
    paired = result.paired_differences()
    assert (paired["method"] == SELECTED).sum() == 4  # every (M, theta) cell
    counts = result.summary().set_index("method").loc[SELECTED, "selected"]
    assert all(sum(int(part.split(":")[1]) for part in c.split(";")) == 2 for c in counts)  # 2 trials each


def test_non_finite_fits_are_excluded_and_counted(digits, monkeypatch):
    # A solver that returns NaN weights for the weakest penalty: those configurations are never scored,
    # never selected, and the summary counts them; with NaN everywhere every trial fails, with NaN errors.
    from sdgmm import estimator

    original = estimator.StageSolver._fit
    weakest = min(probe_tuning.DEFAULT_LAM_GRID)

    def broken_at(threshold):
        def fit(self, targets, lam_solver, learn_bias, b0, warm):
            out = original(self, targets, lam_solver, learn_bias, b0, warm)
            return out if lam_solver * self.X.shape[1] > threshold else estimator.StageFit(
                np.full_like(out.w, np.nan), out.b, out.logits, out.report, out.targets)
        return fit

    X_train, X_test, y_train, y_test = digits
    small = {**SMALL, "M": [60], "theta": [0.2]}
    monkeypatch.setattr(estimator.StageSolver, "_fit", broken_at(weakest * 64 * 1.01))
    res = probe(X_train, y_train, X_test, y_test, **small, lam_grid=probe_tuning.DEFAULT_LAM_GRID)
    tuning_rows = res.trials[res.trials.method.isin(METHODS)]
    assert (tuning_rows["excluded_fits"] > 0).all()
    assert all(min(float(v) for v in lam.split(";")) > weakest * 64 for lam in tuning_rows["lam"])
    assert res.trials["test_error"].notna().all()
    monkeypatch.setattr(estimator.StageSolver, "_fit", broken_at(np.inf))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = probe(X_train, y_train, X_test, y_test, **small)
    summary = res.summary()
    assert res.trials["test_error"].isna().all() and (summary["trials"] == 0).all()
    assert (summary[summary.method.isin(METHODS)]["failed"] == 2).all()
