"""fit_gmm recovers the parameters of data drawn from the model (isotropic and anisotropic), and its lam
conversion gives the estimator exactly the solver's fit in model units."""

import numpy as np
import pytest
import sdgmm
from sdgmm import _core
from sdgmm._linear import fit_linear
from sdgmm.estimator import SelfDistillationClassifier
from sdgmm.realdata import GMMFit, fit_gmm


def _draws(problem, N, trials, seed=1):
    for k in range(trials):
        X, _, _, y_noisy = _core.draw_dataset(problem, N, seed, k)
        yield np.asarray(X), np.asarray(y_noisy).astype(int)


@pytest.mark.parametrize("alpha, delta, rho, theta", [(2.0, 0.5, 0.5, 0.0), (3.0, 0.8, 0.5, 0.2)])
def test_recovers_the_isotropic_model(alpha, delta, rho, theta):
    p = sdgmm.Problem(alpha=alpha, delta=delta, rho=rho, theta=theta)
    fits = [fit_gmm(3.0 * X + 1.0, y, theta=theta) for X, y in _draws(p, 300, 8)]  # units do not matter
    est = np.array([[f.delta, f.rho, f.N_eff, f.mean_distance] for f in fits])
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(len(est))
    truth = np.array([delta, rho, 300.0, 6.0])
    assert np.all(np.abs(mean - truth) < 4 * se + 0.03 * truth), (mean, se)


def test_recovers_an_anisotropic_model():
    # Diagonal covariance with a decaying spectrum, mean difference d: delta = 4 d'Sd / |d|^4 and
    # N_eff = 16 tr(S^2) / (|d|^4 delta^2) in closed form.
    rng = np.random.default_rng(3)
    N, M = 200, 4000
    var = 3.0 / (1.0 + np.arange(N)) ** 0.7
    d = rng.normal(size=N) * 0.2
    delta = 4 * d @ (var * d) / (d @ d) ** 2
    n_eff = 16 * np.sum(var**2) / ((d @ d) ** 2 * delta**2)
    est = []
    for _ in range(6):
        y = np.r_[np.zeros(M // 2, int), np.ones(M // 2, int)]
        X = rng.normal(size=(M, N)) * np.sqrt(var) + np.outer(y - 0.5, d)
        f = fit_gmm(X, y)
        est.append([f.delta, f.N_eff])
    mean = np.mean(est, axis=0)
    assert mean[0] == pytest.approx(delta, rel=0.03)
    assert mean[1] == pytest.approx(n_eff, rel=0.1)  # 1 / delta^2 of a noisy delta: measured +6.5% here


def test_lam_conversion_is_the_solver_fit_in_model_units():
    # Features 3 x_model + 1 (|d| = 6, isotropic so N_eff = N): the estimator with estimator_lam(lam) gives
    # the solver's logits on x_model with lam.
    p = sdgmm.Problem(alpha=2.0, delta=0.5, rho=0.5, theta=0.2)
    X, y = next(_draws(p, 200, 1))
    N = X.shape[1]
    fit = GMMFit(alpha=2.0, delta=0.5, rho=0.5, theta=0.2, M=len(y), N_eff=float(N), mean_distance=6.0)
    lam = 0.7
    logits = fit_linear(X, y.astype(float), lam=lam, tol=1e-12, threads=0).logits
    est = SelfDistillationClassifier(n_stages=1, lam=fit.estimator_lam(lam), tol=1e-12).fit(3.0 * X + 1.0, y)
    np.testing.assert_allclose(est.decision_function(3.0 * X + 1.0), logits, atol=1e-8)


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    for args, message in (((X, y, 0.5), "^theta must be in"), ((X[:, 0], y), "^X must be a 2-D"),
                          ((X, y[:-1]), "^y must hold one label"), ((X, np.zeros(20, int)), "^y must hold at least 2")):
        with pytest.raises(ValueError, match=message):
            fit_gmm(*args)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="^X must be finite"):
        fit_gmm(bad, y)
