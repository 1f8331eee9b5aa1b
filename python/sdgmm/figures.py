"""The paper's figures F1-F5, and F6 beyond the paper (mixing teacher and labels), each computed from the
engine and written as PNG + CSV.

Every figure is a function ``(out_dir, progress) -> list of written paths`` in ``FIGURES``; the CLI
runs them as ``sdgmm figure NAME --out DIR``. The setting is the paper's main one (delta 0.5,
theta 0.3, balanced classes) unless a figure says otherwise; optima are found by
:func:`sdgmm.optimize`, whose lam axes reach the exact limit lam = inf.
"""

from __future__ import annotations

import os

import numpy as np

from sdgmm._model import Problem, make_stages
from sdgmm._output import write_outputs
from sdgmm._params import PAPER_SETTING
from sdgmm._simulate import simulate
from sdgmm._theory import ACCURACY_WARNING, theory
from sdgmm.optimal import curve, optimize, plot_curve

SETTING = {k: PAPER_SETTING[k] for k in ("delta", "rho", "theta")}
ALPHAS = np.geomspace(0.1, 100, 20)


def _sd_label(T: int) -> str:
    return f"{T - 1}-SD"


def _save(fig, frame, out_dir: str, name: str) -> list[str]:
    png, csv = os.path.join(out_dir, f"{name}.png"), os.path.join(out_dir, f"{name}.csv")
    write_outputs(fig, png, {csv: frame})
    return [png, csv]


def _figure(ncols: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0 * ncols, 4.4), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _log_alpha_axis(ax, ylabel="optimal test error eps"):
    ax.set_xscale("log")
    ax.set_xlabel("alpha = M / N")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


def _accurate(df):
    """Rows whose eps_error is within the engine's accuracy warning (the CSV keeps all rows)."""
    return df[df["eps_error"] <= ACCURACY_WARNING]


def f1_optimal_curves(out_dir, progress=None):
    """Optimal 0-SD, 1-SD, 2-SD and 5-SD error against alpha, hard labels, logistic and square loss."""
    import pandas as pd

    fig, axes = _figure(2)
    frames = []
    for ax, loss in zip(axes, ("logistic", "square")):
        df = curve(ALPHAS, **SETTING, stage_counts=(1, 2, 3, 6), loss=loss, labels="hard", restarts=0,
                   progress=progress)
        frames.append(df.assign(loss=loss))
        plot_curve(df, ax=ax, title=f"F1: optimal SD, hard labels, {loss} loss", max_error=ACCURACY_WARNING)
    return _save(fig, pd.concat(frames), out_dir, "F1_optimal_sd")


def f2_hard_vs_soft(out_dir, progress=None):
    """Hard against soft pseudo-labels at their optima, and the optimal soft temperatures beta_t."""
    import pandas as pd

    frames = {labels: curve(ALPHAS, **SETTING, stage_counts=(2, 6), labels=labels, restarts=0,
                            progress=progress).assign(labels=labels) for labels in ("hard", "soft")}
    fig, (ax, bx) = _figure(2)
    for labels, df in frames.items():
        plot_curve(df, ax=ax, title="F2a: optimal error, hard vs soft pseudo-labels", style="-" if labels == "hard"
                   else ":", suffix=f" {labels}", references=False, max_error=ACCURACY_WARNING)
    soft = _accurate(frames["soft"][frames["soft"]["n_stages"] == 6])
    for t in range(2, 7):
        bx.plot(soft["alpha"], soft[f"beta_{t}"], marker="o", markersize=3, label=f"beta_{t}")
    bx.set_yscale("log")
    bx.set_title("F2b: optimal beta_t of 5-SD (soft; on lam = inf stages, per unit of lam u)",
                 fontsize="medium")
    _log_alpha_axis(bx, "optimal beta_t")
    return _save(fig, pd.concat(frames.values()), out_dir, "F2_hard_vs_soft")


