"""Hyperparameter search of the probe, on validation splits of the training subset only.

A configuration is a tuple with one entry per stage: ``(lam_index, beta_index)``; beta_index is None at
stage 1 and HARD for hard pseudo-labels. A mixed stage (hard pseudo-labels mixed with the noisy labels, weight
xi) is ``(lam_index, HARD, xi_index)``; xi = 1 is written as the pure stage, so that both share one fit. Every
stage fit is cached by its prefix, so stages shared by configurations (the same stage 1 for 0-SD, hard and soft
1-SD; the same first stages of T-SD) are fitted once, and each fit warm-starts from the last fit of the same
stage. The search is a coordinate search on log grids (every grid value of one coordinate, then the next, until
no coordinate moves). The score is the mean validation error against the noisy labels, ties broken by the mean
validation log-loss.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sdgmm.estimator import StageFit, StageSolver

HARD = -1
# lam in units of N (the solver's lam: lam / N of SelfDistillationClassifier, 1 / (C N)), half decades.
DEFAULT_LAM_GRID = tuple(10.0 ** np.arange(-2.0, 3.01, 0.5))
DEFAULT_BETA_GRID = tuple(10.0 ** np.arange(-0.5, 3.01, 0.5))
# Mixing weights of "mixed 1-SD": the theory's optimal xi_2 lies in 1.0..1.6 on the paper's setting (F6), and 0
# (retraining on the noisy labels) and negative weights stay in reach.
DEFAULT_XI_GRID = tuple(np.round(np.arange(-0.5, 3.01, 0.25), 2))
SEARCH_TOL = 1e-4  # relative gradient: logits within 3e-4 relative of the 1e-8 refit (measured)


@dataclass(frozen=True)
class Grids:
    """The probe's search grids: lam (in units of N, strongest penalty first), beta and xi."""

    lam: np.ndarray
    beta: np.ndarray
    xi: np.ndarray

    @property
    def xi_one(self) -> int:
        """The xi closest to 1 (pure SD): where the mixed search starts."""
        return int(np.argmin(np.abs(np.asarray(self.xi) - 1.0)))


def principal_coordinates(X: np.ndarray) -> np.ndarray:
    """X V, V the right singular vectors of X with nonzero singular values: an exact reparametrisation of
    the ridge problem (its solution lies in X's row space and the penalty is rotation invariant) that
    drops null directions (M < N) and lets the solver's diagonal preconditioner see the spectrum."""
    M, N = X.shape
    if M < N:
        ev, U = np.linalg.eigh(X @ X.T)
        keep = ev > 1e-10 * ev[-1]
        return np.ascontiguousarray(U[:, keep] * np.sqrt(ev[keep]))
    ev, V = np.linalg.eigh(X.T @ X)
    keep = ev > 1e-10 * ev[-1]
    return np.ascontiguousarray(X @ V[:, keep])


