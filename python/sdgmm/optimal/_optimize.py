"""Optimally tuned self-distillation: per-stage lam_t (and beta_t) minimising the final error, and stage-count
selection (early stopping)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

import sdgmm._core as _core
from sdgmm._params import LABELS, LOSSES, choice, integer
from sdgmm._theory import ACCURACY_WARNING
from sdgmm.errors import ConvergenceError
from sdgmm.optimal._search import (
    SEARCH_RULE_ERROR,
    Search,
    final_evaluation,
    limit_first,
    local_search,
    search_accuracy,
)

DEFAULT_BOUNDS = {"lam": (1e-4, 1e3), "beta": (1e-2, 1e2), "bias": (-3.0, 3.0), "xi": (-5.0, 20.0)}
LINEAR_BOUNDS = ("bias", "xi")  # searched on a linear scale, any sign
# 'tune': one bias value B for every stage (stage 1's bias fixed, and kept), searched with the lams.
SEARCH_BIASES = ("learn", "fix_first", "tune")
# The final rule re-searches the soft temperatures of optima up to this many stages (a soft T = 3 evaluation at the
# default accuracy takes ~0.05 s; from T = 4 on it takes seconds), with at most this many evaluations.
POLISH_MAX_T = 3
POLISH_EVALUATIONS = 40


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
    xi: np.ndarray | None = None  # mixing weights of stages 2..T (mix=True); None for pure SD

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
    mix: bool = False  # xi_t searched with the lams: stage t trained on xi_t pseudo-labels + (1 - xi_t) labels

    @property
    def best(self) -> StageCountOptimum:
        """The optimum of the fewest stages whose error the lowest does not beat by more than both errors'
        integration error together: a difference the engine cannot resolve picks no stage count."""
        lowest = min(self.optima, key=lambda o: o.eps_final)
        return next(o for o in self.optima if o.eps_final - lowest.eps_final <= _resolution(o, lowest))

    @property
    def best_n_stages(self) -> int:
        """T*: the stage count with the lowest optimal error, to within integration error (see ``best``)."""
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
            for t in range(1, width if self.mix else 1):
                row[f"xi_{t + 1}"] = o.xi[t - 1] if t < o.n_stages else np.nan
            rows.append(row)
        return pd.DataFrame(rows)


def _resolution(a: StageCountOptimum, b: StageCountOptimum) -> float:
    """The smallest difference of two optima's final errors that their integration errors resolve."""
    return float(a.eps_error[-1] + b.eps_error[-1])


def _check_bounds(bounds) -> dict:
    merged = dict(DEFAULT_BOUNDS)
    for name, pair in (bounds or {}).items():
        if name not in merged:
            raise ValueError(f"bounds has an unknown name {name!r}; use {sorted(merged)}")
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{name!r}] must be a pair (lower, upper) of numbers (got {pair!r})") from None
        if name in LINEAR_BOUNDS and not (-math.inf < lo < hi < math.inf):
            raise ValueError(f"bounds[{name!r}] must satisfy lower < upper, both finite (got {pair!r})")
        if name not in LINEAR_BOUNDS and not (0 < lo < hi < math.inf):
            raise ValueError(f"bounds[{name!r}] must satisfy 0 < lower < upper < inf (got {pair!r})")
        merged[name] = (lo, hi)
    return merged


@dataclass(frozen=True)
class SearchSettings:
    """What the searches of every stage count share."""

    problem: _core.Problem
    loss: str
    labels: str
    bias: str
    bounds: dict  # {"lam": (lo, hi), "beta": ..., "bias": ...}
    restarts: int
    max_evaluations: int
    limits: bool  # lam axes continue to lam = inf
    search_options: dict  # theory() options of the search's evaluations, over search_accuracy's
    final_options: dict  # theory() options of the final evaluation
    mix: bool = False  # search the mixing weights xi_2..xi_T too

    @property
    def try_limit(self) -> bool:
        """The limit is a non-trivial classifier only where every bias is 0: balanced, symmetric noise."""
        p = self.problem
        flips = {p.theta if f is None else f for f in (p.theta_plus, p.theta_minus)}
        return self.limits and p.rho == 0.5 and len(flips) == 1


