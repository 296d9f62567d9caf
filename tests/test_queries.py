"""Every named query has its metadata and binds against a freshly migrated workspace."""

from __future__ import annotations

from datetime import UTC, datetime

from workbench.store import Workspace, queries


def test_named_queries_have_metadata_and_run(ws: Workspace) -> None:
    found = queries.all_queries()
    assert {"systems_summary", "decisions_per_day", "sources", "principal_volume", "metric_series"} <= set(found)
    sample = {"system_id": "s", "metric": "m", "since": datetime(2026, 1, 1, tzinfo=UTC),
              "until": datetime(2026, 2, 1, tzinfo=UTC), "bucket_seconds": 60}
    for name, q in found.items():
        assert q.name == name and q.description, f"{name}: missing name or description header"
        params = {p: sample[p] for p in q.params}
        for p in q.params:
            assert f"${p}" in q.sql, f"{name}: declares ${p} but does not use it"
        ws.execute(q.sql, params or None).fetchall()
