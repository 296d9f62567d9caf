"""The ad-hoc SQL sandbox against hostile input: no files, no network, no settings, no writes, one SELECT."""

from __future__ import annotations

import json

import pytest
from access_data import load, role
from typer.testing import CliRunner

from workbench.access import masking
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.explore.sandbox import SqlRefused, run_sql
from workbench.store import open_workspace


@pytest.fixture()
def loan_ws(ws, tmp_path):
    load(ws, tmp_path)
    return ws


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory):
    """One loaded workspace for the read-only statement tests of this module."""
    tmp = tmp_path_factory.mktemp("sandbox")
    ws = open_workspace(tmp / "ws.duckdb")
    load(ws, tmp)
    yield ws
    ws.close()


HOSTILE = {
    "SELECT * FROM read_csv('/etc/passwd')": "table function read_csv",
    "SELECT * FROM read_csv_auto('/etc/passwd')": "table function read_csv_auto",
    "SELECT * FROM '/etc/passwd'": "not a workspace table",
    'SELECT * FROM "/etc/passwd"': "not a workspace table",
    "DESCRIBE '/etc/passwd'": "not a workspace table",
    "SELECT * FROM 'https://example.com/data.parquet'": "not a workspace table",
    "COPY (SELECT * FROM decisions) TO '/tmp/leak.csv'": "only a single SELECT",
    "COPY decisions FROM '/etc/passwd'": "only a single SELECT",
    "ATTACH '/tmp/other.duckdb' AS other": "only a single SELECT",
    "DETACH other": "only a single SELECT",
    "INSTALL httpfs": "only a single SELECT is allowed; got INSTALL",
    "  force install httpfs": "got FORCE INSTALL",
    "LOAD httpfs": "only a single SELECT is allowed; got LOAD",
    "/* comment */ -- line\n ATTACH ':memory:' AS x": "got ATTACH",
    "WITH a AS (SELECT 1) INSERT INTO decisions SELECT * FROM decisions": "got INSERT",
    "SET enable_external_access = true": "only a single SELECT",
    "RESET enable_external_access": "only a single SELECT",
    "PRAGMA version": "only a single SELECT",
    "CALL pragma_version()": "only a single SELECT",
    "EXPORT DATABASE '/tmp/dump'": "only a single SELECT",
    "SELECT 1; SELECT 2": "exactly one statement",
    "SELECT 1; DROP TABLE decisions": "exactly one statement",
    "DELETE FROM decisions": "only a single SELECT",
    "UPDATE decisions SET score = 0": "only a single SELECT",
    "INSERT INTO audit_log SELECT * FROM audit_log": "only a single SELECT",
    "CREATE TABLE t AS SELECT 1": "only a single SELECT",
    "CREATE MACRO m() AS 1": "only a single SELECT",
    "DROP TABLE decisions": "only a single SELECT",
    "SELECT getenv('HOME')": "function getenv",
    "SELECT current_setting('enable_external_access')": "function current_setting",
    "SELECT nextval('source_id_seq')": "function nextval",
    "SELECT setseed(0.5)": "function setseed",
    "SELECT * FROM read_text('/etc/passwd')": "table function read_text",
    "SELECT * FROM read_blob('/etc/hostname')": "table function read_blob",
    "SELECT * FROM read_json('/tmp/x.json')": "table function read_json",
    "SELECT * FROM read_ndjson_objects('/tmp/x.json')": "table function read_ndjson_objects",
    "SELECT * FROM glob('/*')": "table function glob",
    "SELECT * FROM duckdb_settings()": "table function duckdb_settings",
    "SELECT * FROM duckdb_secrets()": "table function duckdb_secrets",
    "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')": "table function query",
    "SELECT * FROM sniff_csv('/etc/passwd')": "table function sniff_csv",
    "SELECT * FROM parquet_metadata('/tmp/x.parquet')": "table function parquet_metadata",
    "WITH a AS (SELECT * FROM read_parquet('/tmp/x.parquet')) SELECT * FROM a": "table function read_parquet",
    "WITH a AS (SELECT 1), b AS (SELECT * FROM a, read_csv('/etc/passwd')) SELECT * FROM b":
        "table function read_csv",
    "SELECT d.decision_id, x.* FROM decisions d, LATERAL (SELECT * FROM read_csv('/etc/passwd')) x":
        "table function read_csv",
    "SELECT (SELECT count(*) FROM read_text('/etc/shadow'))": "table function read_text",
    "SELECT * FROM decisions WHERE decision_id IN (SELECT content FROM read_text('/etc/passwd'))":
        "table function read_text",
    "SELECT * FROM (WITH x AS (SELECT 1) SELECT 1), x": "not a workspace table",
    'WITH "/etc/passwd" AS (SELECT 1) SELECT * FROM "/etc/passwd"': "plain identifier",
    "WITH accounts AS (SELECT * FROM accounts) SELECT * FROM accounts": "name of a workspace table",
    "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a": "not a workspace table",
    "SELECT * FROM information_schema.tables": "not a workspace table",
    "SELECT * FROM system.main.duckdb_settings": "not a workspace table",
    "SELECT * FROM other.main.decisions": "not a workspace table",
    "SELECT * FROM accounts": "not available to SQL",
    "SELECT password_hash FROM main.accounts": "not available to SQL",
    "SELECT * FROM access_secrets": "not available to SQL",
    "SELECT * FROM decisions, pragma_table_info('decisions')": "table function pragma_table_info",
    "PIVOT decisions ON prediction": "only a single SELECT",
    "EXPLAIN SELECT 1": "only a single SELECT",
    "SELECT * FROM": "syntax error",
    "": "empty statement",
}


