"""Incidents: creation, listing, status transitions, assignment, notes, timeline and role checks."""

from __future__ import annotations

import pytest

from workbench.access import Actor
from workbench.cases import evidence, incidents, timeline
from workbench.errors import PermissionDenied, WorkbenchError

ANALYST = Actor("ana", "analyst")
LEAD = Actor("lee", "lead")
VIEWER = Actor("vic", "viewer")
AUDITOR = Actor("aud", "auditor")


def _new(ws, who=ANALYST, **kw):
    return incidents.create_incident(
        ws, who, "Extraction on the loan API", "high", systems=["loan"], atlas=["aml.t0024.002"], **kw
    )


def test_create_list_get(ws) -> None:
    inc = _new(ws, owner="ana", description="broker sweeps inputs")
    assert inc["incident_id"] == "INC-0001" and inc["status"] == "open"
    assert inc["atlas"] == ["AML.T0024.002"] and inc["systems"] == ["loan"]
    second = incidents.create_incident(ws, ANALYST, "Drift", "low")
    assert second["incident_id"] == "INC-0002"
    listed = incidents.list_incidents(ws, AUDITOR)
    assert [r["incident_id"] for r in listed] == ["INC-0002", "INC-0001"]
    assert [r["incident_id"] for r in incidents.list_incidents(ws, ANALYST, severity="high")] == ["INC-0001"]
    assert incidents.get_incident(ws, AUDITOR, "inc-0001")["title"] == "Extraction on the loan API"
    actions = ws.rows("SELECT action, object FROM audit_log ORDER BY seq")
    assert ("incident.create", "INC-0001") in actions


def test_bad_input(ws) -> None:
    with pytest.raises(WorkbenchError, match="severity"):
        incidents.create_incident(ws, ANALYST, "x", "urgent")
    with pytest.raises(WorkbenchError, match="title"):
        incidents.create_incident(ws, ANALYST, " ", "low")
    with pytest.raises(WorkbenchError, match="ATLAS"):
        incidents.create_incident(ws, ANALYST, "x", "low", atlas=["T1234"])
    with pytest.raises(WorkbenchError, match="no incident"):
        incidents.get_incident(ws, ANALYST, "INC-9999")


def test_status_walk_and_rules(ws) -> None:
    iid = _new(ws)["incident_id"]
    with pytest.raises(WorkbenchError, match="cannot go from open to contained"):
        incidents.set_status(ws, ANALYST, iid, "contained")
    for status in ("triage", "contained", "eradicated", "recovered"):
        assert incidents.set_status(ws, ANALYST, iid, status)["status"] == status
    with pytest.raises(PermissionDenied):
        incidents.set_status(ws, ANALYST, iid, "closed", "fixed")
    with pytest.raises(WorkbenchError, match="needs a note"):
        incidents.set_status(ws, LEAD, iid, "closed")
    closed = incidents.set_status(ws, LEAD, iid, "closed", "model rolled back, keys rotated")
    assert closed["status"] == "closed" and closed["closed_at"] is not None
    assert [h["to_status"] for h in closed["history"]] == [
        "open",
        "triage",
        "contained",
        "eradicated",
        "recovered",
        "closed",
    ]
    with pytest.raises(WorkbenchError, match="closed"):
        evidence.add_note(ws, ANALYST, iid, "late note")
    reopened = incidents.set_status(ws, LEAD, iid, "triage", "new activity from the same key")
    assert reopened["status"] == "triage" and reopened["closed_at"] is None
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'incident.status'") == 6


def test_step_back_and_false_positive_close(ws) -> None:
    iid = _new(ws)["incident_id"]
    incidents.set_status(ws, ANALYST, iid, "triage")
    incidents.set_status(ws, ANALYST, iid, "contained")
    assert incidents.set_status(ws, ANALYST, iid, "triage", "containment failed")["status"] == "triage"
    assert incidents.set_status(ws, LEAD, iid, "closed", "load test, benign")["status"] == "closed"