def _local_optima(search: Search, settings: SearchSettings, starts, rng) -> tuple[list, list, bool]:
    """(candidates, [(search value, x)] per local search, whether every local search ended on its tolerance):
    from the warm starts and from ``restarts`` random points. Where the limit can be the optimum, the first warm
    start is also searched limit-first; its own basin is searched too unless it already is the limit (the limit
    check is local: on an anisotropic spectrum a finite-lam basin can lie beyond it, e.g. soft 1-SD on CIFAR
    features, 0.2067 against 0.2182 at the limit)."""
    candidates = [search.clip(search.to_x(*s)) for s in starts]
    lo, hi = (np.array(v) for v in zip(*search.box))
    candidates += [rng.uniform(lo, hi) for _ in range(settings.restarts)]
    found, all_converged = [], True
    xi = search.xi_mask()
    for k, x0 in enumerate(candidates):
        # Mixed soft SD from a pure-SD warm start: first the pure search (xi held at 1), then the joint one from its
        # optimum (hard labels have nothing to search with xi held but the lams, which the joint search covers).
        # The search's coarse rule can mislead the joint search where the final rule disagrees (soft, alpha 34:
        # 0.0806 by the rule, 0.0811 at the final rule); the pure optimum is then still a candidate.
        pure = k < len(starts) and xi.any() and search.n_beta > 0 and np.all(x0[xi] == 1.0)
        phases = [xi, None] if pure else [None]
        at_limit = np.all(x0[: search.T] >= search.axis.top)
        for hold in phases:
            searches = []
            # The limit check sets every lam to inf: once per start is enough; for a later warm start already
            # there (mixed SD's pure start) it is the whole search, cheap where a local search tries finite lams.
            if settings.try_limit and (k == 0 or (k < len(starts) and at_limit)):
                searches.append(limit_first(search, x0, settings.max_evaluations, hold))
            if not searches or not at_limit:
                free = None if hold is None else ~hold
                searches.append(local_search(search, x0, settings.max_evaluations, free=free))
            for x, f, ok in searches:
                all_converged &= ok
                found.append((f, x))
            x0 = min(searches, key=lambda s: s[1])[0]  # the joint phase starts at the pure optimum
    return candidates, found, all_converged


def _optimum_for(settings: SearchSettings, T: int, starts, rng) -> StageCountOptimum:
    start_time = time.perf_counter()
    accuracy = {**search_accuracy(T, settings.labels), **settings.search_options}
    search = Search(settings.problem, settings.loss, settings.labels, settings.bias, T, settings.bounds, accuracy,
                    settings.limits, settings.mix)
    candidates, found, all_converged = _local_optima(search, settings, starts, rng)
    final = _best_at_final_accuracy(settings, search, found, candidates[: len(starts)])
    if final is None:
        raise ConvergenceError(f"no converged state evolution found for T = {T} within the bounds")
    x, r = _polished(settings, search, *final)
    lam, beta, xi, bias_value = search.hyper(x)
    return StageCountOptimum(T, lam, beta, r.eps, r.eps_error, _at_bound(search, x, settings), search.evaluations,
                             time.perf_counter() - start_time, all_converged, bias_value,
                             xi if settings.mix else None)


def _best_at_final_accuracy(settings: SearchSettings, search: Search, found, warm_starts):
    """(x, result) of the lowest eps at the default accuracy among the local optima ``found`` ([(search value,
    x)], solved in order of their search value) and the warm starts, so that the optimum is never worse than
    its own start. Values the final rule cannot vouch for (eps_error over ACCURACY_WARNING: steep soft targets
    at a lam = inf stage, where the search's coarse rule can be 0.03 off) rank after every accurate one. A
    local optimum whose search value is worse than the best final eps by more than the search rule's error is
    not solved (hard T = 6: seconds per solve), nor is a warm start that the search rule could not solve (a soft
    stage at the lam floor can fail to converge: 38 s of QMC iterations on a digits spectrum)."""
    solved = {}

    def at_final(x):
        if tuple(x) not in solved:  # a warm start the search returned unchanged is solved once
            solved[tuple(x)] = final_evaluation(settings.problem, search.stages(x), settings.loss,
                                                settings.final_options)
        return solved[tuple(x)]

    def rank(r):
        return (not r.eps_error[-1] <= ACCURACY_WARNING, float(r.eps[-1]))

    best = None
    ordered = sorted(found, key=lambda fx: fx[0])  # [(search value, x)]
    for value, x in [*ordered, *((search(x), x) for x in warm_starts)]:
        if best is not None and not rank(best[1])[0] and value > best[1].eps[-1] + SEARCH_RULE_ERROR:
            continue
        r = at_final(x)
        if r is not None and (best is None or rank(r) < rank(best[1])):
            best = (x, r)
    return best


