"""Exports: OCSF findings validated with pydantic-ocsf, STIX parsed back by stix2, MISP loaded by pymisp, and a
TheHive push through thehive4py to a local server that answers like TheHive 5. TLP:RED never leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2
from pymisp import MISPEvent
from test_integrations_sinks import Receiver

from workbench.access import Actor
from workbench.access.masking import mark_personal
from workbench.cases.incidents import create_incident, mark
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.integrations import ocsf_findings
from workbench.integrations.incident_export import export_incident, push_thehive


@pytest.fixture()
def incident(demo_ws, admin) -> dict:
    ids = [r[0] for r in demo_ws.rows("SELECT alert_id FROM alerts ORDER BY list_position(['low', 'medium', 'high', "
                                      "'critical'], severity) DESC, alert_id LIMIT 3")]
    inc = create_incident(demo_ws, admin, "Extraction and flood", "high", alert_ids=ids)
    from workbench.cases.observables import add_observable

    add_observable(demo_ws, admin, inc["incident_id"], "ip", "203.0.113.7", note="scanner")
    add_observable(demo_ws, admin, inc["incident_id"], "url", "http://evil.example/x'y")
    add_observable(demo_ws, admin, inc["incident_id"], "api_key", "sk-live-abcdef123456")
    add_observable(demo_ws, admin, inc["incident_id"], "other", "red-only", tlp="red")
    return inc


def test_ocsf_alerts_are_valid_detection_findings(demo_ws, admin) -> None:
    found = ocsf_findings.export_alerts(demo_ws, admin)
    alerts = {r[0]: r for r in demo_ws.rows("SELECT alert_id, system_id, atlas FROM alerts")}
    assert len(found) == len(alerts) > 0
    for f in found:
        assert ocsf_findings.validate(f) == [], f["finding_info"]["uid"]
        assert f["class_uid"] == 2004 and f["type_uid"] == 200401
        aid, system, atlas = alerts[f["finding_info"]["uid"]]
        got = {a.get("sub_technique", a["technique"])["uid"] for a in f["finding_info"].get("attacks", [])}
        assert got == set(atlas)
        assert f["resources"][0]["uid"] == system
        ids = set(f["evidences"][0]["data"]["decision_ids"])
        assert ids <= {r[0] for r in demo_ws.rows("SELECT decision_id FROM alert_decisions WHERE alert_id = ?", [aid])}
    models = [r for f in found for r in f["resources"] if r["type"] == "AI Model"]
    assert models and all(len(m.get("uid", "x" * 64)) == 64 for m in models)
    assert demo_ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'export.alerts'") == 1


def test_ocsf_validator_is_not_vacuous(demo_ws, admin) -> None:
    f = ocsf_findings.export_alerts(demo_ws, admin)[0]
    assert ocsf_findings.validate({**f, "severity_id": 42})
    assert ocsf_findings.validate({**f, "class_uid": 2003})
    assert ocsf_findings.validate({**f, "made_up_attribute": 1})
    assert ocsf_findings.validate({**f, "finding_info": {"title": "no uid"}})


def test_stix_bundle_parses_back_with_atlas_attack_patterns(demo_ws, admin, incident) -> None:
    doc = export_incident(demo_ws, admin, incident["incident_id"], "stix")
    bundle = stix2.parse(json.dumps(doc), allow_custom=False)
    by_type: dict[str, list] = {}
    for o in bundle.objects:
        by_type.setdefault(o.type, []).append(o)
    assert {"identity", "incident", "report", "indicator", "attack-pattern", "relationship"} <= set(by_type)
    atlas = {ref.external_id for ap in by_type["attack-pattern"] for ref in ap.external_references
             if ref.source_name == "mitre-atlas"}
    assert atlas and atlas == set(demo_ws.scalar("SELECT atlas FROM incidents WHERE incident_id = ?",
                                                 [incident["incident_id"]]))
    patterns = " ".join(i.pattern for i in by_type["indicator"])
    assert "203.0.113.7" in patterns and "evil.example" in patterns
    assert "sk-live-abcdef123456" not in json.dumps(doc) and "red-only" not in json.dumps(doc)
    assert all(o.object_marking_refs == [stix2.TLP_AMBER.id] for o in by_type["indicator"])
    again = export_incident(demo_ws, admin, incident["incident_id"], "stix")
    assert {o["id"] for o in again["objects"]} == {o["id"] for o in doc["objects"]}  # stable ids


def test_misp_event_loads_in_pymisp(demo_ws, admin, incident) -> None:
    doc = export_incident(demo_ws, admin, incident["incident_id"], "misp")
    ev = MISPEvent()
    ev.load(json.dumps(doc))
    values = {a.value: a for a in ev.attributes}
    assert values["203.0.113.7"].type == "ip-src" and values["203.0.113.7"].to_ids
    assert not any("sk-live" in v for v in values) and "red-only" not in values
    tags = [t.name for t in ev.tags]
    assert "tlp:amber" in tags and any(t.startswith('misp-galaxy:mitre-atlas-attack-pattern="') for t in tags)


class FakeTheHive(Receiver):
    """Answers the TheHive 5 endpoints thehive4py calls: case create, observable create, procedure create."""

    def reply(self, path: str, body: bytes) -> bytes:
        if path == "/api/v1/case":
            return json.dumps({"_id": "~4096", "_type": "Case", "number": 7, **json.loads(body)}).encode()
        if path == "/api/v1/case/~4096/observable":
            return json.dumps([{"_id": "~1", **json.loads(body)}]).encode()
        if path == "/api/v1/case/~4096/procedure":
            return json.dumps({"_id": "~2", **json.loads(body)}).encode()
        return b'{"type": "NotFound", "message": "no such endpoint"}'


def test_thehive_payload_and_push(demo_ws, admin, incident, monkeypatch) -> None:
    payload = export_incident(demo_ws, admin, incident["incident_id"], "thehive")
    assert payload["case"]["tlp"] == 2 and payload["case"]["severity"] == 3
    atlas = set(demo_ws.scalar("SELECT atlas FROM incidents WHERE incident_id = ?", [incident["incident_id"]]))
    assert {p["patternId"] for p in payload["procedures"]} == atlas and atlas
    hive = FakeTheHive()
    try:
        monkeypatch.setenv("WB_TEST_HIVE_KEY", "hive-key-1")
        res = push_thehive(demo_ws, admin, incident["incident_id"], hive.url, "WB_TEST_HIVE_KEY")
        paths = [r["path"] for r in hive.requests]
        assert paths[0] == "/api/v1/case" and res["case_id"] == "~4096"
        assert paths.count("/api/v1/case/~4096/observable") == len(payload["observables"]) == res["observables"]
        assert paths.count("/api/v1/case/~4096/procedure") == len(payload["procedures"]) > 0
        assert all(r["headers"]["Authorization"] == "Bearer hive-key-1" for r in hive.requests)
        audit = demo_ws.scalar("SELECT details FROM audit_log WHERE action = 'export.push'")
        assert "hive-key-1" not in audit and '"ok":true' in audit
    finally:
        hive.close()
    monkeypatch.delenv("WB_TEST_HIVE_KEY")
    with pytest.raises(WorkbenchError, match="WB_TEST_HIVE_KEY"):
        push_thehive(demo_ws, admin, incident["incident_id"], hive.url, "WB_TEST_HIVE_KEY")


def test_tlp_red_never_leaves(demo_ws, admin, incident, monkeypatch) -> None:
    mark(demo_ws, admin, incident["incident_id"], tlp="red")
    for fmt in ("stix", "misp", "thehive"):
        with pytest.raises(WorkbenchError, match="TLP:RED"):
            export_incident(demo_ws, admin, incident["incident_id"], fmt)
    monkeypatch.setenv("WB_TEST_HIVE_KEY", "k")
    with pytest.raises(WorkbenchError, match="TLP:RED"):
        push_thehive(demo_ws, admin, incident["incident_id"], "http://127.0.0.1:9", "WB_TEST_HIVE_KEY")
    red_alerts = {r[0] for r in demo_ws.rows("SELECT ref FROM evidence WHERE incident_id = ? AND kind = 'alert'",
                                             [incident["incident_id"]])}
    exported = {f["finding_info"]["uid"] for f in ocsf_findings.export_alerts(demo_ws, admin)}
    assert red_alerts and not red_alerts & exported


def test_exports_mask_personal_values_unless_admin_asks(demo_ws, admin) -> None:
    row = demo_ws.one("SELECT system_id, feature FROM alerts WHERE feature IS NOT NULL ORDER BY alert_id LIMIT 1")
    if row is None:
        pytest.skip("no feature alert in the sample")
    mark_personal(demo_ws, admin, row[0], [row[1]])
    masked = json.dumps(ocsf_findings.export_alerts(demo_ws, admin))
    raw = json.dumps(ocsf_findings.export_alerts(demo_ws, admin, unmasked=True))
    assert "hmac:" in masked and "hmac:" not in raw
    with pytest.raises(PermissionDenied):
        ocsf_findings.export_alerts(demo_ws, Actor("lead1", "lead"), unmasked=True)
    with pytest.raises(PermissionDenied):
        ocsf_findings.export_alerts(demo_ws, Actor("v", "viewer"))


def test_export_cli(demo_ws, admin, incident, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app
    path = str(demo_ws.path)
    demo_ws.close()
    run = CliRunner().invoke
    out = tmp_path / "alerts.ocsf.jsonl"
    r = run(app, ["export", "alerts", "--format", "ocsf", "--out", str(out), "--db", path])
    assert r.exit_code == 0, r.output
    assert all(ocsf_findings.validate(json.loads(x)) == [] for x in out.read_text().splitlines())
    for fmt in ("stix", "misp", "thehive"):
        r = run(app, ["export", "incident", incident["incident_id"], "--format", fmt, "--db", path])
        assert r.exit_code == 0 and json.loads(r.output), r.output
    r = run(app, ["export", "incident", incident["incident_id"], "--format", "stix", "--push", "http://x",
                  "--db", path])
    assert r.exit_code != 0
