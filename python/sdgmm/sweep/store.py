"""The result store: one SQLite file (WAL), one row per finished point, written by the client alone.

A row's key hashes the point's full spec together with the engine version, so a rebuilt engine
recomputes everything while old rows stay readable. Each row is its own transaction and inserts
are INSERT OR IGNORE: a killed client leaves whole rows only, and re-runs never duplicate one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,       -- hash of point_id and engine
    point_id TEXT NOT NULL,     -- hash of the point's full spec
    engine TEXT NOT NULL,
    point TEXT NOT NULL,        -- the point's spec, JSON
    result TEXT NOT NULL,       -- the job's output, JSON
    seconds REAL NOT NULL,
    worker TEXT NOT NULL,
    finished REAL NOT NULL      -- unix time
);
CREATE INDEX IF NOT EXISTS points_by_id ON points (point_id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def row_key(pid: str, engine: str) -> str:
    return hashlib.sha256(f"{pid}|{engine}".encode()).hexdigest()[:32]


def check_writable(path: str) -> None:
    """Fail before any work if the store could not be created at `path` (creates nothing)."""
    if os.path.isdir(path):
        raise ValueError(f"store {path!r} is a directory, not a file name")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ValueError(f"store {path!r}: permission denied")
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(parent):  # missing directories are created with the store
        if os.path.exists(parent):
            raise ValueError(f"store {path!r}: {parent!r} is not a directory")
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        raise ValueError(f"store {path!r}: cannot create files in {parent!r}")


class Store:
    def __init__(self, path: str, create: bool = False):
        if create:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        else:  # reading must not create an empty store by mistake
            if not os.path.isfile(path):
                raise ValueError(f"store {path!r}: no such file (run 'sdgmm sweep run' first)")
            self.db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=60)
        self.db.execute("PRAGMA synchronous=FULL")
        self.path = path

    def close(self) -> None:
        self.db.close()

    def set_spec(self, spec: dict) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", (json.dumps(spec),))

    def spec(self) -> dict | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = 'spec'").fetchone()
        return json.loads(row[0]) if row else None

    def existing(self, keys) -> set:
        keys = list(keys)
        found = set()
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            sql = f"SELECT key FROM points WHERE key IN ({','.join('?' * len(part))})"
            found.update(k for (k,) in self.db.execute(sql, part))
        return found

    def output(self, key: str) -> dict:
        """A stored point's output, as the task returned it (the warm start of the next point in its chain)."""
        result, seconds, engine, worker = self.db.execute(
            "SELECT result, seconds, engine, worker FROM points WHERE key = ?", (key,)).fetchone()
        return {"result": json.loads(result), "seconds": seconds, "engine": engine, "worker": worker}

    def add(self, pid: str, point: dict, output: dict) -> bool:
        """Store one finished point in its own transaction; False if it was already there."""
        engine = output["engine"]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row_key(pid, engine), pid, engine, json.dumps(point, sort_keys=True), json.dumps(output["result"]),
                 output["seconds"], output["worker"], time.time()))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return cur.rowcount == 1

    def rows(self, point_ids=None) -> list:
        """Rows as dicts, the newest first; only those of `point_ids` when given."""
        rows = self.db.execute("SELECT point_id, engine, point, result, seconds, worker, finished FROM points "
                               "ORDER BY finished DESC").fetchall()
        wanted = None if point_ids is None else set(point_ids)
        return [{"point_id": r[0], "engine": r[1], "point": json.loads(r[2]), "result": json.loads(r[3]),
                 "seconds": r[4], "worker": r[5], "finished": r[6]}
                for r in rows if wanted is None or r[0] in wanted]
