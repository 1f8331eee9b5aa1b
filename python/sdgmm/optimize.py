"""Optimally tuned self-distillation: per-stage lam_t (and beta_t) minimising the final error,
stage-count selection (early stopping) and learning curves against alpha."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from sdgmm import _core
from sdgmm._model import Problem
from sdgmm._params import PAPER_SETTING
from sdgmm.errors import ConvergenceError
from sdgmm.optimize_search import Search, final_evaluation, limit_first, local_search, search_accuracy
from sdgmm.theory import ACCURACY_WARNING, LOSSES

DEFAULT_BOUNDS = {"lam": (1e-4, 1e3), "beta": (1e-2, 1e2), "bias": (-3.0, 3.0)}
LABELS = ("hard", "soft")
# 'tune': one bias value B for every stage (stage 1's bias fixed, and kept), searched with the lams.
SEARCH_BIASES = ("learn", "fix_first", "tune")


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
    bias_value: float = math.nan  # the tuned bias B (bias='tune'); NaN otherwise

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
            if self.bias == "tune":
                row["bias_value"] = o.bias_value
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
        if name == "bias" and not (-math.inf < lo < hi < math.inf):
            raise ValueError(f"bounds['bias'] must satisfy lower < upper, both finite (got {pair!r})")
        if name != "bias" and not (0 < lo < hi < math.inf):
            raise ValueError(f"bounds[{name!r}] must satisfy 0 < lower < upper < inf (got {pair!r})")
        merged[name] = (lo, hi)
    return merged


def _optimum_for(problem, loss, labels, bias, T, bounds, starts, restarts, rng, accuracy, max_evaluations,
                 polish, limits):
    # The limit is a non-trivial classifier only where every bias is 0: balanced, symmetric noise.
    flips = {problem.theta if f is None else f for f in (problem.theta_plus, problem.theta_minus)}
    try_limit = limits and problem.rho == 0.5 and len(flips) == 1
    start_time = time.perf_counter()
    search = Search(problem, loss, labels, bias, T, bounds, accuracy, limits)
    candidates = [search.clip(search.to_x(*s)) for s in starts]
    lo, hi = (np.array(v) for v in zip(*search.box))
    candidates += [rng.uniform(lo, hi) for _ in range(restarts)]
    found, all_converged = [], True
    for k, x0 in enumerate(candidates):
        warm = k < len(starts) and try_limit
        x, f, ok = limit_first(search, x0, max_evaluations) if warm else local_search(search, x0, max_evaluations)
        all_converged &= ok
        found.append((f, x))
    # Report at the default accuracy: the local optima in order of their search value, keeping the
    # first whose default-accuracy solve converges (near-collinear stages can defeat it at a bound).
    # The warm starts are re-evaluated there too, so the optimum is never worse than its own start.
    # A warm start that the search returned unchanged (the limit, typically) is solved once.
    solved = {}

    def at_final(x):
        key = tuple(x)
        if key not in solved:
            solved[key] = final_evaluation(problem, search.stages(x), loss, polish)
        return solved[key]

    final = None
    for _, x in sorted(found, key=lambda fx: fx[0]):
        r = at_final(x)
        if r is not None:
            final = (x, r)
            break
    for x in candidates[: len(starts)]:
        r = at_final(x)
        if r is not None and (final is None or r.eps[-1] < final[1].eps[-1]):
            final = (x, r)
    if final is None:
        raise ConvergenceError(f"no converged state evolution found for T = {T} within the bounds")
    x, r = final
    tol = 1e-6 * (hi - lo)
    lam, beta, bias_value = search.hyper(x)
    at_bound = tuple(
        f"{name}={'lower' if x[i] <= lo[i] + tol[i] else 'inf' if i < T and limits else 'upper'}"
        for i, name in enumerate(_names(T, labels, bias))
        if x[i] <= lo[i] + tol[i] or x[i] >= hi[i] - tol[i]
    )
    return StageCountOptimum(T, lam, beta, r.eps, r.eps_error, at_bound, search.evaluations,
                             time.perf_counter() - start_time, all_converged, bias_value)


def _accurate_optimum(problem, loss, labels, bias, T, box, *args):
    """The optimum, with its final eps_error within ACCURACY_WARNING. Very steep soft targets (a large
    beta on logits of order one) are beyond the quadrature, and a search can slide into its errors:
    the beta box is then capped half a decade below the inaccurate optimum's largest beta, up to
    three times, and the cap is listed in ``at_bound``."""
    cap = None
    for _ in range(4):
        opt = _optimum_for(problem, loss, labels, bias, T, box, *args)
        if labels != "soft" or T == 1 or not opt.eps_error[-1] > ACCURACY_WARNING:
            break
        cap = max(box["beta"][0] * 1.5, float(np.max(opt.beta)) / math.sqrt(10.0))
        box = {**box, "beta": (box["beta"][0], cap)}
    return opt if cap is None else replace(opt, at_bound=opt.at_bound + (f"beta<={cap:.3g}(accuracy)",))


def _names(T, labels, bias):
    return ([f"lam_{t + 1}" for t in range(T)] + ([f"beta_{t + 2}" for t in range(T - 1)] if labels == "soft" else [])
            + (["bias_value"] if bias == "tune" else []))


def _extend(prev: StageCountOptimum, labels):
    """The (T-1)-stage optimum plus one stage repeating the last one: the warm start for T."""
    lam = np.r_[prev.lam, prev.lam[-1]]
    beta = np.r_[prev.beta, prev.beta[-1] if len(prev.beta) else (2.0 if labels == "soft" else np.inf)]
    return lam, beta, prev.bias_value


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
    limits: bool = True,
) -> OptimizeResult:
    """Minimise the final-stage error eps_T over lam_1..lam_T (and beta_2..beta_T for soft labels).

    Local searches use NLopt's BOBYQA in log space. Stage counts are optimised in turn, T = 1, 2, ...,
    each search starting from the (T-1)-stage optimum plus one stage (continuation in T) and from
    ``restarts`` random points of the log box.
    With ``n_stages`` every count up to it is optimised; with ``max_stages`` the loop stops once
    adding a stage gains less than ``gain_tol`` (early stopping), and ``best_n_stages`` is T*.

    bias: 'learn' (every stage), 'fix_first' (stages 2..T keep stage 1's learned bias) or 'tune' (one
    bias value B for every stage, searched with the lams within bounds["bias"], default [-3, 3]: the
    variant for imbalanced data that optimises the kept bias instead of learning it).

    bounds: {"lam": (lo, hi), "beta": (lo, hi)}, searched in log space (defaults [1e-4, 1e3] and
    [1e-2, 1e2]). With ``limits`` (the default) each lam's search continues past its upper bound in
    1/lam down to the exact limit lam = inf (the engine evaluates it directly); optima there are
    listed as ``lam_t=inf`` in ``at_bound``, and optima on a bound as ``=lower`` / ``=upper``.
    ``start`` is an optional first starting value of lam_1 for T = 1 (may be inf), e.g. the
    neighbouring alpha's optimum.
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
    optima, failure = [], None
    for T in range(1, T_max + 1):
        first = (np.atleast_1d(1.0 if start is None else start), [], math.nan)
        starts = [_extend(optima[-1], labels)] if optima else [first]
        accuracy = {**search_accuracy(T, labels), **(search_options or {})}
        try:
            opt = _accurate_optimum(problem, loss, labels, bias, T, box, starts, restarts, rng, accuracy,
                                    max_evaluations, polish, limits)
            if opt.eps_error[-1] > ACCURACY_WARNING:  # a number this uncertain is no optimum
                raise ConvergenceError(f"the optimum's integration error estimate {opt.eps_error[-1]:.1e} exceeds "
                                       f"the accuracy warning {ACCURACY_WARNING:g} (nearly collinear stages)")
        except ConvergenceError as e:
            if not optima:
                raise
            failure = str(e)  # reported; the optima found so far stand
            break
        optima.append(opt)
        if max_stages is not None and T > 1 and optima[-2].eps_final - opt.eps_final < gain_tol:
            break
    if failure:
        warnings.warn(f"optimize stopped at T = {len(optima) + 1}: {failure}", RuntimeWarning, stacklevel=2)
    return OptimizeResult(problem, loss, labels, bias, optima, gain_tol, time.perf_counter() - t0, failure)


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


