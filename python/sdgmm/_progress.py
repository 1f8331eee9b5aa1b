"""One text progress bar for every long-running command (curve, figure, sweep)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """'label: [#####.....] 40/96 points (12 stored before), 1m05s, ETA 1m30s' on stderr, redrawn in place
    at most ten times a second. ``done`` counts the items finished in this run, ``before`` those finished
    by an earlier run (a resumed sweep); a caller may pass a new ``total`` with each update."""

    WIDTH = 30

    def __init__(self, total: int, label: str, unit: str, before: int = 0, stream=None):
        self.total, self.label, self.unit, self.before = total, label, unit, before
        self.stream = stream or sys.stderr
        self.start = self.drawn = time.perf_counter()
        self(0)

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        now = time.perf_counter()
        if now - self.drawn < 0.1 and 0 < done and self.before + done < self.total:
            return
        self.drawn = now
        finished, elapsed = self.before + done, now - self.start
        eta = _duration(elapsed / done * (self.total - finished)) if done else "?"
        filled = self.WIDTH * finished // max(self.total, 1)
        earlier = f" ({self.before} stored before)" if self.before else ""
        self.stream.write(f"\r{self.label}: [{'#' * filled}{'.' * (self.WIDTH - filled)}] {finished}/{self.total} "
                          f"{self.unit}{earlier}, {_duration(elapsed)}, ETA {eta} ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
