"""The linear probe of the paper on real features: 0-SD against soft / hard 1-SD and hard T-SD with early
stopping, tuned on validation splits of each noisy training subset and scored once on the clean test set."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from sdgmm._params import FIT_BIASES, NOISES, SAMPLINGS, choice, integer
from sdgmm.estimator import SelfDistillationClassifier
from sdgmm.realdata._data import (
    Split,
    check_theta,
    draw_subset,
    flip_order,
    noisy_labels,
    standardiser,
    two_classes,
)
from sdgmm.realdata._mixture import fit_mixture
from sdgmm.realdata._predict import TheoryOfData, parse_lams
from sdgmm.realdata._result import ProbeResult
from sdgmm.realdata._tuning import (
    DEFAULT_BETA_GRID,
    DEFAULT_LAM_GRID,
    DEFAULT_XI_GRID,
    HARD,
    Grids,
    Objective,
    StageCache,
    principal_coordinates,
    tune,
)

# "mixed 1-SD": stage 2 trains on xi * hard pseudo-label + (1 - xi) * noisy label, xi tuned (docs/theory.md section 7).
METHODS = ("0-SD", "soft 1-SD", "hard 1-SD", "mixed 1-SD", "hard T-SD")
# Per trial, the method of METHODS with the best validation score: "should I self-distill this data?"
SELECTED = "selected"
AUTO_FOLDS_UP_TO = 1000  # validation="auto": 5-fold up to this M (cheap fits, noisy small holdouts), else 20%


def _validation_splits(y_noisy, M, validation, seed_seq):
    from sklearn.model_selection import StratifiedKFold, train_test_split

    seed = int(seed_seq.generate_state(1)[0])
    if validation == "auto":
        validation = 5 if M <= AUTO_FOLDS_UP_TO else 0.2
    index = np.arange(len(y_noisy))
    if isinstance(validation, float):
        return [train_test_split(index, test_size=validation, stratify=y_noisy, random_state=seed)]
    return list(StratifiedKFold(validation, shuffle=True, random_state=seed).split(index, y_noisy))


def _check_options(M, theta, trials, validation, max_stages, bias, noise, sampling):
    Ms = [M] if isinstance(M, (int, np.integer)) else list(M)
    thetas = [theta] if isinstance(theta, (int, float)) else list(theta)
    if not Ms or not thetas:
        raise ValueError("M and theta must each hold at least one value")
    for m in Ms:
        integer("M", m, 10)
    for t in thetas:
        check_theta(t)
    integer("trials", trials, 1)
    ok = (validation == "auto" or (isinstance(validation, float) and 0 < validation < 1)
          or (isinstance(validation, (int, np.integer)) and not isinstance(validation, bool) and validation >= 2))
    if not ok:
        raise ValueError(f"validation must be 'auto', a fraction in (0, 1) or a fold count >= 2 (got {validation!r})")
    integer("max_stages", max_stages, 2)
    choice("bias", bias, FIT_BIASES)
    choice("noise", noise, NOISES)
    choice("sampling", sampling, SAMPLINGS)
    return sorted(set(Ms)), sorted({float(t) for t in thetas})


def _grid(values, name, positive=True):
    grid = np.asarray(values, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid) & ((grid > 0) | (not positive))):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers{' > 0' if positive else ''} "
                         f"(got {values!r})")
    return np.unique(grid)[::-1].copy()  # strongest penalty first: the best warm starts


@dataclass(frozen=True)
class ProbeSettings:
    """What every trial of one probe shares (see :func:`probe`)."""

    noise: str
    sampling: str
    validation: object  # 'auto', a fold count or a holdout fraction
    max_stages: int
    bias: str
    grids: Grids
    zero_tuning: bool
    seed: int
    trials: int
    threads: int
    theory: TheoryOfData | None  # the mixture fitted to the pool, where theory_error or zero tuning is asked for

    def to_dict(self) -> dict:
        return {"noise": self.noise, "sampling": self.sampling, "validation": self.validation,
                "max_stages": self.max_stages, "bias": self.bias, "seed": self.seed, "trials": self.trials,
                "lam_grid": self.grids.lam.tolist(), "beta_grid": self.grids.beta.tolist(),
                "xi_grid": self.grids.xi.tolist()}


def probe(X_train, y_train, X_test, y_test, *, classes=None, M: Sequence[int] | int = (100, 200, 500, 1000, 2000),
          theta: Sequence[float] | float = (0.0, 0.2, 0.4), trials: int = 5, noise: str = "exact",
          sampling: str = "balanced", validation="auto", max_stages: int = 4, bias: str = "learn",
          lam_grid=DEFAULT_LAM_GRID, beta_grid=DEFAULT_BETA_GRID, xi_grid=DEFAULT_XI_GRID, theory: bool = True,
          zero_tuning: bool = False, seed: int = 0, threads: int = 0, progress=None) -> ProbeResult:
    """Compare 0-SD, soft 1-SD, hard 1-SD, mixed 1-SD and hard T-SD (T <= max_stages, early stopping) on real
    features. Mixed 1-SD trains stage 2 on ``xi * hard pseudo-label + (1 - xi) * noisy label`` with xi tuned on
    ``xi_grid`` (docs/theory.md section 7).

    For each M, trial and theta: draw M training points of the two classes from the training pool
    (``sampling``), flip labels (``noise``: 'exact' = floor(theta M / 2) per class, 'bernoulli'), standardise
    with the subset's mean and scale, tune every method on ``validation`` splits of the subset (5-fold
    for M <= 1000 and a 20% holdout above with 'auto'; an int = that many folds; a float = one holdout),
    refit the tuned method on the whole subset and measure its error on the clean test set. The test
    set enters only that last step. ``lam_grid`` is in units of N: the estimator's lam (= 1 / C) divided
    by the feature dimension. Subsets and flips depend on (seed, M, trial) only and are nested across
    theta. ``theory``: the mixture of docs/theory.md section 6 is fitted to the whole (clean, standardised) training
    pool (:func:`sdgmm.fit_mixture`) and each row gets ``theory_error``, the theory's test error at the
    hyperparameters the method used. ``zero_tuning`` adds, for each method, a row 'zero-tuned <method>' refitted
    with the theory's optimal hyperparameters for that M and theta (no validation at all).
    ``progress(done, total)`` is called after each (M, theta, trial).
    """
    import pandas as pd

    Ms, thetas = _check_options(M, theta, trials, validation, max_stages, bias, noise, sampling)
    split, classes = two_classes(Split(X_train, y_train, X_test, y_test), classes)
    predictor = _theory_of(split, bias, max_stages) if theory or zero_tuning else None
    grids = Grids(_grid(lam_grid, "lam_grid"), _grid(beta_grid, "beta_grid"), _grid(xi_grid, "xi_grid", False))
    settings = ProbeSettings(noise, sampling, validation, max_stages, bias, grids, zero_tuning, seed, trials, threads,
                             predictor)
    for m in Ms:  # every M must fit before anything is computed
        draw_subset(split.y_train, m, np.random.default_rng(0), sampling)
    start = time.perf_counter()
    # One BLAS thread: the heavy work is the C++ solver's, and a 2-thread OpenBLAS eigh took 11 s instead
    # of 0.36 s (N = 1280) when the cores were busy.
    with threadpool_limits(limits=1, user_api="blas"):
        rows = _trials(split, Ms, thetas, settings, progress)
    info = settings.to_dict()
    if predictor is not None:
        fit = predictor.mixture
        info["mixture"] = {"covariance_mismatch": fit.covariance_mismatch, "variance_ratio": fit.variance_ratio,
                           "mean_noise": fit.mean_noise, "rho": fit.rho}
    return ProbeResult(pd.DataFrame(rows), split.X_train.shape[1], classes, info, time.perf_counter() - start)


def _theory_of(split, bias: str, max_stages: int) -> TheoryOfData:
    """The mixture fitted to the whole training pool, standardised as the subsets are."""
    mean, scale = standardiser(split.X_train)
    return TheoryOfData(fit_mixture((split.X_train - mean) / scale, split.y_train), bias, max_stages)


def _trials(split, Ms, thetas, settings: ProbeSettings, progress) -> list:
    """Every (M, trial, theta) in turn: the rows of each method."""
    N, rows, done, total = split.X_train.shape[1], [], 0, len(Ms) * len(thetas) * settings.trials
    for m in Ms:
        for k in range(settings.trials):
            seeds = np.random.SeedSequence([settings.seed, m, k]).spawn(3)
            rng = np.random.default_rng(seeds[0])
            idx = draw_subset(split.y_train, m, rng, settings.sampling)
            y_clean = split.y_train[idx]
            ranks, uniforms = flip_order(y_clean, rng), np.random.default_rng(seeds[1]).random(m)
            mean, scale = standardiser(split.X_train[idx])
            X = np.ascontiguousarray((split.X_train[idx] - mean) / scale)
            Z = principal_coordinates(X)  # no labels: shared by every theta
            X_test = (split.X_test - mean) / scale  # the test set's only use: scoring the refitted models
            rho = float(np.mean(y_clean))
            for th in thetas:
                y_noisy = noisy_labels(y_clean, th, settings.noise, ranks, uniforms)
                for row, model in _one_trial(X, Z, y_noisy, seeds[2], settings, th, rho):
                    row["test_error"] = math.nan if model is None else float(np.mean(model.predict(X_test) != split.y_test))
                    rows.append({"M": m, "alpha": m / N, "theta": th, "trial": k, **row,
                                 "realised_flips": int(np.sum(y_noisy != y_clean))})
                done += 1
                if progress is not None:
                    progress(done, total)
    return rows


def _one_trial(X, Z, y_noisy, seed_seq, settings: ProbeSettings, theta, rho):
    """Tune on the training subset alone (its principal coordinates Z) and refit on its features X;
    returns [(row, fitted estimator or None)] per method, then the row of the method that validated best."""
    t0 = time.perf_counter()
    caches = [StageCache(np.ascontiguousarray(Z[f]), y_noisy[f], Z[v], y_noisy[v], settings.grids, settings.bias,
                         settings.threads, X.shape[1] / Z.shape[1])
              for f, v in _validation_splits(y_noisy, len(y_noisy), settings.validation, seed_seq)]
    objective = Objective(caches)
    tuned = tune(objective, settings.grids, settings.max_stages)
    shared = {"tuning_fits": objective.n_fits, "excluded_fits": objective.excluded,
              "tuning_seconds": time.perf_counter() - t0}
    out = [_refit(X, y_noisy, method, _configuration(tuned[method][0], settings, X.shape[1]), settings,
                  {"val_error": tuned[method][1][0], **shared}) for method in METHODS]
    scores = {row["method"]: tuned[row["method"]][1] for row, model in out if model is not None}
    out += [_zero_tuned(X, y_noisy, method, theta, rho, settings) for method in METHODS if settings.zero_tuning]
    if settings.theory is not None:
        for row, _ in out:
            row["theory_error"] = _theory_error(row, len(y_noisy), theta, rho, settings)
    if scores:  # ties go to the simpler method, first in METHODS
        best = min(scores, key=lambda m: (scores[m], METHODS.index(m)))
        row, model = next((r, m) for r, m in out if r["method"] == best)
        out.append(({**row, "method": SELECTED, "selected": best}, model))
    return out


def _configuration(key, settings: ProbeSettings, N: int):
    """(lam per stage in estimator units, beta per soft stage, labels, xi per later stage) of a tuned key."""
    grids = settings.grids
    lam = [grids.lam[entry[0]] * N for entry in key]
    beta = [grids.beta[entry[1]] for entry in key[1:] if entry[1] != HARD]
    xi = [grids.xi[entry[2]] if len(entry) > 2 else 1.0 for entry in key[1:]]
    return lam, beta, "soft" if beta else "hard", xi


def _refit(X, y_noisy, method, configuration, settings: ProbeSettings, extra):
    """(row, estimator refitted on the whole subset with the configuration (lam, beta, labels, xi), or None where
    no finite fit exists). `extra` holds the row's tuning record; a tuned method whose val_error is NaN had a
    non-finite fit in every configuration. The row's xi is that of stage 2 (one value: only "mixed 1-SD" tunes
    it), NaN for 0-SD."""
    lam, beta, labels, xi = configuration
    row = {"method": method, "lam": ";".join(f"{v:.6g}" for v in lam), "beta": beta[0] if beta else math.inf,
           "labels": labels, "xi": xi[0] if xi else math.nan, **extra}
    if "tuning_seconds" in extra and not np.isfinite(row["val_error"]):
        return {**row, "val_error": math.nan, "n_stages": 0,
                "failure": "no configuration with finite fits on every validation split"}, None
    try:
        model = SelfDistillationClassifier(n_stages=len(lam), lam=lam, labels=labels, beta=beta or 1.0, xi=xi or 1.0,
                                           bias=settings.bias, threads=settings.threads).fit(X, y_noisy)
    except ValueError as error:  # a mixed stage whose targets leave a learned logistic bias without a minimiser
        return {**row, "n_stages": 0, "failure": str(error)}, None
    if not (np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()):
        return {**row, "n_stages": model.n_stages_, "failure": "the refit has non-finite weights"}, None
    return {**row, "n_stages": model.n_stages_}, model


def _zero_tuned(X, y_noisy, method, theta, rho, settings: ProbeSettings):
    """The method refitted with the theory's optimal hyperparameters for this M and theta (no validation)."""
    optimum = settings.theory.optimum(len(y_noisy), theta, rho, method)
    name = f"zero-tuned {method}"
    if optimum is None:
        return {"method": name, "val_error": math.nan, "n_stages": 0, "lam": "nan", "beta": math.inf,
                "xi": math.nan, "failure": "the theory found no converged optimum"}, None
    lam, beta, labels, xi = optimum
    return _refit(X, y_noisy, name, (list(lam), [b for b in beta if np.isfinite(b)], labels, list(xi)), settings,
                  {"val_error": math.nan, "tuning_fits": 0})


def _theory_error(row, M, theta, rho, settings: ProbeSettings) -> float:
    """The theory's error of the row's configuration, with the stages the refit kept (a collapse ends a run)."""
    if not row.get("n_stages") or row.get("lam") == "nan":
        return math.nan
    lam = parse_lams(row["lam"])[: row["n_stages"]]
    beta = [row["beta"]] * (len(lam) - 1) if row.get("labels") == "soft" else []
    xi = [row["xi"]] * (len(lam) - 1)
    return settings.theory.error(M, theta, rho, lam, beta, row.get("labels", "hard"), xi)
