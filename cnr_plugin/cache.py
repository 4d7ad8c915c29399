"""A crash-safe sqlite cache for judge verdicts and revisions.

WAL journal, one row per key, written as soon as a result arrives: a run killed at any point
keeps everything it finished, and the next run asks only for what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TABLES = ("judge", "revision", "batch")


def default_cache_path() -> Path:
    base = os.environ.get("CNR_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnr-plugin"
    return Path(base) / "cache.sqlite"


def make_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Cache:
    """Key-value rows in named tables; values are JSON.

    ``judge``: verdicts that parsed, by everything the judge reads; ``revision``: generations, by
    everything the generator reads (model identity, decoding settings, request); ``batch``: the
    batch a batch-mode judge submitted and has not read back yet (by the set of verdicts it asks).
    Only what succeeded is written, so a re-run asks again for what failed.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.hits = 0
        self.misses = 0
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")
        for table in TABLES:
            # the time is written by Python: SQLite's unixepoch('subsec') needs 3.42 (NULL before)
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)")
        con.commit()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=60)
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def get(self, table: str, key: str) -> Any | None:
        row = self._con().execute(f"SELECT value FROM {table} WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, table: str, key: str, value: Any) -> None:
        con = self._con()
        con.execute(f"INSERT OR REPLACE INTO {table} (key, value, created) VALUES (?, ?, ?)",
                    (key, json.dumps(value), time.time()))
        con.commit()

    def write(self, puts: Sequence[tuple[str, str, Any]], deletes: Sequence[tuple[str, str]] = ()) -> None:
        """Rows ``(table, key, value)`` written and rows ``(table, key)`` deleted in one transaction: all of it
        is there after a kill, or none of it (a batch's verdicts and the end of its batch id, together)."""
        con = self._con()
        now = time.time()
        with con:
            for table, key, value in puts:
                con.execute(f"INSERT OR REPLACE INTO {table} (key, value, created) VALUES (?, ?, ?)",
                            (key, json.dumps(value), now))
            for table, key in deletes:
                con.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

    def delete(self, table: str, key: str) -> None:
        con = self._con()
        con.execute(f"DELETE FROM {table} WHERE key = ?", (key,))
        con.commit()

    def count(self, table: str) -> int:
        return self._con().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
