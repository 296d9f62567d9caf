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


HOSTILE_TEXT = ["x'); CREATE TABLE pwned(a INT); --", 'a"b"); DROP TABLE decisions; --', "'||'", "$.x", "a.b",
                "c[0]", "~/t", "back\\slash", "ünï €\u202e", "", "Income", "income", "line\nbreak", "nul\x00byte"]


def test_quoting_round_trips_any_text(ws: Workspace) -> None:
    from workbench.store.sqltext import quote_ident, quote_literal

    for text in HOSTILE_TEXT:
        assert ws.scalar(f"SELECT {quote_literal(text)}") == text
        if text:
            cur = ws.execute(f"SELECT 1 AS {quote_ident(text)}")
            assert cur.description[0][0] == text
    assert not ws.table_exists("pwned") and ws.table_exists("decisions")


def test_typed_json_fields_read_any_key(ws: Workspace) -> None:
    import json

    from workbench.store.sqltext import json_pointer, typed_json_fields

    assert json_pointer("a/b~c") == "/a~1b~0c"
    keys = [k for k in HOSTILE_TEXT if k]
    doc = json.dumps({k: i for i, k in enumerate(keys)} | {"flag": True, "word": "=x"})
    for names in ([k for k in keys if k != "Income"], keys):  # a struct (json_transform), then the pointer path
        types = {k: "number" for k in names} | {"flag": "bool", "word": "string", "missing": "number"}
        inner, items, param = typed_json_fields("j", types, "s")
        assert inner.startswith("json_transform" if "Income" not in names else "json_extract_string")
        row = ws.one(f"SELECT {', '.join(items)} FROM (SELECT {inner} AS s FROM (SELECT ?::JSON AS j))",
                     [param, doc])
        assert list(row) == [float(keys.index(k)) for k in names] + [True, "=x", None]
    assert not ws.table_exists("pwned")
