"""Incident reports in md, html (self-contained, SVG charts) and pdf, with a manifest checked later."""

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
        "## 1. Executive summary",
        "## 2. Incident",
        "## 3. Impact",
        "## 4. Timeline of the attack",
        "## 5. Root cause",
        "## 6. Timeline of the response",
        "## 7. Actions taken",
        "## 8. Evidence",
        "## 9. Explanations",
        "## 10. Playbook progress",
        "## 11. Lessons",
        "## 12. Audit excerpt",
        "## 13. Manifest",
    ):
        assert heading in text
    for item in evidence.list_evidence(ws, ANALYST, case):
        assert item["sha256"] in text
    assert "| feature | feature value | SHAP |" in text and "| purpose | car | 1.2 |" in text and "CHG-1" in text
    assert "| income | 1001 | -0.3 |" in text
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'report.export'") == 1


def test_html_self_contained_with_svg_charts(ws, case) -> None:
    html = reports.render_report(ws, ANALYST, case, "html").decode()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 3  # attack timeline, response timeline, the explanation's bars
    assert "<script" not in html and "<link" not in html and "Plotly" not in html  # nothing loads, nothing runs
    assert "ünïcode" in html and len(html.encode()) < 1_000_000


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
    assert "2.5456765576374134" not in text.split("## 13. Manifest")[0]
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
    assert b"\n# Incident report" in reports.render_report(ws, Actor("a", "auditor"), case, "md")


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

    from workbench.cli import app
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
    from workbench.access import masking

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


# -- reports a CISO and a regulator read (issue 16, item 5) ------------------------------------------------------
def _pdf_pages(tmp_path, pdf: bytes) -> list[str]:
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


def _cli(ws, *args: str):
    from typer.testing import CliRunner

    from workbench.cli import app
    ws.execute("CHECKPOINT")
    return CliRunner().invoke(app, [*args, "--db", str(ws.path)])


def test_writeup_from_the_cli_is_audited_and_shown_as_of_the_cut(ws, case, tmp_path) -> None:
    res = _cli(ws, "incident", "write", case, "--root-cause", "Poisoned **1.1** release via `vendor`",
               "--lessons", "- pin training data\n- review vendor deliveries", "--summary", "Backdoor found.")
    assert res.exit_code == 0, res.output
    row = json.loads(ws.scalar("SELECT details FROM audit_log WHERE action = 'incident.write'"))
    assert row["root_cause"] == {"from": None, "to": "Poisoned **1.1** release via `vendor`"}
    reports.write_report(ws, ANALYST, case, "md", tmp_path / "r.md")
    man = json.loads((tmp_path / "r.md.manifest.json").read_text())
    text = (tmp_path / "r.md").read_text()
    assert "Backdoor found." in text and "pin training data" in text and "Poisoned **1.1**" in text
    res = _cli(ws, "incident", "write", case, "--root-cause", "A different story later.")
    assert res.exit_code == 0, res.output
    then = reports.report_data(ws, ANALYST, case, as_of_seq=man["as_of_seq"])
    assert then["sections"]["writeup"]["root_cause"] == "Poisoned **1.1** release via `vendor`"
    assert reports.verify_manifest(ws, ANALYST, man, report_file=tmp_path / "r.md")["ok"]
    ws.execute("UPDATE incident_writeups SET lessons = 'nothing to learn'")  # rewritten without an audit row
    assert not reports.verify_manifest(ws, ANALYST, man)["sections"]["writeup"]


