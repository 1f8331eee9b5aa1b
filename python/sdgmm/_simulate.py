"""Finite-size simulation of multi-stage self-distillation, computed by the C++ core, and its
comparison with the state evolution."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

import sdgmm._core as _core
from sdgmm._model import checked
from sdgmm._params import LOSSES, integer, real
from sdgmm._theory import theory

# Per-stage quantities measured in every trial (theory.md section 3 and the denoising counts).
MEASURES = ("eps", "m", "Q", "b", "train_error", "targets_vs_true", "targets_vs_noisy")
FIT_FIELDS = ("newton_iterations", "cg_iterations", "passes", "grad_norm", "converged")


@dataclass(frozen=True)
class SimulationResult:
    """Trials x stages arrays of every measure, plus per-stage means and standard errors.

    eps is the exact population error of the trained weights (no test set). train_error is the
    fraction of training points whose prediction 1{u > 0} differs from the stage's own targets;
    targets_vs_true / targets_vs_noisy are the fractions of the stage's targets (read as
    1{y >= 1/2}) that differ from the true and from the noisy labels: the denoising of SD.
    """

    problem: _core.Problem
    stages: list
    loss: str
    N: int
    M: int
    seed: int
    trials: dict  # name -> array (trials, T)
    seconds: float = field(default=math.nan)

    @property
    def n_trials(self) -> int:
        return self.trials["eps"].shape[0]

    def mean(self, name: str = "eps") -> np.ndarray:
        return self.trials[name].mean(axis=0)

    def se(self, name: str = "eps") -> np.ndarray:
        """Standard error of the mean over trials (0 for a single trial)."""
        a = self.trials[name]
        return a.std(axis=0, ddof=1) / math.sqrt(len(a)) if len(a) > 1 else np.zeros(a.shape[1])

    @property
    def eps(self) -> np.ndarray:
        return self.mean("eps")

    @property
    def eps_se(self) -> np.ndarray:
        return self.se("eps")

    def summary(self):
        """One row per stage: mean and standard error of every measure, and the fit diagnostics."""
        import pandas as pd

        rows = []
        for t in range(len(self.stages)):
            row = {"stage": t + 1}
            for name in MEASURES:
                row[name] = self.mean(name)[t]
                row[f"{name}_se"] = self.se(name)[t]
            row["newton_iterations"] = self.mean("newton_iterations")[t]
            row["passes"] = self.mean("passes")[t]
            row["converged"] = bool(self.trials["converged"][:, t].all())
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dataframe(self):
        """One row per (trial, stage) with every measure and the fit diagnostics."""
        import pandas as pd

        n, T = self.trials["eps"].shape
        data = {"trial": np.repeat(np.arange(n), T), "stage": np.tile(np.arange(1, T + 1), n)}
        for name, a in self.trials.items():
            data[name] = a.ravel()
        return pd.DataFrame(data)

    def to_dict(self) -> dict:
        return {
            "N": self.N, "M": self.M, "seed": self.seed, "loss": self.loss, "trials": self.n_trials,
            "eps": self.eps.tolist(), "eps_se": self.eps_se.tolist(),
            "summary": self.summary().to_dict(orient="records"), "seconds": self.seconds,
        }


def simulate(
    problem: _core.Problem,
    stages: Sequence,
    loss: str = "logistic",
    *,
    N: int | None = None,
    trials: int = 8,
    seed: int = 0,
    threads: int = 0,
    tol: float = 1e-8,
    max_newton: int = 100,
) -> SimulationResult:
    """Train ``len(stages)``-stage SD on ``trials`` independent draws of size N x M (M = round(alpha N)).

    Each trial's data come from (seed, trial) alone and every sum over samples is cut into fixed
    chunks, so the numbers are bit-identical for any ``threads``.
    The solver stops at |grad| <= tol |grad(0)|; a fit that does not get there is reported by a
    RuntimeWarning and in the ``converged`` array.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES} (got {loss!r})")
    options = _core.SimulationOptions()
    options.N, options.trials = integer("N", default_dimension(problem) if N is None else N, 1), integer("trials", trials, 1)
    options.seed, options.threads = integer("seed", seed, 0, 2**64 - 1), integer("threads", threads, 0)
    train = options.train  # a copy: set its fields, then put it back
    train.tol, train.max_newton = real("tol", tol), integer("max_newton", max_newton, 1)
    options.train = train
    stages = checked(problem, stages)
    start = time.perf_counter()
    outcomes = _core.simulate(problem, stages, loss, options)
    arrays = {name: np.array([[getattr(s, name) for s in tr.stages] for tr in outcomes]) for name in MEASURES}
    for name in FIT_FIELDS:
        arrays[name] = np.array([[getattr(s.fit, name) for s in tr.stages] for tr in outcomes])
    result = SimulationResult(problem, stages, loss, int(N), _core.training_size(problem, int(N)), int(seed), arrays,
                              time.perf_counter() - start)
    reasons = sorted({s.fit.failure for tr in outcomes for s in tr.stages if not s.fit.converged})
    if reasons:
        failed = int((~arrays["converged"]).sum())
        warnings.warn(f"{failed} of {arrays['converged'].size} fits did not reach tol {tol:g}: {'; '.join(reasons)}",
                      RuntimeWarning, stacklevel=2)
    return result


def default_dimension(problem) -> int:
    """The simulation's N when none is given: the spectrum's dimension, else 1000."""
    return 1000 if getattr(problem, "spectrum", None) is None else len(problem.spectrum.eigenvalues)


def compare(problem: _core.Problem, stages: Sequence, loss: str = "logistic", *, N: int | None = None, trials: int = 8,
            seed: int = 0, threads: int = 0, **theory_options):
    """Theory next to simulation, per stage, with the difference in units of the standard error."""
    import pandas as pd

    th = theory(problem, stages, loss, **theory_options)
    sim = simulate(problem, stages, loss, N=N, trials=trials, seed=seed, threads=threads)
    diff = sim.eps - th.eps
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sim.eps_se > 0, diff / sim.eps_se, np.where(diff == 0, 0.0, np.inf))
    return pd.DataFrame({
        "stage": np.arange(1, len(th.eps) + 1), "theory": th.eps, "theory_error": th.eps_error,
        "simulation": sim.eps, "se": sim.eps_se, "difference": diff, "z": z,
        "targets_vs_true": sim.mean("targets_vs_true"), "N": N, "trials": trials,
    })