def f3_early_stopping(out_dir, progress=None, max_stages=6):
    """Early stopping: optimal error against stage count at a few alphas, and T* against alpha (hard labels).

    Stages are added until one gains less than 1e-6 (optimize's max_stages), up to 6."""
    import pandas as pd

    rows = []
    for k, alpha in enumerate(ALPHAS):
        res = optimize(Problem(alpha, **SETTING), max_stages=max_stages, labels="hard", restarts=0)
        best = res.best_n_stages
        rows += [{"alpha": alpha, "n_stages": o.n_stages, "eps": o.eps_final, "eps_error": o.eps_error[-1],
                  "best_n_stages": best} for o in res.optima]
        if progress:
            progress(k + 1, len(ALPHAS))
    df = pd.DataFrame(rows)
    fig, (ax, bx) = _figure(2)
    for alpha in ALPHAS[[2, 6, 9, 13, 17]]:
        part = _accurate(df[df["alpha"] == alpha])
        ax.plot(part["n_stages"] - 1, part["eps"], marker="o", markersize=3, label=f"alpha = {alpha:.3g}")
    ax.set_xlabel("SD steps T - 1")
    ax.set_ylabel("optimal test error eps")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("F3a: optimal error against stage count (hard labels)", fontsize="medium")
    best = df.drop_duplicates("alpha")
    bx.plot(best["alpha"], best["best_n_stages"] - 1, marker="o", label=f"T* - 1 (of up to {max_stages - 1})")
    bx.set_title("F3b: best number of SD steps T* - 1", fontsize="medium")
    _log_alpha_axis(bx, "T* - 1")
    return _save(fig, df, out_dir, "F3_early_stopping")


def f4_bias_fixing(out_dir, progress=None, rho=0.3, theta=0.2):
    """Bias fixing under imbalance: learned against fixed (stage-1) bias, rho = 0.3, theta = 0.2.

    Optimal over alpha (T <= 3), and at the theory.md table setting against stage count (lam 0.5)."""
    import pandas as pd

    alphas = np.geomspace(0.3, 30, 8)
    setting = {**SETTING, "rho": rho, "theta": theta}
    frames = [curve(alphas, **setting, stage_counts=(1, 2, 3), labels="hard", bias=bias, restarts=0,
                    progress=progress).assign(bias=bias) for bias in ("learn", "fix_first")]
    fig, (ax, bx) = _figure(2)
    for df in frames:
        bias = df["bias"].iloc[0]
        plot_curve(df, ax=ax, title=f"F4a: optimal hard-label SD, rho = {rho}, theta = {theta}",
                   style="-" if bias == "fix_first" else ":", suffix=f", bias {bias}", references=False,
                   max_error=ACCURACY_WARNING)
    p = Problem(2.0, **setting)
    rows = []
    for bias in ("learn", "fix_first"):
        r = theory(p, make_stages([0.5] * 8, hard=True, bias=bias), on_nonconvergence="warn")
        rows += [{"alpha": 2.0, "bias": bias, "n_stages": t + 1, "eps": e, "fixed_lam": 0.5}
                 for t, e in enumerate(r.eps)]
        bx.plot(np.arange(8), r.eps, marker="o", label=f"bias {bias}")
    bx.axhline(rho, color="gray", linestyle="--", linewidth=1, label="majority classifier (eps = rho)")
    bx.set_xlabel("SD steps T - 1")
    bx.set_ylabel("test error eps")
    bx.grid(True, alpha=0.3)
    bx.legend(fontsize="small")
    bx.set_title("F4b: alpha = 2, lam = 0.5 every stage (theory.md table)", fontsize="medium")
    return _save(fig, pd.concat(frames + [pd.DataFrame(rows)]), out_dir, "F4_bias_fixing")


