"""Alerts as OCSF Detection Findings (class_uid 2004, OCSF 1.7.0): one finding per alert.

ATLAS technique ids go in `finding_info.attacks` (OCSF's MITRE-style attack objects: technique, and the
sub-technique for ids like AML.T0024.002), the system and the models that served the implicated decisions in
`resources`, and the decision ids (capped, with their count) in `evidences[].data`. `validate` checks a finding
against the OCSF schema with the pydantic-ocsf models, and also refuses attributes the schema does not define.
"""

from __future__ import annotations

from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import atlas as atlas_ids
from workbench.integrations.common import PRODUCT, alerts_out, export_masker, ms
from workbench.store import Workspace

OCSF_VERSION = "1.7.0"
CLASS_UID, CATEGORY_UID = 2004, 2
SEVERITY_ID = {"low": 2, "medium": 3, "high": 4, "critical": 5}
# alert status -> OCSF finding status_id (1 New, 2 In Progress, 3 Suppressed, 4 Resolved)
STATUS_ID = {"open": 1, "acknowledged": 2, "false_positive": 3, "resolved": 4}
STATUS_CAPTION = {1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 99: "Other"}
ATLAS_URL = "https://atlas.mitre.org/techniques/"


def _attack(technique_id: str) -> dict[str, Any]:
    parent = atlas_ids.parent(technique_id)
    out: dict[str, Any] = {"technique": {"uid": parent, "name": atlas_ids.name(parent) or parent,
                                         "src_url": ATLAS_URL + parent}}
    if parent != technique_id:
        out["sub_technique"] = {"uid": technique_id, "name": atlas_ids.name(technique_id) or technique_id,
                                "src_url": ATLAS_URL + technique_id}
    return out


def finding(alert: dict[str, Any], activity: str = "create", event_id: str | None = None) -> dict[str, Any]:
    """One alert (contract dict, as from `common.alerts_out`) as an OCSF Detection Finding (metadata.uid: the
    event's id when it is a delivery, else the alert id)."""
    activity_id = 2 if activity == "update" else 1
    sev = alert.get("severity", "low")
    resources: list[dict[str, Any]] = [{"uid": alert["system_id"], "name": alert["system_id"], "type": "AI System"}]
    for m in alert.get("models") or []:
        res = {"name": f"{alert['system_id']} model", "type": "AI Model", "version": m.get("model_version")}
        if m.get("model_sha256"):
            res["uid"] = m["model_sha256"]
        resources.append({k: v for k, v in res.items() if v is not None})
    evidence_data: dict[str, Any] = {"decision_ids": list(alert.get("decision_ids") or []),
                                     "n_decisions": alert.get("n_decisions"),
                                     "detector_evidence": alert.get("evidence")}
    for key in ("principal", "feature", "metric"):
        if alert.get(key):
            evidence_data[key] = alert[key]
    status = alert.get("status") or "open"
    out: dict[str, Any] = {
        "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "activity_id": activity_id, "activity_name": "Update" if activity_id == 2 else "Create",
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": "Detection Finding: " + ("Update" if activity_id == 2 else "Create"),
        "severity_id": SEVERITY_ID.get(sev, 0), "severity": sev.capitalize(),
        "status_id": STATUS_ID.get(status, 99), "status": STATUS_CAPTION[STATUS_ID.get(status, 99)],
        "status_detail": status,
        "time": ms(alert.get("last_seen") or alert.get("window_end")),
        "start_time": ms(alert.get("window_start")), "end_time": ms(alert.get("window_end")),
        "message": alert.get("summary"),
        "is_alert": True,
        "metadata": {"version": OCSF_VERSION, "product": dict(PRODUCT), "uid": event_id or alert["alert_id"],
                     "log_name": "alerts", "event_code": alert.get("detector")},
        "finding_info": {
            "uid": alert["alert_id"], "title": f"{alert.get('detector')} on {alert['system_id']}",
            "desc": alert.get("summary"), "types": [alert.get("detector")],
            "analytic": {"name": alert.get("detector"), "type_id": 1, "type": "Rule"},
            "attacks": [_attack(t) for t in alert.get("atlas") or []],
            "first_seen_time": ms(alert.get("first_seen")), "last_seen_time": ms(alert.get("last_seen")),
            "data_sources": ["decision logs", "metrics"],
        },
        "resources": resources,
        "evidences": [{"name": "implicated decisions", "data": evidence_data}],
    }
    if alert.get("score") is not None:
        out["risk_details"] = f"detector score {alert['score']}"
    out["finding_info"] = {k: v for k, v in out["finding_info"].items() if v not in (None, [])}
    return {k: v for k, v in out.items() if v is not None}


def export_alerts(ws: Workspace, actor: Actor, *, severity: str | None = None, ids: list[str] | None = None,
                  unmasked: bool = False) -> list[dict[str, Any]]:
    """Every stored alert (or those given) as OCSF Detection Findings, masked and without TLP:RED ones; audited."""
    require(actor, "export", ws)
    masker = export_masker(ws, actor, unmasked)
    found = [finding(a) for a in alerts_out(ws, masker, ids=ids, severity=severity)]
    audit.record(ws, actor, "export.alerts", None,
                 {"format": "ocsf", "alerts": [f["finding_info"]["uid"] for f in found], "unmasked": unmasked})
    return found


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems of an OCSF Detection Finding against the OCSF 1.7.0 schema (empty when valid); needs pydantic-ocsf."""
    from ocsf.v1_7_0.events import DetectionFinding
    from pydantic import BaseModel, ValidationError

    try:
        model = DetectionFinding.model_validate(doc)
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    problems: list[str] = []

    def walk(obj: Any, where: str) -> None:
        if isinstance(obj, BaseModel):
            extra = obj.model_extra or {}
            problems.extend(f"{where or '<root>'}: attribute {k!r} is not in the schema" for k in extra)
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{where}.{name}" if where else name)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]")

    walk(model, "")
    return problems
