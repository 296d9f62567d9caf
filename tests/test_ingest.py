"""Ingest against real DuckDB files: formats, time zones, quarantine accounting, idempotency, custody."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from workbench.ingest import ingest, ingest_file, rejects, sources, verify_sources
from workbench.store import Workspace


def rec(i: int, **over: object) -> dict:
    """A valid canonical decision."""
    base = {
        "decision_id": f"d{i}", "ts": "2026-10-01T10:00:00Z", "system_id": "loan", "model_version": "2.0",
        "principal": "key-1", "prediction": "approve", "score": 0.25,
        "features": {"income": 50000 + i, "purpose": "car", "cosigner": False, "note": None},
    }
    base.update(over)
    return base


def write_jsonl(path: Path, records: list[object]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def accounting_holds(r) -> bool:
    return r.rows_read == r.rows_loaded + r.duplicates + r.rows_quarantined


def test_jsonl_loads_with_types_kept(ws: Workspace, admin, tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [rec(1, model_version=2.0), rec(2, extra_field={"k": [1, 2]})])
    (r,) = ingest(ws, admin, [f])
    assert r.error is None and r.rows_loaded == 2 and accounting_holds(r)
    rows = ws.dicts("SELECT decision_id, model_version, features, extra FROM decisions ORDER BY decision_id")
    assert rows[0]["model_version"] == "2.0"  # a number in JSON stays the text 2.0
    assert json.loads(rows[0]["features"]) == {"income": 50001, "purpose": "car", "cosigner": False, "note": None}
    assert json.loads(rows[1]["extra"]) == {"extra_field": {"k": [1, 2]}}  # unknown fields kept
    types = dict(ws.rows("SELECT feature, type FROM feature_catalog"))
    assert types == {"income": "number", "purpose": "string", "cosigner": "bool", "note": "string"}


@pytest.mark.parametrize(("ts", "expected"), [
    ("2026-10-01T10:00:00Z", "2026-10-01 10:00:00"),
    ("2026-10-01T12:00:00+02:00", "2026-10-01 10:00:00"),
    ("2026-10-01T05:30:00-04:30", "2026-10-01 10:00:00"),
    ("2026-10-01 10:00:00.123456Z", "2026-10-01 10:00:00.123456"),
    (1790330400000, "2026-09-25 10:00:00"),
    ("1790330400000", "2026-09-25 10:00:00"),
])
def test_timestamps_stored_as_utc(ws: Workspace, admin, tmp_path: Path, ts, expected) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", [rec(1, ts=ts)])
    (r,) = ingest(ws, admin, [f])
    assert r.rows_loaded == 1, rejects(ws, admin)
    from datetime import UTC, datetime

    assert ws.scalar("SELECT ts FROM decisions") == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize(("bad", "reason"), [
    ("{not json", "unparseable JSON"),
    ("[1, 2]", "line is not a JSON object"),
    (json.dumps(rec(9, ts="2026-10-01T10:00:00")), "no UTC offset"),
    (json.dumps(rec(9, ts="yesterday noon")), "bad timestamp"),
    (json.dumps(rec(9, ts="2026-13-45T10:00:00Z")), "bad timestamp"),
    (json.dumps({k: v for k, v in rec(9).items() if k != "principal"}), "missing required field principal"),
    (json.dumps({k: v for k, v in rec(9).items() if k != "features"}), "missing required field features"),
    (json.dumps(rec(9, score="high")), "score must be a number"),
    (json.dumps(rec(9, principal={"id": 1})), "principal must be a string"),
    (json.dumps(rec(9, features=[1, 2])), "features must be an object"),
    (json.dumps(rec(9, features={"a": {"b": 1}})), "nested object"),
    (json.dumps(rec(9, status="maybe")), "status must be ok or error"),
])
def test_bad_rows_quarantined_with_reason(ws: Workspace, admin, tmp_path: Path, bad: str, reason: str) -> None:
    f = write_jsonl(tmp_path / "b.jsonl", [rec(1), bad, rec(2)])
    (r,) = ingest(ws, admin, [f])
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (3, 2, 1)
    (q,) = rejects(ws, admin)
    assert reason in q["reason"] and q["line"] == 2 and q["raw"] == bad and q["path"].endswith("b.jsonl")


def test_reingest_same_file_is_noop_and_duplicates_counted(ws: Workspace, admin, tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [rec(1), rec(2), rec(2)])
    (r1,) = ingest(ws, admin, [f])
    assert (r1.rows_loaded, r1.duplicates) == (2, 1)
    (r2,) = ingest(ws, admin, [f])
    assert r2.skipped and r2.source_id == r1.source_id
    g = write_jsonl(tmp_path / "b.jsonl", [rec(2), rec(3)])  # overlaps with the first file
    (r3,) = ingest(ws, admin, [g])
    assert (r3.rows_loaded, r3.duplicates) == (1, 1)
    assert ws.scalar("SELECT count(*) FROM decisions") == 3
    # The same decision_id in another system is a different decision.
    h = write_jsonl(tmp_path / "c.jsonl", [rec(2, system_id="cards")])
    assert ingest(ws, admin, [h])[0].rows_loaded == 1


def test_csv_flattened_features_and_parser_rejects(ws: Workspace, admin, tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text(
        "decision_id,ts,system_id,model_version,principal,prediction,score,features.income,features.purpose,"
        "features.cosigner,ticket\n"
        "c1,2026-10-01T10:00:00Z,loan,2.0,k2,approve,0.1,100,car,true,T-1\n"
        "c2,2026-10-01T10:00:00Z,loan\n"
        "c3,2026-10-01T10:00:00Z,loan,2.0,k2,deny,0.9,250.5,\"boat, large\",false,\n"
        "c4,2026-10-01T10:00:00Z,loan,2.0,k2,deny,x,250.5,car,false,\n"
    )
    (r,) = ingest(ws, admin, [f])
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (4, 2, 2) and accounting_holds(r)
    got = {d: json.loads(feat) for d, feat in ws.rows("SELECT decision_id, features FROM decisions")}
    assert got["c3"] == {"income": 250.5, "purpose": "boat, large", "cosigner": False}
    assert ws.scalar("SELECT model_version FROM decisions WHERE decision_id = 'c1'") == "2.0"
    assert json.loads(ws.scalar("SELECT extra FROM decisions WHERE decision_id = 'c1'")) == {"ticket": "T-1"}
    q = {row["line"]: row for row in rejects(ws, admin)}
    assert set(q) == {3, 5}
    assert q[3]["raw"] == "c2,2026-10-01T10:00:00Z,loan" and "CSV parse error" in q[3]["reason"]
    assert "score must be a number" in q[5]["reason"] and q[5]["raw"].startswith("c4,")
    assert ws.scalar("SELECT source_line FROM decisions WHERE decision_id = 'c3'") == 4


def test_parquet_and_gzip(ws: Workspace, admin, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "src.jsonl", [rec(i) for i in range(50)])
    pq = tmp_path / "d.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT decision_id, ts::TIMESTAMPTZ AS ts, system_id, model_version, principal, prediction, "
                f"score, features.income AS \"features.income\", features.purpose AS \"features.purpose\" "
                f"FROM read_json('{src}')) TO '{pq}' (FORMAT parquet)")
    gz = tmp_path / "e.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(json.dumps(rec(i, system_id="cards")) for i in range(30)) + "\n")
    r1, r2 = ingest(ws, admin, [pq, gz])
    assert (r1.format, r1.rows_loaded, r2.format, r2.rows_loaded) == ("parquet", 50, "jsonl", 30)
    assert json.loads(ws.scalar("SELECT features FROM decisions WHERE decision_id='d7' AND system_id='loan'")) \
        == {"income": 50007, "purpose": "car"}


def test_unreadable_files_get_one_line_errors(ws: Workspace, admin, tmp_path: Path) -> None:
    good = tmp_path / "ok.jsonl.gz"
    with gzip.open(good, "wt") as fh:
        fh.write("\n".join(json.dumps(rec(i)) for i in range(2000)))
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    weird = tmp_path / "image.png"
    weird.write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    results = [ingest_file(ws, admin, p) for p in (truncated, weird, tmp_path / "missing.csv")]
    for r in results:
        assert r.error and "\n" not in r.error and Path(r.path).name in r.error
    assert "truncated" in results[0].error
    assert ws.scalar("SELECT count(*) FROM sources") == 0 and ws.scalar("SELECT count(*) FROM decisions") == 0


def test_directories_and_globs(ws: Workspace, admin, tmp_path: Path) -> None:
    for h in range(3):
        d = tmp_path / "2026" / "10" / "01" / f"{h:02d}"
        d.mkdir(parents=True)
        write_jsonl(d / "part.jsonl", [rec(h * 10 + i) for i in range(5)])
    (tmp_path / "2026" / ".hidden.jsonl").write_text("junk")
    results = ingest(ws, admin, [tmp_path / "2026"])
    assert [r.rows_loaded for r in results] == [5, 5, 5]
    assert ingest(ws, admin, [str(tmp_path / "2026" / "**" / "*.jsonl")])[0].skipped


def test_custody_sources_and_verify(ws: Workspace, admin, tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [rec(1)])
    b = write_jsonl(tmp_path / "b.jsonl", [rec(2)])
    c = write_jsonl(tmp_path / "c.jsonl", [rec(3)])
    ingest(ws, admin, [a, b, c])
    rows = sources(ws, admin)
    assert {r["sha256"] for r in rows} == {__import__("hashlib").sha256(p.read_bytes()).hexdigest() for p in (a, b, c)}
    assert all(r["actor"] == admin.user and r["size_bytes"] > 0 for r in rows)
    b.write_text(b.read_text().replace("d2", "dX"))
    c.unlink()
    status = {Path(r["path"]).name: r["status"] for r in verify_sources(ws, admin)}
    assert status == {"a.jsonl": "ok", "b.jsonl": "changed", "c.jsonl": "missing"}
    actions = [a for (a,) in ws.rows("SELECT action FROM audit_log ORDER BY seq")]
    assert actions.count("ingest.file") == 3 and actions[-1] == "custody.verify"


def test_metrics_long_format_and_prometheus(ws: Workspace, admin, tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("ts,system_id,metric,value,labels.region\n"
                   "2026-10-01T10:00:00Z,loan,request_rate,12,eu\n"
                   "2026-10-01T10:01:00Z,loan,request_rate,oops,eu\n"
                   "2026-10-01T10:01:00Z,loan,request_rate,14,eu\n"
                   "2026-10-01T10:01:00Z,loan,request_rate,14,eu\n")
    prom = tmp_path / "q.json"
    prom.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "latency_p95_ms", "system_id": "cards", "pod": "a"},
         "values": [[1790330400, "10.5"], [1790330460, "NaN"], [1790330520, "12"]]},
        {"metric": {"__name__": "error_rate", "job": "x"}, "values": [[1790330400.5, "0.01"]]},
    ]}}))
    r1 = ingest(ws, admin, [csv])[0]
    assert (r1.kind, r1.rows_read, r1.rows_loaded, r1.duplicates, r1.rows_quarantined) == ("metrics", 4, 2, 1, 1)
    r2 = ingest(ws, admin, [prom], system="fallback-system")[0]
    assert (r2.format, r2.rows_loaded) == ("prometheus", 4)
    got = ws.dicts("SELECT system_id, metric, labels FROM metrics WHERE source_id = ? ORDER BY metric", [r2.source_id])
    assert got[0]["system_id"] == "fallback-system" and json.loads(got[0]["labels"]) == {"job": "x"}
    assert got[1]["system_id"] == "cards" and json.loads(got[1]["labels"]) == {"pod": "a"}


def test_one_transaction_per_file(ws: Workspace, admin, tmp_path: Path) -> None:
    """A file that fails mid-way leaves nothing behind (no decisions, no quarantine, no source)."""
    f = write_jsonl(tmp_path / "a.jsonl", [rec(1)])
    ws.execute("CREATE TABLE boom AS SELECT 1")
    ws.execute("DROP TABLE feature_catalog")  # the last step of the load will now fail
    r = ingest_file(ws, admin, f)
    assert r.error
    assert ws.scalar("SELECT count(*) FROM decisions") == 0 and ws.scalar("SELECT count(*) FROM sources") == 0


def test_sample_copy_untouched(ws: Workspace, admin, tmp_path: Path) -> None:
    """Ingest never modifies the analyst's file."""
    f = write_jsonl(tmp_path / "a.jsonl", [rec(1), "junk"])
    before = f.read_bytes()
    ingest(ws, admin, [f])
    shutil.copy(f, tmp_path / "copy.jsonl")
    assert f.read_bytes() == before


