"""Open a workspace file, migrate its schema, and run SQL with a cursor per thread."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from workbench import settings
from workbench.errors import WorkbenchError, WorkspaceBusy

# A shared handle used outside any hold (e.g. an app fragment) closes the file after this long without use.
IDLE_SECONDS = 1.0

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """All schema migrations shipped with the package, as (version, name, sql), in order."""
    found = []
    for entry in resources.files("workbench.store").joinpath("migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


class Workspace:
    """A workspace: one DuckDB file holding decisions, metrics, custody, alerts, cases and the audit chain."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection | None, read_only: bool, *,
                 keep_open: bool = True, config: dict[str, str] | None = None) -> None:
        self.path = path
        self.read_only = read_only
        self.keep_open = keep_open
        self._con = con
        self._config = dict(config or {})
        self._gen = 0  # bumped each time the file is closed: cursors of an older generation are stale
        self._holds = 0
        self._last_use = time.monotonic()
        self._timer: threading.Timer | None = None
        self._local = threading.local()
        self._lock = threading.RLock()

    # -- connections -------------------------------------------------------
    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The open connection (a shared handle opens the file on demand); call with self._lock held."""
        if self._con is None:
            if self.keep_open:
                raise WorkbenchError(f"the workspace {self.path} is closed")
            self._con = _connect(self.path, self.read_only, self._config)
            self._gen += 1
        self._last_use = time.monotonic()
        return self._con

    @property
    def is_open(self) -> bool:
        """Whether this process holds the workspace file open right now."""
        return self._con is not None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the workspace (DuckDB connections are not shared across threads)."""
        with self._lock:
            parent = self._connection()
            cur = getattr(self._local, "cur", None)
            if cur is None or getattr(self._local, "gen", None) != self._gen:
                cur = parent.cursor()
                _configure(cur)
                self._local.cur, self._local.gen = cur, self._gen
            if not self.keep_open and not self._holds:
                self._arm_idle()
        return cur

    @contextmanager
    def hold(self) -> Iterator[Workspace]:
        """Keep the file open for a unit of work; a shared handle (keep_open=False) closes it when the last
        hold ends, so other processes (the app, the CLI, a notebook) can open it in between."""
        with self._lock:
            self._holds += 1
        try:
            with self._lock:
                self._connection()
            yield self
        finally:
            with self._lock:
                self._holds -= 1
                if not self._holds and not self.keep_open:
                    self._close_file()

    def release(self) -> None:
        """Close the file now if no hold is active (a shared handle reopens it on the next use)."""
        with self._lock:
            if not self._holds:
                self._close_file()

    def _close_file(self) -> None:
        if self._con is not None:
            self._con.close()  # closes every cursor made from it and releases the file lock
            self._con = None
            self._gen += 1

    def _arm_idle(self) -> None:
        """Use outside any hold: close the file after IDLE_SECONDS without use (e.g. an app fragment rerun)."""
        if self._timer is None:
            self._timer = threading.Timer(IDLE_SECONDS, self._idle_check)
            self._timer.daemon = True
            self._timer.start()

    def _idle_check(self) -> None:
        with self._lock:
            self._timer = None
            if self._con is None or self._holds:
                return
            if time.monotonic() - self._last_use < IDLE_SECONDS:
                self._arm_idle()
                return
            self._close_file()

    def close(self) -> None:
        """Close the workspace file."""
        with self._lock:
            self._close_file()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running SQL ---------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | dict | None = None) -> duckdb.DuckDBPyConnection:
        """Run one statement on this thread's cursor and return it for fetching."""
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def rows(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        """Run a query and return all rows as tuples."""
        with self.hold():
            return self.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        """Run a query and return its first row, or None."""
        with self.hold():
            return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """Run a query and return the first column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else row[0]

    def df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        """Run a query and return a pandas DataFrame (keep results small: aggregate in SQL first)."""
        with self.hold():
            return self.execute(sql, params).df()

    def dicts(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[dict[str, Any]]:
        """Run a query and return rows as dictionaries keyed by column name."""
        with self.hold():
            cur = self.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def named(self, name: str, params: Sequence[Any] | dict | None = None) -> duckdb.DuckDBPyConnection:
        """Run a named query from workbench/store/sql/ (see workbench.store.queries)."""
        # imported here: moving this file's imports to the top forms an import cycle
        from workbench.store import queries

        return self.execute(queries.get(name).sql, params)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of its own, with the session settings (close it when done)."""
        with self._lock:
            cur = self._connection().cursor()
            if not self.keep_open and not self._holds:
                self._arm_idle()
        _configure(cur)
        return cur

    def limited(
        self, sql: str, params: Sequence[Any] | dict | None = None, *, timeout: float, max_rows: int,
        memory: int | None = None,
    ) -> tuple[list[str], list[tuple], bool]:
        """Run a read with a time limit, a row cap and an optional memory allowance in bytes, on a cursor of its
        own inside a rolled-back transaction: (columns, rows, truncated). See workbench.store.limits."""
        # imported here: moving this file's imports to the top forms an import cycle
        from workbench.store.limits import run_limited

        with self.hold():
            cur = self.cursor()
            try:
                return run_limited(cur, sql, params, timeout=timeout, max_rows=max_rows, memory=memory)
            finally:
                cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of work: everything inside commits together or not at all."""
        with self.hold():
            cur = self.con
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")

    # -- schema ----------------------------------------------------------------
    def schema_version(self) -> int:
        """The newest migration applied to this workspace."""
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations") or 0)

    def migrate(self) -> list[int]:
        """Apply every migration this workspace lacks, each in its own transaction; return those applied."""
        self.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations("
            "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        have = {r[0] for r in self.rows("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in migrations():
            if version in have:
                continue
            with self.transaction() as cur:
                cur.execute(sql)  # DuckDB runs every statement of the file
                cur.execute("INSERT INTO schema_migrations(version, name) VALUES (?, ?)", [version, name])
            applied.append(version)
        return applied

    def table_exists(self, name: str) -> bool:
        """Whether a table or view of that name exists in the workspace."""
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
                [name],
            )
        )


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    """Session settings every cursor needs: UTC everywhere, and the configured resource limits."""
    con.execute("SET TimeZone = 'UTC'")


def _lock_conflict(exc: BaseException) -> bool:
    """Whether a DuckDB open failed because another process holds the file."""
    msg = str(exc).lower()
    return isinstance(exc, duckdb.IOException) and ("lock" in msg or "another process" in msg)


def _connect(target: Path, read_only: bool, config: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying with backoff (up to WORKBENCH_LOCK_WAIT seconds) while another process holds it."""
    budget = float(settings.get("lock_wait") or 0)
    deadline = time.monotonic() + budget
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(target), read_only=read_only, config=config)
            break
        except duckdb.IOException as exc:
            msg = str(exc).splitlines()[0]
            if not _lock_conflict(exc):
                raise WorkbenchError(f"cannot open workspace {target}: {msg}") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkspaceBusy(
                    f"{target} is busy in another process (the app, a command or a notebook) and stayed busy for "
                    f"{budget:g}s; try again, or raise WORKBENCH_LOCK_WAIT"
                ) from exc
            time.sleep(min(left, delay * (0.5 + random.random())))
            delay = min(delay * 2, 0.5)
        except duckdb.Error as exc:
            raise WorkbenchError(f"cannot open workspace {target}: {str(exc).splitlines()[0]}") from exc
    if not read_only:
        # A bulk load leaves some row groups part-filled; merging them at a later checkpoint rewrites millions
        # of rows (seconds per 5M decisions) at a random moment for a few percent of scan speed. Not worth it.
        con.execute("SET max_vacuum_tasks = 0")
    return con


