"""Sinks and the outbox: signed webhooks to a local receiver, file sinks, escalation, backoff, masking, TLP."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from workbench.access import Actor
from workbench.access.masking import Masker, mark_personal
from workbench.cases.incidents import create_incident, mark
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.integrations import outbox, sinks, webhook
from workbench.integrations.ocsf_findings import validate

SECRET = "s3cret-for-tests-7f1c"


class Receiver:
    """A webhook receiver on 127.0.0.1 (http.server in a thread) that keeps every request it gets."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.delay:
                    time.sleep(outer.delay)
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(outer.reply(self.path, body))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, path: str, body: bytes) -> bytes:
        return b"{}"

    def events(self) -> list[str]:
        return [r["headers"].get(webhook.IDEMPOTENCY_HEADER) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WB_TEST_HOOK_SECRET", SECRET)
    return "WB_TEST_HOOK_SECRET"


def test_webhook_delivery_is_signed_with_text_and_idempotency_key(demo_ws, admin, receiver, secret_env) -> None:
    sink = sinks.add_sink(demo_ws, admin, "webhook", receiver.url + "/hook", secret_env=secret_env, backfill=True)
    assert outbox.enqueue(demo_ws, admin)["new"] == demo_ws.scalar("SELECT count(*) FROM alerts") > 0
    figures = outbox.deliver(demo_ws, admin)
    assert figures["delivered"] == len(receiver.requests) > 0
    for req in receiver.requests:
        body = json.loads(req["body"])
        assert webhook.verify(SECRET.encode(), req["body"], req["headers"][webhook.SIGNATURE_HEADER])
        key = req["headers"][webhook.IDEMPOTENCY_HEADER]
        assert key == body["event_id"] == f"{body['alert_id']}/{body['severity']}"
        assert body["text"].startswith("[workbench]") and body["alert_id"] in body["text"]
        assert body["event"] == "new" and body["summary"]
    # nothing is sent twice: a second round finds nothing due
    assert outbox.enqueue(demo_ws, admin) == {"new": 0, "escalated": 0}
    assert outbox.deliver(demo_ws, admin)["delivered"] == 0
    assert demo_ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'sink.deliver'") == figures["delivered"]
    assert sinks.get_sink(demo_ws, admin, sink["sink_id"])["delivered"] == figures["delivered"]


def test_secret_is_never_stored_in_clear(demo_ws, admin, receiver, secret_env) -> None:
    sinks.add_sink(demo_ws, admin, "webhook", receiver.url, secret_env=secret_env, backfill=True)
    outbox.enqueue(demo_ws, admin)
    outbox.deliver(demo_ws, admin)
    shown = sinks.list_sinks(demo_ws, admin)
    assert shown[0]["secret_env"] == secret_env and shown[0]["secret_set"] is True
    for table in ("sinks", "outbox", "audit_log", "sink_notices"):
        text = demo_ws.scalar(f"SELECT string_agg(CAST(t AS VARCHAR), '') FROM {table} t")
        assert SECRET not in (text or ""), table
    with pytest.raises(WorkbenchError, match="credentials"):
        sinks.add_sink(demo_ws, admin, "webhook", "http://user:pw@127.0.0.1:9/")
    with pytest.raises(WorkbenchError, match="environment variable name"):
        sinks.add_sink(demo_ws, admin, "webhook", receiver.url, secret_env="not a name; rm -rf")


def test_missing_secret_at_delivery_retries_not_sends_unsigned(demo_ws, admin, receiver, monkeypatch) -> None:
    monkeypatch.delenv("WB_TEST_MISSING", raising=False)
    sinks.add_sink(demo_ws, admin, "webhook", receiver.url, secret_env="WB_TEST_MISSING", backfill=True)
    outbox.enqueue(demo_ws, admin)
    figures = outbox.deliver(demo_ws, admin)
    assert figures["delivered"] == 0 and figures["retrying"] == 1 and not receiver.requests
    assert "WB_TEST_MISSING" in demo_ws.scalar("SELECT any_value(last_error) FROM outbox WHERE attempts = 1")


def test_new_sink_starts_now_and_escalation_is_sent_once(demo_ws, admin, receiver) -> None:
    sinks.add_sink(demo_ws, admin, "webhook", receiver.url)
    assert outbox.enqueue(demo_ws, admin) == {"new": 0, "escalated": 0}  # what existed before is not re-sent
    aid = demo_ws.scalar("SELECT alert_id FROM alerts WHERE severity <> 'critical' ORDER BY alert_id LIMIT 1")
    demo_ws.execute("UPDATE alerts SET severity = 'critical' WHERE alert_id = ?", [aid])
    assert outbox.enqueue(demo_ws, admin) == {"new": 0, "escalated": 1}
    assert outbox.enqueue(demo_ws, admin) == {"new": 0, "escalated": 0}
    outbox.deliver(demo_ws, admin)
    body = json.loads(receiver.requests[0]["body"])
    assert body["event"] == "escalated" and body["event_id"] == f"{aid}/critical" and body["previous_severity"]
    assert "escalated to CRITICAL" in body["text"]


def test_min_severity_filters(demo_ws, admin, receiver) -> None:
    sinks.add_sink(demo_ws, admin, "webhook", receiver.url, min_severity="critical", backfill=True)
    outbox.enqueue(demo_ws, admin)
    outbox.deliver(demo_ws, admin)
    assert receiver.requests
    assert {json.loads(r["body"])["severity"] for r in receiver.requests} == {"critical"}


def test_failures_back_off_then_give_up_audited(demo_ws, admin) -> None:
    bad = Receiver(status=503)
    try:
        sinks.add_sink(demo_ws, admin, "webhook", bad.url, backfill=True)
        outbox.enqueue(demo_ws, admin)
        first = outbox.deliver(demo_ws, admin, backoff=60)
        assert first == {"delivered": 0, "retrying": 1, "failed": 0}  # the sink is skipped for the rest of the round
        row = demo_ws.one("SELECT attempts, next_attempt, last_error FROM outbox WHERE attempts > 0")
        assert row[0] == 1 and "503" in row[2]
        assert 50 < (row[1] - datetime.now(UTC)).total_seconds() <= 60
        assert outbox.deliver(demo_ws, admin)["retrying"] == 0  # not due yet
        demo_ws.execute("UPDATE outbox SET next_attempt = now() - INTERVAL 1 SECOND")
        assert outbox.deliver(demo_ws, admin, max_attempts=2)["failed"] == 1
        assert demo_ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'sink.gave_up'") == 1
        assert outbox.retry_failed(demo_ws, admin) == 1
    finally:
        bad.close()


def test_file_sinks_ocsf_and_jsonl_no_duplicates_on_resend(demo_ws, admin, tmp_path: Path) -> None:
    ocsf_file, jsonl_file = tmp_path / "out" / "findings.ocsf.jsonl", tmp_path / "alerts.jsonl"
    sinks.add_sink(demo_ws, admin, "file", str(ocsf_file), fmt="ocsf", backfill=True)
    sinks.add_sink(demo_ws, admin, "file", str(jsonl_file), fmt="jsonl", backfill=True)
    outbox.enqueue(demo_ws, admin)
    outbox.deliver(demo_ws, admin)
    n = demo_ws.scalar("SELECT count(*) FROM alerts")
    docs = [json.loads(x) for x in ocsf_file.read_text().splitlines()]
    assert len(docs) == n and all(validate(d) == [] for d in docs)
    assert len(jsonl_file.read_text().splitlines()) == n
    # a kill after the append but before the mark: the event is pending again, and not written twice
    demo_ws.execute("UPDATE outbox SET state = 'pending', next_attempt = now()")
    assert outbox.deliver(demo_ws, admin)["delivered"] == 2 * n
    assert len(ocsf_file.read_text().splitlines()) == n and len(jsonl_file.read_text().splitlines()) == n


def test_tlp_red_incident_alerts_never_leave(demo_ws, admin, receiver) -> None:
    aid = demo_ws.scalar("SELECT alert_id FROM alerts ORDER BY alert_id LIMIT 1")
    inc = create_incident(demo_ws, admin, "secret case", "high", alert_ids=[aid])
    mark(demo_ws, admin, inc["incident_id"], tlp="red")
    sinks.add_sink(demo_ws, admin, "webhook", receiver.url, backfill=True)
    outbox.enqueue(demo_ws, admin)
    outbox.deliver(demo_ws, admin)
    sent = {json.loads(r["body"])["alert_id"] for r in receiver.requests}
    assert sent and aid not in sent


def test_personal_values_masked_unless_admin_says_so(demo_ws, admin, receiver) -> None:
    row = demo_ws.one("SELECT system_id, feature FROM alerts WHERE feature IS NOT NULL ORDER BY alert_id LIMIT 1")
    if row is None:
        pytest.skip("no feature alert in the sample")
    mark_personal(demo_ws, admin, row[0], [row[1]])
    sinks.add_sink(demo_ws, admin, "webhook", receiver.url, backfill=True)
    outbox.enqueue(demo_ws, admin)
    outbox.deliver(demo_ws, admin)
    from workbench.detect.alerts import fetch

    raw = {a["alert_id"]: a for a in fetch(demo_ws, with_decisions=False)}
    masked = Masker(demo_ws, Actor("x", "analyst"))
    got = {b["alert_id"]: b for b in (json.loads(r["body"]) for r in receiver.requests)}
    hit = [a for a in got if raw[a]["feature"] == row[1] and raw[a]["system_id"] == row[0]]
    assert hit
    for a in hit:
        assert got[a]["evidence"] == masked.alert(raw[a])["evidence"]
        if masked.alert(raw[a])["evidence"] != raw[a]["evidence"]:
            assert got[a]["evidence"] != raw[a]["evidence"]
    with pytest.raises(PermissionDenied):
        sinks.add_sink(demo_ws, Actor("ana", "lead"), "webhook", receiver.url, unmasked=True)


def test_sink_test_remove_and_permissions(demo_ws, admin, receiver, tmp_path: Path) -> None:
    s = sinks.add_sink(demo_ws, admin, "webhook", receiver.url)
    assert sinks.test_sink(demo_ws, admin, s["sink_id"])["ok"] and len(receiver.requests) == 1
    f = sinks.add_sink(demo_ws, admin, "file", str(tmp_path / "x.jsonl"), fmt="jsonl")
    assert sinks.test_sink(demo_ws, admin, f["sink_id"])["ok"]
    down = sinks.add_sink(demo_ws, admin, "webhook", "http://127.0.0.1:9/nothing")
    res = sinks.test_sink(demo_ws, admin, down["sink_id"])
    assert not res["ok"] and "\n" not in res["error"]
    with pytest.raises(PermissionDenied):
        sinks.add_sink(demo_ws, Actor("v", "viewer"), "webhook", receiver.url)
    with pytest.raises(WorkbenchError, match="--format"):
        sinks.add_sink(demo_ws, admin, "file", str(tmp_path / "y"))
    assert sinks.remove_sink(demo_ws, admin, s["sink_id"])["sink_id"] == s["sink_id"]
    assert [x["sink_id"] for x in sinks.list_sinks(demo_ws, admin)] == [f["sink_id"], down["sink_id"]]
    actions = [r[0] for r in demo_ws.rows("SELECT action FROM audit_log WHERE action LIKE 'sink.%' ORDER BY seq")]
    assert actions.count("sink.add") == 3 and actions.count("sink.test") == 3 and "sink.remove" in actions


def test_sink_cli(demo_ws, receiver, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app
    path = str(demo_ws.path)
    demo_ws.close()
    run = CliRunner().invoke
    r = run(app, ["sink", "add", "webhook", receiver.url, "--min-severity", "high", "--db", path, "--json"])
    assert r.exit_code == 0, r.output
    sink_id = json.loads(r.output)["sink_id"]
    r = run(app, ["sink", "add", "file", str(tmp_path / "a.ocsf"), "--format", "ocsf", "--backfill", "--db", path])
    assert r.exit_code == 0, r.output
    r = run(app, ["sink", "list", "--db", path, "--json"])
    assert [json.loads(x)["kind"] for x in r.output.splitlines()] == ["webhook", "file"]
    assert run(app, ["sink", "test", str(sink_id), "--db", path]).exit_code == 0
    r = run(app, ["sink", "deliver", "--db", path, "--json"])
    assert json.loads(r.output)["delivered"] > 0
    assert run(app, ["sink", "remove", str(sink_id), "--db", path]).exit_code == 0
