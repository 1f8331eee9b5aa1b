"""Optimally tuned self-distillation: per-stage lam_t (and beta_t) minimising the final error,
stage-count selection (early stopping) and learning curves against alpha."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sdgmm import _core
from sdgmm.errors import ConvergenceError
from sdgmm.theory import LOSSES, make_stages, theory

DEFAULT_BOUNDS = {"lam": (1e-4, 1e3), "beta": (1e-2, 1e2)}
LABELS = ("hard", "soft")
SEARCH_BIASES = ("learn", "fix_first")
# Tensor nodes per coordinate for the search, by T (see search_accuracy); beyond: cheap QMC.
SEARCH_NODES = {"soft": {1: 12, 2: 12, 3: 12, 4: 8, 5: 5, 6: 5}, "hard": {1: 12, 2: 12, 3: 12, 4: 8, 5: 6}}


def search_accuracy(T: int, labels: str) -> dict:
    """The rule the search evaluates the engine with: coarser than the default, since it only has to
    rank points (measured errors <= 5e-5 for soft labels, <= 3e-4 for hard, at 5-20x less cost);
    the optimum is then re-evaluated with the default rule."""
    nodes = SEARCH_NODES[labels].get(T)
    rule = {"gh_nodes": nodes} if nodes else {"method": "qmc", "qmc_points": 256, "qmc_replicates": 2,
                                               "qmc_gh_nodes": 8}
    return {**rule, "estimate_error": False}


FAILED = 1.0  # the objective of a point whose state evolution does not converge: worse than chance


@dataclass(frozen=True)
class StageCountOptimum:
    """The optimum of T-stage SD: hyperparameters, every stage's eps there, and the search record."""

    n_stages: int
    lam: np.ndarray
    beta: np.ndarray  # stages 2..T; inf for hard labels
    eps: np.ndarray  # every stage's error at the optimum (default integration accuracy)
    eps_error: np.ndarray
    at_bound: tuple  # e.g. ("lam_1=upper",): optima on a bound of the search box
    evaluations: int
    seconds: float
    converged: bool  # the local searches ended on their tolerances, not on their budget

    @property
    def eps_final(self) -> float:
        return float(self.eps[-1])


@dataclass(frozen=True)
class OptimizeResult:
    problem: _core.Problem
    loss: str
    labels: str
    bias: str
    optima: list  # StageCountOptimum for T = 1, 2, ...
    gain_tol: float
    seconds: float = field(default=math.nan)
    failure: str | None = None  # why the stage counts after the last optimum are missing, if they are

    @property
    def best(self) -> StageCountOptimum:
        return min(self.optima, key=lambda o: o.eps_final)

    @property
    def best_n_stages(self) -> int:
        """T*: the stage count with the lowest optimal error."""
        return self.best.n_stages

    def to_dataframe(self):
        """One row per stage count: optimal final error and the optimal hyperparameters."""
        import pandas as pd

        width = max(o.n_stages for o in self.optima)
        rows = []
        for o in self.optima:
            row = {"n_stages": o.n_stages, "eps": o.eps_final, "eps_error": float(o.eps_error[-1]),
                   "evaluations": o.evaluations, "seconds": o.seconds, "converged": o.converged,
                   "at_bound": ";".join(o.at_bound)}
            for t in range(width):
                row[f"lam_{t + 1}"] = o.lam[t] if t < o.n_stages else np.nan
            for t in range(1, width):
                row[f"beta_{t + 1}"] = o.beta[t - 1] if t < o.n_stages else np.nan
            rows.append(row)
        return pd.DataFrame(rows)


def _check_bounds(bounds) -> dict:
    merged = dict(DEFAULT_BOUNDS)
    for name, pair in (bounds or {}).items():
        if name not in merged:
            raise ValueError(f"bounds has an unknown name {name!r}; use {sorted(merged)}")
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{name!r}] must be a pair (lower, upper) of numbers (got {pair!r})") from None
        if not (0 < lo < hi < math.inf):
            raise ValueError(f"bounds[{name!r}] must satisfy 0 < lower < upper < inf (got {pair!r})")
        merged[name] = (lo, hi)
    return merged