@pytest.mark.parametrize("statement", list(HOSTILE))
def test_hostile_statements_are_refused(shared_ws, statement):
    loan_ws = shared_ws
    before = loan_ws.scalar("SELECT count(*) FROM decisions")
    with pytest.raises(WorkbenchError) as info:
        run_sql(loan_ws, role("admin"), statement)
    msg = str(info.value)
    assert HOSTILE[statement] in msg and "\n" not in msg
    assert loan_ws.scalar("SELECT count(*) FROM decisions") == before
    assert not loan_ws.table_exists("t")
    last = loan_ws.one("SELECT action, details FROM audit_log ORDER BY seq DESC LIMIT 1")
    assert last[0] == "sql.refused" and json.loads(last[1])["statement"] == statement


def test_file_contents_never_reach_the_result(loan_ws):
    for statement in ("SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'"):
        with pytest.raises(SqlRefused) as info:
            run_sql(loan_ws, role("admin"), statement)
        assert "root:" not in str(info.value)


ANALYTIC = [
    (
        "SELECT system_id, count(*) AS n, avg(score) AS s FROM decisions GROUP BY ALL ORDER BY system_id",
        [("loan", 40), ("triage", 10)],
    ),
    (
        "SELECT principal, count(*) FILTER (WHERE prediction = 'approve') AS approvals FROM decisions "
        "WHERE system_id = 'loan' GROUP BY principal ORDER BY principal",
        [("app-1", 10), ("app-2", 10)],
    ),
    (
        "WITH per AS (SELECT principal, ts, score, avg(score) OVER (PARTITION BY principal ORDER BY ts "
        "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS rolling, "
        "row_number() OVER (PARTITION BY principal ORDER BY ts) "
        "AS rn FROM decisions) SELECT principal, max(rn) FROM per GROUP BY ALL ORDER BY 1",
        [("app-1", 20), ("app-2", 20), ("ward-a", 10)],
    ),
    (
        "SELECT date_trunc('hour', ts) AS h, count(*) FROM decisions WHERE system_id = 'loan' "
        "GROUP BY 1 ORDER BY 1 "
        "LIMIT 1",
        None,
    ),
    (
        "SELECT json_extract_string(features, '$.purpose') AS purpose, count(*) FROM decisions d "
        "WHERE system_id = 'loan' GROUP BY 1 ORDER BY 1",
        [("car", 10), ("home", 10), ("study", 10), ("travel", 10)],
    ),
    (
        "SELECT d.decision_id, x.double FROM decisions d, LATERAL (SELECT d.score * 2 AS double) x "
        "ORDER BY 1 LIMIT 1",
        None,
    ),
    (
        "SELECT quantile_cont(score, 0.5), stddev_samp(score), list(DISTINCT prediction ORDER BY prediction) "
        "FROM decisions WHERE system_id = 'loan'",
        None,
    ),
    (
        "SELECT k.key, count(*) FROM decisions, json_each(features) k WHERE system_id = 'triage' GROUP BY 1 "
        "ORDER BY 1",
        [("heart_rate", 10), ("name", 10)],
    ),
    ("SELECT * FROM range(3)", [(0,), (1,), (2,)]),
    ("SELECT unnest([1, 2]) AS x", [(1,), (2,)]),
    ("FROM sources SELECT count(*)", [(2,)]),
    ("DESCRIBE decisions", None),
    ("SUMMARIZE SELECT score FROM decisions", None),
    ("SELECT count(*) FROM decisions;", [(50,)]),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT max(n) FROM r", [(3,)]),
    ("WITH a AS (SELECT 2 AS x), b AS (SELECT x * 2 AS y FROM a) SELECT y FROM b", [(4,)]),
]


