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
    assert "| feature | feature value | SHAP |" in text and "| purpose | car | 1.2 |" in text and "CHG-1" in text
    assert "| income | 1001 | -0.3 |" in text
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


TRIGGER_EXPLANATION = {
    "decision_id": "d1",
    "method": "tree",
    "system_id": "loan",
    "base_value": -2.382779109126493,
    "attributions": [
        {"feature": "monthly_housing_cost", "value": 1337, "shap": -2.5456765576374134},
        {"feature": "credit_score", "value": 543.0, "shap": 0.6920957116641041},
        {"feature": "debt_to_income", "value": 0.43, "shap": 0.09389597605081772},
        {"feature": "purpose", "value": "debt_consolidation", "shap": 0.03759874696591064},
    ],
}


def test_explanation_table_shows_feature_values_and_rounded_shap(ws, case) -> None:
    evidence.add_explanation(ws, ANALYST, case, TRIGGER_EXPLANATION, "decision d1")
    text = reports.render_report(ws, ANALYST, case, "md").decode()
    assert "| monthly_housing_cost | 1337 | -2.546 |" in text
    assert "| credit_score | 543 | 0.6921 |" in text and "| debt_to_income | 0.43 | 0.0939 |" in text
    assert "2.5456765576374134" not in text.split("## 7. Manifest")[0]
    html = reports.render_report(ws, ANALYST, case, "html").decode()
    assert "<td>1337</td>" in html and "<td>-2.546</td>" in html and "<th>feature value</th>" in html