class _Search:
    """The objective eps_T over log10 hyperparameters, with an evaluation counter."""

    def __init__(self, problem, loss, labels, bias, T, bounds, accuracy):
        self.problem, self.loss, self.labels, self.bias, self.T = problem, loss, labels, bias, T
        self.accuracy = accuracy
        n_beta = T - 1 if labels == "soft" else 0
        self.box = [tuple(math.log10(v) for v in bounds["lam"])] * T + [
            tuple(math.log10(v) for v in bounds["beta"])] * n_beta
        self.evaluations = 0

    def stages(self, x):
        lam = 10.0 ** np.asarray(x[: self.T])
        beta = 10.0 ** np.asarray(x[self.T:]) if self.labels == "soft" and self.T > 1 else None
        return make_stages(lam, beta, hard=self.labels == "hard", bias=self.bias)

    def __call__(self, x) -> float:
        self.evaluations += 1
        try:
            return float(theory(self.problem, self.stages(self.clip(x)), self.loss, **self.accuracy).eps[-1])
        except ConvergenceError:
            return FAILED

    def clip(self, x):
        lo, hi = zip(*self.box)
        return np.clip(np.asarray(x, dtype=float), lo, hi)


def _local_search(search: _Search, x0, max_evaluations):
    """NLopt's BOBYQA (bounded quadratic models, a few dozen evaluations per dimension); Sbplx in one
    dimension, where BOBYQA's model needs at least two."""
    import nlopt

    lo, hi = (np.array(v) for v in zip(*search.box))
    opt = nlopt.opt(nlopt.LN_BOBYQA if len(lo) > 1 else nlopt.LN_SBPLX, len(lo))
    opt.set_lower_bounds(lo)
    opt.set_upper_bounds(hi)
    opt.set_min_objective(lambda x, grad: search(x))
    # xtol in log10 units: 0.5% in lam or beta, where eps is flat to ~1e-6.
    opt.set_xtol_abs(2e-3)
    opt.set_ftol_abs(1e-9)
    opt.set_maxeval(max_evaluations)
    opt.set_initial_step(np.minimum(0.5, 0.25 * (hi - lo)))  # half a decade
    x = opt.optimize(search.clip(x0))
    done = opt.last_optimize_result() in (nlopt.SUCCESS, nlopt.XTOL_REACHED, nlopt.FTOL_REACHED)
    return search.clip(x), float(opt.last_optimum_value()), done


def _optimum_for(problem, loss, labels, bias, T, bounds, starts, restarts, rng, accuracy, max_evaluations,
                 polish):
    start_time = time.perf_counter()
    search = _Search(problem, loss, labels, bias, T, bounds, accuracy)
    candidates = [search.clip(s) for s in starts]
    lo, hi = (np.array(v) for v in zip(*search.box))
    candidates += [rng.uniform(lo, hi) for _ in range(restarts)]
    found, all_converged = [], True
    for x0 in candidates:
        x, f, ok = _local_search(search, x0, max_evaluations)
        all_converged &= ok
        found.append((f, x))
    # Report at the default accuracy: the local optima in order of their search value, keeping the
    # first whose default-accuracy solve converges (near-collinear stages can defeat it at a bound).
    # The warm starts are re-evaluated there too, so the optimum is never worse than its own start.
    final = None
    for _, x in sorted(found, key=lambda fx: fx[0]):
        r = _evaluate(problem, search.stages(x), loss, polish)
        if r is not None:
            final = (x, r)
            break
    for x in candidates[: len(starts)]:
        r = _evaluate(problem, search.stages(x), loss, polish)
        if r is not None and (final is None or r.eps[-1] < final[1].eps[-1]):
            final = (x, r)
    if final is None:
        raise ConvergenceError(f"no converged state evolution found for T = {T} within the bounds")
    x, r = final
    tol = 1e-6 * (hi - lo)
    at_bound = tuple(
        f"{name}={'lower' if x[i] <= lo[i] + tol[i] else 'upper'}"
        for i, name in enumerate(_names(T, labels))
        if x[i] <= lo[i] + tol[i] or x[i] >= hi[i] - tol[i]
    )
    lam = 10.0 ** x[:T]
    beta = 10.0 ** x[T:] if labels == "soft" else np.full(T - 1, np.inf)
    return StageCountOptimum(T, lam, beta, r.eps, r.eps_error, at_bound, search.evaluations,
                             time.perf_counter() - start_time, all_converged)


