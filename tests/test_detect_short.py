"""Short workspaces (a tabletop drill's few days): credential misuse of a rarely used key judged against its
peers, drift judged like for like in time of day, and sparse metrics that do not raise noise."""

from __future__ import annotations

import pytest

from workbench.access import local_admin
from workbench.detect import run_all
from workbench.store import Workspace, open_workspace

DAYS = 5
START = "2026-10-01 00:00:00+00"


def _source(ws: Workspace) -> int:
    ws.execute("INSERT INTO sources (path, sha256, size_bytes, kind, format, ingested_at, actor, role, rows_read, "
               "rows_loaded, duplicates, rows_quarantined) VALUES ('test', '0', 0, 'decisions', 'sql', now(), "
               "'test', 'admin', 0, 0, 0, 0)")
    return int(ws.scalar("SELECT max(source_id) FROM sources"))


def _decisions(ws: Workspace, src: int, select: str) -> None:
    """Insert decisions from a SELECT of (decision_id, ts, principal, features JSON, source_ip)."""
    ws.execute(f"""
        INSERT INTO decisions (system_id, decision_id, ts, model_version, principal, prediction, score, features,
                               model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra,
                               source_id, source_line)
        SELECT 'sys', did, ts, '1.0', principal, CASE WHEN hash(did) % 10 < 7 THEN 'approve' ELSE 'deny' END,
               (hash(did) % 1000) / 1000.0, features, 'sha', ip, 20.0, 'ok', NULL, NULL, NULL, {src}, 0
        FROM ({select}) q(did, ts, principal, features, ip)
    """)


def _catalog(ws: Workspace, src: int, features: dict[str, str]) -> None:
    for name, typ in features.items():
        ws.execute("INSERT INTO feature_catalog VALUES ('sys', ?, ?, ?)", [name, typ, src])


@pytest.fixture()
def branch_ws(tmp_path) -> Workspace:
    """Five days of a loan desk: 12 staff keys per branch share their branch's address and work 08-17 UTC,
    each on a few days only; one key used once on day 0 is used on day 3 at night from a new address."""
    ws = open_workspace(tmp_path / "branch.duckdb")
    src = _source(ws)
    _catalog(ws, src, {"amount": "number", "term": "number"})
    feats = "json_object('amount', 1000 + hash(i) % 9000, 'term', 12 * (1 + hash(i + 1) % 5))"
    # staff: branch b (0..3), staff k (0..11); each decision on a day the key works, between 08:00 and 17:00
    _decisions(ws, src, f"""
        SELECT 'd-' || i, TIMESTAMPTZ '{START}' + INTERVAL (hash(i + 7) % {DAYS}) DAY + INTERVAL 8 HOUR
                 + to_seconds((hash(i + 3) % 32400)::BIGINT),
               'branch-' || (i % 4) || '-staff' || ((i // 4) % 12), {feats}, '198.51.100.' || (i % 4)
        FROM range(6000) r(i)
        WHERE (hash(i + 7) % {DAYS} + (i // 4) % 12) % 3 <> 0""")
    # the rarely used key: one decision on day 0 from its branch; 40 on day 3 from 02:20, from a new address
    _decisions(ws, src, f"""
        SELECT 'x-0', TIMESTAMPTZ '{START}' + INTERVAL 10 HOUR, 'branch-1-rare',
               json_object('amount', 2500, 'term', 24),
               '198.51.100.1'
        UNION ALL
        SELECT 'x-' || (i + 1), TIMESTAMPTZ '{START}' + INTERVAL 3 DAY + INTERVAL 140 MINUTE
                 + to_seconds(i * 240), 'branch-1-rare', {feats}, '203.0.113.50'
        FROM range(40) r(i)""")
    yield ws
    ws.close()


def test_rarely_used_key_is_judged_against_its_peers(branch_ws):
    alerts = run_all(branch_ws, local_admin(), only=["credential"])
    cred = [a for a in alerts if a["detector"] == "credential"]
    assert [a["principal"] for a in cred] == ["branch-1-rare"], cred
    a = cred[0]
    assert a["evidence"]["history"] == "pooled with peers"
    assert a["evidence"]["signals"]["new_address"] and a["evidence"]["signals"]["off_hours"]
    assert a["evidence"]["new_addresses"] == ["203.0.113.50"]
    assert len(a["decision_ids"]) == 40 and all(d.startswith("x-") for d in a["decision_ids"])
    assert "peers" in a["summary"]


def test_key_without_history_or_peers_is_left_alone(branch_ws):
    # the same night episode from a key that has no earlier day and shares no address: nothing to compare with
    branch_ws.execute("UPDATE decisions SET principal = 'lonely', source_ip = '203.0.113.50' "
                      "WHERE principal = 'branch-1-rare'")
    alerts = run_all(branch_ws, local_admin(), only=["credential"])
    assert [a for a in alerts if a["detector"] == "credential"] == []