def f5_simulation(out_dir, progress=None, N=1000, trials=8, sim_lam=1e6):
    """Theory at the F1 optima (logistic, hard) against simulation with error bars at 4 alphas.

    The optima are at lam = inf, simulated at lam = 1e6 with the bias kept at 0 (a learned bias on a finite
    sample would be logit of the sample's label mean, O(M^-1/2), which swamps logits of order 1/lam)."""
    import pandas as pd

    counts = (1, 2, 3, 6)
    th = curve(ALPHAS, **SETTING, stage_counts=counts, labels="hard", restarts=0)
    rows = []
    sim_alphas = (0.5, 1.0, 2.0, 5.0)
    for k, alpha in enumerate(sim_alphas):
        res = optimize(Problem(alpha, **SETTING), n_stages=max(counts), labels="hard", restarts=0)
        opt = res.optima[-1]
        lam = np.where(np.isinf(opt.lam), sim_lam, opt.lam)
        bias = "fixed" if np.isinf(opt.lam).all() else "learn"
        sim = simulate(res.problem, make_stages(lam, hard=True, bias=bias, bias_value=0.0), N=N, trials=trials,
                       seed=k)
        rows += [{"alpha": alpha, "n_stages": T, "theory": opt.eps[T - 1], "sim": sim.eps[T - 1],
                  "sim_se": sim.eps_se[T - 1], "N": N, "trials": trials} for T in counts]
        if progress:
            progress(k + 1, len(sim_alphas))
    df = pd.DataFrame(rows)
    fig, (ax,) = _figure(1)
    for i, (T, part) in enumerate(_accurate(th).groupby("n_stages")):
        color = f"C{i}"
        ax.plot(part["alpha"], part["eps"], color=color, label=f"{_sd_label(T)} theory")
        pts = df[df["n_stages"] == T]
        ax.errorbar(pts["alpha"], pts["sim"], yerr=pts["sim_se"], fmt="o", color=color, capsize=3, markersize=4)
    ax.set_title(f"F5: theory (lines) vs simulation (N = {N}, {trials} trials, mean +- se)", fontsize="medium")
    _log_alpha_axis(ax)
    return _save(fig, df, out_dir, "F5_simulation")


def f6_mixing(out_dir, progress=None, labels="hard"):
    """Optimal SD mixing teacher and given labels (xi_t tuned) against pure SD and 0-SD, and the optimal xi_t.

    Stage t trains on xi_t * pseudo-labels + (1 - xi_t) * noisy labels (docs/theory.md section 7)."""
    import pandas as pd

    frames = {mix: curve(ALPHAS, **SETTING, stage_counts=(1, 2, 3), labels=labels, restarts=0, mix=mix,
                         progress=progress).assign(mixed=mix) for mix in (False, True)}
    fig, (ax, bx) = _figure(2)
    for mix, df in frames.items():
        plot_curve(df, ax=ax, title=f"F6a: optimal SD, pure (dotted) vs mixed with the labels (solid), {labels}",
                   style="-" if mix else ":", suffix=" mixed" if mix else " pure", references=mix,
                   max_error=ACCURACY_WARNING)
    mixed = _accurate(frames[True])
    for T, t in ((2, 2), (3, 2), (3, 3)):
        rows = mixed[mixed["n_stages"] == T]
        bx.plot(rows["alpha"], rows[f"xi_{t}"], marker="o", markersize=3, label=f"xi_{t} of {_sd_label(T)}")
    bx.axhline(1.0, color="gray", lw=0.8)
    bx.set_title("F6b: optimal mixing weight xi_t (1 = pure SD; > 1: the labels weigh negatively)",
                 fontsize="medium")
    _log_alpha_axis(bx, "optimal xi_t")
    return _save(fig, pd.concat(frames.values()), out_dir, "F6_mixing")


FIGURES = {"F1": f1_optimal_curves, "F2": f2_hard_vs_soft, "F3": f3_early_stopping, "F4": f4_bias_fixing,
           "F5": f5_simulation, "F6": f6_mixing}


def make_figure(name: str, out_dir: str, progress=None) -> list[str]:
    """Compute figure ``name`` (F1..F6) and write its PNG and CSV into ``out_dir``; returns the paths."""
    if name not in FIGURES:
        raise ValueError(f"name must be one of {sorted(FIGURES)} (got {name!r})")
    if not os.path.isdir(out_dir):
        raise ValueError(f"out must be an existing directory (got {out_dir!r})")
    return FIGURES[name](out_dir, progress)


__all__ = ["FIGURES", "make_figure"]