def test_reingest_after_wrong_options(ws: Workspace, admin, tmp_path: Path) -> None:
    """A file first ingested with the wrong options can be read again on purpose; nothing is loaded twice."""
    f = tmp_path / "m.jsonl"
    f.write_text("\n".join(json.dumps({"ts": f"2026-10-01T10:0{i}:00Z", "metric": "rps", "value": i})
                           for i in range(5)) + "\n")
    (first,) = ingest(ws, admin, [f])  # no --system: every point quarantined
    assert (first.rows_loaded, first.rows_quarantined) == (0, 5)
    assert ingest(ws, admin, [f], system="cards")[0].skipped
    (again,) = ingest(ws, admin, [f], system="cards", reingest=True)
    assert (again.skipped, again.rows_loaded, again.source_id != first.source_id) == (False, 5, True)
    (third,) = ingest(ws, admin, [f], system="cards", reingest=True)
    assert (third.rows_loaded, third.duplicates) == (0, 5)


def test_csv_with_an_unterminated_quote_keeps_the_good_rows(ws: Workspace, admin, tmp_path: Path) -> None:
    f = tmp_path / "q.csv"
    f.write_text("decision_id,ts,system_id,model_version,principal,prediction,features.income\n"
                 "c1,2026-10-03T09:14:07Z,s,1.0,p1,approve,100\n"
                 "\"c2,2026-10-03T09:14:07Z,s,1.0,p1,approve,100\n")
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.rows_loaded, r.rows_quarantined) == (None, 1, 1)
    (q,) = rejects(ws, admin)
    assert q["line"] == 3 and q["raw"].startswith('"c2')