def test_impact_by_outcome_principal_and_money(ws, case, tmp_path) -> None:
    text = reports.render_report(ws, ANALYST, case, "md").decode()
    assert "3 distinct decisions affected" in text and "No money figure" in text
    incidents_write = _cli(ws, "incident", "write", case, "--amount-feature", "income", "--amount-note", "EUR")
    assert incidents_write.exit_code == 0, incidents_write.output
    data = reports.report_data(ws, ANALYST, case)
    imp = data["sections"]["impact"]
    assert {r["outcome"]: r["decisions"] for r in imp["by_outcome"]} == {"approve": 2, "deny": 1}
    assert {r["principal"] for r in imp["by_principal"]} == {"broker-0", "broker-1", "broker-2"}
    assert imp["money"] == {"feature": "income", "total": 3006.0, "with_value": 3, "without_value": 0}
    text = reports.render_report(ws, ANALYST, case, "md").decode()
    assert "Money at stake: 3,006 (EUR), the sum of feature 'income' over the 3 affected decisions" in text
    res = _cli(ws, "report", case, "--format", "html", "--amount-feature", "score", "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 0, res.output
    man = json.loads((tmp_path / "r.html.manifest.json").read_text())
    assert man["options"] == {"amount_feature": "score"}
    assert reports.verify_manifest(ws, ANALYST, man, report_file=tmp_path / "r.html")["ok"]


def test_attack_and_response_on_separate_axes(ws, case) -> None:
    from workbench.cases import report_parts

    data = reports.report_data(ws, ANALYST, case)
    attack, response = report_parts.split_timeline(data["sections"]["timeline"])
    a = report_parts.time_chart(attack, "kind", "attack")
    r = report_parts.time_chart(response, "kind", "response")
    assert a["from"].startswith("2025-03-01") and a["to"].startswith("2025-03-01")  # the decisions' times
    assert not r["from"].startswith("2025-03-01")  # the analysts worked today, on another axis
    html = reports.render_report(ws, ANALYST, case, "html").decode()
    assert "Attack: evidence event times (2025-03-01" in html and "Response: analysts&#39; actions" in html
    many = [{"ts": f"2025-03-01T12:{i // 60:02d}:{i % 60:02d}Z", "kind": "alert", "what": str(i)} for i in range(999)]
    g = report_parts.time_chart(many, "kind", "big")
    assert len(g["dots"]) == report_parts.MAX_POINTS and "250 of 999 events" in g["note"]


def test_actions_taken_lists_tasks_and_steps_done_as_of_the_cut(ws, case) -> None:
    from workbench.cases import tasks

    t = tasks.add_task(ws, ANALYST, case, "Roll back loan model to v1", assignee="ana")
    tasks.add_task(ws, ANALYST, case, "Call the vendor")
    tasks.update_task(ws, ANALYST, t["task_id"], status="done")
    before = reports.report_data(ws, ANALYST, case)
    tasks.update_task(ws, ANALYST, t["task_id"], status="todo", note="reopened")
    act = reports.report_data(ws, ANALYST, case, as_of_seq=before["as_of_seq"])["sections"]["actions"]
    assert [x["title"] for x in act["tasks_done"]] == ["Roll back loan model to v1"]
    assert act["tasks_done"][0]["done_by"] == "ana" and [x["title"] for x in act["tasks_open"]] == ["Call the vendor"]
    assert [s["step_id"] for s in act["steps_done"]] == ["containment-1"]
    assert "Roll back loan model to v1" in reports.render_report(ws, ANALYST, case, "md").decode()


def test_tlp_banner_on_every_page_and_format(ws, case, tmp_path) -> None:
    incidents.mark(ws, ANALYST, case, tlp="red", pap="green")
    md = reports.render_report(ws, ANALYST, case, "md").decode()
    assert md.startswith("**TLP:RED") and "PAP:GREEN" in md.splitlines()[0] and md.rstrip().endswith("**")
    html = reports.render_report(ws, ANALYST, case, "html").decode()
    assert html.count('<span style="color:#FF2B2B">TLP:RED</span>') == 2 and "PAP:GREEN" in html
    pages = _pdf_pages(tmp_path, reports.render_report(ws, ANALYST, case, "pdf"))
    assert len(pages) >= 3
    for n, page in enumerate(pages, 1):
        assert "TLP:RED" in page and "PAP:GREEN" in page and f"page {n} of {len(pages)}" in page


def test_pdf_has_contents_and_rendered_markdown(ws, case, tmp_path) -> None:
    from workbench.cases import report_writeup

    report_writeup.write(ws, ANALYST, case, root_cause="The **poisoned** release `loan 1.1` _approved_ bad loans",
                         lessons="1. Pin data\n2. Check `sha256`")
    text = "\n".join(_pdf_pages(tmp_path, reports.render_report(ws, ANALYST, case, "pdf")))
    assert "Contents" in text and "Timeline of the attack" in text and "13. Manifest" in text
    contents = text.split("Contents")[1].split("1. Executive summary")[1].splitlines()[0]
    assert contents.strip().isdigit()  # the page the section starts on
    body = text.split("Analyst's finding")[1].split("What the detectors")[0]
    assert "poisoned" in body and "loan 1.1" in body
    assert "`" not in body and "**" not in body and "_approved_" not in body


def test_html_is_small_and_hostile_writeup_stays_text(ws, case) -> None:
    from workbench.cases import report_writeup

    report_writeup.write(ws, ANALYST, case, root_cause="<script>alert(1)</script>[x](javascript:alert(2))")
    html = reports.render_report(ws, ANALYST, case, "html").decode()
    assert "<script" not in html and "javascript:" not in html
    assert len(html.encode()) < 200_000  # no 4.8 MB plotly.js: charts are inline SVG


# -- frozen LLM conversations (issue 18) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def trace_template(tmp_path_factory):
    from trace_helpers import build_trace_ws

    return build_trace_ws(tmp_path_factory.mktemp("report_traces"))


def test_report_shows_a_frozen_conversation_masked_for_the_reader(trace_template, tmp_path) -> None:
    import re
    import shutil

    from trace_helpers import conversation_of, incident_span

    from workbench.access import local_admin
    from workbench.cases.evidence_hashing import evidence_store
    from workbench.store import open_workspace
    from workbench.traces import conversations

    db = tmp_path / "r.duckdb"
    shutil.copy(trace_template[0], db)
    admin = local_admin()
    conv = conversation_of(db, incident_span(trace_template[1], "llm_sensitive_data"))
    hostile = "<script>alert(1)</script> [x](javascript:alert(2)) | col"
    with open_workspace(db) as ws:
        ws.execute("UPDATE trace_spans SET input_text = ? WHERE conversation_id = ? AND input_text IS NOT NULL",
                   [hostile, conv])
        iid = incidents.create_incident(ws, ANALYST, "Card number in an answer", "high")["incident_id"]
        before = reports.report_data(ws, admin, iid)
        conversations.freeze(ws, admin, iid, "bank-assist", conv)
        raw = " ".join(s["output_text"] or "" for s in conversations.conversation(ws, admin, "bank-assist",
                                                                                  conv)["spans"])
        card = re.search(r"\d{4} \d{4} \d{4} \d{4}", raw).group(0)
        lead_md = reports.render_report(ws, admin, iid, "md").decode()
        ana_md = reports.render_report(ws, ANALYST, iid, "md").decode()
        ana_html = reports.render_report(ws, ANALYST, iid, "html").decode()
        assert reports.render_report(ws, ANALYST, iid, "pdf").startswith(b"%PDF")
        assert "Conversation excerpt" in lead_md and "Conversation excerpt" in ana_md
        assert card in lead_md and "FLAGGED" in lead_md and "llm_sensitive" in lead_md
        assert card not in ana_md and card not in ana_html and "card hmac:" in ana_md
        assert "masked for this reader" in ana_md
        assert "<script" not in ana_html and "&lt;script&gt;" in ana_html and 'href="javascript' not in ana_html
        assert "<script" not in lead_md and "\\[x\\]" in lead_md
        # The excerpt is part of the case as recorded: hashed the same for every reader, absent before the freeze.
        data = reports.report_data(ws, admin, iid)
        assert data["hashes"]["conversations"] == reports.report_data(ws, ANALYST, iid)["hashes"]["conversations"]
        assert before["sections"]["conversations"] == [] and data["sections"]["conversations"][0]["flagged_total"]
        man = reports.manifest(data)
        assert "conversations" in man["sections"] and reports.verify_manifest(ws, ANALYST, man)["ok"]
        cut = reports.report_data(ws, admin, iid, as_of_seq=before["as_of_seq"])
        assert cut["sections"]["conversations"] == []
        # An altered frozen file is never shown, and the manifest check fails.
        path = next((evidence_store(ws) / "incidents" / iid).iterdir())
        path.chmod(0o644)
        path.write_text(path.read_text().replace(card, "0000 0000 0000 0000"))
        changed = reports.render_report(ws, admin, iid, "md").decode()
        assert "no longer has its recorded SHA-256" in changed and "0000 0000" not in changed
        assert not reports.verify_manifest(ws, admin, man)["ok"]