def _polished(settings: SearchSettings, search: Search, x, r):
    """(x, result) with the soft temperatures re-searched from x under the final rule (soft labels, T <= POLISH_MAX_T).
    The search's coarse rule is biased on steep soft targets within its error bound, and the bias moves the optimum:
    at alpha 1.83 (soft 1-SD, both stages at lam = inf) it ranked beta_2 = 8.4 first, 1.2e-4 above the final rule's
    optimum at beta_2 = 6.3. Kept only where the final rule finds it lower."""
    if settings.labels != "soft" or not 2 <= search.T <= POLISH_MAX_T:
        return x, r
    fine = Search(settings.problem, settings.loss, settings.labels, settings.bias, search.T, settings.bounds,
                  settings.final_options, settings.limits, settings.mix)
    betas = np.zeros(len(x), bool)
    betas[search.T: search.T + search.n_beta] = True
    y, _, _ = local_search(fine, x, POLISH_EVALUATIONS, free=betas)
    search.evaluations += fine.evaluations
    polished = final_evaluation(settings.problem, search.stages(y), settings.loss, settings.final_options)
    better = (polished is not None and polished.eps_error[-1] <= ACCURACY_WARNING
              and polished.eps[-1] < r.eps[-1])
    return (y, polished) if better else (x, r)


def _at_bound(search: Search, x, settings: SearchSettings) -> tuple:
    """The coordinates of x on an edge of the search box: 'lam_2=lower', 'beta_3=upper', 'lam_1=inf' (the far
    end of a lam axis that reaches the limit)."""
    lo, hi = (np.array(v) for v in zip(*search.box))
    tol = 1e-6 * (hi - lo)
    T = search.T
    return tuple(
        f"{name}={'lower' if x[i] <= lo[i] + tol[i] else 'inf' if i < T and settings.limits else 'upper'}"
        for i, name in enumerate(_names(T, settings.labels, settings.bias, settings.mix))
        if x[i] <= lo[i] + tol[i] or x[i] >= hi[i] - tol[i]
    )


def _accurate_optimum(settings: SearchSettings, T: int, starts, rng) -> StageCountOptimum:
    """The optimum, with its final eps_error within ACCURACY_WARNING. Very steep soft targets (a large
    beta on logits of order one) are beyond the quadrature, and a search can slide into its errors:
    the beta box is then capped half a decade below the inaccurate optimum's largest beta, up to
    three times, and the cap is listed in ``at_bound``. An optimum still beyond the warning is no optimum:
    ConvergenceError."""
    cap = None
    for _ in range(4):
        opt = _optimum_for(settings, T, starts, rng)
        if settings.labels != "soft" or T == 1 or not opt.eps_error[-1] > ACCURACY_WARNING:
            break
        cap = max(settings.bounds["beta"][0] * 1.5, float(np.max(opt.beta)) / math.sqrt(10.0))
        settings = replace(settings, bounds={**settings.bounds, "beta": (settings.bounds["beta"][0], cap)})
    if opt.eps_error[-1] > ACCURACY_WARNING:  # a number this uncertain is no optimum
        raise ConvergenceError(f"the optimum's integration error estimate {opt.eps_error[-1]:.1e} exceeds "
                               f"the accuracy warning {ACCURACY_WARNING:g} (nearly collinear stages)")
    return opt if cap is None else replace(opt, at_bound=opt.at_bound + (f"beta<={cap:.3g}(accuracy)",))


def _stage_count(n_stages, max_stages) -> int:
    if (n_stages is None) == (max_stages is None):
        raise ValueError("n_stages / max_stages: give exactly one of n_stages (optimise that many stages) and "
                         f"max_stages (early stopping) (got n_stages={n_stages!r}, max_stages={max_stages!r})")
    name = "n_stages" if n_stages is not None else "max_stages"
    return integer(name, n_stages if n_stages is not None else max_stages, 1)


def _names(T, labels, bias, mix):
    later = range(2, T + 1)
    return ([f"lam_{t + 1}" for t in range(T)] + ([f"beta_{t}" for t in later] if labels == "soft" else [])
            + ([f"xi_{t}" for t in later] if mix else []) + (["bias_value"] if bias == "tune" else []))


def _warm_starts(prev: StageCountOptimum, labels, lam_floor: float) -> list:
    """The warm starts for T: the (T-1)-stage optimum plus one stage repeating the last one (for mixed SD also with
    every xi at 1, pure SD), and for soft
    labels (after a finite-lam stage) also plus one stage at the lam floor. A soft stage with lam -> 0 reproduces
    the previous stage's classifier (logistic loss: its logits times beta fit exactly), so from there T stages start no worse than
    T - 1 (on CIFAR features, M = 5000, theta = 0.4, the search from the repeat alone ended 1e-3 above 0-SD)."""
    beta = np.r_[prev.beta, prev.beta[-1] if len(prev.beta) else (2.0 if labels == "soft" else np.inf)]
    xi = np.r_[np.ones(prev.n_stages - 1) if prev.xi is None else prev.xi, 1.0]  # the new stage starts as pure SD
    starts = [(np.r_[prev.lam, prev.lam[-1]], beta, xi, prev.bias_value)]
    if not np.all(xi == 1.0):  # mixed: also from pure SD, which a mixed basin can hide (alpha >= 34, hard: 1e-5)
        starts.append((np.r_[prev.lam, prev.lam[-1]], beta, np.ones_like(xi), prev.bias_value))
    if labels == "soft" and math.isfinite(prev.lam[-1]):  # after a limit stage the logits vanish: no copy
        starts.append((np.r_[prev.lam, lam_floor], beta, xi, prev.bias_value))
    return starts


