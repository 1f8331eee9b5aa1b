"""The theory on the user's features: the mixture fitted to the labelled pool predicts each probe method's test
error at the hyperparameters the method used, and gives zero-tuned hyperparameters (the theory's optimum, no
validation)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from sdgmm._model import make_stages
from sdgmm._theory import ACCURACY_WARNING, theory
from sdgmm.errors import ConvergenceError
from sdgmm.optimal import optimize
from sdgmm.realdata._mixture import MixtureFit

# theory_error stands next to a measured mean whose standard error is 1e-3..1e-2: the rule is refined only past the
# accuracy warning (the default 1e-6 sent hard T = 4 on digits to QMC: 17 s for one prediction, 3.6 s at 5e-4).
PREDICTION_ACCURACY = ACCURACY_WARNING


class TheoryOfData:
    """Predictions of the mixture fitted to a pool, memoised by setting (they repeat across trials)."""

    def __init__(self, mixture: MixtureFit, bias: str, max_stages: int):
        self.mixture, self.bias, self.max_stages = mixture, bias, max_stages
        self._errors, self._optima = {}, {}

    def error(self, M: int, theta: float, rho: float, lam, beta, labels: str, xi=()) -> float:
        """The theory's test error of the last stage of SD with these hyperparameters (estimator units: lam = 1/C,
        inf for the limit; xi of stages 2..T, default pure SD); NaN where the state evolution does not converge."""
        lam_t = tuple(float(v) for v in self.mixture.theory_lam(lam))
        key = (M, theta, rho, lam_t, tuple(beta), labels, tuple(xi))
        if key not in self._errors:
            stages = make_stages(list(lam_t), None if labels == "hard" or len(lam_t) == 1 else list(beta),
                                 hard=labels == "hard", bias=self.bias if len(lam_t) > 1 else "learn",
                                 xi=list(xi) if len(lam_t) > 1 and len(xi) else None)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    problem = self.mixture.problem(M, theta, rho)
                    self._errors[key] = float(theory(problem, stages, accuracy=PREDICTION_ACCURACY).eps[-1])
            except ConvergenceError:
                self._errors[key] = math.nan
        return self._errors[key]

    def optimum(self, M: int, theta: float, rho: float, method: str):
        """The theory's optimal (lam, beta, labels, xi) of a probe method ('0-SD', 'soft 1-SD', 'hard 1-SD', 'mixed
        1-SD', 'hard T-SD' with T by early stopping up to `max_stages`), or None where no optimum converges."""
        labels = "soft" if method.startswith("soft") else "hard"
        res = self._optimize(M, theta, rho, labels, mix=method == "mixed 1-SD")
        if res is None:
            return None
        if method == "hard T-SD":
            best = res.best
        elif method == "0-SD" or len(res.optima) >= 2:
            best = res.optima[0 if method == "0-SD" else 1]
        else:  # T = 2 did not converge
            return None
        xi = np.ones(best.n_stages - 1) if best.xi is None else best.xi
        return self.mixture.estimator_lam(best.lam), best.beta, labels, xi

    def _optimize(self, M, theta, rho, labels, mix=False):
        """One search per setting and label kind: soft gives 0-SD and soft 1-SD, hard (early stopping up to
        max_stages) gives hard 1-SD and hard T-SD, mixed (two hard stages, xi_2 searched) gives mixed 1-SD. With
        optimize's default random restarts: on CIFAR features (M = 100, theta = 0.2) the search from the limit
        alone ends at 0.2847 (lam = inf), with them at 0.2800."""
        key = (M, theta, rho, labels, mix)
        if key not in self._optima:
            count = {"n_stages": 2} if labels == "soft" or mix else {"max_stages": self.max_stages}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self._optima[key] = optimize(self.mixture.problem(M, theta, rho), **count, labels=labels,
                                                 bias=self.bias, mix=mix)
            except ConvergenceError:
                self._optima[key] = None
        return self._optima[key]


def parse_lams(text: str) -> np.ndarray:
    return np.array([float(v) for v in str(text).split(";")])
