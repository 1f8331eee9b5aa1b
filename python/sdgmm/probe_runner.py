"""The linear probe of the paper on real features: 0-SD against soft / hard 1-SD and hard T-SD with early
stopping, tuned on validation splits of each noisy training subset and scored once on the clean test set."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from sdgmm import probe_data as data
from sdgmm import probe_tuning as tuning
from sdgmm.estimator import SelfDistillationClassifier

METHODS = ("0-SD", "soft 1-SD", "hard 1-SD", "hard T-SD")
# Per trial, the method of METHODS with the best validation score: "should I self-distill this data?"
SELECTED = "selected"
AUTO_FOLDS_UP_TO = 1000  # validation="auto": 5-fold up to this M (cheap fits, noisy small holdouts), else 20%


@dataclass(frozen=True)
class ProbeResult:
    """``trials``: one row per (M, theta, trial, method); ``summary()``: mean and standard error over trials."""

    trials: object  # pandas DataFrame
    N: int
    classes: tuple
    settings: dict = field(default_factory=dict)
    seconds: float = math.nan

    def summary(self):
        """Mean and standard error over the trials with a test error; ``failed`` counts the trials without one
        (no finite fit to score), ``excluded_fits`` the tuning fits with non-finite weights that were never
        scored, and ``selected`` how often each method was the one selected by validation."""
        df = self.trials
        if "selected" not in df:
            df = df.assign(selected=None)
        g = df.groupby(["M", "theta", "method"], sort=False)
        out = g.agg(alpha=("alpha", "first"), test_error=("test_error", "mean"),
                    test_error_se=("test_error", _standard_error),
                    val_error=("val_error", "mean"), n_stages=("n_stages", "mean"), trials=("test_error", "count"),
                    failed=("test_error", lambda s: int(s.isna().sum())),
                    excluded_fits=("excluded_fits", "sum"),
                    lam=("lam", _median_lams), beta=("beta", lambda s: float(np.median(s))),
                    selected=("selected", _counts)).reset_index()
        return out

    def paired_differences(self, baseline: str = "0-SD"):
        """Test error of each method minus the baseline's on the same trial (same subset, same flips),
        mean and standard error over trials: the comparison without the trial-to-trial spread."""
        df = self.trials
        keys = ["M", "theta", "trial"]
        base = df[df["method"] == baseline].set_index(keys)["test_error"]
        other = df[df["method"] != baseline].copy()
        other["difference"] = other["test_error"].to_numpy() - base.loc[list(
            zip(other["M"], other["theta"], other["trial"]))].to_numpy()
        g = other.groupby(["M", "theta", "method"], sort=False)["difference"]
        out = g.agg(difference="mean", trials="count").reset_index()
        out["difference_se"] = g.agg(_standard_error).to_numpy()
        return out

    def plot(self, path=None):
        from sdgmm.probe_plot import plot_probe

        return plot_probe(self.summary(), N=self.N, classes=self.classes, path=path)


def _standard_error(values):
    """Over the trials with a number (a zero-tuning trial whose mixture cannot be matched has NaN)."""
    values = values.dropna()
    return values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0


def _counts(column) -> str:
    """'hard 1-SD:3;0-SD:2' for the methods named in a column (empty where none is)."""
    named = column.dropna()
    return ";".join(f"{k}:{v}" for k, v in named.value_counts().items()) if len(named) else ""


def _median_lams(column):
    """Median of each stage's lam over the trials (trials may differ in their stage count)."""
    lists = [[float(v) for v in str(s).split(";")] for s in column]
    width = max(len(v) for v in lists)
    return ";".join(f"{np.median([v[t] for v in lists if len(v) > t]):.3g}" for t in range(width))


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
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 10:
            raise ValueError(f"M must hold integers >= 10 (got {m!r})")
    for t in thetas:
        data.check_theta(t)
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1 (got {trials!r})")
    ok = (validation == "auto" or (isinstance(validation, float) and 0 < validation < 1)
          or (isinstance(validation, (int, np.integer)) and not isinstance(validation, bool) and validation >= 2))
    if not ok:
        raise ValueError(f"validation must be 'auto', a fraction in (0, 1) or a fold count >= 2 (got {validation!r})")
    if isinstance(max_stages, bool) or not isinstance(max_stages, (int, np.integer)) or max_stages < 2:
        raise ValueError(f"max_stages must be an integer >= 2 (got {max_stages!r})")
    if bias not in ("learn", "fix_first"):
        raise ValueError(f"bias must be 'learn' or 'fix_first' (got {bias!r})")
    if noise not in ("exact", "bernoulli"):
        raise ValueError(f"noise must be 'exact' or 'bernoulli' (got {noise!r})")
    if sampling not in ("balanced", "stratified"):
        raise ValueError(f"sampling must be 'balanced' or 'stratified' (got {sampling!r})")
    return sorted(set(Ms)), sorted({float(t) for t in thetas})


