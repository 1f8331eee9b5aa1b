"""The Gaussian mixture of docs/theory.md section 6 fitted to labelled features, so that the theory speaks about
the user's data: the class-mean vector and the spectrum of the pooled within-class covariance, estimated from a
labelled pool (as the real-data learning-curve literature does: population statistics from all available
points), and how well one shared covariance describes both classes.

Units: the model is ``x = s mu / sqrt(N) + Sigma^{1/2} zeta`` around the midpoint of the class means, so with
class means m_1, m_0 of the features, ``mu = sqrt(N) (m_1 - m_0) / 2`` and Sigma is the pooled covariance. A
classifier ``u = x . w + b`` on the features (SelfDistillationClassifier, penalty ``lam / 2 |w|^2``) is the
theory's ``u = x . w_t / sqrt(N) + b`` with ``w_t = sqrt(N) w`` and ``lam_theory = lam / N``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from sdgmm._model import Problem, Spectrum
from sdgmm.optimal import DEFAULT_BOUNDS, optimize


@dataclass(frozen=True)
class MixtureFit:
    spectrum: Spectrum  # eigenvalues of the pooled within-class covariance; mean = U^T mu
    rho: float  # the pool's share of class 1
    n: tuple  # points per class in the pool
    covariance_mismatch: float  # ||S_1 - S_0||_F / ||S||_F: 0 when one covariance fits both classes
    variance_ratio: float  # variance along the mean difference, class 1 over class 0
    mean_noise: float  # the share of |m_1 - m_0|^2 that sampling noise explains (subtracted from |mu|^2)

    @property
    def N(self) -> int:
        return self.spectrum.N

    def save(self, path) -> None:
        """The spectrum file (arrays 'eigenvalues' and 'mean', as --spectrum reads it) with the fit's diagnostics."""
        np.savez(path, eigenvalues=self.spectrum.eigenvalues, mean=self.spectrum.mean, rho=self.rho,
                 n=np.array(self.n), covariance_mismatch=self.covariance_mismatch, variance_ratio=self.variance_ratio,
                 mean_noise=self.mean_noise)

    def problem(self, M: int, theta: float, rho: float | None = None) -> Problem:
        """The model of a training set of M points with flip rate theta (and class share rho, default the
        pool's): alpha = M / N."""
        return Problem(alpha=M / self.N, rho=self.rho if rho is None else rho, theta=theta, spectrum=self.spectrum)

    def theory_lam(self, lam):
        """SelfDistillationClassifier's lam (the penalty on the features' weights) in the theory's units."""
        return np.asarray(lam, dtype=float) / self.N

    def estimator_lam(self, lam_theory):
        """The theory's optimal lam as SelfDistillationClassifier's lam. A lam beyond the search box's upper bound
        (on the axis segment that runs to the limit) becomes inf, the estimator's limit stage: the two agree in
        the theory to O(1/lam), but a finite stage there has logits O(1/lam) that a finite sample's learned bias
        (O(1/sqrt(M)), zero in the theory) swamps. On CIFAR features (M = 1000, theta = 0.4) soft 1-SD at
        lam_2 = 1.4e5 (theory units) measured 0.50 in every trial, at inf 0.27; the theory says 0.2706 for both."""
        lam = np.asarray(lam_theory, dtype=float)
        return np.where(lam > DEFAULT_BOUNDS["lam"][1], np.inf, lam * self.N)

    def optimal(self, M: int, theta: float, *, max_stages: int = 4, labels: str = "hard", bias: str = "fix_first",
                rho: float | None = None, restarts: int = 2):
        """The theory's optimal SD for M points with flip rate theta: T* by early stopping (up to max_stages),
        its lam_t (estimator units) and beta_t, and the predicted error."""
        start = time.perf_counter()
        res = optimize(self.problem(M, theta, rho), max_stages=max_stages, labels=labels, bias=bias,
                       restarts=restarts)
        best = res.best
        return {"n_stages": best.n_stages, "lam": self.estimator_lam(best.lam), "beta": best.beta,
                "eps_theory": best.eps_final, "at_bound": best.at_bound, "seconds": time.perf_counter() - start}


