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
from sdgmm.errors import ConvergenceError
from sdgmm.theory import ACCURACY_WARNING, LOSSES, make_stages, theory

DEFAULT_BOUNDS = {"lam": (1e-4, 1e3), "beta": (1e-2, 1e2), "bias": (-3.0, 3.0)}
LABELS = ("hard", "soft")
# 'tune': one bias value B for every stage (stage 1's bias fixed, and kept), searched with the lams.
SEARCH_BIASES = ("learn", "fix_first", "tune")
# Tensor nodes per coordinate for the search, by T (see search_accuracy); beyond: cheap QMC.
SEARCH_NODES = {"soft": {1: 12, 2: 12, 3: 12, 4: 8, 5: 5, 6: 5}, "hard": {1: 12, 2: 12, 3: 12, 4: 8, 5: 6, 6: 5}}


LIMIT_TOL = 1e-6  # the limit is accepted unless moving off it gains more than this
# Tensor nodes of the limit check, by T: where the sign of a 1e-7 difference is stable against more nodes
# (8 nodes got it wrong at hard T = 4, alpha = 10; 12 did not).
CHECK_NODES = {"soft": (16, 16, 16, 10, 8, 6), "hard": (16, 16, 16, 12, 6, 6)}


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


class _LamAxis:
    """The search coordinate of one lam: log10 lam up to the upper bound, then one more unit over which
    1/lam falls linearly to 0, so that the far end of the box is the exact limit lam = inf. eps is
    smooth in 1/lam there (it converges like 1/lam), so the local search treats the limit as any
    other point."""

    def __init__(self, lo, hi):
        self.lo, self.hi = math.log10(lo), math.log10(hi)
        self.top = self.hi + 1.0

    def lam(self, x):
        x = np.asarray(x, dtype=float)
        inverse = (self.top - x) / 10.0 ** self.hi
        with np.errstate(divide="ignore"):
            return np.where(x <= self.hi, 10.0 ** np.minimum(x, self.hi), 1.0 / inverse)

    def x(self, lam):
        lam = np.asarray(lam, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(lam <= 10.0 ** self.hi, np.log10(lam), self.top - 10.0 ** self.hi / lam)


class _Search:
    """The objective eps_T over the search coordinates (lam axes, log10 beta, the bias B if tuned), with
    an evaluation counter."""

    def __init__(self, problem, loss, labels, bias, T, bounds, accuracy, limits=True):
        self.problem, self.loss, self.labels, self.bias, self.T = problem, loss, labels, bias, T
        self.accuracy = accuracy
        self.axis = _LamAxis(*bounds["lam"])
        n_beta = T - 1 if labels == "soft" else 0
        lam_box = (self.axis.lo, self.axis.top if limits else self.axis.hi)
        self.box = [lam_box] * T + [tuple(math.log10(v) for v in bounds["beta"])] * n_beta
        self.tune_bias = bias == "tune"
        if self.tune_bias:
            self.box.append(tuple(bounds["bias"]))
        self.evaluations = 0

    def hyper(self, x):
        """(lam_1..lam_T, beta_2..beta_T, B) at search point x; beta is inf for hard labels, B NaN
        unless tuned."""
        lam = self.axis.lam(x[: self.T])
        n_beta = self.T - 1 if self.labels == "soft" else 0
        beta = 10.0 ** np.asarray(x[self.T: self.T + n_beta]) if n_beta else np.full(self.T - 1, np.inf)
        return lam, beta, float(x[-1]) if self.tune_bias else math.nan

    def to_x(self, lam, beta, bias_value):
        return np.r_[self.axis.x(lam), np.log10(beta) if self.labels == "soft" else [],
                     [0.0 if math.isnan(bias_value) else bias_value] if self.tune_bias else []]

    def stages(self, x):
        lam, beta, bias_value = self.hyper(x)
        return make_stages(lam, beta if self.labels == "soft" and self.T > 1 else None,
                           hard=self.labels == "hard", bias="fixed" if self.tune_bias else self.bias,
                           bias_value=bias_value if self.tune_bias else 0.0)

    def __call__(self, x) -> float:
        self.evaluations += 1
        r = _evaluate(self.problem, self.stages(self.clip(x)), self.loss, self.accuracy)
        return FAILED if r is None else float(r.eps[-1])

    def clip(self, x):
        lo, hi = zip(*self.box)
        return np.clip(np.asarray(x, dtype=float), lo, hi)


def _local_search(search: _Search, x0, max_evaluations, free=None):
    """NLopt's BOBYQA (bounded quadratic models, a few dozen evaluations per dimension); Sbplx in one
    dimension, where BOBYQA's model needs at least two. Only the coordinates in the mask ``free``
    move (default: all)."""
    import nlopt

    x0 = search.clip(x0)
    free = np.ones(len(x0), bool) if free is None else free
    if not free.any():
        return x0, search(x0), True
    lo, hi = (np.array(v)[free] for v in zip(*search.box))

    def objective(y, grad):
        x = x0.copy()
        x[free] = y
        return search(x)

    opt = nlopt.opt(nlopt.LN_BOBYQA if len(lo) > 1 else nlopt.LN_SBPLX, len(lo))
    opt.set_lower_bounds(lo)
    opt.set_upper_bounds(hi)
    opt.set_min_objective(objective)
    # xtol in log10 units: 0.5% in lam or beta, where eps is flat to ~1e-6.
    opt.set_xtol_abs(2e-3)
    opt.set_ftol_abs(1e-9)
    opt.set_maxeval(max_evaluations)
    opt.set_initial_step(np.minimum(0.5, 0.25 * (hi - lo)))  # half a decade
    x = x0.copy()
    x[free] = opt.optimize(x0[free])
    done = opt.last_optimize_result() in (nlopt.SUCCESS, nlopt.XTOL_REACHED, nlopt.FTOL_REACHED)
    return search.clip(x), float(opt.last_optimum_value()), done


def _limit_first(search: _Search, x0, max_evaluations):
    """Every lam at the limit lam = inf (the balanced optimum in most cases measured), the betas
    searched there. Accepted without a full search if moving any lam off the limit, to lam = 2e4 (a
    twentieth of the last unit of its axis), does not lower eps by more than 1e-6. Both sides of that
    difference use one tensor rule, whose error is smooth in lam and cancels in it (measured: the
    differences agree to 1e-8 between 6 and 8 nodes at hard T = 6; QMC cannot resolve a finite lam
    this large). Where it fails, only the lams whose move lowered eps are searched further (with the
    betas), from the limit point: at most T + (search) evaluations where a full search costs dozens.
    Where the check rule cannot solve the limit point, it is returned unverified (done = False)."""
    nodes = CHECK_NODES[search.labels]
    check = {"method": "tensor", "gh_nodes": nodes[min(search.T, len(nodes)) - 1], "estimate_error": False}
    x0 = x0.copy()
    x0[: search.T] = search.axis.top
    if search.tune_bias:
        x0[-1] = 0.0  # the limit needs B = 0
    free = np.arange(len(x0)) >= search.T
    if search.tune_bias:
        free[-1] = False
    x, f, done = _local_search(search, x0, max_evaluations, free=free)
    at_limit = _evaluate(search.problem, search.stages(x), search.loss, check)
    if at_limit is None:  # the check rule cannot solve it (nearly collinear stages): unverified
        return x, f, False
    for i in range(search.T):
        off = x.copy()
        off[i] = search.axis.top - 0.05
        r = _evaluate(search.problem, search.stages(off), search.loss, check)
        search.evaluations += 1
        free[i] = r is not None and r.eps[-1] < at_limit.eps[-1] - LIMIT_TOL
    if free[: search.T].any():
        return _local_search(search, x, max_evaluations, free=free)
    return x, f, done


def _optimum_for(problem, loss, labels, bias, T, bounds, starts, restarts, rng, accuracy, max_evaluations,
                 polish, limits):
    # The limit is a non-trivial classifier only where every bias is 0: balanced, symmetric noise.
    flips = {problem.theta if f is None else f for f in (problem.theta_plus, problem.theta_minus)}
    limit_first = limits and problem.rho == 0.5 and len(flips) == 1
    start_time = time.perf_counter()
    search = _Search(problem, loss, labels, bias, T, bounds, accuracy, limits)
    candidates = [search.clip(search.to_x(*s)) for s in starts]
    lo, hi = (np.array(v) for v in zip(*search.box))
    candidates += [rng.uniform(lo, hi) for _ in range(restarts)]
    found, all_converged = [], True
    for k, x0 in enumerate(candidates):
        first = k < len(starts) and limit_first
        x, f, ok = _limit_first(search, x0, max_evaluations) if first else _local_search(search, x0, max_evaluations)
        all_converged &= ok
        found.append((f, x))
    # Report at the default accuracy: the local optima in order of their search value, keeping the
    # first whose default-accuracy solve converges (near-collinear stages can defeat it at a bound).
    # The warm starts are re-evaluated there too, so the optimum is never worse than its own start.
    final = None
    for _, x in sorted(found, key=lambda fx: fx[0]):
        r = _final_evaluation(problem, search.stages(x), loss, polish)
        if r is not None:
            final = (x, r)
            break
    for x in candidates[: len(starts)]:
        r = _final_evaluation(problem, search.stages(x), loss, polish)
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


def _final_evaluation(problem, stages, loss, options):
    """The default rule; where it fails or its eps_error exceeds ACCURACY_WARNING, the other rule
    (tensor <-> qmc) is tried, and kept if it is within ACCURACY_WARNING. At large alpha hard-label
    stages at the limit become nearly collinear and the tensor rule's fixed points stall while QMC
    still converges; at alpha 0.1, T = 6, QMC converges 0.03 off (its replicate spread says so). An
    inaccurate value that has no alternative is returned with its eps_error."""
    r = _evaluate(problem, stages, loss, options)
    if "method" in options or (r is not None and r.eps_error[-1] <= ACCURACY_WARNING):
        return r
    other = "qmc" if r is None or r.method == "tensor" else "tensor"
    alt = _evaluate(problem, stages, loss, {**options, "method": other})
    if alt is not None and alt.eps_error[-1] <= ACCURACY_WARNING:
        return alt
    return r


def _evaluate(problem, stages, loss, options):
    try:
        with warnings.catch_warnings():  # inaccurate points are handled by the caller, by eps_error
            warnings.simplefilter("ignore", RuntimeWarning)
            return theory(problem, stages, loss, **options)
    except ConvergenceError:
        return None


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
        problem = _core.Problem(alpha, delta, rho=rho, theta=theta)
        res = optimize(problem, n_stages=counts[-1], loss=loss, labels=labels, bias=bias, bounds=bounds,
                       restarts=restarts, seed=seed, start=start, **optimize_options)
        start = res.optima[0].lam
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
