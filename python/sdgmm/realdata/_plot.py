"""Plot of the linear probe: test error against alpha = M / N, one panel per theta (matplotlib, no pyplot state)."""

from __future__ import annotations

MARKERS = {"0-SD": "o", "soft 1-SD": "s", "hard 1-SD": "^", "mixed 1-SD": "v", "hard T-SD": "D", "selected": "*"}


def plot_probe(summary, *, N: int, classes=None, path=None):
    """Mean test error +- standard error over trials (points), log alpha axis, with the theory's prediction at the
    hyperparameters each method used as a line of the same colour where the summary has it; ``summary`` from
    ProbeResult.summary(). Zero-tuned methods are drawn dashed, with open markers in their method's colour."""
    from matplotlib.figure import Figure

    thetas = sorted(summary["theta"].unique())
    fig = Figure(figsize=(4.2 * len(thetas), 3.8), layout="constrained")
    axes = fig.subplots(1, len(thetas), sharey=True, squeeze=False)[0]
    for ax, theta in zip(axes, thetas):
        part = summary[summary["theta"] == theta]
        bases = list(dict.fromkeys(m.removeprefix("zero-tuned ") for m in part["method"].unique()))
        for method in part["method"].unique():
            rows = part[part["method"] == method].sort_values("alpha")
            base = method.removeprefix("zero-tuned ")
            color = f"C{bases.index(base) % 10}"  # a zero-tuned method shares its method's colour, open markers
            ax.errorbar(rows["alpha"], rows["test_error"], yerr=rows["test_error_se"],
                        marker=MARKERS.get(base, "."), markersize=4, capsize=2, linestyle="none", color=color,
                        fillstyle="none" if base != method else "full", label=method)
            if "theory_error" in rows and rows["theory_error"].notna().any():
                ax.plot(rows["alpha"], rows["theory_error"], "--" if method.startswith("zero") else "-",
                        color=color, linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(f"alpha = M / N  (N = {N})")
        ax.set_title(f"theta = {theta:g}", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("test error (points: measured, lines: theory)")
    axes[0].legend(fontsize="small")
    if classes is not None:
        fig.suptitle(f"linear probe, classes {classes[0]} vs {classes[1]}", fontsize="medium")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