def _check(X, y):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] < 4:
        raise ValueError(f"X must be a 2-D array with at least 4 rows (got shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (it holds NaN or inf)")
    if y.shape != (X.shape[0],) or not np.all(np.isin(y, (0, 1))):
        raise ValueError("y must hold one label 0 or 1 per row of X")
    if min(np.sum(y == 0), np.sum(y == 1)) < 2:
        raise ValueError("y must hold at least 2 samples of each class")
    return X, y


def fit_mixture(X, y) -> MixtureFit:
    """Fit the mixture to features X (M x N) with clean 0/1 labels y: the class-mean vector mu and the spectrum of
    the pooled within-class covariance S = U diag(sigma) U^T, with mu~ = U^T mu. The sampling noise of the class
    means, tr(S) (1/n_0 + 1/n_1) in |m_1 - m_0|^2, is taken out of |mu|^2 (mu is shrunk, not turned). One
    eigendecomposition of an N x N matrix, or of the M x M Gram matrix when M < N (the null space of S then
    carries the rest of |mu|^2 in one direction: the engine sees only sum mu~_i^2 per eigenvalue)."""
    X, y = _check(X, y)
    n = (int(np.sum(y == 0)), int(np.sum(y == 1)))
    N = X.shape[1]
    means = [X[y == c].mean(axis=0) for c in (0, 1)]
    centred = [X[y == c] - means[c] for c in (0, 1)]
    dof = len(y) - 2
    d = means[1] - means[0]
    sigma, projection, S, S1, S0 = _pooled_spectrum(centred, dof, d)
    noise = (np.sum(sigma) * (1.0 / n[0] + 1.0 / n[1])) / max(d @ d, np.finfo(float).tiny)
    if noise >= 1.0:
        raise ValueError("X, y: the class means are no further apart than their sampling noise; no mixture to fit")
    mean = math.sqrt(N) / 2.0 * projection * math.sqrt(1.0 - noise)
    unit = d / np.linalg.norm(d)
    return MixtureFit(Spectrum(sigma, mean), rho=n[1] / len(y), n=n,
                      covariance_mismatch=float(np.linalg.norm(S1 - S0) / np.linalg.norm(S)),
                      variance_ratio=float(unit @ S1 @ unit / (unit @ S0 @ unit)), mean_noise=float(noise))


def _pooled_spectrum(centred, dof: int, d: np.ndarray):
    """(sigma, U^T d, S, S_1, S_0): the eigenvalues (clipped at 0) of the pooled covariance S, the mean difference
    in its eigenbasis, S itself and the class covariances. With fewer points than features the eigenvectors come from the
    Gram matrix, and the component of d outside their span goes to one zero-eigenvalue direction."""
    S0, S1 = (c.T @ c / (len(c) - 1) for c in centred)
    S = ((len(centred[0]) - 1) * S0 + (len(centred[1]) - 1) * S1) / dof
    pooled = np.vstack(centred)
    M, N = pooled.shape
    if M >= N:
        sigma, basis = np.linalg.eigh(S)
        return np.clip(sigma, 0.0, None), basis.T @ d, S, S1, S0
    gram, vectors = np.linalg.eigh(pooled @ pooled.T / dof)
    keep = gram > 1e-12 * gram[-1]
    basis = pooled.T @ vectors[:, keep] / np.sqrt(gram[keep] * dof)  # orthonormal columns, the span of S
    inside = basis.T @ d
    outside = math.sqrt(max(d @ d - inside @ inside, 0.0))
    zeros = N - int(keep.sum())
    return (np.r_[gram[keep], np.zeros(zeros)], np.r_[inside, outside, np.zeros(zeros - 1)], S, S1, S0)
