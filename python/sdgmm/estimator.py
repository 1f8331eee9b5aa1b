"""A scikit-learn estimator for multi-stage self-distillation (SD) of an L2-regularised linear classifier.

Stage 1 fits the given labels; stage t >= 2 fits pseudo-labels built from stage t-1's logits on the
same training inputs (hard 1{u > 0}, or soft with temperature 1/beta). Every fit is one call of the
C++ Newton-CG solver (``sdgmm._linear.fit_linear``); nothing here loops over samples.

Convention (the one of ``sklearn.linear_model.LogisticRegression``): stage t minimises
``sum_i c_i loss(y_i, u_i) + (lam_t / 2) |w|^2`` with ``u_i = x_i . w + b``, so ``lam = 1 / C``.
The solver's own convention is ``u = x . w_s / sqrt(N) + b``; the two are the same problem with
``w_s = sqrt(N) w`` and solver penalty ``lam / N``.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

from sdgmm._linear import LinearFit, fit_linear
from sdgmm._params import FIT_BIASES, LABELS, LOSSES, choice, integer


def _per_stage(value, count: int, name: str, first_stage: int = 1, allow_inf: bool = False,
               positive: bool = True) -> np.ndarray:
    """A positive (or, unless `positive`, any finite) scalar repeated, or exactly `count` of them (stages
    first_stage..); inf where `allow_inf`."""
    values = np.atleast_1d(np.asarray(value, dtype=float)) if not isinstance(value, str) else None
    if values is None or values.ndim != 1 or (values.size not in (1, count)):
        raise ValueError(f"{name} must be a number or a sequence of {count} numbers, one per stage "
                         f"{first_stage}..{first_stage + count - 1} (got {value!r})")
    if not positive and not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite (got {value!r})")
    if positive and not np.all((values > 0) & (np.isfinite(values) | (allow_inf & (values == np.inf)))):
        raise ValueError(f"{name} must be {'> 0 (inf for the limit)' if allow_inf else 'finite and > 0'} "
                         f"(got {value!r})")
    return np.broadcast_to(values, (count,)).copy()


def stage_targets(logits: np.ndarray, labels: str, loss: str, beta: float) -> np.ndarray:
    """Pseudo-labels of the next stage from a stage's training logits (docs/theory.md section 2)."""
    if labels == "hard":
        return (logits > 0).astype(float)
    if loss == "logistic":
        return expit(beta * logits)
    return (beta * logits + 1.0) / 2.0


# The solver's report of a limit stage, which is solved in closed form.
_LIMIT_REPORT = SimpleNamespace(converged=True, failure="", newton_iterations=0, cg_iterations=0, passes=1,
                                grad_norm=0.0, grad_norm0=1.0)


@dataclass(frozen=True)
class StageFit(LinearFit):
    """One fitted stage in the solver's units (u = x . w / sqrt(N) + b), with the targets it was trained on."""

    targets: np.ndarray
    limit: bool = False  # a lam = inf stage: w and b are lam w and lam b (the logits' scale is arbitrary)

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.w).all() and np.isfinite(self.b))