def test_csv_feature_of_the_wrong_type_is_quarantined_on_its_line(ws: Workspace, admin, tmp_path: Path) -> None:
    """Feature columns are typed from the file; a value of another type is quarantined with line and reason."""
    lines = ["decision_id,ts,system_id,model_version,principal,prediction,score,"
             "features.income,features.kind,features.flag"]
    for i in range(100):
        income = "abc" if i == 10 else str(i * 10)
        flag = "maybe" if i == 20 else ("true" if i % 2 else "false")
        lines.append(f"a{i},2026-10-01T10:00:{i % 60:02d}Z,s,1,p,approve,0.5,{income},x,{flag}")
    f = tmp_path / "typed.csv"
    f.write_text("\n".join(lines) + "\n")
    r = ingest_file(ws, admin, f)
    assert (r.error, r.rows_read, r.rows_loaded, r.rows_quarantined) == (None, 100, 98, 2)
    assert ws.rows("SELECT line, reason FROM quarantine ORDER BY line") == [
        (12, "features.income must be a number, got abc"), (22, "features.flag must be true or false, got maybe")]
    assert ws.rows("SELECT source_line, features::VARCHAR FROM decisions WHERE decision_id = 'a11'") == [
        (13, '{"income":110.0,"kind":"x","flag":true}')]
    assert ws.rows("SELECT feature, type FROM feature_catalog ORDER BY feature") == [
        ("flag", "bool"), ("income", "number"), ("kind", "string")]