def _grid(values, name):
    grid = np.asarray(values, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers > 0 (got {values!r})")
    return np.sort(grid)[::-1].copy()  # strongest penalty first: the best warm starts


def probe(X_train, y_train, X_test, y_test, *, classes=None, M: Sequence[int] | int = (100, 200, 500, 1000, 2000),
          theta: Sequence[float] | float = (0.0, 0.2, 0.4), trials: int = 5, noise: str = "exact",
          sampling: str = "balanced", validation="auto", max_stages: int = 4, bias: str = "learn",
          lam_grid=tuning.DEFAULT_LAM_GRID, beta_grid=tuning.DEFAULT_BETA_GRID, zero_tuning: bool = False,
          seed: int = 0, threads: int = 0, progress=None) -> ProbeResult:
    """Compare 0-SD, soft 1-SD, hard 1-SD and hard T-SD (T <= max_stages, early stopping) on real features.

    For each M, trial and theta: draw M training points of the two classes from the training pool
    (``sampling``), flip labels (``noise``: 'exact' = floor(theta M / 2) per class, 'bernoulli'), standardise
    with the subset's mean and scale, tune every method on ``validation`` splits of the subset (5-fold
    for M <= 1000 and a 20% holdout above with 'auto'; an int = that many folds; a float = one holdout),
    refit the tuned method on the whole subset and measure its error on the clean test set. The test
    set enters only that last step. ``lam_grid`` is in units of N: the estimator's lam (= 1 / C) divided
    by the feature dimension. Subsets and flips depend on (seed, M, trial) only and are nested across
    theta. ``zero_tuning`` adds the theory-optimal hard 1-SD (bias fixed after stage 1) of the mixture that
    :func:`sdgmm.fit_gmm` matches to the subset, given the true theta (no validation).
    ``progress(done, total)`` is called after each (M, theta, trial).
    """
    import pandas as pd

    Ms, thetas = _check_options(M, theta, trials, validation, max_stages, bias, noise, sampling)
    split, classes = data.two_classes(data.Split(X_train, y_train, X_test, y_test), classes)
    lam_grid, beta_grid = _grid(lam_grid, "lam_grid"), _grid(beta_grid, "beta_grid")
    for m in Ms:  # every M must fit before anything is computed
        data.draw_subset(split.y_train, m, np.random.default_rng(0), sampling)
    N = split.X_train.shape[1]
    rows, start, total = [], time.perf_counter(), len(Ms) * len(thetas) * trials
    # One BLAS thread: the heavy work is the C++ solver's, and a 2-thread OpenBLAS eigh took 11 s instead
    # of 0.36 s (N = 1280) when the cores were busy.
    with threadpool_limits(limits=1, user_api="blas"):
        _trials(split, Ms, thetas, trials, noise, sampling, validation, lam_grid, beta_grid, max_stages, bias,
                threads, zero_tuning, seed, progress, rows, total)
    settings = {"noise": noise, "sampling": sampling, "validation": validation, "max_stages": max_stages,
                "bias": bias, "seed": seed, "trials": trials, "lam_grid": lam_grid.tolist(),
                "beta_grid": beta_grid.tolist()}
    return ProbeResult(pd.DataFrame(rows), N, classes, settings, time.perf_counter() - start)


def _trials(split, Ms, thetas, trials, noise, sampling, validation, lam_grid, beta_grid, max_stages, bias, threads,
            zero_tuning, seed, progress, rows, total):
    """Every (M, trial, theta) in turn; appends the rows of each method."""
    N, done = split.X_train.shape[1], 0
    for m in Ms:
        for k in range(trials):
            seeds = np.random.SeedSequence([seed, m, k]).spawn(3)
            rng = np.random.default_rng(seeds[0])
            idx = data.draw_subset(split.y_train, m, rng, sampling)
            y_clean = split.y_train[idx]
            ranks, uniforms = data.flip_order(y_clean, rng), np.random.default_rng(seeds[1]).random(m)
            mean, scale = data.standardiser(split.X_train[idx])
            X = np.ascontiguousarray((split.X_train[idx] - mean) / scale)
            Z = tuning.principal_coordinates(X)  # no labels: shared by every theta
            for th in thetas:
                y_noisy = data.noisy_labels(y_clean, th, noise, ranks, uniforms)
                trial_rows = _one_trial(X, Z, y_noisy, m, validation, seeds[2], lam_grid, beta_grid, max_stages, bias,
                                        threads, zero_tuning, th)
                X_test = (split.X_test - mean) / scale  # the test set's only use: scoring the refitted models
                for row, model in trial_rows:
                    row["test_error"] = math.nan if model is None else float(np.mean(model.predict(X_test) != split.y_test))
                    rows.append({"M": m, "alpha": m / N, "theta": th, "trial": k, **row,
                                 "realised_flips": int(np.sum(y_noisy != y_clean))})
                done += 1
                if progress is not None:
                    progress(done, total)


def _one_trial(X, Z, y_noisy, M, validation, seed_seq, lam_grid, beta_grid, max_stages, bias, threads, zero_tuning,
               theta):
    """Tune on the training subset alone (its principal coordinates Z) and refit on its features X;
    returns [(row, fitted estimator or None)] per method, then the row of the method that validated best."""
    t0 = time.perf_counter()
    caches = [tuning.StageCache(np.ascontiguousarray(Z[f]), y_noisy[f], Z[v], y_noisy[v], lam_grid, beta_grid, bias,
                                threads, X.shape[1] / Z.shape[1])
              for f, v in _validation_splits(y_noisy, M, validation, seed_seq)]
    objective = tuning.Objective(caches)
    tuned = tuning.tune(objective, len(lam_grid), len(beta_grid), max_stages)
    shared = {"tuning_fits": objective.n_fits, "excluded_fits": objective.excluded,
              "tuning_seconds": time.perf_counter() - t0}
    out, scores = [], {}
    N = X.shape[1]
    for method in METHODS:
        key, score = tuned[method]
        lam = [lam_grid[i] * N for i, _ in key]
        beta = [beta_grid[j] for _, j in key[1:] if j != tuning.HARD]
        row = {"method": method, "val_error": score[0], "lam": ";".join(f"{v:.6g}" for v in lam),
               "beta": beta[0] if beta else math.inf, **shared}
        if not np.isfinite(score[0]):  # every configuration had a non-finite fit on some split
            out.append(({**row, "val_error": math.nan, "n_stages": 0,
                         "failure": "no configuration with finite fits on every validation split"}, None))
            continue
        model = SelfDistillationClassifier(n_stages=len(key), lam=lam, labels="soft" if beta else "hard",
                                           beta=beta or 1.0, bias=bias, threads=threads).fit(X, y_noisy)
        if not (np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()):
            out.append(({**row, "n_stages": model.n_stages_, "failure": "the refit has non-finite weights"}, None))
            continue
        out.append(({**row, "n_stages": model.n_stages_}, model))
        scores[method] = score
    if scores:  # ties go to the simpler method, first in METHODS
        best = min(scores, key=lambda m: (scores[m], METHODS.index(m)))
        row, model = next((r, m) for r, m in out if r["method"] == best)
        out.append(({**row, "method": SELECTED, "selected": best}, model))
    if zero_tuning:
        out.append(_zero_tuning(X, y_noisy, theta, threads))
    return out


def _zero_tuning(X, y_noisy, theta, threads):
    """Hard 1-SD at the theory optimum of the matched mixture; a mixture that cannot be matched (no
    separation beyond sampling noise, or no converged optimum) gives a row with NaN test error.

    Stage 2 keeps stage 1's bias: the optimum is often lam -> inf, where the weights shrink like 1/lam
    but a learned bias stays the log-odds of the pseudo-labels, O(1) in a finite sample (measured on
    CIFAR, M = 1000, theta = 0.2: bias -0.29 against logits of 0.05, every test point one class)."""
    from sdgmm.errors import ConvergenceError
    from sdgmm.gmm_fit import fit_gmm

    try:
        info = fit_gmm(X, y_noisy, theta=theta).optimal(n_stages=2, labels="hard", bias="fix_first")
    except (ValueError, ConvergenceError) as e:
        return {"method": "theory hard 1-SD", "val_error": math.nan, "n_stages": 0, "lam": "nan", "beta": math.inf,
                "tuning_fits": 0, "tuning_seconds": 0.0, "failure": str(e)}, None
    model = SelfDistillationClassifier(n_stages=2, lam=info["lam"], bias="fix_first", threads=threads).fit(X, y_noisy)
    return {"method": "theory hard 1-SD", "val_error": math.nan, "n_stages": model.n_stages_,
            "lam": ";".join(f"{v:.6g}" for v in info["lam"]), "beta": math.inf, "tuning_fits": 0,
            "tuning_seconds": info["seconds"]}, model