def _names(T, labels):
    return [f"lam_{t + 1}" for t in range(T)] + ([f"beta_{t + 2}" for t in range(T - 1)] if labels == "soft" else [])


def _evaluate(problem, stages, loss, options):
    try:
        return theory(problem, stages, loss, **options)
    except ConvergenceError:
        return None


def _extend(x_prev, T_prev, labels):
    """The (T-1)-stage optimum plus one stage repeating the last one: the warm start for T."""
    lam = list(x_prev[:T_prev]) + [x_prev[T_prev - 1]]
    beta = list(x_prev[T_prev:]) if labels == "soft" else []
    if labels == "soft":
        beta += [beta[-1] if beta else math.log10(2.0)]
    return np.array(lam + beta)


def optimize(
    problem: _core.Problem,
    n_stages: int | None = None,
    *,
    max_stages: int | None = None,
    loss: str = "logistic",
    labels: str = "hard",
    bias: str = "learn",
    bounds: dict | None = None,
    restarts: int = 2,
    gain_tol: float = 1e-6,
    seed: int = 0,
    start: Sequence | None = None,
    search_options: dict | None = None,
    final_options: dict | None = None,
    max_evaluations: int = 2000,
) -> OptimizeResult:
    """Minimise the final-stage error eps_T over lam_1..lam_T (and beta_2..beta_T for soft labels).

    Local searches use NLopt's BOBYQA in log space. Stage counts are optimised in turn, T = 1, 2, ...,
    each search starting from the (T-1)-stage optimum plus one stage (continuation in T) and from
    ``restarts`` random points of the log box.
    With ``n_stages`` every count up to it is optimised; with ``max_stages`` the loop stops once
    adding a stage gains less than ``gain_tol`` (early stopping), and ``best_n_stages`` is T*.

    bounds: {"lam": (lo, hi), "beta": (lo, hi)}, searched in log space (defaults [1e-4, 1e3] and
    [1e-2, 1e2]). Optima on a bound are listed in ``at_bound``. ``start`` is an optional first
    starting point for T = 1 (log10 lam_1), e.g. the neighbouring alpha's optimum.
    ``search_options`` / ``final_options`` override the theory() options of the search (default:
    :func:`search_accuracy`) and of the final re-evaluation (default: theory's defaults).
    """
    if (n_stages is None) == (max_stages is None):
        raise ValueError("n_stages / max_stages: give exactly one of n_stages (optimise that many stages) and "
                         f"max_stages (early stopping) (got n_stages={n_stages!r}, max_stages={max_stages!r})")
    T_max = n_stages if n_stages is not None else max_stages
    if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)) or T_max < 1:
        raise ValueError(f"{'n_stages' if n_stages is not None else 'max_stages'} must be an integer >= 1 "
                         f"(got {T_max!r})")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES} (got {loss!r})")
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS} (got {labels!r})")
    if bias not in SEARCH_BIASES:
        raise ValueError(f"bias must be one of {SEARCH_BIASES} (got {bias!r})")
    if not (gain_tol >= 0 and math.isfinite(gain_tol)):
        raise ValueError(f"gain_tol must be a finite number >= 0 (got {gain_tol!r})")
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 0:
        raise ValueError(f"restarts must be an integer >= 0 (got {restarts!r})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (got {seed!r})")
    box = _check_bounds(bounds)
    polish = dict(final_options or {})
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    optima, x_prev, failure = [], None, None
    for T in range(1, T_max + 1):
        starts = [_extend(x_prev, T - 1, labels)] if x_prev is not None else [
            np.asarray(start, dtype=float) if start is not None else np.array([0.0])]
        accuracy = {**search_accuracy(T, labels), **(search_options or {})}
        try:
            opt = _optimum_for(problem, loss, labels, bias, T, box, starts, restarts, rng, accuracy,
                               max_evaluations, polish)
        except ConvergenceError as e:
            if not optima:
                raise
            failure = str(e)  # reported; the optima found so far stand
            break
        optima.append(opt)
        x_prev = np.r_[np.log10(opt.lam), np.log10(opt.beta) if labels == "soft" else []]
        if max_stages is not None and T > 1 and optima[-2].eps_final - opt.eps_final < gain_tol:
            break
    if failure:
        warnings.warn(f"optimize stopped at T = {len(optima) + 1}: {failure}", RuntimeWarning, stacklevel=2)
    return OptimizeResult(problem, loss, labels, bias, optima, gain_tol, time.perf_counter() - t0, failure)


