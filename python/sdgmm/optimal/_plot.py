"""Plots of optimally tuned self-distillation (matplotlib, imported lazily; no pyplot state)."""

from __future__ import annotations

ACCURACY_COLUMN = "eps_error"


def plot_curve(df, path=None, ax=None, title=None, *, style: str = "-", suffix: str = "", references: bool = True,
               max_error: float | None = None):
    """Optimal final-stage error against alpha, from the DataFrame of :func:`sdgmm.curve`.

    One line per stage count T, labelled "(T-1)-SD" plus ``suffix`` (T = 1 is plain training, "0-SD"), in
    line ``style``, on a log alpha axis, plus (``references``) the dashed references of the DataFrame's
    ``noiseless`` column (optimal 0-SD without label noise) and ``bayes`` column (alpha -> inf Bayes limit);
    both are the balanced-class formulas of theory.md section 3. ``max_error`` leaves out the points whose
    ``eps_error`` exceeds it. Several calls on one ``ax`` overlay curves (hard against soft labels, say).

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
    shown = df if max_error is None else df[df[ACCURACY_COLUMN] <= max_error]
    for T in sorted(shown["n_stages"].unique()):
        part = shown[shown["n_stages"] == T].sort_values("alpha")
        ax.plot(part["alpha"], part["eps"], style, marker="o", markersize=3, label=f"{int(T) - 1}-SD{suffix}")
    refs = df.drop_duplicates("alpha").sort_values("alpha")
    if references and "noiseless" in df.columns:
        ax.plot(refs["alpha"], refs["noiseless"], "k--", linewidth=1, label="noiseless 0-SD")
    if references and "bayes" in df.columns:
        ax.plot(refs["alpha"], refs["bayes"], "--", color="gray", linewidth=1, label="Bayes (alpha->inf)")
    ax.set_xscale("log")
    ax.set_xlabel("alpha = M / N")
    ax.set_ylabel("optimal test error eps")
    if title is not None:
        ax.set_title(title, fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
