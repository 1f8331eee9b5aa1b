"""The noisy Gaussian mixture that best matches real features, and its theory-optimal hyperparameters.

Model (docs/theory.md section 1), in model units: ``x = s mu + sqrt(delta) zeta`` in dimension N, ``|mu| = 1``,
class prior rho, flip rate theta, alpha = M / N. Real features have a covariance Sigma that is far from
isotropic, so the model is matched by the two moments that set the error of the mean-difference
classifier w = m_1 - m_0 (the lam -> inf limit of the trained one), ``H(|d|^2 / 2 / sqrt(d' Sigma d +
4 tr(Sigma^2) / M))`` for balanced classes, whose model value is ``H(1 / sqrt(delta (1 + delta / alpha)))``:

- units with the class means at distance 1 from their midpoint: ``x_model = (2 / |d|) x``;
- delta = the within-class variance along the mean difference, ``4 d' Sigma d / |d|^4``;
- N_eff = ``tr(Sigma_model^2) / delta^2`` (= N for isotropic noise), alpha = M / N_eff.

Estimators, from standardised features X and labels y observed under an assumed flip rate theta:
rho = ``(rho_noisy - theta) / (1 - 2 theta)``; each noisy group c mixes the true classes with
p_c = P(true 1 | noisy c), so the noisy mean difference shrinks by p_1 - p_0 and the pooled within-group
covariance S carries ``sum_c w_c p_c (1 - p_c) d d'`` on top of Sigma; the sampling noise of the group
means (``k = 1 / n_0 + 1 / n_1``) is subtracted from ``|d|^2`` (k tr S) and ``d' S d`` (k tr S^2), and
``tr S^2`` is debiased by ``(tr S)^2 / n``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from sdgmm._model import Problem
from sdgmm.optimal import optimize

RHO_RANGE = (0.01, 0.99)
LAM_CAP = 1e3  # theory lam used for an optimum at lam = inf (the mean-difference limit): the search box's top


@dataclass(frozen=True)
class GMMFit:
    alpha: float
    delta: float
    rho: float
    theta: float
    M: int
    N_eff: float  # effective dimension; alpha = M / N_eff
    mean_distance: float  # |d|, the distance of the class means in feature units

    def problem(self):
        return Problem(alpha=self.alpha, delta=self.delta, rho=self.rho, theta=self.theta)

    def estimator_lam(self, lam_theory):
        """The theory's lam (u = x_model . w / sqrt(N_eff) + B) as SelfDistillationClassifier's lam on the
        features (u = x . w + B), through x_model = (2 / |d|) x: lam = lam_theory N_eff |d|^2 / 4."""
        lam = np.minimum(np.asarray(lam_theory, dtype=float), LAM_CAP)
        return lam * self.N_eff * self.mean_distance**2 / 4.0

    def optimal(self, n_stages: int = 2, labels: str = "hard", bias: str = "learn", restarts: int = 1):
        """Theory-optimal hyperparameters of n_stages-stage SD for the matched model (sdgmm.optimize).
        Returns lam (estimator units; lam = inf capped at LAM_CAP), lam_theory, beta, the theory's eps."""

        start = time.perf_counter()
        res = optimize(self.problem(), n_stages=n_stages, labels=labels, bias=bias, restarts=restarts)
        best = res.optima[-1]
        return {"lam": self.estimator_lam(best.lam), "lam_theory": best.lam, "beta": best.beta,
                "eps_theory": best.eps_final, "at_bound": best.at_bound, "seconds": time.perf_counter() - start}


def _check(X, y, theta):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] < 4:
        raise ValueError(f"X must be a 2-D array with at least 4 rows (got shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (it holds NaN or inf)")
    if y.shape != (X.shape[0],) or not np.all(np.isin(y, (0, 1))):
        raise ValueError("y must hold one label 0 or 1 per row of X")
    if not (isinstance(theta, (int, float)) and 0 <= theta < 0.5):
        raise ValueError(f"theta must be in [0, 0.5): above 1/2 the labels carry the opposite class (got {theta!r})")
    if min(np.sum(y == 0), np.sum(y == 1)) < 2:
        raise ValueError("y must hold at least 2 samples of each class")
    return X, y


def fit_gmm(X, y, theta: float = 0.0) -> GMMFit:
    """Match the noisy Gaussian mixture to standardised features X (M x N) with 0/1 labels y observed
    under an assumed flip rate theta (0 = clean labels). See the module docstring for the estimators."""
    X, y = _check(X, y, theta)
    M = X.shape[0]
    n = np.array([np.sum(y == 0), np.sum(y == 1)])
    means = [X[y == c].mean(axis=0) for c in (0, 1)]
    centred = X - np.where(y[:, None] == 1, means[1], means[0])  # within-group deviations
    dof = M - 2
    gram = centred @ centred.T if M < X.shape[1] else centred.T @ centred
    tr_s = np.trace(gram) / dof
    tr_s2 = (np.sum(gram**2) / dof**2 - tr_s**2 / dof) / (1.0 + 1.0 / dof)
    rho = float(np.clip((np.mean(y) - theta) / (1.0 - 2.0 * theta), *RHO_RANGE))
    purity = np.array([rho * theta / (rho * theta + (1 - rho) * (1 - theta)),  # P(true 1 | noisy c)
                       rho * (1 - theta) / (rho * (1 - theta) + (1 - rho) * theta)])
    shrink = purity[1] - purity[0]
    k = 1.0 / n[0] + 1.0 / n[1]
    d_noisy = means[1] - means[0]
    proj = centred @ d_noisy
    dSd_noisy = proj @ proj / dof - k * tr_s2
    d2_noisy = d_noisy @ d_noisy - k * tr_s
    if d2_noisy <= 0:
        raise ValueError("X, y: the class means are no further apart than their sampling noise; no mixture to match")
    d2 = d2_noisy / shrink**2
    dSd = dSd_noisy / shrink**2
    mixing = float(((n - 1) / dof) @ (purity * (1 - purity)))
    # Floors where sampling noise swamps a moment: 1% of the average variance along d, and the
    # smallest tr(Sigma^2) that tr(Sigma) allows (isotropic noise).
    tr_sigma = max(tr_s - mixing * d2, 1e-3 * tr_s)
    dSigmad = max(dSd - mixing * d2**2, 1e-2 * d2 * tr_sigma / X.shape[1])
    tr_sigma2 = max(tr_s2 - 2 * mixing * dSd + mixing**2 * d2**2, tr_sigma**2 / X.shape[1])
    delta = 4.0 * dSigmad / d2**2
    n_eff = 16.0 * tr_sigma2 / (d2**2 * delta**2)
    return GMMFit(alpha=M / n_eff, delta=delta, rho=rho, theta=float(theta), M=M, N_eff=n_eff,
                  mean_distance=math.sqrt(d2))
