"""The search machinery of the optimiser: search coordinates (lam axes reaching lam = inf, log beta,
the kept bias), the objective, NLopt local searches, the limit-first check, and the accuracy rules of
the search and of the final evaluation."""

from __future__ import annotations

import math
import warnings

import numpy as np

from sdgmm._model import make_stages
from sdgmm._theory import ACCURACY_WARNING, theory
from sdgmm.errors import ConvergenceError

# Tensor nodes per coordinate for the search, by T (see search_accuracy); beyond: cheap QMC. The counts stop where
# theory's automatic rule stops taking the tensor rule (T = 6 soft, 5 hard): beyond it gh_nodes would be ignored,
# and hard T = 6 ran the default QMC, 0.2-0.8 s a point where the cheap one takes 0.01-0.03 s (both within 7e-4).
SEARCH_NODES = {"soft": {1: 12, 2: 12, 3: 12, 4: 8, 5: 5, 6: 5}, "hard": {1: 12, 2: 12, 3: 12, 4: 8, 5: 6}}
SEARCH_RULE_ERROR = 1e-3  # search_accuracy's rule ranks points to within this (measured <= 3e-4)
# Where a soft tensor rule cannot rank a point: QMC, which keeps its accuracy on steep targets (error ~1e-4 here).
# Converged fallbacks take 100-120 iterations (digits spectrum, beta 5-30); a point that takes 300 is not ranked.
QMC_FALLBACK = {"method": "qmc", "qmc_points": 256, "qmc_replicates": 4, "qmc_gh_nodes": 8, "max_iter": 300,
                "accuracy": 0.0}
LIMIT_TOL = 1e-6  # the limit is accepted unless moving off it gains more than this


def search_accuracy(T: int, labels: str) -> dict:
    """The rule the search evaluates the engine with: coarser than the default, since it only has to
    rank points (measured errors <= 5e-5 for soft labels, <= 3e-4 for hard, at 5-20x less cost);
    the optimum is then re-evaluated with the default rule. Soft tensor rules carry their error estimate:
    steep soft targets (a large beta on large logits, as on anisotropic spectra) can put the coarse rule
    0.1 off, and the search must not slide into that (see Search)."""
    nodes = SEARCH_NODES[labels].get(T)
    rule = {"gh_nodes": nodes} if nodes else {"method": "qmc", "qmc_points": 256, "qmc_replicates": 2,
                                               "qmc_gh_nodes": 8}
    return {**rule, "estimate_error": labels == "soft" and bool(nodes), "accuracy": 0.0}


FAILED = 1.0  # the objective of a point whose state evolution does not converge: worse than chance


class LamAxis:
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


class Search:
    """The objective eps_T over the search coordinates (lam axes, log10 beta, the mixing weights xi if
    ``mix``, the bias B if tuned), with an evaluation counter."""

    def __init__(self, problem, loss, labels, bias, T, bounds, accuracy, limits=True, mix=False):
        self.problem, self.loss, self.labels, self.bias, self.T = problem, loss, labels, bias, T
        self.accuracy = accuracy
        self.axis = LamAxis(*bounds["lam"])
        self.n_beta = T - 1 if labels == "soft" else 0
        self.n_xi = T - 1 if mix else 0
        lam_box = (self.axis.lo, self.axis.top if limits else self.axis.hi)
        self.box = ([lam_box] * T + [tuple(math.log10(v) for v in bounds["beta"])] * self.n_beta
                    + [tuple(bounds["xi"])] * self.n_xi)
        self.tune_bias = bias == "tune"
        if self.tune_bias:
            self.box.append(tuple(bounds["bias"]))
        self.evaluations = 0
        self._values = {}  # by clipped point: the final pick asks again for the warm starts' values

    def hyper(self, x):
        """(lam_1..lam_T, beta_2..beta_T, xi_2..xi_T, B) at search point x; beta is inf for hard labels, xi 1
        unless mixed, B NaN unless tuned."""
        T, n_beta = self.T, self.n_beta
        lam = self.axis.lam(x[:T])
        beta = 10.0 ** np.asarray(x[T: T + n_beta]) if n_beta else np.full(T - 1, np.inf)
        xi = np.asarray(x[T + n_beta: T + n_beta + self.n_xi], dtype=float) if self.n_xi else np.ones(T - 1)
        return lam, beta, xi, float(x[-1]) if self.tune_bias else math.nan

    def to_x(self, lam, beta, xi, bias_value):
        return np.r_[self.axis.x(lam), np.log10(beta) if self.n_beta else [], xi if self.n_xi else [],
                     [0.0 if math.isnan(bias_value) else bias_value] if self.tune_bias else []]

    def xi_mask(self):
        """The coordinates of the mixing weights."""
        mask = np.zeros(len(self.box), bool)
        mask[self.T + self.n_beta: self.T + self.n_beta + self.n_xi] = True
        return mask

    def stages(self, x):
        lam, beta, xi, bias_value = self.hyper(x)
        return make_stages(lam, beta if self.labels == "soft" and self.T > 1 else None,
                           hard=self.labels == "hard", bias="fixed" if self.tune_bias else self.bias,
                           bias_value=bias_value if self.tune_bias else 0.0, xi=xi if self.n_xi else None)

    def __call__(self, x) -> float:
        key = tuple(self.clip(x))
        if key not in self._values:
            self._values[key] = self._evaluate(self.stages(np.array(key)))
        return self._values[key]

    def _evaluate(self, stages) -> float:
        self.evaluations += 1
        r = evaluate(self.problem, stages, self.loss, self.accuracy)
        if r is not None and self.accuracy.get("estimate_error") and not r.eps_error[-1] <= SEARCH_RULE_ERROR:
            # QMC keeps its accuracy on steep soft targets (CIFAR spectrum, beta = 75: the 12-node rule says
            # 0.198, QMC 0.233 +- 4e-4); a point that neither rule resolves counts as failed. (Where the tensor rule
            # leaves a lam = inf stage unconverged, theory's automatic rule already takes QMC.)
            r = evaluate(self.problem, stages, self.loss, QMC_FALLBACK)
            r = r if r is not None and r.eps_error[-1] <= SEARCH_RULE_ERROR else None
        return FAILED if r is None else float(r.eps[-1])

    def clip(self, x):
        lo, hi = zip(*self.box)
        return np.clip(np.asarray(x, dtype=float), lo, hi)


