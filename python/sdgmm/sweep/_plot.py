"""Heat / contour maps of a sweep's result column over two of its axes (matplotlib, no pyplot state)."""

from __future__ import annotations

import numpy as np


def _edges(centres: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges halfway between neighbouring centres (in log space for a log axis)."""
    c = np.log10(centres) if log else centres
    if len(c) == 1:
        mids = np.array([c[0] - 0.5, c[0] + 0.5])
    else:
        inner = (c[1:] + c[:-1]) / 2
        mids = np.r_[2 * c[0] - inner[0], inner, 2 * c[-1] - inner[-1]]
    return 10.0 ** mids if log else mids


def _is_log(values: np.ndarray) -> bool:
    """A positive axis is drawn on a log scale when its values are spaced more evenly in log than in
    linear terms (two values: when they span more than a decade)."""
    if len(values) < 2 or values.min() <= 0:
        return False
    if len(values) == 2:
        return bool(values.max() / values.min() > 10)
    d, ld = np.diff(values), np.diff(np.log(values))
    return bool(np.ptp(ld) / ld.mean() < np.ptp(d) / d.mean())


def plot_map(df, x: str, y: str, value: str, *, contour: bool = False, annotate: str | None = None,
             title: str | None = None, ax=None):
    """`value` over the (x, y) grid as coloured cells, with labelled contour lines if `contour` and
    each cell's entry of column `annotate` written in it (e.g. best_n_stages).

    df: the table of :func:`sdgmm.sweep.results.frame`, with one row per (x, y) (fix the other axes
    first). Missing cells stay blank. Returns the Figure.
    """
    from matplotlib.figure import Figure

    for name in (x, y, value, *([annotate] if annotate else [])):
        if name not in df.columns:
            raise ValueError(f"column {name!r} is not in the results; columns are {sorted(df.columns)}")
    if df.duplicated([x, y]).any():
        raise ValueError(f"several rows share one ({x}, {y}) cell: fix the other varying axes first")
    try:
        grid = df.pivot(index=y, columns=x, values=value).astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"column {value!r} is not numeric") from None
    xs, ys, z = grid.columns.to_numpy(float), grid.index.to_numpy(float), grid.to_numpy()
    xlog, ylog = _is_log(xs), _is_log(ys)
    if ax is None:
        fig = Figure(figsize=(7.2, 5.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    mesh = ax.pcolormesh(_edges(xs, xlog), _edges(ys, ylog), np.ma.masked_invalid(z), cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=value)
    if contour and len(xs) > 1 and len(ys) > 1 and np.isfinite(z).any():
        lines = ax.contour(xs, ys, np.ma.masked_invalid(z), colors="white", linewidths=0.8)
        ax.clabel(lines, fontsize="small", fmt="%.3g")
    if annotate:
        for xv, yv, label in zip(df[x], df[y], df[annotate]):
            text = f"{label:.3g}" if isinstance(label, float) else str(label)
            ax.text(xv, yv, text, ha="center", va="center", fontsize="x-small", color="white")
    ax.set_xscale("log" if xlog else "linear")
    ax.set_yscale("log" if ylog else "linear")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title, fontsize="medium")
    return fig