# --- hostile and broken input (issue 12: items 4, 9 and 10) ---------------------------------------------------


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "294247-01-01T00:00:00Z",
                                "2999-01-01T00:00:00Z", "1969-12-31T23:59:59Z", 9999999999999999,
                                253402300799000])
def test_implausible_timestamps_are_quarantined(ws: Workspace, admin, tmp_path: Path, ts) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", [rec(1), rec(2, ts=ts), rec(3)])
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.rows_read, r.rows_loaded, r.rows_quarantined) == (None, 3, 2, 1)
    (q,) = rejects(ws, admin)
    assert q["line"] == 2 and q["reason"].startswith("implausible timestamp") and "WORKBENCH_TS_MAX" in q["reason"]
    assert ws.one("SELECT min(ts), max(ts) FROM decisions")[0].year == 2026


def test_plausible_window_is_configurable(ws: Workspace, admin, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_TS_MIN", "2026-10-01T12:00:00Z")
    monkeypatch.setenv("WORKBENCH_TS_MAX", "+3650d")
    f = write_jsonl(tmp_path / "t.jsonl", [rec(1), rec(2, ts="2026-10-02T00:00:00Z"),
                                           rec(3, ts="2030-01-01T00:00:00Z")])
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps({"ts": t, "system_id": "s", "metric": "rps", "value": 1}) + "\n"
                         for t in ("2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z", "99999999999999")))
    r, rm = ingest(ws, admin, [f, m])
    assert (r.rows_loaded, r.rows_quarantined, rm.rows_loaded, rm.rows_quarantined) == (2, 1, 1, 2)
    assert {q["line"] for q in rejects(ws, admin) if q["path"].endswith("t.jsonl")} == {1}
    monkeypatch.setenv("WORKBENCH_TS_MAX", "next year")
    (bad,) = ingest(ws, admin, [write_jsonl(tmp_path / "u.jsonl", [rec(9)])])
    assert "WORKBENCH_TS_MAX" in bad.error and "\n" not in bad.error