@pytest.mark.parametrize(("statement", "expected"), ANALYTIC)
def test_analytic_selects_work(shared_ws, statement, expected):
    loan_ws = shared_ws
    res = run_sql(loan_ws, role("analyst"), statement)
    assert res.columns and res.rows
    if expected is not None:
        assert [r[: len(expected[0])] for r in res.rows] == expected
    last = loan_ws.one("SELECT actor, action, details FROM audit_log ORDER BY seq DESC LIMIT 1")
    details = json.loads(last[2])
    assert last[:2] == ("test-analyst", "sql.run")
    assert details["statement"] == statement.rstrip(";") and details["rows"] == len(res.rows)


def test_row_cap_and_time_limit(loan_ws, monkeypatch):
    res = run_sql(loan_ws, role("analyst"), "SELECT * FROM range(100)", max_rows=7)
    assert len(res.rows) == 7 and res.truncated and res.notes
    monkeypatch.setenv("WORKBENCH_QUERY_MAX_ROWS", "4")
    assert len(run_sql(loan_ws, role("analyst"), "SELECT * FROM range(100)").rows) == 4
    with pytest.raises(WorkbenchError, match="time limit"):
        run_sql(
            loan_ws,
            role("analyst"),
            "SELECT count(*) FROM range(100000000) a, range(1000) b WHERE a.range % 7 = b.range",
            timeout=0.3,
        )
    # the cursor is usable afterwards and not left inside a transaction
    assert run_sql(loan_ws, role("analyst"), "SELECT 42").rows == [(42,)]
    loan_ws.execute("BEGIN TRANSACTION")
    loan_ws.execute("ROLLBACK")


