"""A crash-safe sqlite cache for judge verdicts and revisions.

WAL journal, one row per key, written as soon as a result arrives: a run killed at any point
keeps everything it finished, and the next run asks only for what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
        # processes that open a new cache together (the ranks of a data-parallel run) race to switch it
        # to WAL, and SQLite answers the loser "database is locked" at once, without waiting for the
        # busy timeout: try again until the timeout has passed
        deadline = time.monotonic() + 60
        while True:
            try:
                self._create()
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _create(self) -> None:
        con = self._con()
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            con.execute("PRAGMA journal_mode=WAL")
        with con:
            for table in TABLES:
                # the time is written by Python: SQLite's unixepoch('subsec') needs 3.42 (NULL before)
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)")
            con.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, beat REAL NOT NULL)")

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


def several_processes() -> bool:
    """Whether this process is one of several of a run (torchrun and accelerate set WORLD_SIZE):
    they share one cache, and :class:`Claims` keeps them from sending the same request twice."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def _owner_alive(owner: str) -> bool:
    """A claim's owner is alive unless it ran on this machine and its process is gone (a killed
    rank's claims lapse at once for a re-run here; elsewhere its heartbeat decides)."""
    host, _, rest = owner.partition("|")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(rest.split("|")[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class Claims:
    """Requests that several processes sharing one cache would each send (the ranks of a
    data-parallel run, given equal documents): the first process to claim a key sends it, the
    others wait for its row in ``table`` and read it from there.

    A claim lives while its owner does: the owner beats every ``stale_s / 4`` seconds while it
    holds claims, and a claim whose beat is older than ``stale_s``, or whose owner process is gone
    from this machine, is taken over. A claim released without a row (the request failed, and
    only what succeeded is cached) is taken over too, so a failed request is asked again rather
    than lost. Every process therefore ends with a result for every key it asked for."""

    def __init__(self, cache: Cache, table: str, stale_s: float = 60.0, poll_s: float = 0.1):
        self.cache, self.table, self.stale_s, self.poll_s = cache, table, stale_s, poll_s
        self.owner = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:12]}"

    def _key(self, key: str) -> str:
        return f"{self.table}:{key}"

    def take(self, keys: Sequence[str]) -> set[str]:
        """Claim ``keys``; returns those this process now owns (the others are claimed by a live owner)."""
        con = self.cache._con()
        now = time.time()
        with con:
            for key in keys:
                row = con.execute("SELECT owner, beat FROM claims WHERE key = ?", (self._key(key),)).fetchone()
                if row is not None and row[0] != self.owner and (row[1] < now - self.stale_s or not _owner_alive(row[0])):
                    con.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (self._key(key), row[0]))
                con.execute("INSERT OR IGNORE INTO claims (key, owner, beat) VALUES (?, ?, ?)",
                            (self._key(key), self.owner, now))
        return {k for k in keys if self._owner_of(k) == self.owner}

    def _owner_of(self, key: str) -> str | None:
        row = self.cache._con().execute("SELECT owner, beat FROM claims WHERE key = ?", (self._key(key),)).fetchone()
        if row is None or row[1] < time.time() - self.stale_s or not _owner_alive(row[0]):
            return None
        return row[0]

    def release(self, keys: Sequence[str]) -> None:
        con = self.cache._con()
        with con:
            con.executemany("DELETE FROM claims WHERE key = ? AND owner = ?", [(self._key(k), self.owner) for k in keys])

    @contextmanager
    def holding(self) -> Iterator[Claims]:
        """Beat while the block runs, and release whatever is still held when it ends (or fails)."""
        stop = threading.Event()

        def beat() -> None:
            con = sqlite3.connect(self.cache.path, timeout=60)
            try:
                while not stop.wait(self.stale_s / 4):
                    with con:
                        con.execute("UPDATE claims SET beat = ? WHERE owner = ?", (time.time(), self.owner))
            finally:
                con.close()

        thread = threading.Thread(target=beat, daemon=True, name="cnr-claims-heartbeat")
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            con = self.cache._con()
            with con:
                con.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    def share(self, keys: Sequence[str], send: Callable[[list[str]], None],
              lookup: Callable[[str], Any]) -> dict[str, Any]:
        """Send (``send``) the keys this process claims first; wait for the others' rows (``lookup``
        reads one from the cache, ``None`` while it is missing) and take over those whose claim
        ended without one. Returns ``{key: value}`` for the keys read from other processes' rows."""
        read: dict[str, Any] = {}
        pending = list(keys)
        with self.holding():
            while pending:
                mine = self.take(pending)
                send([k for k in pending if k in mine])
                self.release(list(mine))
                got, pending = self.wait([k for k in pending if k not in mine], lookup)
                read.update(got)
        return read

    def wait(self, keys: Sequence[str], lookup: Callable[[str], Any]) -> tuple[dict[str, Any], list[str]]:
        """Wait for the rows of keys other processes claimed: returns ``{key: value}`` for those that
        arrived and the keys whose claim ended without one (take them over: :meth:`take`)."""
        found: dict[str, Any] = {}
        orphans: list[str] = []
        pending = list(keys)
        while pending:
            still = []
            for key in pending:
                value = lookup(key)
                if value is None and self._owner_of(key) in (None, self.owner):
                    value = lookup(key)  # the owner writes the row before it lets go of the claim
                    if value is None:
                        orphans.append(key)
                        continue
                if value is not None:
                    found[key] = value
                else:
                    still.append(key)
            pending = still
            if pending:
                time.sleep(self.poll_s)
        return found, orphans