def test_assign_update_note_and_timeline(ws) -> None:
    iid = _new(ws)["incident_id"]
    assert incidents.assign(ws, ANALYST, iid, "lee")["owner"] == "lee"
    upd = incidents.update(ws, ANALYST, iid, severity="critical", atlas=["AML.T0040", "AML.T0024.002"])
    assert upd["severity"] == "critical" and upd["atlas"] == ["AML.T0024.002", "AML.T0040"]
    note = incidents.add_note(ws, ANALYST, iid, "Called the broker; they deny sending the traffic.")
    assert note["kind"] == "note" and len(note["sha256"]) == 64
    tl = timeline.build_timeline(ws, AUDITOR, iid)
    assert list(tl.columns) == timeline.COLUMNS
    kinds = list(tl["kind"])
    assert kinds[0] == "incident.create" and "incident.assign" in kinds and "evidence.add" in kinds
    assert tl["ts"].is_monotonic_increasing


def test_roles_cannot_write(ws) -> None:
    iid = _new(ws)["incident_id"]
    for who in (VIEWER, AUDITOR):
        with pytest.raises(PermissionDenied):
            incidents.create_incident(ws, who, "x", "low")
        with pytest.raises(PermissionDenied):
            incidents.set_status(ws, who, iid, "triage")
        with pytest.raises(PermissionDenied):
            incidents.assign(ws, who, iid, "x")
        with pytest.raises(PermissionDenied):
            incidents.add_note(ws, who, iid, "x")
    with pytest.raises(PermissionDenied):
        incidents.list_incidents(ws, VIEWER)
    with pytest.raises(PermissionDenied):
        timeline.build_timeline(ws, VIEWER, iid)


# -- issue 16: TLP/PAP, owner from the accounts, alerts already in a case, titles, merge ---------------------------
def test_tlp_pap_on_create_and_mark(ws) -> None:
    inc = _new(ws, tlp="TLP:RED", pap="green")
    assert (inc["tlp"], inc["pap"]) == ("red", "green")
    assert (_new(ws)["tlp"], _new(ws)["pap"]) == ("amber", "amber")
    marked = incidents.mark(ws, ANALYST, inc["incident_id"], tlp="amber+strict")
    assert (marked["tlp"], marked["pap"]) == ("amber+strict", "green")
    with pytest.raises(WorkbenchError, match="PAP"):
        incidents.mark(ws, ANALYST, inc["incident_id"], pap="amber+strict")
    with pytest.raises(PermissionDenied):
        incidents.mark(ws, VIEWER, inc["incident_id"], tlp="red")
    row = ws.one("SELECT details FROM audit_log WHERE action = 'incident.mark'")
    assert '"tlp":{"from":"red","to":"amber+strict"}' in row[0]


def test_alert_already_in_an_open_incident_and_title(demo_ws) -> None:
    from workbench.detect import get_alert

    aid = demo_ws.scalar("SELECT alert_id FROM alerts WHERE principal IS NOT NULL ORDER BY alert_id LIMIT 1")
    alert = get_alert(demo_ws, ANALYST, aid)
    title = incidents.suggest_title(alert)
    assert alert["system_id"] in title and alert["principal"] in title and len(title) <= incidents.TITLE_MAX
    assert not title.endswith(str(alert["summary"])[:10]) and "…" not in title
    long = incidents.suggest_title({**alert, "principal": "p" * 50 + " " + "q" * 200})
    assert long.endswith("…") and len(long) <= incidents.TITLE_MAX
    first = incidents.create_incident(demo_ws, ANALYST, title, "high", alert_ids=[aid])
    assert first["alert_already_in"] == []
    second = incidents.create_incident(demo_ws, ANALYST, title, "high", alert_ids=[aid])
    assert [d["incident_id"] for d in second["alert_already_in"]] == [first["incident_id"]]
    assert [d["incident_id"] for d in incidents.open_incidents_with_alerts(demo_ws, ANALYST, [aid])] == [
        first["incident_id"], second["incident_id"]]
    incidents.set_status(demo_ws, LEAD, first["incident_id"], "closed", "duplicate")
    assert [d["incident_id"] for d in incidents.open_incidents_with_alerts(demo_ws, ANALYST, [aid])] == [
        second["incident_id"]]


