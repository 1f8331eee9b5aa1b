"""Sweeps on a real distributed.LocalCluster with two worker processes: results, resumption, a killed
worker, export and plot."""

import os
import signal

import numpy as np
import pandas as pd
import pytest
import sdgmm
from cli_helpers import run
from distributed import Client, LocalCluster
from sdgmm.sweep.run import run_sweep
from sdgmm.sweep.spec import from_dict, point_id
from sdgmm.sweep.store import Store
from sdgmm.sweep.task import TASK_LOG_ENV


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes, one thread each; every task run appends its point id to `log`."""
    log = tmp_path_factory.mktemp("tasks") / "runs.log"
    os.environ[TASK_LOG_ENV] = str(log)  # the worker processes inherit it when they start
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc, Client(lc) as client:
            yield client, log
    finally:
        del os.environ[TASK_LOG_ENV]


def runs(log) -> list:
    return log.read_text().split() if log.exists() else []


def theory_spec(store, alphas, thetas=(0.1, 0.3), labels="hard", stages=3):
    return from_dict({"kind": "theory", "store": str(store), "chain": 3, "job": {"lam": [1.0, 0.5, 0.5], "beta": 2.0},
                      "axes": {"alpha": list(alphas), "theta": list(thetas), "labels": labels, "stages": stages}})


def stored(store_path) -> pd.DataFrame:
    store = Store(str(store_path))
    try:
        return pd.DataFrame([{"point_id": r["point_id"], **r["point"], **r["result"], "worker": r["worker"]}
                             for r in store.rows()])
    finally:
        store.close()


def test_theory_sweep_on_two_worker_processes_matches_direct_calls_and_resumes(cluster, tmp_path):
    client, log = cluster
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    spec = theory_spec(tmp_path / "s.sqlite", np.geomspace(0.5, 8, 6), labels=["hard", "soft"])
    before = len(runs(log))
    s = run_sweep(spec, client=client)
    assert (s.total, s.stored_before, s.computed, s.failed, s.errors) == (24, 0, 24, 0, [])
    df = stored(spec.store)
    assert len(df) == 24 and df["point_id"].is_unique
    assert {int(w.rsplit(":", 1)[1]) for w in df["worker"]} == pids  # both processes did work
    assert sorted(runs(log)[before:]) == sorted(point_id(p) for p in spec.points)
    for row in df.iloc[[0, 7, 23]].itertuples():
        stages = sdgmm.make_stages([1.0, 0.5, 0.5], [2.0, 2.0], hard=row.labels == "hard")
        r = sdgmm.theory(sdgmm.Problem(row.alpha, 0.5, rho=0.5, theta=row.theta), stages)
        assert [row.eps_1, row.eps_2, row.eps_3] == pytest.approx(r.eps, abs=1e-12)
        assert row.gain == pytest.approx((r.eps[0] - min(r.eps)) / r.eps[0], abs=1e-12)

    marker = len(runs(log))
    again = run_sweep(spec, client=client)
    assert (again.stored_before, again.computed) == (24, 0)
    assert len(runs(log)) == marker  # nothing recomputed

    bigger = theory_spec(tmp_path / "s.sqlite", np.geomspace(0.5, 8, 6), thetas=(0.1, 0.2, 0.3), labels=["hard", "soft"])
    grown = run_sweep(bigger, client=client)
    assert (grown.stored_before, grown.computed) == (24, 12)
    assert sorted(runs(log)[marker:]) == sorted(point_id(p) for p in bigger.points if p["theta"] == 0.2)


def test_optimize_chain_stores_the_gain_of_optimal_sd_over_optimal_0sd(cluster, tmp_path):
    client, _ = cluster
    spec = from_dict({"kind": "optimize", "store": str(tmp_path / "o.sqlite"), "chain": 2,
                      "axes": {"alpha": [0.5, 2.0], "theta": 0.3, "stages": 2, "labels": "hard"},
                      "job": {"restarts": 0}})
    assert run_sweep(spec, client=client).computed == 2
    df = stored(spec.store).sort_values("alpha")
    first = df.iloc[0]  # the chain's first point has no warm start: the same search as a direct call
    res = sdgmm.optimize(sdgmm.Problem(0.5, 0.5, rho=0.5, theta=0.3), max_stages=2, labels="hard", restarts=0)
    assert first.eps_0sd == pytest.approx(res.optima[0].eps_final, abs=1e-9)
    assert first.eps_best == pytest.approx(res.best.eps_final, abs=1e-9)
    assert first.best_n_stages == res.best_n_stages
    for row in df.itertuples():
        assert row.gain == pytest.approx((row.eps_0sd - row.eps_best) / row.eps_0sd)
        assert row.gain > 0.01 and row.failure == ""


def test_imbalanced_optimize_chain_warm_starts_each_point_from_the_last(cluster, tmp_path):
    # rho = 0.3: the optimal lam_1 is finite, so each point's search starts from the previous alpha's optimum.
    # The adapter once passed log10(lam_1) where optimize expects lam: every point after the first failed with
    # "lam of stage 1 must be > 0 (got -nan)" (balanced grids hid it, the limit search overwrote the start).
    client, _ = cluster
    alphas = [0.5, 1.0, 2.0, 4.0]
    spec = from_dict({"kind": "optimize", "store": str(tmp_path / "i.sqlite"), "chain": 4,
                      "axes": {"alpha": alphas, "rho": 0.3, "theta": 0.2, "stages": 1},
                      "job": {"restarts": 0, "early_stopping": False}})
    summary = run_sweep(spec, client=client)
    assert (summary.computed, summary.errors) == (4, [])
    df = stored(spec.store).sort_values("alpha")
    assert (df["failure"] == "").all()
    chained = sdgmm.curve(alphas, rho=0.3, theta=0.2, stage_counts=[1], restarts=0)  # the same continuation
    for row, (_, ref) in zip(df.itertuples(), chained.iterrows()):
        direct = sdgmm.optimize(sdgmm.Problem(row.alpha, rho=0.3, theta=0.2), n_stages=1, restarts=0).optima[0]
        assert 0 < row.lam_1_of_T1 < 10 and row.eps_0sd == pytest.approx(direct.eps_final, abs=1e-7)
        assert row.eps_0sd == pytest.approx(ref["eps"], abs=1e-12)
        assert row.lam_1_of_T1 == pytest.approx(ref["lam_1"], rel=1e-12)


def test_a_worker_killed_mid_sweep_does_not_lose_points(cluster, tmp_path):
    client, _ = cluster
    spec = theory_spec(tmp_path / "k.sqlite", np.geomspace(0.5, 8, 10), thetas=(0.1, 0.2, 0.3))
    victim = next(iter(client.run(os.getpid).values()))
    killed = []

    def kill_once(n):
        if n == 3 and not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(n)

    s = run_sweep(spec, client=client, on_stored=kill_once)
    assert killed and victim not in client.run(os.getpid).values()
    assert (s.computed, s.errors) == (30, [])
    df = stored(spec.store)
    assert len(df) == 30 and df["point_id"].is_unique
    assert set(df["point_id"]) == {point_id(p) for p in spec.points}


def test_status_export_and_plot_from_the_command_line(cluster, tmp_path, capsys):
    client, _ = cluster
    spec = theory_spec(tmp_path / "p.sqlite", np.geomspace(0.5, 8, 4), thetas=(0.1, 0.2, 0.3))
    run_sweep(spec, client=client)
    code, out, _ = run(["sweep", "status", spec.store], capsys)
    assert code == 0 and "done:    12/12" in out and "missing: 0" in out
    csv = tmp_path / "r.csv"
    code, _, _ = run(["sweep", "export", spec.store, "--csv", str(csv)], capsys)
    df = pd.read_csv(csv)
    assert code == 0 and len(df) == 12 and {"alpha", "theta", "eps_3", "gain", "engine"} <= set(df.columns)
    png = tmp_path / "gain.png"
    code, _, err = run(["sweep", "plot", spec.store, "--value", "gain", "--contour", "--annotate", "best_stage",
                        "--out", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(["sweep", "plot", spec.store, "--value", "nonsense", "--out", str(tmp_path / "n.png")], capsys)
    assert code == 2 and "column 'nonsense'" in err and not (tmp_path / "n.png").exists()
    parquet = tmp_path / "r.parquet"
    code, _, err = run(["sweep", "export", spec.store, "--parquet", str(parquet)], capsys)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert code == 2 and "--parquet needs pyarrow" in err and not parquet.exists()
    else:
        assert code == 0 and pd.read_parquet(parquet).equals(pd.read_csv(csv))


def test_simulate_points_equal_direct_simulations(cluster, tmp_path):
    client, _ = cluster
    spec = from_dict({"kind": "simulate", "store": str(tmp_path / "m.sqlite"),
                      "axes": {"alpha": [1.0, 2.0], "labels": "soft"},
                      "job": {"lam": [1.0, 0.5], "beta": 2.0, "N": 200, "trials": 2, "seed": 3}})
    assert run_sweep(spec, client=client).computed == 2
    for row in stored(spec.store).itertuples():
        sim = sdgmm.simulate(sdgmm.Problem(row.alpha, 0.5, rho=0.5, theta=0.3),
                             sdgmm.make_stages([1.0, 0.5], [2.0]), N=200, trials=2, seed=3)
        assert [row.eps_1, row.eps_2] == pytest.approx(sim.eps, abs=1e-12)
        assert [row.eps_se_1, row.eps_se_2] == pytest.approx(sim.eps_se, abs=1e-12)
