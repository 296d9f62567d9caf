"""Typed feature storage (workbench.ingest.typed) and the CSV line numbers after blank lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from workbench.ingest import ingest, rejects, typed
from workbench.ingest.lines import read_numbered
from workbench.store import Workspace

HEAD = "decision_id,ts,system_id,model_version,principal,prediction,score,features.income,features.purpose"


def _row(i: int, income: str | None = None, ts: str = "2026-10-01T10:00:00Z") -> str:
    return f"c{i},{ts},loan,1,p,approve,0.5,{income or 1000 + i},car"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _rec(i: int, system: str = "loan", **features: object) -> dict:
    return {"decision_id": f"d{i}", "ts": "2026-10-01T10:00:00Z", "system_id": system, "model_version": "1",
            "principal": "p", "prediction": "approve", "score": 0.5, "features": features}


def _typed_values(ws: Workspace, system: str, types: dict[str, str]) -> dict[str, tuple]:
    rel, items, params = typed.relation(ws.con, system, types)
    return {r[0]: tuple(r[1:]) for r in ws.rows(f"SELECT decision_id, {', '.join(items)} FROM {rel}", params)}


def test_csv_line_numbers_count_blank_lines(ws: Workspace, admin, tmp_path: Path) -> None:
    """DuckDB's CSV reader skips blank lines without counting them: numbers and raw text must still be right."""
    lines = [HEAD, _row(1), "", _row(2), "", "", _row(3, ts="someday"), _row(4), "", _row(5, income="lots"),
             _row(6), *(_row(i) for i in range(7, 40))]  # income stays a number column (>= 95% numbers)
    f = tmp_path / "blank.csv"
    f.write_text("\n".join(lines) + "\n")
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.rows_loaded, r.rows_quarantined) == (None, 37, 2)
    got = dict(ws.rows("SELECT decision_id, source_line FROM decisions WHERE source_line <= 12"))
    assert got == {"c1": 2, "c2": 4, "c4": 8, "c6": 11, "c7": 12}
    q = {row["line"]: row for row in rejects(ws, admin)}
    assert sorted(q) == [7, 10]
    assert q[7]["raw"] == _row(3, ts="someday") and q[10]["raw"] == _row(5, income="lots")
    assert q[7]["raw_sha256"] == hashlib.sha256(_row(3, ts="someday").encode()).hexdigest()


def test_csv_blank_lines_found_without_the_background_hash(ws: Workspace, admin, tmp_path: Path) -> None:
    """A file of a size already seen is hashed up front (no background pass): blank lines are still counted."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("\n".join([HEAD, _row(1), "", _row(2, ts="never")]) + "\n")
    b.write_text("\n".join([HEAD, _row(1), "", _row(3, ts="nevvr")]) + "\n")  # the same size
    ingest(ws, admin, [a])
    (r,) = ingest(ws, admin, [b])
    (q,) = [row for row in rejects(ws, admin) if row["source_id"] == r.source_id]
    assert q["line"] == 4 and q["raw"] == _row(3, ts="nevvr")


def test_read_numbered_reads_lines_by_number(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_bytes(b"a\nbb\r\n\nccc")
    assert read_numbered(f, [2, 3, 4, 9], 10) == {
        2: ("bb", 2, hashlib.sha256(b"bb").hexdigest()), 3: ("", 0, hashlib.sha256(b"").hexdigest()),
        4: ("ccc", 3, hashlib.sha256(b"ccc").hexdigest())}


def test_typed_table_created_widened_and_recorded(ws: Workspace, admin, tmp_path: Path) -> None:
    ingest(ws, admin, [_jsonl(tmp_path / "a.jsonl", [_rec(1, income=5, purpose="car"),
                                                      _rec(2, income=6, purpose="boat")])])
    (table,) = ws.rows("SELECT table_name FROM feature_tables WHERE system_id = 'loan'")[0]
    assert table == "features_1"
    assert ws.rows("SELECT feature, col, type FROM feature_columns ORDER BY col") == [
        ("income", "c1", "number"), ("purpose", "c2", "string")]
    cols = {r[0]: r[1] for r in ws.rows("DESCRIBE features_1")}
    assert cols["c1"] == "DOUBLE" and cols["c2"] == "VARCHAR"
    # a new feature later: the table is widened, the old rows keep NULL in it
    ingest(ws, admin, [_jsonl(tmp_path / "b.jsonl", [_rec(3, income=7, purpose="car", cosigner=True)])])
    assert ws.rows("SELECT feature, col, type, added_source FROM feature_columns WHERE feature = 'cosigner'") == [
        ("cosigner", "c3", "bool", 2)]
    assert _typed_values(ws, "loan", {"income": "number", "purpose": "string", "cosigner": "bool"}) == {
        "d1": (5.0, "car", None), "d2": (6.0, "boat", None), "d3": (7.0, "car", True)}
    assert ws.scalar("SELECT sum(rows) FROM typed_sources") == 3


def test_value_of_another_type_goes_to_overflow(ws: Workspace, admin, tmp_path: Path) -> None:
    ingest(ws, admin, [_jsonl(tmp_path / "a.jsonl", [_rec(1, income=5), _rec(2, income="lots"),
                                                      _rec(3, income=None)])])
    assert dict(ws.rows("SELECT source_line, overflow::VARCHAR FROM features_1")) == {
        1: None, 2: '{"income":"lots"}', 3: None}
    assert _typed_values(ws, "loan", {"income": "number"}) == {"d1": (5.0,), "d2": (None,), "d3": (None,)}
    # read as text, the overflow value is still there
    assert _typed_values(ws, "loan", {"income": "string"})["d2"] == ("lots",)


def test_hostile_feature_names_never_become_sql(ws: Workspace, admin, tmp_path: Path) -> None:
    names = {'x"; DROP TABLE decisions; --': 1, "Income": 2, "income": 3, "a.b": 4, "$[0]": 5, "/~": 6}
    ingest(ws, admin, [_jsonl(tmp_path / "a.jsonl", [_rec(1, **names)])])
    assert ws.table_exists("decisions")
    cols = [r[0] for r in ws.rows("DESCRIBE features_1")]
    assert cols == ["source_id", "source_line", "overflow", "c1", "c2", "c3", "c4", "c5", "c6"]
    got = _typed_values(ws, "loan", dict.fromkeys(names, "number"))
    assert got == {"d1": tuple(float(v) for v in names.values())}


def test_rows_without_a_typed_row_are_read_from_json(ws: Workspace, admin, tmp_path: Path) -> None:
    ingest(ws, admin, [_jsonl(tmp_path / "a.jsonl", [_rec(1, income=5)])])
    ws.execute("INSERT INTO decisions (system_id, decision_id, ts, features, source_id, source_line) "
               "VALUES ('loan', 'x1', now(), '{\"income\": 8}', 99, 0)")
    assert _typed_values(ws, "loan", {"income": "number"}) == {"d1": (5.0,), "x1": (8.0,)}


def test_csv_features_typed_per_system(ws: Workspace, admin, tmp_path: Path) -> None:
    f = tmp_path / "two.csv"
    f.write_text("\n".join([HEAD, _row(1), _row(2).replace(",loan,", ",fraud,")]) + "\n")
    ingest(ws, admin, [f])
    assert dict(ws.rows("SELECT system_id, table_name FROM feature_tables")) == {"fraud": "features_1",
                                                                                 "loan": "features_2"}
    assert _typed_values(ws, "fraud", {"income": "number", "purpose": "string"}) == {"c2": (1002.0, "car")}