@pytest.fixture()
def rhythm_ws(tmp_path) -> Workspace:
    """Five days with a strong daily rhythm: 'hour' follows the clock, 'amount' rises 30% from day 3 06:00,
    'size' never changes. The default reference (the first 30%: a day and a half) covers the hours unevenly."""
    ws = open_workspace(tmp_path / "rhythm.duckdb")
    src = _source(ws)
    _catalog(ws, src, {"hour": "number", "amount": "number", "size": "number"})
    # time of day: mean of two uniforms around 13:00 (busy afternoons, quiet nights)
    ts = (f"TIMESTAMPTZ '{START}' + INTERVAL (i % {DAYS}) DAY + to_seconds(((hash(i) % 86400 + hash(i + 1) % 86400) "
          f"/ 2 + 3600 * 1)::BIGINT)")
    _decisions(ws, src, f"""
        SELECT 'd-' || i, t, 'client-' || (i % 40),
               json_object('hour', hour(t), 'size', round(exp(((hash(i + 2) % 1000) / 1000.0 - 0.5) * 2), 3),
                           'amount', round(exp(4 + ((hash(i + 3) % 1000) / 1000.0 - 0.5) * 2)
                                           * CASE WHEN t >= TIMESTAMPTZ '{START}' + INTERVAL 78 HOUR THEN 1.3
                                                  ELSE 1.0 END, 2)),
               '10.0.0.' || (i % 40)
        FROM (SELECT i, {ts} AS t FROM range(15000) r(i))""")
    yield ws
    ws.close()


def test_drift_is_judged_like_for_like_in_time_of_day(rhythm_ws):
    alerts = run_all(rhythm_ws, local_admin(), only=["drift"])
    drifted = {a["feature"] for a in alerts if a["detector"] == "drift"}
    assert "amount" in drifted, alerts
    assert "hour" not in drifted and "size" not in drifted, alerts


def test_one_odd_point_beside_a_gap_is_no_anomaly(tmp_path):
    ws = open_workspace(tmp_path / "metrics.duckdb")
    try:
        src = _source(ws)
        # a latency series logged only in minutes with traffic: every minute by day, one minute in ten at
        # night; one quiet night minute holds a single timed-out request, with no point for ten minutes after
        ws.execute(f"""
            INSERT INTO metrics (ts, system_id, metric, value, labels, source_id, source_line)
            SELECT m, 'sys', 'latency_p50_ms',
                   CASE WHEN m = TIMESTAMPTZ '{START}' + INTERVAL 3 DAY + INTERVAL 150 MINUTE THEN 4400.0
                        ELSE 40 + (hash(m) % 100) / 10.0 END, NULL, {src}, 0
            FROM range(TIMESTAMPTZ '{START}', TIMESTAMPTZ '{START}' + INTERVAL {DAYS} DAY, INTERVAL 1 MINUTE) g(m)
            WHERE hour(m) BETWEEN 7 AND 22 OR minute(m) % 10 = 0""")
        _decisions(ws, src, f"SELECT 'd-' || i, TIMESTAMPTZ '{START}' + to_seconds(i * 60), 'c', "
                            f"json_object('a', i % 7), NULL FROM range({DAYS * 1440}) r(i)")
        alerts = run_all(ws, local_admin(), only=["metric_anomaly"])
        assert alerts == [], alerts
    finally:
        ws.close()


def test_error_spike_names_the_principal_whose_calls_failed(tmp_path):
    """An error-rate episode is tied to the client whose decisions failed, not just reported as a number."""
    ws = open_workspace(tmp_path / "errors.duckdb")
    try:
        src = _source(ws)
        spike = (f"TIMESTAMPTZ '{START}' + INTERVAL 3 DAY + INTERVAL 14 HOUR",
                 f"TIMESTAMPTZ '{START}' + INTERVAL 3 DAY + INTERVAL 15 HOUR")
        # one error-rate point a minute (about 1%), 30% during one hour of day 3
        ws.execute(f"""
            INSERT INTO metrics (ts, system_id, metric, value, labels, source_id, source_line)
            SELECT m, 'sys', 'error_rate',
                   CASE WHEN m >= {spike[0]} AND m < {spike[1]} THEN 0.30 + (hash(m) % 10) / 1000.0
                        ELSE 0.01 + (hash(m) % 10) / 1000.0 END, NULL, {src}, 0
            FROM range(TIMESTAMPTZ '{START}', TIMESTAMPTZ '{START}' + INTERVAL {DAYS} DAY, INTERVAL 1 MINUTE) g(m)""")
        # 20 ordinary clients all along; in the spike hour 'client-7' sends its usual volume, but its calls fail
        _decisions(ws, src, f"SELECT 'd-' || i, TIMESTAMPTZ '{START}' + to_seconds(i * 12), 'client-' || (i % 20), "
                            f"json_object('a', i % 7), '10.0.0.' || (i % 20) FROM range({DAYS * 7200}) r(i)")
        ws.execute(f"UPDATE decisions SET status = 'error' WHERE principal = 'client-7' "
                   f"AND ts >= {spike[0]} AND ts < {spike[1]}")
        ws.execute("UPDATE decisions SET status = 'error' WHERE hash(decision_id) % 100 = 0 "
                   "AND principal <> 'client-7'")
        alerts = [a for a in run_all(ws, local_admin(), only=["metric_anomaly"]) if a["metric"] == "error_rate"]
        assert len(alerts) == 1, alerts
        ev = alerts[0]["evidence"]
        assert ev["principals"] == ["client-7"], ev["principals_in_window"]
        assert ev["principals_in_window"][0]["basis"] == "errors"
        assert "client-7" in alerts[0]["summary"]
    finally:
        ws.close()