@dataclass(frozen=True)
class StageSolver:
    """What every stage of one SD run shares: the training inputs, the loss, the bias policy and the solver's
    settings. ``first`` fits stage 1 on the given labels; ``next`` fits a stage on the previous one's pseudo-
    labels, or returns None where the run collapses (a learned logistic bias on one class has no minimiser).
    The estimator and the probe's tuning both run their stages through it."""

    X: np.ndarray
    sample_weight: np.ndarray  # size 0: every weight 1
    loss: str
    bias: str
    tol: float
    max_iter: int
    threads: int

    def first(self, y01, lam_solver, warm=None) -> StageFit:
        return self._fit(y01, lam_solver, True, 0.0, warm)

    def next(self, previous: StageFit, lam_solver, labels, beta, warm=None, first: StageFit | None = None,
             xi: float = 1.0):
        """The next stage, or None where the run collapses. Stage 1 is `first` (default the previous stage):
        its bias is the kept one, and its targets (the noisy labels) are mixed in with weight 1 - xi. At a limit
        stage a kept bias carries over only from a limit stage 1, else it is 0, as in the engine (a bias of order
        one against logits of order 1 / lam would predict one class). A logistic stage that learns its bias on
        targets whose mean leaves [0, 1] (possible when xi is not in [0, 1]) has no minimiser: ValueError."""
        stage1 = first or previous
        pseudo = stage_targets(previous.logits, labels, self.loss, beta)
        targets = pseudo if xi == 1.0 else xi * pseudo + (1.0 - xi) * stage1.targets
        learn_bias = self.bias == "learn"
        kept = targets[self.sample_weight > 0] if self.sample_weight.size else targets
        if learn_bias and self.loss == "logistic" and np.isfinite(lam_solver):
            if np.ptp(kept) == 0:
                return None
            mean = np.average(targets, weights=self.sample_weight if self.sample_weight.size else None)
            if not 0.0 <= mean <= 1.0:
                raise ValueError(f"xi: with xi = {xi:g} the targets' mean is {mean:.4g}, outside [0, 1], so a "
                                 "logistic stage that learns its bias has no minimiser (its bias diverges); use "
                                 "xi closer to [0, 1], bias='fix_first' or the square loss")
        b0 = 0.0 if learn_bias or (np.isinf(lam_solver) and not stage1.limit) else stage1.b
        return self._fit(targets, lam_solver, learn_bias, b0, warm)

    def _fit(self, targets, lam_solver, learn_bias, b0, warm) -> StageFit:
        if np.isinf(lam_solver):
            return self._limit(targets, learn_bias, b0)
        fit = fit_linear(self.X, targets, lam=lam_solver, loss=self.loss, learn_bias=learn_bias,
                         sample_weight=self.sample_weight if self.sample_weight.size else None, w0=warm, b0=b0,
                         tol=self.tol, max_newton=self.max_iter, threads=self.threads)
        return StageFit(**vars(fit), targets=targets)

    def _limit(self, targets, learn_bias, b0) -> StageFit:
        """The stage at lam = inf, rescaled by lam (the engine's limit stage, for both losses): the linear loss
        (1/2 - y) u~ with ridge 1, so w~ = sum_i c_i (y_i - 1/2) x_i / sqrt(N), the mean-difference classifier of
        the targets; a learned bias centres the training logits (the limit's bias condition E[u~] = 0)."""
        c = self.sample_weight if self.sample_weight.size else np.ones(len(targets))
        w = self.X.T @ (c * (targets - 0.5)) / np.sqrt(self.X.shape[1])
        logits = self.X @ w / np.sqrt(self.X.shape[1])
        b = -float(c @ logits / c.sum()) if learn_bias else b0
        return StageFit(w, b, logits + b, _LIMIT_REPORT, targets, limit=True)