def curve(
    alphas: Sequence[float],
    *,
    delta: float = PAPER_SETTING["delta"],
    rho: float = PAPER_SETTING["rho"],
    theta: float = PAPER_SETTING["theta"],
    stage_counts: Sequence[int] = (1, 2, 6),
    loss: str = "logistic",
    labels: str = "hard",
    bias: str = "learn",
    bounds: dict | None = None,
    restarts: int = 0,
    seed: int = 0,
    progress=None,
    **optimize_options,
):
    """Optimal error and hyperparameters against alpha, one row per (alpha, stage count).

    Alphas are visited in increasing order and each search starts from the previous alpha's
    optimum (continuation in alpha), besides the continuation in T and the limit check of
    :func:`optimize`; ``restarts`` random restarts per (alpha, T) are off by default (each costs a full
    local search, 1-2 minutes for hard labels at T = 6). A stage count whose state evolution cannot be solved at an
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
        problem = Problem(alpha, delta, rho=rho, theta=theta)
        res = optimize(problem, n_stages=counts[-1], loss=loss, labels=labels, bias=bias, bounds=bounds,
                       restarts=restarts, seed=seed, start=start, **optimize_options)
        start = next_start(res.optima[0].lam[0])
        table = res.to_dataframe()
        refs = {"noiseless": noiseless_reference(alpha, delta), "bayes": bayes_limit(delta)}
        for _, row in table[table["n_stages"].isin(counts)].iterrows():
            rows.append({"alpha": alpha, **row.to_dict(), **refs, "failure": ""})
        for missing in (c for c in counts if c > len(res.optima)):  # not reached: say why, no number
            rows.append({"alpha": alpha, "n_stages": missing, "eps": np.nan, "converged": False, **refs,
                         "failure": f"stopped at T = {len(res.optima) + 1}: {res.failure}"})
        if progress is not None:
            progress(k + 1, len(alphas))
    return pd.DataFrame(rows)
