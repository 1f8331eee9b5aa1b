"""The probe's result: one row per (M, theta, trial, method), its summary over trials and paired differences."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sdgmm.realdata._plot import plot_probe


@dataclass(frozen=True)
class ProbeResult:
    """``trials``: one row per (M, theta, trial, method); ``summary()``: mean and standard error over trials."""

    trials: object  # pandas DataFrame
    N: int
    classes: tuple
    settings: dict = field(default_factory=dict)
    seconds: float = math.nan

    def summary(self):
        """Mean and standard error over the trials with a test error, and the mean of the theory's prediction at
        the hyperparameters each trial used (``theory_error``), the median tuned hyperparameters (lam per stage,
        beta, xi of stage 2); ``failed`` counts the trials without one
        (no finite fit to score), ``excluded_fits`` the tuning fits with non-finite weights that were never
        scored, and ``selected`` how often each method was the one selected by validation."""
        df = self.trials
        for column in ("selected", "theory_error", "xi"):  # columns a trials table from before them lacks
            if column not in df:
                df = df.assign(**{column: None if column == "selected" else math.nan})
        g = df.groupby(["M", "theta", "method"], sort=False)
        out = g.agg(alpha=("alpha", "first"), test_error=("test_error", "mean"),
                    test_error_se=("test_error", _standard_error), theory_error=("theory_error", "mean"),
                    val_error=("val_error", "mean"), n_stages=("n_stages", "mean"), trials=("test_error", "count"),
                    failed=("test_error", lambda s: int(s.isna().sum())),
                    excluded_fits=("excluded_fits", "sum"),
                    lam=("lam", _median_lams), beta=("beta", lambda s: float(np.median(s))),
                    xi=("xi", "median"),
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