def local_search(search: Search, x0, max_evaluations, free=None):
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


def check_rule(labels: str, T: int) -> dict:
    """The rule limit_first compares the limit with its neighbours by: one tensor rule on both sides, whose
    errors cancel in the difference. The engine's default nodes (a coarser rule got the sign wrong: 8 nodes at hard
    T = 4, alpha = 10), except 6 for hard labels from T = 5 on, where its 8 cost seconds per evaluation; there
    particles below weight 1e-10 are dropped too, since both sides share the particles of the stages before the
    moved one. The fixed points go to 1e-10, not 1e-13: a stage just off the limit stalls at its rounding noise
    for 60-130 iterations before 1e-13 is declared reached (hard T = 4 and 6, alpha 11 and 23), and the
    differences the check decides by (a few 1e-7) agree to 1e-9 either way."""
    check = {"method": "tensor", "estimate_error": False, "tol": 1e-10}
    if labels == "hard" and T >= 5:
        check.update(gh_nodes=6, prune=1e-10)
    return check


def limit_first(search: Search, x0, max_evaluations, hold=None):
    """Every lam at the limit lam = inf (the balanced optimum in most cases measured), the betas
    searched there. Accepted without a full search if moving any lam off the limit, to lam = 2e4 (a
    twentieth of the last unit of its axis), does not lower eps by more than 1e-6. Both sides of that
    difference use one tensor rule, whose error is smooth in lam and cancels in it (measured: the
    differences agree to 1e-8 between 6 and 8 nodes at hard T = 6; QMC cannot resolve a finite lam
    this large). Where it fails, only the lams whose move lowered eps are searched further (with the
    betas), from the limit point: at most T + (search) evaluations where a full search costs dozens.
    Where the check rule cannot solve the limit point, it is returned unverified (done = False). Coordinates in
    the mask ``hold`` keep their values."""
    check = check_rule(search.labels, search.T)
    x0 = x0.copy()
    x0[: search.T] = search.axis.top
    if search.tune_bias:
        x0[-1] = 0.0  # the limit needs B = 0
    free = np.arange(len(x0)) >= search.T
    if search.tune_bias:
        free[-1] = False
    if hold is not None:
        free &= ~hold
    x, f, done = local_search(search, x0, max_evaluations, free=free)
    at_limit = evaluate(search.problem, search.stages(x), search.loss, check)
    if at_limit is None:  # the check rule cannot solve it (nearly collinear stages): unverified
        return x, f, False
    for i in range(search.T):
        off = x.copy()
        off[i] = search.axis.top - 0.05
        r = evaluate(search.problem, search.stages(off), search.loss, check)
        search.evaluations += 1
        free[i] = r is not None and r.eps[-1] < at_limit.eps[-1] - LIMIT_TOL
    if free[: search.T].any():
        return local_search(search, x, max_evaluations, free=free)
    return x, f, done


def final_evaluation(problem, stages, loss, options):
    """The default rule; where it fails or its eps_error exceeds ACCURACY_WARNING, the other rule
    (tensor <-> qmc) is tried, and kept if it is within ACCURACY_WARNING. At large alpha hard-label
    stages at the limit become nearly collinear and the tensor rule's fixed points stall while QMC
    still converges; at alpha 0.1, T = 6, QMC converges 0.03 off (its replicate spread says so). An
    inaccurate value that has no alternative is returned with its eps_error."""
    r = evaluate(problem, stages, loss, options)
    if "method" in options or (r is not None and r.eps_error[-1] <= ACCURACY_WARNING):
        return r
    other = "qmc" if r is None or r.method == "tensor" else "tensor"
    alt = evaluate(problem, stages, loss, {**options, "method": other})
    if alt is not None and alt.eps_error[-1] <= ACCURACY_WARNING:
        return alt
    return r


def evaluate(problem, stages, loss, options):
    try:
        with warnings.catch_warnings():  # inaccurate points are handled by the caller, by eps_error
            warnings.simplefilter("ignore", RuntimeWarning)
            return theory(problem, stages, loss, **options)
    except ConvergenceError:
        return None