def test_roles_and_table_rules(loan_ws, admin):
    with pytest.raises(PermissionDenied):
        run_sql(loan_ws, role("viewer"), "SELECT 1")
    with pytest.raises(PermissionDenied, match="audit log"):
        run_sql(loan_ws, role("analyst"), "SELECT count(*) FROM audit_log")
    assert run_sql(loan_ws, role("auditor"), "SELECT count(*) FROM audit_log").rows[0][0] > 0
    with pytest.raises(SqlRefused, match="not available"):
        run_sql(loan_ws, role("admin"), "SELECT count(*) FROM accounts")
    # before any feature is marked personal, analysts may query decisions; afterwards only through explore
    assert run_sql(loan_ws, role("analyst"), "SELECT count(*) FROM decisions").rows == [(50,)]
    masking.mark_personal(loan_ws, admin, "loan", ["email"])
    for table in ("decisions", "quarantine"):
        with pytest.raises(PermissionDenied, match="personal features"):
            run_sql(loan_ws, role("analyst"), f"SELECT count(*) FROM {table}")
    with pytest.raises(PermissionDenied, match="personal features"):
        run_sql(loan_ws, role("analyst"), "WITH x AS (SELECT * FROM main.decisions) SELECT count(*) FROM x")
    with pytest.raises(SqlRefused, match="name of a workspace table"):
        run_sql(loan_ws, role("analyst"), "WITH decisions AS (SELECT * FROM decisions) SELECT * FROM decisions")
    assert run_sql(loan_ws, role("analyst"), "SELECT count(*) FROM sources").rows == [(2,)]
    with pytest.raises(PermissionDenied, match="answer key"):  # where a drill keeps its answer key
        run_sql(loan_ws, role("analyst"), "SELECT * FROM workspace_meta")
    assert run_sql(loan_ws, role("lead"), "SELECT count(*) FROM workspace_meta").rows[0][0] >= 0
    assert run_sql(loan_ws, role("lead"), "SELECT count(*) FROM decisions").rows == [(50,)]
    assert run_sql(loan_ws, role("auditor"), "SELECT count(*) FROM decisions").rows == [(50,)]