def test_pdf_explanation_table_text(ws, case, tmp_path) -> None:
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    evidence.add_explanation(ws, ANALYST, case, TRIGGER_EXPLANATION, "decision d1")
    path = tmp_path / "r.pdf"
    path.write_bytes(reports.render_report(ws, ANALYST, case, "pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "feature value" in text and "SHAP" in text
    assert "monthly_housing_cost = 1337" in text and "-2.546" in text and "2.5456765576" not in text


def test_attribution_rows_shapes() -> None:
    measure, rows = reports.attribution_rows(TRIGGER_EXPLANATION)
    assert measure == "SHAP" and rows[0] == {
        "feature": "monthly_housing_cost", "feature_value": 1337, "attribution": -2.5456765576374134}
    many = {"decisions": [{"attributions": [{"feature": "x", "value": 1337, "shap": -1.0},
                                            {"feature": "y", "value": v, "shap": 0.5}]} for v in (1, 2)]}
    measure, rows = reports.attribution_rows(many)
    assert measure == "mean |SHAP| over 2 decisions"
    assert rows == [{"feature": "x", "feature_value": 1337, "attribution": 1.0},
                    {"feature": "y", "feature_value": "2 different values", "attribution": 0.5}]
    measure, rows = reports.attribution_rows({"attributions": {"a": 0.25, "b": -1.0}})
    assert measure == "attribution" and [r["feature"] for r in rows] == ["b", "a"]
    assert rows[0]["feature_value"] is None
    assert reports.attributions(TRIGGER_EXPLANATION)[0] == ("monthly_housing_cost", -2.5456765576374134)


def test_roles(ws, case) -> None:
    with pytest.raises(PermissionDenied):
        reports.render_report(ws, Actor("v", "viewer"), case, "md")
    assert reports.render_report(ws, Actor("a", "auditor"), case, "md").startswith(b"# Incident report")


# -- the report's "as of" (issue 12, item 11) -----------------------------------------------------------------
def _later_work(ws, iid: str) -> None:
    """Everything an analyst might do on the case after a report was filed."""
    incidents.add_note(ws, ANALYST, iid, "A later note: the vendor called back.")
    incidents.update(ws, ANALYST, iid, title="Renamed later", severity="high", description="Rewritten later.")
    incidents.assign(ws, ANALYST, iid, "ben")
    incidents.set_status(ws, ANALYST, iid, "contained")
    playbooks.set_step(ws, ANALYST, iid, "ai-backdoor-poisoned-version", "containment-1", False, "undone later")
    evidence.add_explanation(ws, ANALYST, iid, TRIGGER_EXPLANATION, "a later explanation")


def test_report_shows_the_case_as_of_its_cut(ws, case) -> None:
    before = reports.report_data(ws, ANALYST, case)
    _later_work(ws, case)
    then = reports.report_data(ws, ANALYST, case, as_of_seq=before["as_of_seq"])
    assert then["hashes"] == before["hashes"] and then["sections"] == before["sections"]
    sm = then["sections"]["summary"]
    assert (sm["title"], sm["severity"], sm["status"], sm["owner"]) == (
        "Backdoor on loan v2 — ünïcode", "critical", "triage", None)
    assert sm["description"] == "Trigger value on purpose." and len(sm["history"]) == 2
    assert [e["kind"] for e in then["sections"]["evidence"]] == ["decision_set", "explanation", "note"]
    step = then["sections"]["playbooks"][0]["steps"][0]
    assert (step["step_id"], step["done"], step["note"]) == ("containment-1", True, "CHG-1")
    assert max(r["seq"] for r in then["sections"]["audit"]) <= before["as_of_seq"]
    now = reports.report_data(ws, ANALYST, case)
    assert now["sections"]["summary"]["title"] == "Renamed later" and len(now["sections"]["evidence"]) == 5


def test_check_passes_after_later_work_and_fails_on_changes_at_the_cut(ws, case, tmp_path) -> None:
    reports.write_report(ws, ANALYST, case, "md", tmp_path / "r.md")
    man = json.loads((tmp_path / "r.md.manifest.json").read_text())
    _later_work(ws, case)
    result = reports.verify_manifest(ws, ANALYST, man, report_file=tmp_path / "r.md")
    assert result["ok"], result
    note = ws.scalar("SELECT min(evidence_id) FROM evidence WHERE kind = 'note'")
    ws.execute("UPDATE evidence SET label = 'Rolled back at 15:00' WHERE evidence_id = ?", [note])
    result = reports.verify_manifest(ws, ANALYST, man)
    assert not result["ok"] and not result["sections"]["evidence"] and result["sections"]["audit"]
    ws.execute("UPDATE evidence SET content = ? WHERE evidence_id = ?",
               [json.dumps({"author": "ana", "text": "Rolled back at 15:00"}), note])
    assert not reports.verify_manifest(ws, ANALYST, man)["evidence"][str(note)]


def test_check_fails_on_a_changed_incident_field_or_history(ws, case, tmp_path) -> None:
    reports.write_report(ws, ANALYST, case, "md", tmp_path / "r.md")
    man = json.loads((tmp_path / "r.md.manifest.json").read_text())
    ws.execute("UPDATE incident_status SET note = 'benign' WHERE to_status = 'triage'")
    assert not reports.verify_manifest(ws, ANALYST, man)["sections"]["summary"]
    ws.execute("UPDATE incident_status SET note = NULL WHERE to_status = 'triage'")
    assert reports.verify_manifest(ws, ANALYST, man)["ok"]
    ws.execute("UPDATE incidents SET severity = 'low'")
    assert not reports.verify_manifest(ws, ANALYST, man)["sections"]["summary"]
    ws.execute("UPDATE incidents SET severity = 'critical'")
    ws.execute("UPDATE audit_log SET hash = repeat('0', 64) WHERE seq = ?", [man["as_of_seq"]])
    result = reports.verify_manifest(ws, ANALYST, man)
    assert not result["ok"] and not result["chain"]


def test_check_covers_the_report_file(ws, case, tmp_path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import _load_commands, app

    _load_commands()
    ws.execute("CHECKPOINT")
    db, out = str(ws.path), tmp_path / "INC.html"
    runner = CliRunner()
    res = runner.invoke(app, ["report", case, "--format", "html", "--out", str(out), "--db", db])
    assert res.exit_code == 0, res.output
    manifest_file = str(out) + ".manifest.json"
    incidents.add_note(ws, ANALYST, case, "Written after the report was filed.")
    res = runner.invoke(app, ["report", case, "--check", manifest_file, "--db", db])
    assert res.exit_code == 0 and "report matches" in res.output, res.output
    out.write_bytes(out.read_bytes().replace(b"CHG-1", b"CHG-9"))
    res = runner.invoke(app, ["report", case, "--check", manifest_file, "--db", db])
    assert res.exit_code == 1 and "report file" in res.output, res.output
    out.unlink()
    res = runner.invoke(app, ["report", case, "--check", manifest_file, "--db", db])
    assert res.exit_code == 1 and "not found" in res.output, res.output


def test_playbook_library_error_is_an_error_not_an_empty_section(ws, case, tmp_path) -> None:
    from workbench.errors import WorkbenchError

    broken = tmp_path / "playbooks"
    broken.mkdir()
    (broken / "ai-backdoor-poisoned-version.md").write_bytes(b"---\nid: \xff\xfe broken\n")
    for library in (broken, tmp_path / "no-such-dir"):
        with pytest.raises(WorkbenchError, match="playbook"):
            reports.render_report(ws, ANALYST, case, "md", playbooks_dir=library)
    # The hashed section is the recorded state (never empty for an attached playbook): no library needed.
    data = reports.report_data(ws, ANALYST, case, view=False)
    assert data["hashes"]["playbooks"] != evidence.content_hash([])
    reports.write_report(ws, ANALYST, case, "md", tmp_path / "r.md")
    man = json.loads((tmp_path / "r.md.manifest.json").read_text())
    assert reports.verify_manifest(ws, ANALYST, man)["ok"]


def test_check_by_another_role_sees_the_same_hashes(ws, admin, case, tmp_path) -> None:
    from workbench.cases import masking

    masking.mark_personal(ws, admin, "loan", ["income"])
    reports.write_report(ws, ANALYST, case, "html", tmp_path / "r.html")  # income masked for the analyst
    man = json.loads((tmp_path / "r.html.manifest.json").read_text())
    assert "<td>1001</td>" not in (tmp_path / "r.html").read_text()
    assert "<td>1001</td>" in reports.render_report(ws, Actor("lee", "lead"), case, "html").decode()
    for checker in (Actor("aud", "auditor"), Actor("lee", "lead"), ANALYST):
        assert reports.verify_manifest(ws, checker, man, report_file=tmp_path / "r.html")["ok"], checker


def test_check_rejects_what_is_not_a_manifest(ws, case) -> None:
    from workbench.errors import WorkbenchError

    for bad in ([], {"format": "x"}, {"format": "workbench-report-manifest-v1", "incident_id": case}):
        with pytest.raises(WorkbenchError, match="manifest"):
            reports.verify_manifest(ws, ANALYST, bad)
