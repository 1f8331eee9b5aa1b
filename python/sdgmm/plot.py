"""Plots of optimally tuned self-distillation (matplotlib, imported lazily; no pyplot state)."""

from __future__ import annotations


def plot_curve(df, path=None, ax=None, title=None):
    """Optimal final-stage error against alpha, from the DataFrame of :func:`sdgmm.curve`.

    One line per stage count T, labelled "(T-1)-SD" (T = 1 is plain training, "0-SD"), on a log
    alpha axis, plus the dashed references of the DataFrame's ``noiseless`` column (optimal 0-SD
    without label noise) and ``bayes`` column (alpha -> inf Bayes limit); both are the balanced-class
    formulas of theory.md section 3.

    path: also save the figure there (format from the extension, PNG by default). ax: draw into
    this Axes instead of a new Figure. Returns the Figure.
    """
    from matplotlib.figure import Figure

    missing = {"alpha", "n_stages", "eps"} - set(df.columns)
    if missing:
        raise ValueError(f"df must be a DataFrame from sdgmm.curve (missing columns {sorted(missing)})")
    if ax is None:
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for T in sorted(df["n_stages"].unique()):
        part = df[df["n_stages"] == T].sort_values("alpha")
        ax.plot(part["alpha"], part["eps"], marker="o", markersize=3, label=f"{int(T) - 1}-SD")
    refs = df.drop_duplicates("alpha").sort_values("alpha")
    if "noiseless" in df.columns:
        ax.plot(refs["alpha"], refs["noiseless"], "k--", linewidth=1, label="noiseless 0-SD")
    if "bayes" in df.columns:
        ax.plot(refs["alpha"], refs["bayes"], "--", color="gray", linewidth=1, label="Bayes (alpha->inf)")
    ax.set_xscale("log")
    ax.set_xlabel("alpha = M / N")
    ax.set_ylabel("optimal test error eps")
    if title is not None:
        ax.set_title(title, fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