def noiseless_reference(alpha: float, delta: float) -> float:
    """Optimal 0-SD error without label noise, balanced classes: H(1 / sqrt(delta (1 + delta / alpha)))."""
    return 0.5 * math.erfc(1.0 / math.sqrt(delta * (1.0 + delta / alpha)) / math.sqrt(2.0))


def bayes_limit(delta: float) -> float:
    """alpha -> inf limit of the Bayes classifier, balanced classes: H(1 / sqrt(delta))."""
    return 0.5 * math.erfc(1.0 / math.sqrt(delta) / math.sqrt(2.0))


def curve(
    alphas: Sequence[float],
    *,
    delta: float = 0.5,
    rho: float = 0.5,
    theta: float = 0.3,
    stage_counts: Sequence[int] = (1, 2, 6),
    loss: str = "logistic",
    labels: str = "hard",
    bias: str = "learn",
    bounds: dict | None = None,
    restarts: int = 1,
    seed: int = 0,
    progress=None,
    **optimize_options,
):
    """Optimal error and hyperparameters against alpha, one row per (alpha, stage count).

    Alphas are visited in increasing order and each search starts from the previous alpha's
    optimum (continuation in alpha). A stage count whose state evolution cannot be solved at an
    alpha gets a row with eps NaN and the reason in ``failure``. Reference columns: the noiseless optimum of 0-SD and the
    alpha -> inf Bayes limit (balanced case, theory.md section 3). ``progress`` is an optional
    callable receiving (done, total) after each alpha.
    """
    import pandas as pd

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
    rows, start = [], None
    for k, alpha in enumerate(alphas):
        problem = _core.Problem(alpha, delta, rho=rho, theta=theta)
        res = optimize(problem, n_stages=counts[-1], loss=loss, labels=labels, bias=bias, bounds=bounds,
                       restarts=restarts, seed=seed, start=start, **optimize_options)
        start = np.log10(res.optima[0].lam)
        table = res.to_dataframe()
        refs = {"noiseless": noiseless_reference(alpha, delta), "bayes": bayes_limit(delta)}
        for _, row in table[table["n_stages"].isin(counts)].iterrows():
            rows.append({"alpha": alpha, **row.to_dict(), **refs, "failure": None})
        for missing in (c for c in counts if c > len(res.optima)):  # not reached: say why, no number
            rows.append({"alpha": alpha, "n_stages": missing, "eps": np.nan, "converged": False, **refs,
                         "failure": res.failure})
        if progress is not None:
            progress(k + 1, len(alphas))
    return pd.DataFrame(rows)