def test_detect_after_extreme_timestamps_and_long_spans(ws: Workspace, admin, tmp_path: Path, monkeypatch) -> None:
    """Year 1/9999/294247 never reach the detectors; a window stretched to centuries is bounded by them."""
    from workbench.detect import run_all

    monkeypatch.setenv("WORKBENCH_TS_MIN", "1700-01-01")
    monkeypatch.setenv("WORKBENCH_TS_MAX", "2250-01-01")
    rows = [rec(i, principal=f"p{i % 5}", ts=f"2026-10-0{1 + i // 600}T{i // 60 % 10:02d}:{i % 60:02d}:00Z",
                features={"x": i % 17, "c": "ab"[i % 2]}) for i in range(1800)]
    rows += [rec(9000 + k, ts=t) for k, t in enumerate(["0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z",
                                                      "294247-01-01T00:00:00Z", "1701-01-01T00:00:00Z",
                                                      "2249-01-01T00:00:00Z"])]
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps({"ts": f"2026-10-01T{h:02d}:{k * 5:02d}:00Z", "system_id": "loan",
                                     "metric": "error_rate", "value": 0.01}) + "\n"
                         for h in range(24) for k in range(12))
                 + json.dumps({"ts": "1701-01-01T00:00:00Z", "system_id": "loan", "metric": "error_rate",
                               "value": 0.5}) + "\n")
    r, rm = ingest(ws, admin, [write_jsonl(tmp_path / "d.jsonl", rows), m])
    assert (r.rows_loaded, r.rows_quarantined, rm.rows_loaded) == (1802, 3, 289)
    run_all(ws, admin)  # under pytest a detector's exception propagates
    (timings,) = ws.one("SELECT timings FROM detect_runs")
    assert not json.loads(timings).get("errors")


def _line_file(path: Path, lines: list[bytes], header: bytes | None = None) -> Path:
    data = b"\n".join(([header] if header else []) + lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


CSV_HEAD = b"decision_id,ts,system_id,model_version,principal,prediction,features.income"


def _csv_row(i: int, principal: bytes = b"p") -> bytes:
    return b"c%d,2026-10-01T10:00:00Z,loan,2.0,%s,approve,%d" % (i, principal, 100 + i)


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz", "a.csv", "a.csv.gz"])
@pytest.mark.parametrize("problem", ["long", "utf8"])
def test_a_huge_line_or_invalid_utf8_is_quarantined_not_fatal(ws: Workspace, admin, tmp_path: Path, name: str,
                                                              problem: str) -> None:
    import hashlib

    from workbench.ingest.limits import MAX_LINE, RAW_CAP

    csv = ".csv" in name
    if problem == "long":
        long = "p" * (MAX_LINE + 4096)
        bad = _csv_row(2, long.encode()) if csv else json.dumps(rec(2, principal=long)).encode()
    else:
        bad = _csv_row(2, b"caf\xe9") if csv else json.dumps(rec(2)).encode().replace(b"key-1", b"key-\xff")
    good = [_csv_row(i) if csv else json.dumps(rec(i)).encode() for i in (1, 3, 4)]
    # (DuckDB's CSV reader skips blank lines without counting them, so only the JSONL file has one)
    f = _line_file(tmp_path / name, [good[0], bad, good[1], *([] if csv else [b""]), good[2]],
                   CSV_HEAD if csv else None)
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.rows_read, r.rows_loaded, r.rows_quarantined) == (None, 4, 3, 1)
    (q,) = rejects(ws, admin)
    first = 2 if csv else 1
    assert q["line"] == first + 1
    assert q["reason"] == (f"line too long: {len(bad):,} bytes (the limit is 8 MiB)" if problem == "long"
                           else f"invalid UTF-8 at byte {bad.index(b'caf') + 4 if csv else bad.index(b'key-') + 5} "
                                "of the line")
    assert q["raw_bytes"] == len(bad) and q["raw_sha256"] == hashlib.sha256(bad).hexdigest()
    assert len(q["raw"]) == (RAW_CAP if problem == "long" else len(bad) + 3)  # \xNN shown for a bad byte
    lines = dict(ws.rows("SELECT decision_id, source_line FROM decisions"))
    assert lines["c4" if csv else "d4"] == first + (3 if csv else 4)  # the lines after it keep their numbers