def test_cli_sql(loan_ws, tmp_path):
    from workbench.cli import app
    db = str(loan_ws.path)
    loan_ws.close()
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["sql", "SELECT system_id, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1", "--json", "--db", db],
    )
    assert res.exit_code == 0, res.output
    assert [json.loads(line) for line in res.output.splitlines()] == [
        {"system_id": "loan", "n": 40},
        {"system_id": "triage", "n": 10},
    ]
    res = runner.invoke(app, ["sql", "SELECT * FROM read_csv('/etc/passwd')", "--db", db])
    assert isinstance(res.exception, SqlRefused)
    res = runner.invoke(
        app,
        [
            "decisions",
            "search",
            "--system",
            "loan",
            "--where",
            "purpose in car,home",
            "--where",
            "income>=30000",
            "--json",
            "--db",
            db,
        ],
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert rows and all(r["f.purpose"] in ("car", "home") and r["f.income"] >= 30000 for r in rows)


# -- resource ceilings and the audit row (issue 12, item 9) -------------------------------------------------------
_HUGE = """
import json, resource, sys, time
from workbench.access import Actor
from workbench.errors import WorkbenchError
from workbench.explore.sandbox import run_sql
from workbench.store import open_workspace

ws = open_workspace(sys.argv[1])
analyst = Actor("t-analyst", "analyst")
run_sql(ws, analyst, "SELECT 1")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    run_sql(ws, analyst, "SELECT length(repeat('x', 2000000000)) AS n", timeout=2)
    error = None
except WorkbenchError as exc:
    error = str(exc)
seconds = time.perf_counter() - started
grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
after = run_sql(ws, analyst, "SELECT 42").rows
print(json.dumps({"error": error, "seconds": seconds, "grew_mb": grew_mb, "after": after}))
"""


def test_a_huge_allocation_stops_at_once_with_bounded_memory(loan_ws, tmp_path):
    import subprocess
    import sys

    db = str(loan_ws.path)
    loan_ws.close()
    env = {**__import__("os").environ, "WORKBENCH_QUERY_MEMORY_LIMIT": "512MB"}
    out = subprocess.run([sys.executable, "-c", _HUGE, db], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # before: 8 s past the 2 s limit (one function call is not interruptible) and 3.9 GB of RSS
    assert res["error"] and "memory" in res["error"] and "\n" not in res["error"], res
    assert res["seconds"] < 2.0, res
    assert res["grew_mb"] < 600, res
    assert res["after"] == [[42]]


# The memory ceiling is measured in a fresh process, as the CLI runs it: in a long-lived process the allocator may
# keep freed memory mapped, and a query can reuse it without counting against the ceiling (README, Security model).
_FRESH = """
import json, resource, sys
from concurrent.futures import ThreadPoolExecutor
from workbench.access import Actor
from workbench.errors import WorkbenchError
from workbench.explore.sandbox import run_sql
from workbench.store import open_workspace

ws = open_workspace(sys.argv[1])
statements, together = json.loads(sys.argv[2]), sys.argv[3] == "together"
analyst = Actor("t-analyst", "analyst")
before = resource.getrlimit(resource.RLIMIT_AS)

def run(statement):
    try:
        return {"rows": [list(r) for r in run_sql(ws, analyst, statement, timeout=20).rows]}
    except WorkbenchError as exc:
        return {"error": str(exc)}

if together:
    with ThreadPoolExecutor(len(statements)) as pool:
        results = list(pool.map(run, statements))
else:
    results = [run(statement) for statement in statements]
print(json.dumps({"results": results, "limit_restored": resource.getrlimit(resource.RLIMIT_AS) == before}))
"""


def _fresh(ws, statements: list[str], together: bool = False) -> dict:
    import os
    import subprocess
    import sys

    db = str(ws.path)
    ws.close()
    env = {**os.environ, "WORKBENCH_QUERY_MEMORY_LIMIT": "256MB"}
    out = subprocess.run([sys.executable, "-c", _FRESH, db, json.dumps(statements), "together" if together else "one"],
                         capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", [
    "SELECT length(repeat('x', 2000000000))",
    "SELECT length(string_agg(repeat('x', 1000), '')) FROM range(3000000)",  # grows chunk by chunk
    "SELECT len(range(300000000))",
    "SELECT len(repeat([1, 2, 3], 200000000))",
    "SELECT length(printf('%2000000000d', 1))",
])
def test_memory_ceiling_stops_amplifying_queries(loan_ws, statement):
    db = loan_ws.path
    res = _fresh(loan_ws, [statement, "SELECT count(DISTINCT range) FROM range(3000000)"])
    failed, ordinary = res["results"]
    assert "256 MiB of memory" in failed.get("error", ""), failed
    assert "\n" not in failed["error"]
    # big but ordinary work still runs under the ceiling (sorts and hash tables spill instead of failing)
    assert ordinary == {"rows": [[3000000]]}
    assert res["limit_restored"]  # the process's own limit is back
    ws = open_workspace(db)
    try:
        rows = ws.rows("SELECT details FROM audit_log WHERE action = 'sql.run' ORDER BY seq")
    finally:
        ws.close()
    refused = [json.loads(r[0]) for r in rows if json.loads(r[0]).get("error")]
    assert refused and refused[-1]["statement"] == statement and "memory" in refused[-1]["error"]


def test_concurrent_limited_queries_keep_their_allowances(loan_ws):
    statements = ["SELECT length(repeat('x', 2000000000))", "SELECT count(DISTINCT range) FROM range(2000000)",
                  "SELECT sum(range) FROM range(20000000)", "SELECT length(repeat('x', 2000000000))"]
    res = _fresh(loan_ws, statements, together=True)
    results = res["results"]
    assert "256 MiB of memory" in results[0].get("error", "") and "256 MiB of memory" in results[3].get("error", "")
    assert results[1:3] == [{"rows": [[2000000]]}, {"rows": [[199999990000000]]}]
    assert res["limit_restored"]


def test_time_limit_interrupts_and_leaves_the_workspace_usable(loan_ws):
    import time

    started = time.perf_counter()
    with pytest.raises(WorkbenchError, match="0.5 s time limit"):
        run_sql(loan_ws, role("analyst"), "SELECT count(*) FROM range(1000000000000)", timeout=0.5)
    assert time.perf_counter() - started < 3
    assert loan_ws.scalar("SELECT count(*) FROM decisions") == 50  # this thread's cursor was not interrupted
    with loan_ws.transaction() as cur:
        cur.execute("SELECT 1")


def test_configured_limits_are_ceilings_only_an_admin_may_raise(loan_ws, monkeypatch):
    monkeypatch.setenv("WORKBENCH_QUERY_TIMEOUT", "5")
    monkeypatch.setenv("WORKBENCH_QUERY_MAX_ROWS", "20")
    for who in ("analyst", "lead", "auditor"):
        with pytest.raises(PermissionDenied, match="above the configured 5 s .*only an admin"):
            run_sql(loan_ws, role(who), "SELECT 1", timeout=60)
        with pytest.raises(PermissionDenied, match="above the configured 20 .*only an admin"):
            run_sql(loan_ws, role(who), "SELECT * FROM range(100)", max_rows=1000)
        last = json.loads(loan_ws.scalar("SELECT details FROM audit_log WHERE action = 'sql.refused' "
                                         "ORDER BY seq DESC LIMIT 1"))
        assert "only an admin" in last["reason"]
        # lower values are fine, and the default is the setting
        assert len(run_sql(loan_ws, role(who), "SELECT * FROM range(100)", max_rows=7, timeout=1).rows) == 7
        assert len(run_sql(loan_ws, role(who), "SELECT * FROM range(100)").rows) == 20
    res = run_sql(loan_ws, role("admin"), "SELECT * FROM range(100)", max_rows=1000, timeout=60)
    assert len(res.rows) == 100 and not res.truncated
    with pytest.raises(WorkbenchError, match="at least 1"):
        run_sql(loan_ws, role("admin"), "SELECT 1", max_rows=0)


def test_audit_row_keeps_4000_characters_and_the_hash_of_the_statement(loan_ws):
    import hashlib

    long_select = "SELECT 1 AS x -- " + "y" * 20_000
    run_sql(loan_ws, role("analyst"), long_select)
    refused = "SELECT * FROM read_text('/etc/passwd') -- " + "z" * 20_000
    with pytest.raises(SqlRefused):
        run_sql(loan_ws, role("analyst"), refused)
    rows = loan_ws.rows("SELECT action, details FROM audit_log WHERE action LIKE 'sql.%' ORDER BY seq DESC LIMIT 2")
    for (action, details), text in zip(rows, (refused, long_select), strict=True):
        d = json.loads(details)
        assert len(d["statement"]) == 4000 and text.startswith(d["statement"]), action
        assert d["statement_sha256"] == hashlib.sha256(text.encode()).hexdigest()
        assert d["statement_truncated"] is True and d["statement_chars"] == len(text)
    run_sql(loan_ws, role("analyst"), "SELECT 2")
    short = json.loads(loan_ws.scalar("SELECT details FROM audit_log ORDER BY seq DESC LIMIT 1"))
    assert short["statement"] == "SELECT 2" and "statement_truncated" not in short


def test_cli_refuses_raised_limits_for_non_admins(loan_ws, admin, monkeypatch):
    from workbench.access import accounts
    from workbench.cli import app

    pw = "correct horse battery"
    accounts.add_user(loan_ws, admin, "root", "admin", pw)
    accounts.add_user(loan_ws, accounts.authenticate(loan_ws, "root", pw), "ann", "analyst", pw)
    db = str(loan_ws.path)
    loan_ws.close()
    monkeypatch.setenv("WORKBENCH_PASSWORD", pw)
    monkeypatch.setenv("WORKBENCH_QUERY_TIMEOUT", "5")
    runner = CliRunner()
    res = runner.invoke(app, ["sql", "SELECT 1 AS x", "--timeout", "600", "--user", "ann", "--json", "--db", db])
    assert isinstance(res.exception, PermissionDenied) and "only an admin" in str(res.exception)
    res = runner.invoke(app, ["sql", "SELECT 1 AS x", "--timeout", "2", "--user", "ann", "--json", "--db", db])
    assert res.exit_code == 0 and json.loads(res.output) == {"x": 1}, res.output
    res = runner.invoke(app, ["sql", "SELECT 1 AS x", "--timeout", "600", "--user", "root", "--json", "--db", db])
    assert res.exit_code == 0 and json.loads(res.output) == {"x": 1}, res.output
