"""Learning curves of optimal SD against alpha, continued from alpha to alpha, with the references of theory.md
section 3."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sdgmm._model import Problem
from sdgmm._params import PAPER_SETTING
from sdgmm.optimal._optimize import optimize


def next_start(lam_1) -> list | None:
    """Continuation in alpha, for curve and sweep chains alike: the next alpha's search starts from the previous
    alpha's optimal 0-SD lam_1 (any number > 0, inf included). A missing or failed point gives no start."""
    try:
        lam_1 = float(lam_1)
    except (TypeError, ValueError):
        return None
    return [lam_1] if lam_1 > 0 else None


def noiseless_reference(alpha: float, delta: float) -> float:
    """Optimal 0-SD error without label noise, balanced classes: H(1 / sqrt(delta (1 + delta / alpha)))."""
    return 0.5 * math.erfc(1.0 / math.sqrt(delta * (1.0 + delta / alpha)) / math.sqrt(2.0))


def bayes_limit(delta: float) -> float:
    """alpha -> inf limit of the Bayes classifier, balanced classes: H(1 / sqrt(delta))."""
    return 0.5 * math.erfc(1.0 / math.sqrt(delta) / math.sqrt(2.0))


def references(problem: Problem) -> dict:
    """The curve's reference columns at this problem's alpha (balanced classes): 'noiseless', the optimal 0-SD
    error without label noise, and 'bayes', the alpha -> inf Bayes limit. With a spectrum the Bayes classifier
    is Sigma^{-1} mu, whose error is H(sqrt((1/N) sum mu~_i^2 / sigma_i)) (0 where a mean lies in a direction
    without variance), and the noiseless optimum is solved (a one-stage search)."""
    if problem.spectrum is None:
        return {"noiseless": noiseless_reference(problem.alpha, problem.delta), "bayes": bayes_limit(problem.delta)}
    sigma, mean = (np.asarray(a) for a in (problem.spectrum.eigenvalues, problem.spectrum.mean))
    if np.any((sigma == 0) & (mean != 0)):
        bayes = 0.0
    else:
        snr = np.sum(mean[sigma > 0] ** 2 / sigma[sigma > 0]) / len(sigma)
        bayes = 0.5 * math.erfc(math.sqrt(snr) / math.sqrt(2.0))
    clean = Problem(problem.alpha, rho=0.5, theta=0.0, spectrum=problem.spectrum)
    return {"noiseless": optimize(clean, n_stages=1, restarts=0).optima[0].eps_final, "bayes": bayes}


def curve(alphas: Sequence[float], *, delta: float | None = None, rho: float = PAPER_SETTING["rho"],
          theta: float = PAPER_SETTING["theta"], spectrum=None, stage_counts: Sequence[int] = (1, 2, 6),
          loss: str = "logistic", labels: str = "hard", bias: str = "learn", bounds: dict | None = None,
          restarts: int = 0, seed: int = 0, progress=None, **optimize_options):
    """Optimal error and hyperparameters against alpha, one row per (alpha, stage count).

    Alphas are visited in increasing order and each search starts from the previous alpha's
    optimum (continuation in alpha, :func:`next_start`), besides the continuation in T and the limit check of
    :func:`optimize`; ``restarts`` random restarts per (alpha, T) are off by default (each costs a full
    local search, 1-2 minutes for hard labels at T = 6). A stage count whose state evolution cannot be solved at an
    alpha gets a row with eps NaN and the reason in ``failure``. Reference columns: the noiseless optimum of 0-SD and the
    alpha -> inf Bayes limit (balanced case, theory.md section 3). ``progress`` is an optional
    callable receiving (done, total) after each alpha. ``delta`` (default the paper's 0.5) or ``spectrum`` (a
    :class:`sdgmm.Spectrum`) sets the covariance, as in :class:`sdgmm.Problem`.
    """
    import pandas as pd

    alphas, counts = _grid(alphas, stage_counts, optimize_options)
    rows, start = [], None
    for k, alpha in enumerate(alphas):
        problem = Problem(alpha, delta, rho=rho, theta=theta, spectrum=spectrum)
        res = optimize(problem, n_stages=counts[-1], loss=loss, labels=labels, bias=bias, bounds=bounds,
                       restarts=restarts, seed=seed, start=start, **optimize_options)
        start = next_start(res.optima[0].lam[0])
        rows += _rows(alpha, res, counts, references(problem))
        if progress is not None:
            progress(k + 1, len(alphas))
    return pd.DataFrame(rows)


def _grid(alphas, stage_counts, optimize_options) -> tuple[list, list]:
    """The sorted alphas and stage counts, checked."""
    try:
        alphas = sorted(float(a) for a in np.atleast_1d(alphas))
    except (TypeError, ValueError):
        raise ValueError(f"alphas must be positive numbers (got {alphas!r})") from None
    if not alphas:
        raise ValueError("alphas must hold at least one value (got an empty grid)")
    if not all(0 < a < math.inf for a in alphas):
        raise ValueError(f"alphas must be positive and finite (got {alphas!r})")
    try:
        counts = sorted({int(c) for c in stage_counts})
    except (TypeError, ValueError):
        raise ValueError(f"stage_counts must hold integers >= 1 (got {stage_counts!r})") from None
    if not counts or counts[0] < 1:
        raise ValueError(f"stage_counts must hold integers >= 1 (got {list(stage_counts)!r})")
    for name in ("n_stages", "max_stages", "start"):
        if name in optimize_options:
            raise ValueError(f"{name} is not an option of curve: it optimises n_stages = max(stage_counts), "
                             "warm-started from the previous alpha")
    return alphas, counts


def _rows(alpha, res, counts, refs) -> list:
    """The curve's rows of one alpha: an optimum per stage count, NaN with the reason where one was not reached."""
    table = res.to_dataframe()
    rows = [{"alpha": alpha, **row.to_dict(), **refs, "failure": ""}
            for _, row in table[table["n_stages"].isin(counts)].iterrows()]
    for missing in (c for c in counts if c > len(res.optima)):
        rows.append({"alpha": alpha, "n_stages": missing, "eps": np.nan, "converged": False, **refs,
                     "failure": f"stopped at T = {len(res.optima) + 1}: {res.failure}"})
    return rows
