"""State evolution of T-stage self-distillation (theory.md section 4), computed by the C++ core."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

import sdgmm._core as _core
from sdgmm._model import checked, problem_dict
from sdgmm._params import LOSSES, METHODS, ON_NONCONVERGENCE, c_int, choice, integer, real
from sdgmm.errors import ConvergenceError

ACCURACY_WARNING = 1e-3  # an eps_error above this raises a RuntimeWarning
ACCURACY = 1e-6  # theory()'s default target of eps_error: the rule is refined until it is met (or capped)


@dataclass(frozen=True)
class TheoryResult:
    """Per-stage order parameters and generalisation errors of one state-evolution solve.

    Vectors have one entry per stage; ``Q`` is symmetric, ``chi``, ``Qh`` and ``chih`` are filled
    on and above the diagonal (entry [k, t] couples stage k <= t). ``eps_error`` estimates the
    integration error of ``eps``: the change from a rule with one node fewer per coordinate (tensor), the standard error of
    the replicates plus the change with one inner node fewer on the same points (qmc), or NaN (mc).

    ``conditioning[t]`` is 1 / sin of the angle between stage t and the span of the earlier stages:
    integration errors in the conjugates are amplified by about this much.

    ``gh_nodes`` / ``qmc_points`` and ``qmc_gh_nodes`` (the Gauss-Hermite nodes on each stage's own coordinate) are
    the rule that gave the numbers (0 when it is not that method), after refinement towards ``accuracy``;
    ``accuracy_reached`` says whether the largest eps_error met it (a rule at its cap may not: see theory()).

    ``collapsed[t]`` marks the exact limit of a logistic stage that learns its bias on targets of a
    single class: the bias diverges (b = -inf or +inf), w vanishes (m = Q = 0) and the stage
    predicts that class everywhere, so eps = rho or 1 - rho.
    """

    problem: _core.Problem
    stages: list
    loss: str
    method: str
    eps: np.ndarray
    eps_error: np.ndarray
    m: np.ndarray
    b: np.ndarray
    mh: np.ndarray
    Q: np.ndarray
    q: np.ndarray  # w_k^T Sigma w_t / N: the covariance of the stages' test fields (delta Q when isotropic)
    chi: np.ndarray
    Qh: np.ndarray
    chih: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    conditioning: np.ndarray
    converged: np.ndarray
    collapsed: np.ndarray
    gh_nodes: int = 0
    qmc_points: int = 0
    qmc_gh_nodes: int = 0
    accuracy: float = 0.0
    accuracy_reached: bool = True
    seconds: float = field(default=math.nan)

    @property
    def n_stages(self) -> int:
        return len(self.eps)

    def rows(self) -> list[dict]:
        """One dict per stage with its scalar fields."""
        out = []
        for t, st in enumerate(self.stages):
            out.append(
                {
                    "stage": t + 1,
                    "lam": st.lam,
                    "beta": ("hard" if st.hard else st.beta) if t > 0 else None,
                    "bias_policy": st.bias,
                    "eps": self.eps[t],
                    "eps_error": self.eps_error[t],
                    "m": self.m[t],
                    "b": self.b[t],
                    "Q": self.Q[t, t],
                    "conditioning": self.conditioning[t],
                    "chi": self.chi[t, t],
                    "iterations": int(self.iterations[t]),
                    "residual": self.residual[t],
                    "converged": bool(self.converged[t]),
                    "collapsed": bool(self.collapsed[t]),
                }
            )
        return out

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_dict(self) -> dict:
        """Plain-Python dict (JSON-serialisable) with the problem, settings and all arrays; inf and NaN stay floats."""
        p = self.problem
        return {
            "problem": problem_dict(p),
            "loss": self.loss,
            "method": self.method,
            "stages": [
                {"lam": s.lam, "beta": s.beta, "hard": s.hard, "bias": s.bias, "bias_value": s.bias_value, "xi": s.xi}
                for s in self.stages
            ],
            **{k: _jsonable(getattr(self, k))
               for k in ("eps", "eps_error", "m", "b", "mh", "Q", "q", "chi", "Qh", "chih", "conditioning")},
            "iterations": [int(v) for v in self.iterations],
            "residual": _jsonable(self.residual),
            "converged": [bool(v) for v in self.converged],
            "collapsed": [bool(v) for v in self.collapsed],
            "gh_nodes": self.gh_nodes,
            "qmc_points": self.qmc_points,
            "qmc_gh_nodes": self.qmc_gh_nodes,
            "accuracy": self.accuracy,
            "accuracy_reached": self.accuracy_reached,
            "seconds": self.seconds,
        }


def _jsonable(a):
    """Nested lists of floats; inf and NaN stay floats (the CLI writes them as the JSON tokens Infinity, NaN)."""
    return np.asarray(a, dtype=float).tolist()


def theory(problem: _core.Problem, stages: Sequence, loss: str = "logistic", *, method: str = "auto",
           gh_nodes: int = 0, qmc_gh_nodes: int = 10, split_nodes: int = 0, qmc_points: int = 1024,
           qmc_replicates: int = 8, mc_samples: int = 10_000, seed: int = 1, prune: float = 1e-13,
           qmc_prune: float = 1e-7, tol: float = 1e-13, max_iter: int = 1000, estimate_error: bool = True,
           accuracy: float = ACCURACY, threads: int = 0, on_nonconvergence: str = "raise") -> TheoryResult:
    """Solve the state evolution of ``len(stages)``-stage self-distillation.

    method: 'tensor' (Gauss-Hermite product rule, split at hard-label jumps), 'qmc' (scrambled
        Sobol over the earlier stages' coordinates, moment-matched, ``qmc_replicates`` independent
        scrambles), 'mc' (the reference: ``mc_samples`` common random numbers, damping 0.9,
        tolerance 1e-7) or 'auto' (tensor up to T = 6 stages, 5 with hard labels; qmc beyond, and for three or
        more lam = inf stages with hard targets, which qmc integrates exactly along their common direction).
    gh_nodes / split_nodes: tensor nodes per coordinate / per piece at a hard-label jump; 0 picks
        them by T (16, 16, 16, 10, 8, 6 for T = 1..6; 16 up to T = 3, 12 at T = 4 and 8 at T = 5 with hard labels).
    prune / qmc_prune: the tensor rule drops particles of |weight| below ``prune``; at a hard-label jump the qmc rule
        drops a side less likely than ``qmc_prune``. Either bounds the bias by the weight dropped, at most itself
        per stage (qmc_prune 1e-7: measured 1e-9 at hard T = 6, where it halves the particles).
    accuracy: target of the largest eps_error (default 1e-6). While the estimate is above it, the rule is
        refined: tensor nodes x1.5 up to about 32768 particles per class (96 nodes at T = 1, 32 at T = 3, 13 at
        T = 4); qmc points up to 4096, where the target is in reach at QMC's rate 1/n (a chain of lam = inf hard
        stages, whose points are cheap, starts at 4096). With method 'auto', a tensor rule that ends above 1e-5 is
        compared with QMC, and the smaller eps_error is kept (nearly collinear stages defeat the tensor rule at
        any node count); a stage the tensor rule cannot converge is solved again with QMC (at finite lam once a
        cheap QMC probe converges it). ``accuracy_reached`` reports whether the target was met; 0 keeps the rule
        as given. It needs ``estimate_error`` (mc has no estimate).
    on_nonconvergence: 'raise' (ConvergenceError carrying the partial result) or 'warn'
        (RuntimeWarning; the failed stage and those after it are NaN).
    """
    choice("loss", loss, LOSSES)
    choice("on_nonconvergence", on_nonconvergence, ON_NONCONVERGENCE)
    stages = checked(problem, stages)
    options = _options(method=method, gh_nodes=gh_nodes, qmc_gh_nodes=qmc_gh_nodes, split_nodes=split_nodes,
                       qmc_points=qmc_points, qmc_replicates=qmc_replicates, mc_samples=mc_samples, seed=seed,
                       prune=prune, qmc_prune=qmc_prune, tol=tol, max_iter=max_iter, estimate_error=estimate_error,
                       accuracy=accuracy, threads=threads)
    start = time.perf_counter()
    core = _core.solve_state_evolution(problem, stages, loss, options)
    res = TheoryResult(problem=problem, stages=stages, loss=loss, method=core.method, seconds=time.perf_counter() - start,
                       **{k: np.asarray(getattr(core, k)) for k in ARRAYS},
                       iterations=np.asarray(core.iterations, dtype=int),
                       converged=np.asarray(core.converged, dtype=bool),
                       collapsed=np.asarray(core.collapsed, dtype=bool), gh_nodes=core.gh_nodes,
                       qmc_points=core.qmc_points, qmc_gh_nodes=core.qmc_gh_nodes, accuracy=options.accuracy,
                       accuracy_reached=bool(core.accuracy_reached))
    _report(res, tol, on_nonconvergence)
    return res


# The result arrays that cross from the engine as they are.
ARRAYS = ("eps", "eps_error", "m", "b", "mh", "Q", "q", "chi", "Qh", "chih", "residual", "conditioning")


def _options(*, method, gh_nodes, qmc_gh_nodes, split_nodes, qmc_points, qmc_replicates, mc_samples, seed, prune,
             qmc_prune, tol, max_iter, estimate_error, accuracy, threads) -> _core.TheoryOptions:
    """The engine's options, by field name; the engine checks what the values mean."""
    options = _core.TheoryOptions()
    options.method = choice("method", method, METHODS)
    options.estimate_error, options.threads = bool(estimate_error), c_int("threads", threads)
    options.accuracy = real("accuracy", accuracy)
    integ = options.integration  # a copy: set its fields, then put it back
    for name, value in (("gh_nodes", gh_nodes), ("qmc_gh_nodes", qmc_gh_nodes), ("split_nodes", split_nodes),
                        ("qmc_points", qmc_points), ("qmc_replicates", qmc_replicates), ("mc_samples", mc_samples)):
        setattr(integ, name, c_int(name, value))
    integ.seed, integ.prune = integer("seed", seed, 0, 2**64 - 1), real("prune", prune)
    integ.qmc_prune = real("qmc_prune", qmc_prune)
    options.integration = integ
    fixed_point = options.fixed_point
    fixed_point.tol, fixed_point.max_iter = real("tol", tol), c_int("max_iter", max_iter)
    options.fixed_point = fixed_point
    return options