def optimize(problem: _core.Problem, n_stages: int | None = None, *, max_stages: int | None = None,
             loss: str = "logistic", labels: str = "hard", bias: str = "learn", bounds: dict | None = None,
             restarts: int = 2, gain_tol: float = 1e-6, seed: int = 0, start: Sequence | None = None,
             search_options: dict | None = None, final_options: dict | None = None, max_evaluations: int = 2000,
             limits: bool = True, mix: bool = False) -> OptimizeResult:
    """Minimise the final-stage error eps_T over lam_1..lam_T (and beta_2..beta_T for soft labels).

    Local searches use NLopt's BOBYQA in log space. Stage counts are optimised in turn, T = 1, 2, ...,
    each search starting from the (T-1)-stage optimum plus one stage (continuation in T) and from
    ``restarts`` random points of the log box.
    With ``n_stages`` every count up to it is optimised; with ``max_stages`` the loop stops once
    adding a stage gains less than ``gain_tol``, or no more than the two optima's integration errors together
    (early stopping), and ``best_n_stages`` is T*: the fewest stages within integration error of the lowest error.
    A gain the engine cannot resolve is no gain: with hard labels from T = 6 on, QMC's error (~1e-5) would
    otherwise let noise add stages up to the cap.

    bias: 'learn' (every stage), 'fix_first' (stages 2..T keep stage 1's learned bias) or 'tune' (one
    bias value B for every stage, searched with the lams within bounds["bias"], default [-3, 3]: the
    variant for imbalanced data that optimises the kept bias instead of learning it).

    bounds: {"lam": (lo, hi), "beta": (lo, hi)}, searched in log space (defaults [1e-4, 1e3] and
    [1e-2, 1e2]). With ``limits`` (the default) each lam's search continues past its upper bound in
    1/lam down to the exact limit lam = inf (the engine evaluates it directly); optima there are
    listed as ``lam_t=inf`` in ``at_bound``, and optima on a bound as ``=lower`` / ``=upper``.
    ``start`` is an optional first starting value of lam_1 for T = 1 (may be inf), e.g. the
    neighbouring alpha's optimum.
    ``mix``: also search the mixing weights xi_2..xi_T (stage t trains on xi_t * pseudo-label + (1 - xi_t) *
    noisy label; docs/theory.md section 7) within bounds["xi"], default [-5, 20] on a linear scale; each new
    stage starts from pure SD (xi = 1), so mixed SD is never worse than pure SD's continuation. The box is wide
    because optimal weights are: xi_2 of 2-SD reaches 4.5-7 at moderate alpha on the paper's setting (README, F6).
    ``search_options`` / ``final_options`` override the theory() options of the search (default:
    :func:`search_accuracy`) and of the final re-evaluation (default: theory's defaults).
    """
    T_max = _stage_count(n_stages, max_stages)
    choice("loss", loss, LOSSES)
    choice("labels", labels, LABELS)
    choice("bias", bias, SEARCH_BIASES)
    if not (gain_tol >= 0 and math.isfinite(gain_tol)):
        raise ValueError(f"gain_tol must be a finite number >= 0 (got {gain_tol!r})")
    if not isinstance(mix, (bool, np.bool_)):
        raise TypeError(f"mix must be True or False (got {mix!r})")
    settings = SearchSettings(problem, loss, labels, bias, _check_bounds(bounds), integer("restarts", restarts, 0),
                              max_evaluations, limits, dict(search_options or {}), dict(final_options or {}),
                              bool(mix))
    rng = np.random.default_rng(integer("seed", seed, 0, 2**63))
    t0 = time.perf_counter()
    optima, failure = [], None
    for T in range(1, T_max + 1):
        first = (np.atleast_1d(1.0 if start is None else start), [], [], math.nan)
        try:
            starts = _warm_starts(optima[-1], labels, settings.bounds["lam"][0]) if optima else [first]
            opt = _accurate_optimum(settings, T, starts, rng)
        except ConvergenceError as e:
            if not optima:
                raise
            failure = str(e)  # reported; the optima found so far stand
            break
        optima.append(opt)
        if max_stages is not None and T > 1:
            gain = optima[-2].eps_final - opt.eps_final
            if gain < gain_tol or not gain > _resolution(optima[-2], opt):
                break
    if failure:
        warnings.warn(f"optimize stopped at T = {len(optima) + 1}: {failure}", RuntimeWarning, stacklevel=2)
    return OptimizeResult(problem, loss, labels, bias, optima, gain_tol, time.perf_counter() - t0, failure, bool(mix))
