"""'sdgmm sweep run --scheduler': a Dask scheduler and two workers started as separate processes."""

import socket
import subprocess
import sys

import pytest
from cli_helpers import run
from distributed import Client
from sdgmm.sweep.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler():
    """tcp address of a scheduler with two single-thread workers, each its own process (no nanny, so
    the worker column of the store names these very processes)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--no-dashboard"], **quiet)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                           "--no-dashboard"], **quiet))
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        yield address, {p.pid for p in procs[1:]}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_sweep_on_an_existing_scheduler(scheduler, tmp_path, capsys):
    address, worker_pids = scheduler
    store = tmp_path / "s.sqlite"
    args = ["sweep", "run", "--kind", "theory", "--alpha", "0.5:8:6", "--theta", "0.1,0.2,0.3", "--lam", "1,0.5,0.5",
            "--labels", "hard", "--store", str(store), "--scheduler", address]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "18 points; 0 stored before, 18 computed now" in out
    s = Store(str(store))
    rows = s.rows()
    s.close()
    assert len(rows) == 18 and len({r["point_id"] for r in rows}) == 18
    assert {int(r["worker"].rsplit(":", 1)[1]) for r in rows} == worker_pids  # both external workers computed
    code, out, _ = run(args, capsys)
    assert code == 0 and "18 stored before, 0 computed now" in out
