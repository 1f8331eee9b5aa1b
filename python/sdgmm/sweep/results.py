"""Reading a store back against its spec: progress counts and one flat table of results."""

from __future__ import annotations

import datetime
import math

from sdgmm.sweep.spec import AXES, SweepSpec, point_id


def status(spec: SweepSpec, rows: list, engine: str) -> dict:
    """Counts of the spec's points: done with this engine, done only with another one (stale), missing."""
    pids = {point_id(p) for p in spec.points}
    current = {r["point_id"]: r for r in rows if r["engine"] == engine and r["point_id"] in pids}
    other = {r["point_id"] for r in rows if r["engine"] != engine and r["point_id"] in pids} - set(current)
    seconds = [r["seconds"] for r in current.values()]
    return {
        "total": len(pids), "done": len(current), "stale": len(other), "missing": len(pids) - len(current),
        "failed": sum(bool(r["result"].get("failure")) for r in current.values()),
        "compute_seconds": sum(seconds), "slowest_seconds": max(seconds, default=math.nan),
        "last_finished": max((r["finished"] for r in current.values()), default=None),
    }


def frame(spec: SweepSpec, rows: list, engine: str):
    """One row per finished point of the spec: its axes, job parameters and results (the row of this
    engine if there is one, else the newest). Lists (lam, beta) become comma-joined text."""
    import pandas as pd

    pids = {point_id(p) for p in spec.points}
    chosen: dict = {}
    for r in rows:  # newest first
        pid = r["point_id"]
        if pid in pids and (pid not in chosen or (r["engine"] == engine and chosen[pid]["engine"] != engine)):
            chosen[pid] = r
    records = []
    for r in chosen.values():
        point = {k: ",".join(f"{x:g}" for x in v) if isinstance(v, list) else v for k, v in r["point"].items()}
        finished = datetime.datetime.fromtimestamp(r["finished"], datetime.timezone.utc).isoformat(timespec="seconds")
        records.append({**point, **r["result"], "seconds": r["seconds"], "engine": r["engine"],
                        "worker": r["worker"], "finished": finished})
    if not records:
        return pd.DataFrame()
    point_cols = ["kind", *AXES] + [k for k in spec.points[0] if k not in AXES and k != "kind"]
    result_cols = sorted({k for r in chosen.values() for k in r["result"]}, key=_result_order)
    df = pd.DataFrame(records, columns=point_cols + result_cols + ["seconds", "engine", "worker", "finished"])
    return df.sort_values(list(AXES), ignore_index=True)


def _result_order(name: str):
    """Per-stage columns (eps_3, eps_T2, ...) in stage order after the others, which keep a fixed order."""
    base, _, t = name.rpartition("_")
    digits = t.lstrip("T")
    return (1, base, int(digits)) if digits.isdigit() and base else (0, name, 0)
