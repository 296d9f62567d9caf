"""Evidence: frozen decision sets and metric windows, hashes, files, verification, alerts, role checks."""

from __future__ import annotations

import hashlib
import os

import pytest
from case_helpers import T0, add_metrics, ingest_decisions

from workbench.access import Actor
from workbench.cases import evidence, incidents
from workbench.errors import PermissionDenied, WorkbenchError

ANALYST = Actor("ana", "analyst")


@pytest.fixture()
def case(ws, admin, tmp_path):
    ingest_decisions(ws, admin, tmp_path, 0, 20)
    return incidents.create_incident(ws, ANALYST, "Probe walk", "high", systems=["loan"])["incident_id"]


def test_decision_set_frozen_after_later_ingest(ws, admin, tmp_path, case) -> None:
    item = evidence.add_decision_set(
        ws, ANALYST, case, "loan", [f"d{i}" for i in range(5)] + ["nope"], "walk"
    )
    assert item["item_count"] == 5 and item["content"]["missing"] == 1
    assert item["event_start"] == T0 and item["kind"] == "decision_set"
    before = evidence.snapshot(ws, ANALYST, item["evidence_id"])
    ingest_decisions(ws, admin, tmp_path, 15, 30)  # later ingest: new rows and overlapping ids
    ws.execute("UPDATE decisions SET prediction = 'approve', score = 0.99 WHERE decision_id = 'd0'")
    after = evidence.snapshot(ws, ANALYST, item["evidence_id"])
    assert before.equals(after)
    (check,) = evidence.verify_evidence(ws, ANALYST, case)
    assert check["ok"] and check["recomputed"] == item["sha256"]
    assert check["live"] == "changed"  # the live table moved on; the frozen copy did not
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'read.decisions'") == 2


def test_tampered_snapshot_is_caught(ws, case) -> None:
    item = evidence.add_decision_set(ws, ANALYST, case, "loan", ["d1", "d2"], None)
    assert evidence.verify_evidence(ws, ANALYST, case)[0]["live"] == "same"
    ws.execute(
        "UPDATE evidence_decisions SET prediction = 'deny' WHERE evidence_id = ?", [item["evidence_id"]]
    )
    (check,) = evidence.verify_evidence(ws, ANALYST, case)
    assert not check["ok"]


def test_decision_hash_recipe_is_reproducible(ws, case) -> None:
    item = evidence.add_decision_set(ws, ANALYST, case, "loan", ["d3", "d4"], None)
    lines = [
        r[0]
        for r in ws.rows(
            f"SELECT {evidence.DECISION_JSON} FROM evidence_decisions WHERE evidence_id = ? "
            "ORDER BY system_id, decision_id, source_id, source_line",
            [item["evidence_id"]],
        )
    ]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == item["sha256"]


def test_no_matching_decisions(ws, case) -> None:
    with pytest.raises(WorkbenchError, match="none of the"):
        evidence.add_decision_set(ws, ANALYST, case, "loan", ["zzz"], None)
    assert ws.scalar("SELECT count(*) FROM evidence") == 0


def test_metric_window_frozen(ws, case) -> None:
    add_metrics(ws)
    item = evidence.add_metric_window(
        ws, ANALYST, case, "loan", "request_rate", T0.isoformat(), "2025-03-01T12:10:00Z"
    )
    assert item["item_count"] == 10
    ws.execute("DELETE FROM metrics")
    assert len(evidence.snapshot(ws, ANALYST, item["evidence_id"])) == 10
    assert evidence.verify_evidence(ws, ANALYST, case)[0]["ok"]
    with pytest.raises(WorkbenchError, match="no request_rate points"):
        evidence.add_metric_window(ws, ANALYST, case, "loan", "request_rate", T0, "2025-03-01T12:10:00Z")


def test_file_explanation_note(ws, case, tmp_path) -> None:
    src = tmp_path / "gateway.log"
    src.write_text("10.0.0.1 POST /score 200\n")
    item = evidence.add_file(ws, ANALYST, case, src, "gateway log")
    stored = evidence.evidence_store(ws) / item["store_path"]
    assert stored.read_bytes() == src.read_bytes()
    assert item["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert not os.access(stored, os.W_OK) or os.geteuid() == 0
    src.write_text("changed later")  # the copy, not the original, is the evidence
    payload = {
        "method": "tree",
        "system_id": "loan",
        "decision_id": "d1",
        "attributions": [{"feature": "income", "value": 1001, "shap": 0.4}],
    }
    exp = evidence.add_explanation(ws, ANALYST, case, payload)
    assert exp["content"] == payload
    evidence.add_note(ws, ANALYST, case, "checked the gateway")
    checks = evidence.verify_evidence(ws, ANALYST, case)
    assert [c["kind"] for c in checks] == ["file", "explanation", "note"] and all(c["ok"] for c in checks)
    os.chmod(stored, 0o644)
    stored.write_text("tampered")
    assert not evidence.verify_evidence(ws, ANALYST, case)[0]["ok"]
    assert [e["kind"] for e in evidence.list_evidence(ws, ANALYST, case)] == ["file", "explanation", "note"]


def test_roles(ws, case) -> None:
    for role in ("viewer", "auditor"):
        who = Actor("x", role)
        with pytest.raises(PermissionDenied):
            evidence.add_note(ws, who, case, "x")
        with pytest.raises(PermissionDenied):
            evidence.add_decision_set(ws, who, case, "loan", ["d1"], None)
    with pytest.raises(PermissionDenied):
        evidence.list_evidence(ws, Actor("v", "viewer"), case)
    item = evidence.add_decision_set(ws, ANALYST, case, "loan", ["d1"], None)
    assert len(evidence.snapshot(ws, Actor("a", "auditor"), item["evidence_id"])) == 1


def test_incident_from_alert(demo_ws, admin) -> None:
    from workbench.detect import list_alerts

    alerts = list_alerts(demo_ws, admin)
    if not alerts:
        pytest.skip("the demo workspace produced no alerts")
    alert = next((a for a in alerts if a.get("decision_ids")), alerts[0])
    inc = incidents.create_incident(
        demo_ws, ANALYST, "From alert", alert["severity"], alert_ids=[alert["alert_id"]]
    )
    assert alert["system_id"] in inc["systems"] and set(alert["atlas"]) <= set(inc["atlas"])
    (item,) = evidence.list_evidence(demo_ws, ANALYST, inc["incident_id"], with_content=True)
    assert item["kind"] == "alert" and item["ref"] == alert["alert_id"]
    assert item["content"]["detector"] == alert["detector"]
    assert evidence.verify_evidence(demo_ws, ANALYST, inc["incident_id"])[0]["ok"]
