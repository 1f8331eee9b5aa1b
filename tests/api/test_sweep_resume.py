"""A sweep whose client is SIGKILLed midway resumes: every point stored once, finished ones not recomputed."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from sdgmm.sweep.spec import load, point_id
from sdgmm.sweep.task import TASK_LOG_ENV

SPEC = """\
kind = "theory"
store = "s.sqlite"
workers = 2
chain = 4
[axes]
alpha = {log = [0.3, 10, 20]}
theta = [0.1, 0.2, 0.3]
labels = "hard"
[job]
lam = [1.0, 0.5, 0.5]
"""


def stored_rows(path):
    if not os.path.exists(path):
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT point_id, finished FROM points").fetchall()
    except sqlite3.OperationalError:  # the client has not created the table yet
        return []
    finally:
        db.close()


@pytest.mark.slow  # 33 s alone on the 2-core machine
def test_sigkill_midway_then_rerun_computes_only_the_missing_points(tmp_path):
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(SPEC)
    spec = load(str(spec_path))
    everything = {point_id(p) for p in spec.points}
    log = tmp_path / "runs.log"
    env = {**os.environ, TASK_LOG_ENV: str(log)}
    cmd = [sys.executable, "-m", "sdgmm.cli", "sweep", "run", str(spec_path)]

    # Its own session, so that the local cluster's orphaned workers can be removed after the kill.
    client = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(stored_rows(spec.store)) < 12:
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < deadline, "the sweep stored nothing within 60 s"
        time.sleep(0.02)
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    try:
        os.killpg(client.pid, signal.SIGKILL)
    except ProcessLookupError:  # the workers already went with their client
        pass

    before = stored_rows(spec.store)
    done_before = {pid for pid, _ in before}
    assert 12 <= len(before) < len(everything), len(before)
    runs_before = log.read_text().split()

    rerun = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} stored before, {len(everything) - len(before)} computed now" in rerun.stdout

    after = stored_rows(spec.store)
    assert len(after) == len(everything) and {pid for pid, _ in after} == everything  # each point exactly once
    assert set(before) <= set(after)  # finished rows untouched
    new_runs = log.read_text().split()[len(runs_before):]
    assert not set(new_runs) & done_before  # finished points were not recomputed
    assert sorted(new_runs) == sorted(everything - done_before)
    print(f"\nkill/resume: {len(everything)} points, {len(before)} stored before the kill, {len(runs_before)} task "
          f"runs before it, {len(new_runs)} in the re-run, {len(after)} rows after")
    db = sqlite3.connect(spec.store)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