def test_merge_keeps_evidence_and_audit(demo_ws, tmp_path) -> None:
    from workbench.cases import merge, observables, tasks

    a1, a2 = [r[0] for r in demo_ws.rows("SELECT alert_id FROM alerts WHERE principal IS NOT NULL "
                                         "ORDER BY alert_id LIMIT 2")]
    keep = incidents.create_incident(demo_ws, ANALYST, "Keep", "medium", alert_ids=[a1])["incident_id"]
    fold = incidents.create_incident(demo_ws, ANALYST, "Fold", "critical", alert_ids=[a2], tlp="red")["incident_id"]
    system, ids = demo_ws.one("SELECT system_id, list(decision_id ORDER BY decision_id)[1:3] FROM alert_decisions "
                              "WHERE alert_id = ? GROUP BY ALL", [a2])
    evidence.add_decision_set(demo_ws, ANALYST, fold, system, ids)
    f = tmp_path / "log.txt"
    f.write_text("raw log\n")
    evidence.add_file(demo_ws, ANALYST, fold, f)
    incidents.add_note(demo_ws, ANALYST, fold, "same actor as Keep")
    observables.add_observable(demo_ws, ANALYST, fold, "email", "m@example.org")
    tasks.add_task(demo_ws, ANALYST, fold, "Call the broker", assignee="ana")
    before = {(r["kind"], r["sha256"]) for r in evidence.list_evidence(demo_ws, ANALYST, fold)}
    with pytest.raises(PermissionDenied):
        merge.merge_incidents(demo_ws, ANALYST, keep, fold)
    with pytest.raises(WorkbenchError, match="itself"):
        merge.merge_incidents(demo_ws, LEAD, keep, keep)
    merged = merge.merge_incidents(demo_ws, LEAD, keep, fold, "one broker ring")
    assert merged["merged_from"] == [fold] and merged["severity"] == "critical" and merged["tlp"] == "red"
    after = {(r["kind"], r["sha256"]) for r in evidence.list_evidence(demo_ws, ANALYST, keep)}
    assert before <= after and len(after) == len(before) + 1
    assert all(r["ok"] for r in evidence.verify_evidence(demo_ws, ANALYST, keep))
    assert all(r["ok"] for r in evidence.verify_evidence(demo_ws, ANALYST, fold))  # the folded one still verifies
    old = incidents.get_incident(demo_ws, ANALYST, fold)
    assert (old["status"], old["merged_into"]) == ("closed", keep)
    assert old["history"][-1]["note"] == "one broker ring"
    assert "m@example.org" in {o["value"] for o in observables.list_observables(demo_ws, ANALYST, keep)}
    assert [t["title"] for t in tasks.list_tasks(demo_ws, ANALYST, keep)] == ["Call the broker"]
    assert demo_ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'incident.merge' AND object = ?", [keep]) == 1
    assert demo_ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'incident.merged' AND object = ?",
                          [fold]) == 1
    with pytest.raises(WorkbenchError, match="closed"):
        merge.merge_incidents(demo_ws, LEAD, keep, fold)


def test_cli_create_warns_mark_and_merge(demo_ws, capsys, monkeypatch) -> None:
    import json
    import sys

    from workbench.cli import main

    aid = demo_ws.scalar("SELECT alert_id FROM alerts WHERE principal IS NOT NULL ORDER BY alert_id LIMIT 1")
    path = str(demo_ws.path)
    demo_ws.close()

    def run(*args: str) -> tuple[str, str]:
        monkeypatch.setattr(sys, "argv", ["workbench", *args, "--db", path])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        out = capsys.readouterr()
        return out.out, out.err

    out, err = run("incident", "create", "--alert", aid, "--tlp", "red", "--pap", "green", "--json")
    first = json.loads(out)
    assert (first["tlp"], first["pap"]) == ("red", "green") and first["title"] and not err
    out, err = run("incident", "create", "--alert", aid, "--json")
    second = json.loads(out)["incident_id"]
    assert f"already in open incident {first['incident_id']}" in err
    out, _ = run("incident", "mark", second, "--tlp", "green", "--pap", "red")
    assert "TLP:GREEN PAP:RED" in out
    out, _ = run("incident", "merge", first["incident_id"], second)
    assert f"merged from {second}" in out


# -- the Incidents and Triage pages (AppTest) -------------------------------------------------------------------
APP = __import__("pathlib").Path(__file__).resolve().parent.parent / "workbench" / "streamlit_app.py"