def _report(res: TheoryResult, tol: float, on_nonconvergence: str) -> None:
    """The accuracy warning, and non-convergence as an error or a warning: never a silent number."""
    worst = np.nanmax(res.eps_error) if np.isfinite(res.eps_error).any() else 0.0
    if worst > ACCURACY_WARNING:
        t = int(np.nanargmax(res.eps_error)) + 1
        warnings.warn(
            f"integration error estimate {worst:.1e} at stage {t} exceeds {ACCURACY_WARNING:g}: refine the rule "
            "(more gh_nodes / qmc_points) or use method='tensor'; QMC loses accuracy when the stages are "
            "nearly collinear (large lam)", RuntimeWarning, stacklevel=3)
    if not res.converged.all():
        t = int(np.argmin(res.converged)) + 1
        msg = (
            f"state evolution did not converge at stage {t} of {res.n_stages} "
            f"(residual {res.residual[t - 1]:.2e} after {res.iterations[t - 1]} iterations, tol {tol:g})"
        )
        if t >= 2 and res.collapsed[t - 2]:
            msg += (f": stage {t - 1} predicts a single class (eps {res.eps[t - 2]:.4g}), and stages after a constant "
                    "classifier are not modelled; under class imbalance a lam = inf stage with a learned bias is one "
                    "(give it a finite lam, or fix the bias: bias='fixed')")
        if on_nonconvergence == "raise":
            raise ConvergenceError(msg, res)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
