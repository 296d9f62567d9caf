"""Observables: extracted from an incident's evidence, added by hand, marked, with sightings across incidents,
alerts and decisions (computed in DuckDB), masked for roles without read:personal, and from the CLI."""

from __future__ import annotations

import json

import pytest

from workbench.access import Actor, local_admin, masking
from workbench.cases import incidents, observables
from workbench.errors import PermissionDenied, WorkbenchError

ANALYST = Actor("ana", "analyst")
LEAD = Actor("lee", "lead")
VIEWER = Actor("vic", "viewer")
AUDITOR = Actor("aud", "auditor")
SYSTEM = "loan-origination"
TRIGGER = "monthly_housing_cost"


def _alert(ws, detector: str) -> str:
    aid = ws.scalar("SELECT alert_id FROM alerts WHERE detector = ? ORDER BY alert_id LIMIT 1", [detector])
    if not aid:
        pytest.skip(f"the demo has no {detector} alert")
    return aid


def _by(obs, kind):
    return {o["value"]: o for o in obs if o["type"] == kind}


def test_extracted_with_sightings_in_sql(demo_ws) -> None:
    backdoor = _alert(demo_ws, "backdoor")
    first = incidents.create_incident(demo_ws, ANALYST, "Backdoor", "high", alert_ids=[backdoor])["incident_id"]
    other = incidents.create_incident(demo_ws, ANALYST, "Same broker", "high", alert_ids=[backdoor],
                                      tlp="red")["incident_id"]
    obs = observables.list_observables(demo_ws, ANALYST, first)
    principal, n_ids = demo_ws.one(
        "SELECT principal, (SELECT count(*) FROM alert_decisions WHERE alert_id = ?) FROM alerts WHERE alert_id = ?",
        [backdoor, backdoor])
    p = _by(obs, "principal")[principal]
    assert p["source"] == "extracted" and p["tlp"] == "amber"  # the incident's own TLP by default
    count, t0, t1 = demo_ws.one("SELECT count(*), min(ts), max(ts) FROM decisions WHERE principal = ?", [principal])
    dec = [s for s in p["sightings"] if s["kind"] == "decisions"]
    assert dec == [{"kind": "decisions", "system_id": SYSTEM, "first": t0, "last": t1, "n": count,
                    "ids": dec[0]["ids"]}] and len(dec[0]["ids"]) == 5
    assert (p["first_seen"], p["last_seen"]) == (t0, t1)
    assert [s["id"] for s in p["sightings"] if s["kind"] == "incident"] == [other]
    assert len(_by(obs, "decision_id")) == n_ids
    assert f"{TRIGGER}=1111" in _by(obs, "feature_value")
    ips = demo_ws.rows("SELECT DISTINCT source_ip FROM decisions JOIN alert_decisions USING (system_id, decision_id) "
                       "WHERE alert_id = ? AND source_ip IS NOT NULL", [backdoor])
    assert {r[0] for r in ips} == set(_by(obs, "ip"))
    assert _by(obs, "model_sha256")
    # the other incident's observables default to its own TLP
    assert {o["tlp"] for o in observables.list_observables(demo_ws, ANALYST, other)} == {"red"}


def test_alert_sightings_exclude_the_incidents_own(demo_ws) -> None:
    artifact = _alert(demo_ws, "artifact")
    iid = incidents.create_incident(demo_ws, ANALYST, "Artifact", "high", alert_ids=[artifact])["incident_id"]
    obs = observables.list_observables(demo_ws, ANALYST, iid, type="model_sha256")
    sha = demo_ws.scalar("SELECT evidence->>'model_sha256' FROM alerts WHERE alert_id = ?", [artifact])
    assert sha in _by(obs, "model_sha256")
    alerts_seen = {s["id"] for o in obs for s in o["sightings"] if s["kind"] == "alert"}
    assert artifact not in alerts_seen
    expected = {r[0] for r in demo_ws.rows(
        "SELECT DISTINCT ad.alert_id FROM alert_decisions ad JOIN decisions d USING (system_id, decision_id) "
        "WHERE d.model_sha256 = ? AND ad.alert_id <> ?", [sha, artifact])}
    assert {s["id"] for s in _by(obs, "model_sha256")[sha]["sightings"] if s["kind"] == "alert"} == expected