class SelfDistillationClassifier(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Multi-stage self-distillation of a binary L2-regularised linear classifier.

    Parameters
    ----------
    n_stages : int, default 2
        Stages T >= 1. Stage 1 is plain regularised training (0-SD); stage t is (t-1)-SD.
    lam : float or sequence of T floats, default 1.0
        Ridge penalty of each stage, ``(lam_t / 2) |w|^2``; lam = 1 / C of LogisticRegression. ``inf`` is the
        exact limit lam -> inf (both losses): the mean-difference classifier of the stage's targets,
        ``w ~ sum_i c_i (y_i - 1/2) x_i``, with a learned bias that centres the training logits; its coef_ and
        intercept_ are lam w and lam b (the scale of its logits is arbitrary; a soft next stage reads beta on it).
    labels : {'hard', 'soft'}, default 'hard'
        Pseudo-labels of stages 2..T: hard 1{u > 0}, or soft sigmoid(beta u) (logistic loss) /
        (beta u + 1) / 2 (square loss).
    beta : float or sequence of T - 1 floats, default 1.0
        Inverse temperature of the soft pseudo-labels of stages 2..T (ignored for hard labels).
    xi : float or sequence of T - 1 floats, default 1.0
        Weight of the teacher in the targets of stages 2..T: stage t trains on
        xi_t * pseudo-label + (1 - xi_t) * given label. 1 is pure self-distillation, 0 retrains on the given
        labels; any finite value is allowed (targets outside [0, 1] keep the ridge objective bounded below,
        except for a learned logistic bias when their mean leaves [0, 1]: ValueError).
    bias : {'learn', 'fix_first'}, default 'learn'
        'fix_first' keeps stage 1's intercept in every later stage (bias fixing against collapse
        to the majority class under imbalance).
    loss : {'logistic', 'square'}, default 'logistic'
        Logistic: log(1 + e^u) - y u. Square: ((u + 1) / 2 - y)^2, whose predict_proba is
        (u + 1) / 2 clipped to [0, 1].
    tol : float, default 1e-8
        Relative gradient norm at which each stage's Newton-CG fit stops.
    max_iter : int, default 100
        Newton iterations per stage.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training set (stratified), fit T stages on the rest,
        pick the stage count with the lowest validation error (the earliest on ties), then refit that
        many stages on the whole training set.
    validation_fraction : float, default 0.2
    random_state : int, RandomState or None
        Seed of the validation split.
    threads : int, default 0
        Solver threads (0 = all cores); results do not depend on it.

    Attributes
    ----------
    classes_, coef_ (1, n_features), intercept_ (1,) : the last fitted stage.
    stage_coefs_ (n_stages_, n_features), stage_intercepts_ (n_stages_,) : every stage.
    n_stages_ : stages fitted (fewer than n_stages when hard labels collapsed to one class, or by
        early stopping).
    n_iter_ (1,) : Newton iterations summed over the stages (LogisticRegression's shape).
    stage_n_iter_ (n_stages_,) : Newton iterations per stage; 0 when a stage's warm start (the previous
        stage's weights) already solves it, e.g. hard labels that repeat the given ones.
    n_flipped_ (n_stages_,) : training targets of each stage (read as 1{y >= 1/2}) that disagree
        with the given labels; 0 for stage 1.
    validation_errors_ (n_stages,) : with early_stopping, the validation error of each stage count.

    Only binary problems: more classes raise ValueError (wrap it in OneVsRestClassifier).
    """

    def __init__(self, n_stages=2, lam=1.0, labels="hard", beta=1.0, bias="learn", loss="logistic", tol=1e-8,
                 max_iter=100, early_stopping=False, validation_fraction=0.2, random_state=None, threads=0, xi=1.0):
        self.n_stages = n_stages
        self.lam = lam
        self.labels = labels
        self.beta = beta
        self.bias = bias
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.threads = threads
        self.xi = xi

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_params(self):
        for name, value, choices in (("labels", self.labels, LABELS), ("bias", self.bias, FIT_BIASES),
                                     ("loss", self.loss, LOSSES)):
            choice(name, value, choices)
        for name, value, low in (("n_stages", self.n_stages, 1), ("max_iter", self.max_iter, 1),
                                 ("threads", self.threads, 0)):
            integer(name, value, low)
        if not (isinstance(self.tol, numbers.Real) and 0 < self.tol < np.inf):
            raise ValueError(f"tol must be a finite number > 0 (got {self.tol!r})")
        if self.early_stopping and not (isinstance(self.validation_fraction, numbers.Real)
                                        and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in (0, 1) (got {self.validation_fraction!r})")
        lam = _per_stage(self.lam, self.n_stages, "lam", allow_inf=True)
        later = self.n_stages > 1
        beta = _per_stage(self.beta, self.n_stages - 1, "beta", 2) if later else np.empty(0)
        xi = _per_stage(self.xi, self.n_stages - 1, "xi", 2, positive=False) if later else np.empty(0)
        return lam, beta, xi

    def fit(self, X, y, sample_weight=None):
        """Fit every stage in turn; ``sample_weight`` weighs each sample's loss in every stage."""
        lam, beta, xi = self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, order="C")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size > 2:
            raise ValueError(f"y: Only binary classification is supported (got {self.classes_.size} classes); "
                             "for more classes wrap the estimator in sklearn's OneVsRestClassifier")
        if self.classes_.size < 2:
            raise ValueError("y must hold 2 classes (got 1 class)")
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        y01 = (y == self.classes_[1]).astype(np.float64)
        n_stages = self.n_stages
        self.__dict__.pop("validation_errors_", None)  # a previous fit's
        if self.early_stopping:
            n_stages = self._select_stage_count(X, y01, sample_weight, lam, beta, xi)
        self._fit_stages(X, y01, sample_weight, lam[:n_stages], beta[: n_stages - 1], xi[: n_stages - 1])
        return self

    def _select_stage_count(self, X, y01, sample_weight, lam, beta, xi) -> int:
        fit_idx, val_idx = train_test_split(np.arange(len(y01)), test_size=self.validation_fraction,
                                            stratify=y01, random_state=self.random_state)
        self._fit_stages(X[fit_idx], y01[fit_idx], sample_weight[fit_idx], lam, beta, xi)
        logits = X[val_idx] @ self.stage_coefs_.T + self.stage_intercepts_
        weight = sample_weight[val_idx]
        wrong = ((logits > 0) != (y01[val_idx, None] > 0.5)).astype(float)
        errors = weight @ wrong / max(weight.sum(), np.finfo(float).tiny)
        self.validation_errors_ = np.full(self.n_stages, np.nan)
        self.validation_errors_[: len(errors)] = errors
        return int(np.argmin(errors)) + 1

    def _fit_stages(self, X, y01, sample_weight, lam, beta, xi):
        sqrt_n = np.sqrt(X.shape[1])
        solver = StageSolver(X, sample_weight, self.loss, self.bias, self.tol, self.max_iter, self.threads)
        fits = [solver.first(y01, lam[0] / X.shape[1])]
        for t in range(1, len(lam)):
            fit = solver.next(fits[-1], lam[t] / X.shape[1], self.labels, beta[t - 1], warm=fits[-1].w,
                              first=fits[0], xi=xi[t - 1])
            if fit is None:
                warnings.warn(f"stage {t + 1}: every pseudo-label is the same class, so a learned bias has no "
                              f"minimiser (collapse to the majority class); keeping {t} stage(s). "
                              "bias='fix_first' avoids it", RuntimeWarning, stacklevel=3)
                break
            fits.append(fit)
        for t, fit in enumerate(fits):
            if not fit.report.converged:
                warnings.warn(f"stage {t + 1} did not reach tol={self.tol:g}: {fit.report.failure} (relative "
                              f"gradient {fit.report.grad_norm / fit.report.grad_norm0:.1e}); its weights are the "
                              "last iterate", ConvergenceWarning, stacklevel=3)
        self.stage_coefs_ = np.array([fit.w / sqrt_n for fit in fits])
        self.stage_intercepts_ = np.array([fit.b for fit in fits])
        self.stage_n_iter_ = np.array([fit.report.newton_iterations for fit in fits])
        self.n_iter_ = np.array([self.stage_n_iter_.sum()])
        self.n_flipped_ = np.array([int(np.sum((fit.targets >= 0.5) != (y01 > 0.5))) for fit in fits])
        self.n_stages_ = len(fits)
        self.coef_ = self.stage_coefs_[-1:].copy()
        self.intercept_ = self.stage_intercepts_[-1:].copy()

    def predict_proba(self, X):
        """Columns [P(classes_[0]), P(classes_[1])]: sigmoid(u) (logistic), clip((u + 1) / 2) (square)."""
        u = self.decision_function(X)
        p = expit(u) if self.loss == "logistic" else np.clip((u + 1.0) / 2.0, 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))
