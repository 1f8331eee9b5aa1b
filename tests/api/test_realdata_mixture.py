"""fit_mixture recovers the general-covariance mixture from data drawn from it, says when one shared covariance does
not fit, and the theory it feeds predicts the test error of estimators trained on such data."""

import math

import numpy as np
import pytest
import sdgmm
from sdgmm import Problem, Spectrum
from sdgmm._core import draw_dataset
from sdgmm.realdata import fit_mixture, probe

TWO_LEVEL = Spectrum(np.repeat([2.0, 0.2], [20, 180]), np.repeat([0.0, math.sqrt(4 / 3)], [20, 180]))


def _draw(spectrum, M, seed):
    X, _, y_true, _ = draw_dataset(Problem(alpha=M / spectrum.N, theta=0.0, spectrum=spectrum), spectrum.N, seed, 0)
    return np.asarray(X), np.asarray(y_true).astype(int)


def test_recovers_a_two_level_spectrum_and_its_mean():
    X, y = _draw(TWO_LEVEL, 20_000, 1)
    fit = fit_mixture(X, y)
    ev = np.sort(fit.spectrum.eigenvalues)
    # The top 20 eigenvalues near 2, the rest near 0.2 (Marchenko-Pastur spread at M / N = 100: +-20%).
    assert np.all(np.abs(ev[-20:] - 2.0) < 0.4) and np.all(np.abs(ev[:180] - 0.2) < 0.06)
    top = fit.spectrum.eigenvalues > 1.0
    mu2 = np.asarray(fit.spectrum.mean) ** 2
    assert mu2[top].sum() / 200 < 0.05 * mu2.sum() / 200  # the mean lies in the low-variance directions
    assert mu2.sum() / 200 == pytest.approx(1.2, rel=0.05)  # (1/N) |mu|^2 = 180 / 200 * 4 / 3
    assert fit.covariance_mismatch < 0.15 and fit.variance_ratio == pytest.approx(1.0, abs=0.1)
    assert fit.rho == pytest.approx(0.5, abs=0.02)


def test_few_points_use_the_gram_matrix_and_give_the_same_spectrum():
    X, y = _draw(TWO_LEVEL, 120, 2)  # M < N: 118 nonzero eigenvalues
    fit = fit_mixture(X, y)
    centred = np.vstack([X[y == c] - X[y == c].mean(axis=0) for c in (0, 1)])
    exact = np.linalg.eigvalsh(centred.T @ centred / (len(y) - 2))
    np.testing.assert_allclose(np.sort(fit.spectrum.eigenvalues), np.clip(exact, 0, None), atol=1e-10)
    d = X[y == 1].mean(axis=0) - X[y == 0].mean(axis=0)
    expected = 200 / 4 * (d @ d) * (1 - fit.mean_noise)
    assert np.sum(np.asarray(fit.spectrum.mean) ** 2) == pytest.approx(expected, rel=1e-10)


def test_different_class_covariances_are_reported():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 3000)
    X = rng.normal(size=(6000, 50)) * np.where(y[:, None] == 1, 2.0, 1.0) + 0.3 * y[:, None]
    fit = fit_mixture(X, y)
    assert fit.covariance_mismatch > 1.0 and fit.variance_ratio == pytest.approx(4.0, rel=0.1)


def test_the_theory_predicts_the_probes_test_errors_on_data_from_the_model():
    # Features drawn from a two-level model: the mixture fitted to the pool must predict each method's measured
    # test error at the hyperparameters it used (the probe's theory_error), to finite-size accuracy.
    harder = Spectrum(np.repeat([2.0, 0.2], [20, 180]), np.repeat([0.0, math.sqrt(0.2)], [20, 180]))
    X, y = _draw(harder, 6000, 4)
    res = probe(X[:4000], y[:4000], X[4000:], y[4000:], M=[600], theta=[0.2], trials=3, zero_tuning=True, seed=1)
    summary = res.summary().set_index("method")
    print(summary[["test_error", "test_error_se", "theory_error"]])
    assert summary["test_error"].min() > 0.05  # a hard enough task for the comparison to mean something
    gap = np.abs(summary["test_error"] - summary["theory_error"]) - 3 * summary["test_error_se"]
    assert np.all(gap <= 0.01)
    # Zero tuning: the theory's optimum, refitted without validation, is as good as tuning (or better), and
    # the theory predicts it no worse than the tuned configurations.
    for method in ("0-SD", "soft 1-SD", "hard 1-SD", "mixed 1-SD", "hard T-SD"):
        zero = summary.loc[f"zero-tuned {method}"]
        assert zero["test_error"] <= summary.loc[method, "test_error"] + 0.01
        assert zero["theory_error"] <= summary.loc[method, "theory_error"] + 1e-6  # the optimum is optimal


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"^y must hold at least 2 samples of each class"):
        fit_mixture(np.ones((5, 3)), np.array([0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match=r"^X must be finite"):
        fit_mixture(np.full((6, 3), np.nan), np.array([0, 0, 0, 1, 1, 1]))
    X = np.random.default_rng(0).normal(size=(40, 5))
    with pytest.raises(ValueError, match=r"no further apart than their sampling noise"):
        fit_mixture(X, np.repeat([0, 1], 20))


def test_curve_references_of_a_flat_spectrum_are_the_isotropic_closed_forms():
    flat = Spectrum.isotropic(100, 0.5)
    df = sdgmm.curve([1.0, 4.0], theta=0.2, spectrum=flat, stage_counts=[1])
    iso = sdgmm.curve([1.0, 4.0], theta=0.2, delta=0.5, stage_counts=[1])
    np.testing.assert_allclose(df["eps"], iso["eps"], atol=1e-12)
    np.testing.assert_allclose(df["bayes"], iso["bayes"], rtol=1e-12)
    np.testing.assert_allclose(df["noiseless"], iso["noiseless"], atol=1e-6)  # a search against the closed form


def test_a_stage_beyond_the_lam_box_is_refitted_as_the_limit():
    # Theory-optimal soft 1-SD can put lam_2 on the axis segment beyond the box that runs to lam = inf. There a
    # finite stage's logits are O(1/lam), and the learned bias, O(1/sqrt(M)) in a finite sample but zero in the
    # theory, decides every prediction: zero-tuned soft 1-SD on CIFAR features measured 0.50 in every trial.
    X, y = _draw(TWO_LEVEL, 2000, 5)
    fit = fit_mixture(X, y)
    lam = fit.estimator_lam([1.0, 1e5, np.inf])
    assert lam[0] == pytest.approx(fit.N) and np.isinf(lam[1]) and np.isinf(lam[2])
    X_test, y_test = _draw(TWO_LEVEL, 4000, 6)
    rng = np.random.default_rng(0)
    noisy = y[:1000] ^ (rng.random(1000) < 0.3)
    errors = {}
    for name, lam_2 in (("finite", 1e5 * fit.N), ("limit", np.inf)):
        clf = sdgmm.SelfDistillationClassifier(n_stages=2, lam=[fit.N, lam_2], beta=10.0, labels="soft")
        errors[name] = np.mean(clf.fit(X[:1000], noisy).predict(X_test) != y_test)
    print(errors)
    assert errors["finite"] > errors["limit"] + 0.1
