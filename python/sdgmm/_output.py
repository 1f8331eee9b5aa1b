"""Writing results to files: a figure and tables, all rendered before any file is opened, so that a failure
leaves no file behind (the figures, and every command-line output file)."""

from __future__ import annotations

import io
import os

DPI = 120


def figure_format(path: str) -> str:
    """The image format of `path` by its extension, PNG by default."""
    return os.path.splitext(path)[1].lstrip(".").lower() or "png"


def write_outputs(figure=None, figure_path: str | None = None, tables: dict | None = None) -> list[str]:
    """Write `figure` (a matplotlib Figure) to `figure_path` and each DataFrame of `tables` ({path: frame}) as CSV.
    Paths that are None are skipped. Returns the paths written, the tables' first."""
    rendered = {path: frame.to_csv(index=False).encode() for path, frame in (tables or {}).items() if path is not None}
    if figure is not None and figure_path is not None:
        png = io.BytesIO()
        figure.savefig(png, format=figure_format(figure_path), dpi=DPI)
        rendered[figure_path] = png.getvalue()
    for path, content in rendered.items():
        with open(path, "wb") as fh:
            fh.write(content)
    return list(rendered)
