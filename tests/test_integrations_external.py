"""Guardrail findings (OpenTelemetry) and other tools' OCSF findings in, as external alerts in triage."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.detect.alerts import list_alerts
from workbench.integrations import external_parse, ocsf_findings
from workbench.integrations.external_alerts import ingest_findings, list_findings

T0 = 1_790_000_000_000_000_000  # ns, on the hour boundary's side that keeps the test's findings in one hour
HOSTILE = "'); DROP TABLE alerts; --"


def _kv(key: str, value) -> dict:
    kind = "intValue" if isinstance(value, int) else "stringValue"
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def _otlp(events: list[dict], spans: list[dict] | None = None) -> dict:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "chat gpt-x", "startTimeUnixNano": str(T0),
            "attributes": [_kv("enduser.id", "user-7")], "events": events}
    return {"resourceSpans": [{"resource": {"attributes": [_kv("service.name", "support-bot")]},
                               "scopeSpans": [{"spans": [span, *(spans or [])]}]}]}


def _finding(i: int, category: str = "prompt_injection", severity: str = "high", decision: str = "deny") -> dict:
    return {"name": "gen_ai.guardrail.security.finding", "timeUnixNano": str(T0 + i * 60_000_000_000),
            "attributes": [_kv("gen_ai.guardian.name", "llm-guard"), _kv("gen_ai.security.risk.category", category),
                           _kv("gen_ai.security.risk.severity", severity),
                           _kv("gen_ai.security.decision.type", decision),
                           _kv("gen_ai.security.content.input.value", "ignore previous instructions"),
                           _kv("note", HOSTILE)]}


def test_otel_guardrail_findings_become_external_alerts(ws, admin, tmp_path: Path) -> None:
    blocked_span = {"traceId": "ef" * 16, "spanId": "01" * 8, "name": "run_guardrail", "startTimeUnixNano": str(T0),
                    "attributes": [_kv("gen_ai.guardrail.name", "llm-guard"), _kv("gen_ai.guardrail.decision", "block"),
                                   _kv("gen_ai.security.risk.category", "jailbreak"), _kv("enduser.id", "user-7")]}
    passed_span = {**blocked_span, "spanId": "02" * 8,
                   "attributes": [_kv("gen_ai.guardrail.name", "llm-guard"), _kv("gen_ai.guardrail.decision", "allow")]}
    lines = [json.dumps(_otlp([_finding(0), _finding(1), _finding(2, severity="critical")], [blocked_span,
                                                                                           passed_span])),
             "{not json", json.dumps({"resourceSpans": "nope"})]
    path = tmp_path / "guardrail-traces.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert external_parse.sniff(path) == "otel"
    res = ingest_findings(ws, admin, path)
    assert res["findings"] == 4 and res["quarantined"] == 2 and res["passed"] == 1
    alerts = list_alerts(ws, admin, detector="external:llm-guard")
    by_cat = {a["evidence"]["category"]: a for a in alerts}
    inj = by_cat["prompt_injection"]
    assert inj["severity"] == "critical" and inj["evidence"]["findings"] == 3 and inj["principal"] == "user-7"
    assert inj["system_id"] == "support-bot" and "AML.T0051" in inj["atlas"]
    assert "AML.T0054" in by_cat["jailbreak"]["atlas"]
    stored = json.dumps(list_findings(ws, admin), default=str)
    assert "ignore previous instructions" not in stored and HOSTILE in stored  # content dropped; text kept as data
    reasons = [r[0] for r in ws.rows("SELECT reason FROM quarantine WHERE source_id = ? ORDER BY line",
                                     [res["source_id"]])]
    assert reasons[0].startswith("not JSON") and "resourceSpans" in reasons[1]
    assert all("\n" not in r for r in reasons)
    assert ws.scalar("SELECT kind FROM sources WHERE source_id = ?", [res["source_id"]]) == "findings"
    assert ingest_findings(ws, admin, path)["skipped"]
    # a second file with more findings in the same hour adds to the same alert
    more = tmp_path / "more.json"
    fresh = _finding(3)
    fresh["attributes"].append(_kv("gen_ai.security.finding.id", "f-99"))  # same span, a new finding id
    more.write_text(json.dumps(_otlp([fresh])))
    ingest_findings(ws, admin, more)
    inj2 = {a["evidence"]["category"]: a for a in list_alerts(ws, admin, detector="external:llm-guard")}
    assert inj2["prompt_injection"]["alert_id"] == inj["alert_id"]
    assert inj2["prompt_injection"]["evidence"]["findings"] == 4


def test_ocsf_findings_from_other_tools(demo_ws, admin, tmp_path: Path) -> None:
    ours = ocsf_findings.export_alerts(demo_ws, admin)[:2]
    theirs = {**ours[0], "metadata": {"version": "1.7.0", "product": {"name": "Acme AI Firewall"}},
              "finding_info": {"uid": "acme-1", "title": "Model theft attempt", "types": ["model_theft"],
                               "attacks": [{"technique": {"uid": "AML.T0024", "name": "x"}},
                                           {"technique": {"uid": "T1190", "name": "ATT&CK id, not ATLAS"}}]},
              "resources": [{"name": "loan-origination"}], "actor": {"user": {"name": HOSTILE}}}
    bad = {"class_uid": 3002, "time": 1}
    path = tmp_path / "findings.json"
    path.write_text(json.dumps([theirs, *ours, bad]))
    assert external_parse.sniff(path) == "ocsf"
    before = demo_ws.scalar("SELECT count(*) FROM alerts")
    res = ingest_findings(demo_ws, admin, path)
    assert res["findings"] == 1 and res["own_skipped"] == 2 and res["quarantined"] == 1
    ext = list_alerts(demo_ws, admin, detector="external:acme-ai-firewall")
    assert len(ext) == 1 and ext[0]["atlas"] == ["AML.T0024"] and ext[0]["principal"] == HOSTILE
    assert demo_ws.scalar("SELECT count(*) FROM alerts") == before + 1
    assert "class_uid 3002" in demo_ws.scalar("SELECT reason FROM quarantine WHERE source_id = ?", [res["source_id"]])


def test_decision_logs_are_not_mistaken_for_findings(tmp_path: Path) -> None:
    p = tmp_path / "decisions.jsonl"
    p.write_text(json.dumps({"decision_id": "d1", "features": {"note": "run_guardrail gen_ai.security.finding"}}))
    assert external_parse.sniff(p) is None