def test_metrics_line_with_invalid_utf8_is_quarantined(ws: Workspace, admin, tmp_path: Path) -> None:
    ok = [json.dumps({"ts": f"2026-10-01T10:0{i}:00Z", "system_id": "s", "metric": "rps", "value": i}).encode()
          for i in range(3)]
    bad = b'{"ts": "2026-10-01T10:05:00Z", "metric": "r\xffps"}'
    f = _line_file(tmp_path / "m.jsonl", [ok[0], bad, ok[1], ok[2]])
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.kind, r.rows_read, r.rows_loaded, r.rows_quarantined) == (None, "metrics", 4, 3, 1)
    at = bad.index(b"\xff") + 1
    assert ws.rows("SELECT line, reason FROM quarantine") == [(2, f"invalid UTF-8 at byte {at} of the line")]
    assert ws.rows("SELECT source_line FROM metrics ORDER BY 1") == [(1,), (3,), (4,)]


def test_csv_header_longer_than_64k_is_read_whole(ws: Workspace, admin, tmp_path: Path) -> None:
    names = [f"f{i:03d}_" + "n" * 115 for i in range(600)]  # 600 features of 120 characters: a 76 KB header
    header = "decision_id,ts,system_id,model_version,principal,prediction," + ",".join(f"features.{n}"
                                                                                       for n in names)
    assert len(header) > 65536
    f = tmp_path / "wide.csv"
    f.write_text(header + "\n" + "".join(f"w{r},2026-10-01T10:00:00Z,loan,1,p,approve,"
                                         + ",".join(str(r + i) for i in range(600)) + "\n" for r in range(5)))
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.rows_loaded, r.rows_quarantined) == (None, 5, 0)
    feats = json.loads(ws.scalar("SELECT features FROM decisions WHERE decision_id = 'w2'"))
    assert len(feats) == 600 and feats[names[599]] == 601
    assert ws.scalar("SELECT count(*) FROM feature_catalog") == 600


def test_conflicting_duplicates_are_kept_in_quarantine(ws: Workspace, admin, tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [rec(1), rec(2), rec(1), rec(1, prediction="deny"),
                                           rec(2, features={"purpose": "car", "income": 50002.0, "note": None,
                                                            "cosigner": False})])
    (r1,) = ingest(ws, admin, [a])
    # d1 again: identical (counted), then with another prediction (kept); d2 with the same features reordered.
    assert (r1.rows_read, r1.rows_loaded, r1.duplicates, r1.rows_quarantined) == (5, 2, 2, 1)
    b = write_jsonl(tmp_path / "b.jsonl", [rec(3), rec(1), rec(2, score=0.9, principal="key-2"), rec(4)])
    (r2,) = ingest(ws, admin, [b])
    assert (r2.rows_read, r2.rows_loaded, r2.duplicates, r2.rows_quarantined) == (4, 2, 1, 1)
    got = {(q["path"][-7:], q["line"]): q for q in rejects(ws, admin)}
    assert got[("a.jsonl", 4)]["reason"] == ("conflicting duplicate: prediction differs from the record kept "
                                             "(source 1, line 1)")
    assert got[("b.jsonl", 3)]["reason"] == ("conflicting duplicate: principal, score differ from the record kept "
                                             "(source 1, line 2)")
    assert got[("a.jsonl", 4)]["raw"] == json.dumps(rec(1, prediction="deny"))  # the line as found
    assert ws.scalar("SELECT prediction FROM decisions WHERE decision_id = 'd1'") == "approve"  # first one wins
    c = tmp_path / "c.csv"
    c.write_text("decision_id,ts,system_id,model_version,principal,prediction,features.income\n"
                 "d3,2026-10-01T10:00:00Z,loan,2.0,key-1,approve,50003\n"  # no score, fewer features than b's d3
                 "d4,2026-10-01T10:00:00Z,loan,2.0,key-1,deny,50004\n")
    (r3,) = ingest(ws, admin, [c])
    assert (r3.rows_read, r3.rows_loaded, r3.duplicates, r3.rows_quarantined) == (2, 0, 0, 2)
    q = {row["line"]: row for row in rejects(ws, admin, r3.source_id)}
    assert q[3]["raw"] == "d4,2026-10-01T10:00:00Z,loan,2.0,key-1,deny,50004"
    assert q[3]["reason"].startswith("conflicting duplicate: prediction, score, features differ")
    for r in (r1, r2, r3):
        assert accounting_holds(r)


