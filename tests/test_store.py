"""The workspace file: migrations, schema version, one execute with limits, busy files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from workbench.errors import WorkbenchError
from workbench.store import open_workspace
from workbench.store.workspace import migrations


def test_migrations_numbered_and_applied_once(tmp_path: Path) -> None:
    found = migrations()
    assert [v for v, _, _ in found] == sorted({v for v, _, _ in found}) and found[0][0] == 1
    ws = open_workspace(tmp_path / "w.duckdb")
    assert ws.schema_version() == found[-1][0]
    assert ws.migrate() == []
    ws.close()


def test_older_workspace_is_migrated_on_open(tmp_path: Path) -> None:
    """A workspace made by an older version (only migration 001) opens and gains the newer tables."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    version, name, sql = migrations()[0]
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations(version, name) VALUES (?, ?)", [version, name])
    con.execute("INSERT INTO workspace_meta(key, value) VALUES ('kept', '1')")
    con.close()
    ws = open_workspace(path)
    assert ws.schema_version() == migrations()[-1][0]
    assert ws.scalar("SELECT value FROM workspace_meta WHERE key = 'kept'") == "1"
    ws.close()


def test_limited_caps_rows_and_time(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "w.duckdb")
    cols, rows, truncated = ws.limited("SELECT range AS n FROM range(100)", timeout=5, max_rows=10)
    assert cols == ["n"] and len(rows) == 10 and truncated
    with pytest.raises(WorkbenchError, match="time limit"):
        ws.limited("SELECT count(*) FROM range(100000000000) a", timeout=0.5, max_rows=10)
    ws.close()


def test_missing_workspace_without_create(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="no workspace"):
        open_workspace(tmp_path / "nope.duckdb", create=False)


def test_utc_session(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "w.duckdb")
    assert ws.scalar("SELECT current_setting('TimeZone')") == "UTC"
    ws.close()