@pytest.fixture()
def app_db(demo_ws, tmp_path, monkeypatch):
    """Two incidents sharing the backdoor alert, in a copy of the demo the app serves."""
    import shutil

    aid = demo_ws.scalar("SELECT alert_id FROM alerts WHERE detector = 'backdoor' ORDER BY alert_id LIMIT 1") or \
        demo_ws.scalar("SELECT alert_id FROM alerts WHERE principal IS NOT NULL ORDER BY alert_id LIMIT 1")
    incidents.create_incident(demo_ws, ANALYST, "First", "high", alert_ids=[aid])
    incidents.create_incident(demo_ws, ANALYST, "Second", "high", alert_ids=[aid])
    demo_ws.execute("CHECKPOINT")
    path = tmp_path / "app.duckdb"
    shutil.copy(demo_ws.path, path)
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_NO_AUTODEMO", "1")
    return path, aid


def _at():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=90)


def _ok(at, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    assert not at.error, f"{where}: {[e.value for e in at.error]}"


def test_app_observables_tasks_owner_and_marking(app_db) -> None:
    at = _at()
    at.session_state["inc_selected"] = "INC-0001"
    at.run()
    at.switch_page("app_pages/incidents.py").run()
    _ok(at, "incidents")
    assert any("TLP:AMBER" in m.value and "PAP:AMBER" in m.value for m in at.markdown)
    table = next(df.value for df in at.dataframe if "sightings" in df.value.columns)
    assert {"principal", "decision_id"} <= set(table["type"])
    # owner and marking
    owner = at.selectbox(key="inc_owner").options[1]
    at.selectbox(key="inc_owner").select(owner)
    at.selectbox(key="inc_tlp").select("red")
    at.selectbox(key="inc_pap").select("green")
    next(b for b in at.button if b.label == "Save").click().run()
    _ok(at, "marking")
    assert any("TLP:RED" in m.value and "PAP:GREEN" in m.value for m in at.markdown)
    assert any(f"owner {owner} ·" in m.value for m in at.markdown)
    # a task with assignee and due date, then done
    at.text_input(key="inc_task_title").input("Rotate the broker key")
    at.selectbox(key="inc_task_assignee").select(at.selectbox(key="inc_task_assignee").options[1])
    at.date_input(key="inc_task_due_day").set_value(__import__("datetime").date(2999, 1, 2))
    next(b for b in at.button if b.label == "Add task").click().run()
    _ok(at, "task add")
    tasks_df = next(df.value for df in at.dataframe if "assignee" in df.value.columns and "due" in df.value.columns)
    assert list(tasks_df["title"]) == ["Rotate the broker key"] and tasks_df["assignee"].iloc[0]
    at.selectbox(key="inc_task_status").select("done")
    next(b for b in at.button if b.label == "Update task").click().run()
    _ok(at, "task update")
    tasks_df = next(df.value for df in at.dataframe if "assignee" in df.value.columns and "due" in df.value.columns)
    assert list(tasks_df["status"]) == ["done"]
    # the other incident holding the same values is a link
    link = next(b for b in at.button if b.label == "incident INC-0002")
    link.click().run()
    _ok(at, "follow sighting")
    assert any("INC-0002" in s.value for s in at.subheader)


def test_app_triage_asks_a_title_and_warns_on_duplicates(app_db) -> None:
    from workbench.detect import get_alert
    from workbench.store import open_workspace

    path, aid = app_db
    ws = open_workspace(path)
    try:
        expected = incidents.suggest_title(get_alert(ws, ANALYST, aid))
    finally:
        ws.close()
    at = _at()
    at.session_state["tr_alert"] = aid
    at.run()
    at.switch_page("app_pages/triage.py").run()
    _ok(at, "triage")
    box = at.text_input(key=f"tr_inc_title_{aid}")
    assert box.value == expected
    assert any("already in open incident INC-0001" in w.value for w in at.warning)
    assert any(b.label == "Go to INC-0002" for b in at.button)
    assert next(b for b in at.button if b.key == "tr_open_inc").label == "Open another incident"
    box.input("Broker ring, third look")
    at.button(key="tr_open_inc").click().run()
    _ok(at, "open incident")
    assert any("INC-0003 · Broker ring, third look" in s.value for s in at.subheader)