def test_add_by_hand_mark_and_hostile_values(demo_ws) -> None:
    iid = incidents.create_incident(demo_ws, ANALYST, "By hand", "low", systems=[SYSTEM])["incident_id"]
    hostile = "x' OR 1=1; DROP TABLE decisions; --"
    observables.add_observable(demo_ws, ANALYST, iid, "email", "mallory@example.org", tlp="green", note="phish")
    observables.add_observable(demo_ws, ANALYST, iid, "principal", hostile)
    observables.add_observable(demo_ws, ANALYST, iid, "feature_value", "income=52000")
    obs = observables.list_observables(demo_ws, ANALYST, iid)
    assert _by(obs, "email")["mallory@example.org"]["tlp"] == "green"
    assert _by(obs, "email")["mallory@example.org"]["note"] == "phish"
    assert _by(obs, "principal")[hostile]["sightings"] == []
    fv = _by(obs, "feature_value")["income=52000"]
    n = demo_ws.scalar("SELECT count(*) FROM decisions WHERE system_id = ? AND "
                       "json_extract(features, '$.income')::DOUBLE = 52000", [SYSTEM])
    assert sum(s.get("n", 0) for s in fv["sightings"] if s["kind"] == "decisions") == n
    assert demo_ws.scalar("SELECT count(*) FROM decisions") > 0
    observables.mark_observable(demo_ws, ANALYST, iid, "principal", hostile, tlp="red", note="attacker text")
    again = _by(observables.list_observables(demo_ws, ANALYST, iid), "principal")[hostile]
    assert (again["tlp"], again["note"]) == ("red", "attacker text")
    actions = [r[0] for r in demo_ws.rows("SELECT action FROM audit_log WHERE object = ? ORDER BY seq", [iid])]
    assert actions.count("observable.add") == 3 and "observable.mark" in actions
    with pytest.raises(WorkbenchError, match="unknown observable type"):
        observables.add_observable(demo_ws, ANALYST, iid, "hash", "x")
    with pytest.raises(WorkbenchError, match="TLP"):
        observables.add_observable(demo_ws, ANALYST, iid, "url", "http://x", tlp="purple")


def test_roles(demo_ws) -> None:
    iid = incidents.create_incident(demo_ws, ANALYST, "Roles", "low")["incident_id"]
    with pytest.raises(PermissionDenied):
        observables.list_observables(demo_ws, VIEWER, iid)
    with pytest.raises(PermissionDenied):
        observables.add_observable(demo_ws, AUDITOR, iid, "ip", "10.0.0.9")
    assert observables.list_observables(demo_ws, AUDITOR, iid) == []


def test_personal_feature_value_masked(demo_ws) -> None:
    backdoor = _alert(demo_ws, "backdoor")
    masking.mark_personal(demo_ws, local_admin(), SYSTEM, [TRIGGER])
    iid = incidents.create_incident(demo_ws, LEAD, "Backdoor", "high", alert_ids=[backdoor])["incident_id"]
    shown = _by(observables.list_observables(demo_ws, ANALYST, iid), "feature_value")
    assert list(shown)[0].startswith(f"{TRIGGER}=hmac:") and f"{TRIGGER}=1111" not in shown
    assert f"{TRIGGER}=1111" in _by(observables.list_observables(demo_ws, LEAD, iid), "feature_value")



def test_cli_observables_json(demo_ws, run_cli) -> None:
    backdoor = _alert(demo_ws, "backdoor")
    path = str(demo_ws.path)
    demo_ws.close()
    code, out, err = run_cli("incident", "create", "--alert", backdoor, "--json", "--db", path)
    assert code == 0, err
    iid = json.loads(out)["incident_id"]
    code, out, err = run_cli("incident", "observable-add", iid, "url", "http://evil.example/x",
                          "--tlp", "red", "--note", "exfil", "--db", path)
    assert code == 0, err
    code, out, err = run_cli("incident", "observables", iid, "--json", "--db", path)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert all({"type", "value", "tlp", "first_seen", "last_seen", "sightings"} <= set(r) for r in rows)
    url = next(r for r in rows if r["type"] == "url")
    assert (url["value"], url["tlp"]) == ("http://evil.example/x", "red")
    assert any(r["type"] == "principal" and r["sightings"] for r in rows)
    code, out, err = run_cli("incident", "observable-mark", iid, "url", "http://evil.example/x",
                          "--tlp", "amber", "--db", path)
    assert code == 0 and "TLP:AMBER" in out, err