def test_unusable_feature_names_are_quarantined(ws: Workspace, admin, tmp_path: Path) -> None:
    hostile_but_printable = "x'); DROP TABLE decisions; --\" <b>"
    f = write_jsonl(tmp_path / "n.jsonl", [
        rec(1, features={"ok": 1, "a\u0000b": 2}), rec(2, features={"bell\x07": 1}),
        rec(3, features={"y" * 129: 1}), rec(4, features={"\u202eevil": 1}), rec(5, features={"": 1}),
        rec(6, features={hostile_but_printable: 1, "naïve 中文": "ok"}), rec(7, features={"z" * 128: 1}),
    ])
    (r,) = ingest(ws, admin, [f])
    assert (r.error, r.rows_read, r.rows_loaded, r.rows_quarantined) == (None, 7, 2, 5)
    reasons = {q["line"]: q["reason"] for q in rejects(ws, admin)}
    assert reasons[1] == 'unusable feature name "a?b": control or invisible characters'
    assert reasons[3] == f'unusable feature name "{"y" * 60}…": longer than 128 characters (129)'
    assert reasons[4] == 'unusable feature name "?evil": control or invisible characters'
    assert reasons[5] == 'unusable feature name "": empty'
    assert all("\n" not in x and "\x07" not in x for x in reasons.values())
    names = {n for (n,) in ws.rows("SELECT feature FROM feature_catalog")}
    assert names == {hostile_but_printable, "naïve 中文", "z" * 128}
    csv = tmp_path / "n.csv"
    csv.write_text("decision_id,ts,system_id,model_version,principal,prediction,features.ok,features.bad\u202e\n"
                   "c1,2026-10-01T10:00:00Z,loan,1,p,approve,1,2\n")
    (rc,) = ingest(ws, admin, [csv])
    assert rc.error == (f'{csv.absolute()}: column "features.bad?" names an unusable feature (control or '
                        'invisible characters); rename it')
    assert ws.scalar("SELECT count(*) FROM sources WHERE path LIKE '%n.csv'") == 0


def test_conflicting_metric_points_are_kept_in_quarantine(ws: Workspace, admin, tmp_path: Path) -> None:
    def point(minute: int, value: float) -> str:
        return json.dumps({"ts": f"2026-10-01T10:{minute:02d}:00Z", "system_id": "s", "metric": "err",
                           "labels": {"pod": "a"}, "value": value}) + "\n"

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(point(0, 0.1) + point(1, 0.2) + point(0, 0.1) + point(0, 0.9))
    b.write_text(point(1, 0.2) + point(1, 0.25) + point(2, 0.3))
    r1, r2 = ingest(ws, admin, [a, b])
    assert [(r.rows_read, r.rows_loaded, r.duplicates, r.rows_quarantined) for r in (r1, r2)] == [
        (4, 2, 1, 1), (3, 1, 1, 1)]
    assert ws.rows("SELECT source_id, line, reason FROM quarantine ORDER BY ALL") == [
        (1, 4, "conflicting duplicate: value 0.9 differs from the 0.1 kept (source 1, line 1)"),
        (2, 2, "conflicting duplicate: value 0.25 differs from the 0.2 kept (source 1, line 2)")]
