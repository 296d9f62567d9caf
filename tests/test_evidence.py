"""Evidence: frozen decision sets and metric windows, hashes, files, verification, alerts, role checks."""

from __future__ import annotations

import hashlib
import os

import pytest
from case_helpers import T0, add_metrics, ingest_decisions

from workbench.access import Actor
from workbench.cases import evidence, evidence_results, incidents
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


# -- issue 16: evidence from where the analyst stands ------------------------------------------------------------
def test_uploaded_bytes_hashed_read_only_and_size_limited(ws, case, monkeypatch) -> None:
    import hashlib

    from workbench.cases.evidence_hashing import evidence_store

    data = b"screenshot bytes\n"
    item = evidence.add_file_bytes(ws, ANALYST, case, "../../etc/shot.png", data, "screenshot")
    assert item["sha256"] == hashlib.sha256(data).hexdigest() and item["label"] == "screenshot"
    path = evidence_store(ws) / item["store_path"]
    assert path.parent.name == case and path.name.endswith("shot.png") and not path.stat().st_mode & 0o222
    monkeypatch.setenv("WORKBENCH_EVIDENCE_MAX_MB", "0.00001")  # ~10 bytes
    with pytest.raises(WorkbenchError, match="limited to"):
        evidence.add_file_bytes(ws, ANALYST, case, "big.bin", data)
    assert all(r["ok"] for r in evidence.verify_evidence(ws, ANALYST, case))


def test_attribution_drift_and_drift_tests_frozen(ws, case) -> None:
    rows = [{"feature": "income", "alert_share": 0.6, "reference_share": 0.2, "share_rise": 0.4,
             "alert_top_value": 1111},
            {"feature": "purpose", "alert_share": 0.1, "reference_share": 0.3, "share_rise": -0.2,
             "alert_top_value": "car"}]
    item = evidence_results.add_attribution_drift(ws, ANALYST, case, "loan", rows,
                                                  meta={"alert_n": 30, "reference_n": 300})
    assert item["kind"] == "explanation" and item["label"] == "attribution drift of loan (30 decisions vs reference)"
    assert item["content"]["method"] == "attribution_drift" and item["content"]["attributions"]["income"] == 0.4
    drift = evidence_results.add_drift(ws, ANALYST, case, "loan", [
        {"target": "income", "test": "ks", "window_start": "2025-03-01T00:00:00Z",
         "window_end": "2025-03-02T00:00:00Z", "statistic": 0.3, "threshold": 0.1, "verdict": "drift"}],
        target="income")
    assert drift["kind"] == "drift" and drift["item_count"] == 1 and drift["event_start"] is not None
    assert all(r["ok"] for r in evidence.verify_evidence(ws, ANALYST, case))
    with pytest.raises(WorkbenchError, match="share_rise"):
        evidence_results.add_attribution_drift(ws, ANALYST, case, "loan", [{"feature": "x"}])


def test_cli_files_its_own_json_output(demo_ws, tmp_path, capsys, monkeypatch) -> None:
    import json
    import sys

    from workbench.cli import main

    system, ids = demo_ws.one("SELECT system_id, list(decision_id ORDER BY decision_id)[1:2] FROM decisions "
                              "WHERE system_id = 'loan-origination' GROUP BY ALL")
    iid = incidents.create_incident(demo_ws, ANALYST, "CLI output", "high")["incident_id"]
    path = str(demo_ws.path)
    demo_ws.close()

    def run(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["workbench", *args, "--db", path])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        return capsys.readouterr().out

    explained = tmp_path / "explain.jsonl"
    explained.write_text(run("explain", "--system", system, "--decision-id", ids[0], "--decision-id", ids[1],
                             "--json"))
    drift = tmp_path / "drift.jsonl"
    drift.write_text(run("attribution-drift", "--system", system, "--decision-id", ids[0], "--decision-id", ids[1],
                         "--reference-size", "50", "--json"))
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"a": 1}, {"a": 2}]))
    one = json.loads(run("incident", "add-evidence", iid, "--kind", "json", "--file", str(explained), "--json"))
    assert one["kind"] == "explanation" and one["label"].startswith("SHAP explanations of 2 decisions")
    assert len(one["content"]["decisions"]) == 2 and one["content"]["source"] == "workbench explain --json"
    two = json.loads(run("incident", "add-evidence", iid, "--kind", "explanation", "--file", str(drift),
                         "--system", system, "--json"))
    assert two["content"]["method"] == "attribution_drift" and two["label"].startswith("attribution drift of")
    three = json.loads(run("incident", "add-evidence", iid, "--kind", "json", "--file", str(other), "--json"))
    assert three["kind"] == "file" and three["label"] == "JSON output: 2 record(s) (a)"


def _freeze_app() -> None:
    """A page holding the three freeze widgets, as Decisions, Drift and Triage call them."""
    import pandas as pd
    import streamlit as st

    from workbench.access import local_admin
    from workbench.ui import evidence_widgets

    actor = local_admin()
    system = "loan-origination"
    evidence_widgets.freeze_explanation(actor, system, {"decision_id": "LO-1", "method": "tree", "attributions": [
        {"feature": "income", "value": 1, "shap": 0.2}]})
    tests = pd.DataFrame([{"target": "income", "test": "ks", "window_start": pd.Timestamp("2026-10-03", tz="UTC"),
                           "window_end": pd.Timestamp("2026-10-04", tz="UTC"), "statistic": 0.3, "threshold": 0.1,
                           "verdict": "drift"}])
    attribution = pd.DataFrame([{"feature": "income", "alert_share": 0.5, "reference_share": 0.2,
                                 "share_rise": 0.3}])
    attribution.attrs.update({"alert_n": 12, "reference_n": 100})
    # computed on a button press: only the first run has it, as on the Drift page
    evidence_widgets.freeze_drift_page(actor, system, tests, "income",
                                       None if st.session_state.get("seen") else attribution)
    st.session_state["seen"] = True
    evidence_widgets.freeze_alert_metrics(actor, {"alert_id": "AL-x", "system_id": system,
                                                  "window_start": "2026-10-03T10:00:00Z",
                                                  "window_end": "2026-10-03T11:00:00Z"})


def test_app_freezes_from_where_the_analyst_stands(demo_ws, tmp_path, monkeypatch) -> None:
    import shutil

    from streamlit.testing.v1 import AppTest

    from workbench.store import open_workspace

    iid = incidents.create_incident(demo_ws, ANALYST, "Freeze", "high")["incident_id"]
    demo_ws.execute("CHECKPOINT")
    path = tmp_path / "app.duckdb"
    shutil.copy(demo_ws.path, path)
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    at = AppTest.from_function(_freeze_app, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    for key in ("frz_shap_go", "frz_drift_tests_go", "frz_drift_attr_go", "frz_metrics_go"):
        at.button(key=key).click().run()
        assert not at.exception and not at.error, (key, [e.value for e in at.exception], [e.value for e in at.error])
        assert any(iid in s.value for s in at.success), key
    ws = open_workspace(path)
    try:
        got = ws.rows("SELECT kind, label FROM evidence WHERE incident_id = ? ORDER BY evidence_id", [iid])
        assert [k for k, _ in got] == ["explanation", "drift", "explanation", "metric_window"]
        assert got[2][1] == "attribution drift of loan-origination (12 decisions)"
        assert all(r["ok"] for r in evidence.verify_evidence(ws, ANALYST, iid))
    finally:
        ws.close()