class StageCache:
    """The fits of one (fit, validation) split, keyed by configuration prefix. ``lam_scale`` converts the
    grid to the solver's lam on these columns: N / r for r principal coordinates of N features (the
    solver divides x . w by the square root of the column count). Stages run through the estimator's
    :class:`StageSolver`, so a configuration whose run collapses scores as the estimator refitted with it
    predicts (with the stages before the collapse), and a fit with non-finite weights is never scored."""

    def __init__(self, X_fit, y_fit, X_val, y_val, grids: Grids, bias, threads, lam_scale=1.0):
        self.solver = StageSolver(np.ascontiguousarray(X_fit), np.empty(0), "logistic", bias, SEARCH_TOL, 100, threads)
        self.y_fit, self.X_val, self.y_val = y_fit.astype(float), X_val, y_val
        self.lam_grid, self.beta_grid, self.xi_grid = np.asarray(grids.lam) * lam_scale, grids.beta, grids.xi
        self.fits, self.last_w, self.n_fits, self.excluded = {}, {}, 0, 0

    def stage(self, key) -> StageFit:
        """The fit of the last stage of `key`: the previous stage's where the run collapses there (the refitted
        estimator keeps the stages before a collapse) or where that one is already excluded."""
        if key not in self.fits:
            t = len(key) - 1
            lam_index, beta_index = key[-1][:2]
            lam, warm = self.lam_grid[lam_index], self.last_w.get(t)
            if t == 0:
                self.fits[key] = self._count(t, self.solver.first(self.y_fit, lam, warm))
            else:
                previous = self.stage(key[:-1])
                labels = "hard" if beta_index == HARD else "soft"
                beta = self.beta_grid[beta_index] if labels == "soft" else np.inf
                xi = self.xi_grid[key[-1][2]] if len(key[-1]) > 2 else 1.0
                fit = self._next(previous, self.stage(key[:1]), lam, labels, beta, xi, warm)
                self.fits[key] = previous if fit is None else self._count(t, fit)
        return self.fits[key]

    def _next(self, previous, first, lam, labels, beta, xi, warm):
        """The solver's next stage; a mixed stage without a minimiser (a learned logistic bias on targets whose mean
        leaves [0, 1]) comes back without finite weights, so that it is excluded like a diverged fit."""
        if not previous.finite:
            return None
        try:
            return self.solver.next(previous, lam, labels, beta, warm, first=first, xi=xi)
        except ValueError:
            return replace(previous, w=np.full_like(previous.w, np.nan))

    def _count(self, t, fit: StageFit) -> StageFit:
        self.n_fits += 1
        if fit.finite:
            self.last_w[t] = fit.w  # the next fit of this stage starts here
        else:
            self.excluded += 1
        return fit

    def score(self, key):
        """(validation error, log-loss) of `key`'s last stage against the noisy validation labels; (inf, inf)
        for a fit with non-finite weights, so that it is never chosen."""
        fit = self.stage(key)
        if not fit.finite:
            return np.inf, np.inf
        u = self.X_val @ fit.w / np.sqrt(len(fit.w)) + fit.b
        return np.mean((u > 0) != (self.y_val > 0.5)), np.mean(np.logaddexp(0.0, u) - self.y_val * u)


class Objective:
    """Mean (validation error, log-loss) over the splits, memoised."""

    def __init__(self, caches):
        self.caches, self.memo = caches, {}

    def __call__(self, key):
        if key not in self.memo:
            scores = np.array([c.score(key) for c in self.caches])
            self.memo[key] = tuple(scores.mean(axis=0))
        return self.memo[key]

    @property
    def n_fits(self):
        return sum(c.n_fits for c in self.caches)

    @property
    def excluded(self):
        """Fits with non-finite weights, excluded from scoring."""
        return sum(c.excluded for c in self.caches)


def coordinate_search(objective, to_key, start, sizes, max_sweeps=2):
    """Minimise objective(to_key(x)) over integer vectors x (0 <= x_i < sizes[i]), one coordinate at a
    time over its whole grid; a move needs a strictly better score."""
    x = list(start)
    best = objective(to_key(x))
    for _ in range(max_sweeps):
        moved = False
        for i in reversed(range(len(x))):  # last stage first: its earlier stages are cached
            for j in range(sizes[i]):
                trial = x[:i] + [j] + x[i + 1:]
                score = objective(to_key(trial))
                if score < best:
                    x, best, moved = trial, score, True
        if not moved:
            break
    return to_key(x), best


def tune(objective, grids: Grids, max_stages):
    """The tuned configuration and validation score of each method of the probe."""
    out = {}
    n_lam, n_beta, n_xi = len(grids.lam), len(grids.beta), len(grids.xi)
    best0 = min(range(n_lam), key=lambda i: (objective(((i, None),)), -i))  # ties: the stronger penalty
    out["0-SD"] = (((best0, None),), objective(((best0, None),)))
    out["hard 1-SD"] = coordinate_search(objective, lambda x: ((x[0], None), (x[1], HARD)), [best0, best0],
                                         [n_lam, n_lam])
    (i1, _), (i2, _) = out["hard 1-SD"][0]
    out["soft 1-SD"] = coordinate_search(objective, lambda x: ((x[0], None), (x[1], x[2])), [i1, i2, n_beta // 2],
                                         [n_lam, n_lam, n_beta])
    pure = grids.xi_one

    def mixed(x):  # xi = 1 is the pure stage: one fit for both
        return (x[0], None), ((x[1], HARD) if x[2] == pure else (x[1], HARD, x[2]))

    out["mixed 1-SD"] = coordinate_search(objective, mixed, [i1, i2, pure], [n_lam, n_lam, n_xi])
    key, score = out["hard 1-SD"]
    while len(key) < max_stages:  # early stopping: add a hard stage while the validation score improves
        candidates = [key + ((i, HARD),) for i in range(n_lam)]
        best = min(candidates, key=objective)
        if not objective(best) < score:
            break
        key, score = best, objective(best)
    out["hard T-SD"] = (key, score)
    return out
