"""Running a sweep on Dask: submit the missing points, store each one as its future completes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from sdgmm._progress import ProgressBar
from sdgmm.sweep.spec import SweepSpec, chains, point_id
from sdgmm.sweep.store import Store, check_writable, row_key
from sdgmm.sweep.task import engine_version, run_point


@dataclass
class RunSummary:
    total: int  # points in the spec
    stored_before: int  # already in the store with this engine: not recomputed
    computed: int = 0  # stored by this run
    failed: int = 0  # stored with a non-converged state evolution (see the 'failure' column)
    errors: list = field(default_factory=list)  # points that raised: not stored, retried by the next run
    seconds: float = 0.0


def connect(scheduler: str | None, workers: int = 0, timeout: float = 10.0):
    """A Dask client: to `scheduler`, or to a new local cluster of `workers` processes (0 = one per
    core) with one thread each, since each task runs the engine single-threaded. Returns (client, cluster)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout}s"), None
        except (OSError, TimeoutError) as e:
            raise ValueError(f"scheduler {scheduler}: cannot connect within {timeout:g} s ({e})") from None
    cluster = LocalCluster(n_workers=workers or os.cpu_count(), threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    return Client(cluster), cluster


def run_sweep(spec: SweepSpec, *, client=None, timeout: float = 10.0, progress: bool = False,
              on_stored=None) -> RunSummary:
    """Compute every point of `spec` missing from its store. Without `client`, connects as
    :func:`connect` does. `on_stored(n)` is called after the n-th point stored by this run."""
    check_writable(spec.store)
    start = time.perf_counter()
    owned = client is None
    cluster = None
    if owned:
        client, cluster = connect(spec.scheduler, spec.workers, timeout)
    try:
        store = Store(spec.store, create=True)  # only now: bad input and an unreachable cluster write nothing
        try:
            summary = _run(spec, client, store, progress, on_stored)
        finally:
            store.close()
    finally:
        if owned:
            client.close()
            if cluster is not None:
                cluster.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _run(spec, client, store, progress, on_stored) -> RunSummary:
    store.set_spec(spec.to_dict())
    engine = engine_version()
    pids = {id(p): point_id(p) for p in spec.points}
    done = store.existing(row_key(pid, engine) for pid in pids.values())
    summary = RunSummary(len(spec.points), len(done))
    futures = _submit(client, spec, pids, engine, done, store)
    bar = ProgressBar(summary.total, "sweep", "points", before=summary.stored_before) if progress else None
    try:
        _collect(futures, store, engine, summary, bar, on_stored)
    finally:
        if bar is not None:
            bar.close()
    return summary


def _submit(client, spec, pids, engine, done, store) -> dict:
    """One task per missing point. Within a chain of neighbouring alphas each task takes the output of
    the one before (a finished one from the store), so the optimiser starts from its optimum."""
    futures = {}
    for chain in chains(spec.points, spec.chain):
        previous = None
        for point in chain:
            pid = pids[id(point)]
            key = row_key(pid, engine)
            if key in done:
                previous = store.output(key)
                continue
            previous = client.submit(run_point, point, pid, previous, key=f"sdgmm-sweep-{key}")
            futures[previous] = (pid, point)
    return futures


def _collect(futures, store, engine, summary, bar, on_stored) -> None:
    from distributed import as_completed

    for future in as_completed(list(futures)):
        pid, point = futures[future]
        try:
            output = future.result()
        except Exception as e:  # noqa: BLE001 - reported per point; the next run retries it
            summary.errors.append(f"{_label(point)}: {type(e).__name__}: {e}")
            continue
        if output["engine"] != engine:  # rebuilt under us: such a row would carry the wrong key
            summary.errors.append(f"{_label(point)}: computed by engine {output['engine']}, not {engine} "
                                  "(was the engine rebuilt during the sweep?); not stored")
            continue
        if store.add(pid, point, output):
            summary.computed += 1
            summary.failed += bool(output["result"].get("failure"))
        if on_stored is not None:
            on_stored(summary.computed)
        if bar is not None:
            bar(summary.computed)


def _label(point: dict) -> str:
    return ", ".join(f"{k}={point[k]}" for k in ("alpha", "delta", "rho", "theta", "stages", "loss", "labels", "bias"))
