"""Open a workspace file, migrate its schema, and run SQL with a cursor per thread."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from workbench import settings
from workbench.errors import WorkbenchError, WorkspaceBusy

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

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._con = con
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the workspace (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cur", None)
        if cur is None:
            with self._lock:
                cur = self._con.cursor()
            _configure(cur)
            self._local.cur = cur
        return cur

    def close(self) -> None:
        """Close the workspace file."""
        self._con.close()

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
        return self.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        """Run a query and return its first row, or None."""
        return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """Run a query and return the first column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else row[0]

    def df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        """Run a query and return a pandas DataFrame (keep results small: aggregate in SQL first)."""
        return self.execute(sql, params).df()

    def dicts(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[dict[str, Any]]:
        """Run a query and return rows as dictionaries keyed by column name."""
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def named(self, name: str, params: Sequence[Any] | dict | None = None) -> duckdb.DuckDBPyConnection:
        """Run a named query from workbench/store/sql/ (see workbench.store.queries)."""
        from workbench.store import queries

        return self.execute(queries.get(name).sql, params)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of its own, with the session settings (close it when done)."""
        with self._lock:
            cur = self._con.cursor()
        _configure(cur)
        return cur

    def limited(
        self, sql: str, params: Sequence[Any] | dict | None = None, *, timeout: float, max_rows: int,
        memory: int | None = None,
    ) -> tuple[list[str], list[tuple], bool]:
        """Run a read with a time limit, a row cap and an optional memory allowance in bytes, on a cursor of its
        own inside a rolled-back transaction: (columns, rows, truncated). See workbench.store.limits."""
        from workbench.store.limits import run_limited

        cur = self.cursor()
        try:
            return run_limited(cur, sql, params, timeout=timeout, max_rows=max_rows, memory=memory)
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of work: everything inside commits together or not at all."""
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


def open_workspace(path: str | Path | None = None, *, read_only: bool = False, create: bool = True) -> Workspace:
    """Open (and create or migrate) the workspace at path, WORKBENCH_DB, or ./workbench.duckdb."""
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
    try:
        con = duckdb.connect(str(target), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        msg = str(exc).splitlines()[0]
        if "lock" in msg.lower():
            raise WorkspaceBusy(
                f"{target} is open in another process (the app or another command); close it or use a copy"
            ) from exc
        raise WorkbenchError(f"cannot open workspace {target}: {msg}") from exc
    except duckdb.Error as exc:
        raise WorkbenchError(f"cannot open workspace {target}: {str(exc).splitlines()[0]}") from exc
    if not read_only:
        # A bulk load leaves some row groups part-filled; merging them at a later checkpoint rewrites millions
        # of rows (seconds per 5M decisions) at a random moment for a few percent of scan speed. Not worth it.
        con.execute("SET max_vacuum_tasks = 0")
    ws = Workspace(target, con, read_only)
    if not read_only:
        ws.migrate()
        undo_interrupted_loads(ws)
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