def open_workspace(path: str | Path | None = None, *, read_only: bool = False, create: bool = True,
                   keep_open: bool = True) -> Workspace:
    """Open (and create or migrate) the workspace at path, WORKBENCH_DB, or ./workbench.duckdb.

    keep_open=False returns a shared handle: the file is open only while a call (or `with ws.hold():`) runs,
    so the app, the CLI and notebooks can take turns on it. Opening waits up to WORKBENCH_LOCK_WAIT seconds
    while another process holds the file, then raises WorkspaceBusy."""
    target = settings.db_path(path)
    if not create and not target.exists():
        raise WorkbenchError(f"no workspace at {target}: run `workbench demo` or `workbench ingest` first")
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str] = {}
    if settings.get("memory_limit"):
        config["memory_limit"] = settings.get("memory_limit")
    if settings.get("threads"):
        config["threads"] = settings.get("threads")
    con = _connect(target, read_only, config)
    ws = Workspace(target, con, read_only, keep_open=keep_open, config=config)
    if not read_only:
        with ws.hold():
            ws.migrate()
            undo_interrupted_loads(ws)
    elif not keep_open:
        ws.release()
    return ws


def undo_interrupted_loads(ws: Workspace, source_ids: list[int] | None = None) -> list[int]:
    """Remove files whose load was cut off between its bulk and settling passes (all, or these); return their ids."""
    if not ws.table_exists("ingest_pending"):
        return []
    pending = [p for p in ws.rows("SELECT source_id, path, actor, role FROM ingest_pending ORDER BY source_id")
               if source_ids is None or p[0] in source_ids]
    if not pending:
        return []
    from workbench import audit  # audit builds on the store: import on the rare path only

    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.access import Principal

    for source_id, path, user, role in pending:
        with ws.transaction() as cur:
            removed = cur.execute("DELETE FROM decisions WHERE source_id = ?", [source_id]).fetchone()[0]
            for table in ("quarantine", "sources", "ingest_pending"):
                cur.execute(f"DELETE FROM {table} WHERE source_id = ?", [source_id])
            audit.record(ws, Principal(user, "system"), "ingest.undone", path,
                         {"source_id": source_id, "rows_removed": removed, "started_by_role": role,
                          "reason": "the load was interrupted before it settled"})
    return [p[0] for p in pending]
