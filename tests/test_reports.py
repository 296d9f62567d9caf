"""Incident reports in md, html (self-contained, plotly) and pdf, with a manifest checked later."""

from __future__ import annotations

import json

import pytest
from case_helpers import ingest_decisions

from workbench.access import Actor
from workbench.cases import evidence, incidents, playbooks, reports
from workbench.errors import PermissionDenied

ANALYST = Actor("ana", "analyst")


@pytest.fixture()
def case(ws, admin, tmp_path):
    ingest_decisions(ws, admin, tmp_path, 0, 10)
    iid = incidents.create_incident(
        ws,
        ANALYST,
        "Backdoor on loan v2 — ünïcode",
        "critical",
        systems=["loan"],
        atlas=["AML.T0018.000"],
        description="Trigger value on purpose.",
    )["incident_id"]
    evidence.add_decision_set(ws, ANALYST, iid, "loan", ["d1", "d2", "d3"], "flipped decisions")
    evidence.add_explanation(
        ws,
        ANALYST,
        iid,
        {
            "method": "tree",
            "system_id": "loan",
            "decisions": [
                {
                    "decision_id": "d1",
                    "attributions": [
                        {"feature": "purpose", "value": "car", "shap": 1.2},
                        {"feature": "income", "value": 1001, "shap": -0.3},
                    ],
                }
            ],
        },
    )
    incidents.add_note(ws, ANALYST, iid, "Rolled back to v1 at 14:05 (CHG-1)")
    playbooks.set_step(ws, ANALYST, iid, "ai-backdoor-poisoned-version", "containment-1", True, "CHG-1")
    incidents.set_status(ws, ANALYST, iid, "triage")
    return iid


def test_markdown(ws, case) -> None:
    text = reports.render_report(ws, ANALYST, case, "md").decode()
    for heading in (
        "## 1. Summary",
        "## 2. Timeline",
        "## 3. Evidence",
        "## 4. Explanations",
        "## 5. Playbook progress",
        "## 6. Audit excerpt",
        "## 7. Manifest",
    ):
        assert heading in text
    for item in evidence.list_evidence(ws, ANALYST, case):
        assert item["sha256"] in text
    assert "| purpose | 1.2 |" in text and "CHG-1" in text
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'report.export'") == 1


def test_html_self_contained_with_plotly(ws, case) -> None:
    html = reports.render_report(ws, ANALYST, case, "html").decode()
    assert html.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in html and "fig-timeline" in html
    assert "<script src=" not in html and "<link" not in html  # plotly.js is inline
    assert "ünïcode" in html


def test_pdf(ws, case) -> None:
    pdf = reports.render_report(ws, ANALYST, case, "pdf")
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000


def test_write_and_check_manifest(ws, case, tmp_path) -> None:
    info = reports.write_report(ws, ANALYST, case, "md", tmp_path / "r.md")
    man = json.loads((tmp_path / "r.md.manifest.json").read_text())
    assert set(man["sections"]) == set(reports.SECTIONS) and len(man["evidence"]) == 3
    assert reports.verify_manifest(ws, ANALYST, man)["ok"]  # later audit rows do not matter
    ws.execute("UPDATE evidence_decisions SET score = 0.5 WHERE decision_id = 'd2'")
    result = reports.verify_manifest(ws, ANALYST, man)
    bad = [k for k, v in result["evidence"].items() if not v]
    assert not result["ok"] and bad == [str(min(int(k) for k in man["evidence"]))]  # the decision set
    assert info["sha256"] in ws.scalar("SELECT details FROM audit_log WHERE action = 'report.export'")


def test_roles(ws, case) -> None:
    with pytest.raises(PermissionDenied):
        reports.render_report(ws, Actor("v", "viewer"), case, "md")
    assert reports.render_report(ws, Actor("a", "auditor"), case, "md").startswith(b"# Incident report")
