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
