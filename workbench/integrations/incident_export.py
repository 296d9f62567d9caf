"""Export an incident to a threat-sharing or case tool: STIX 2.1, MISP, TheHive 5 (and push it to TheHive).

`gather` collects what may leave: the incident (TLP:RED is refused; a missing TLP is amber), its alerts (masked,
decision ids capped), its observables (observables marked TLP:RED left out, API keys only as their SHA-256,
personal feature values masked unless an admin asks otherwise) and its ATLAS techniques. Each format module
turns that into its document; every export and push is audited.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import atlas as atlas_ids
from workbench.cases.incidents import get_incident
from workbench.cases.observables import list_observables
from workbench.errors import WorkbenchError
from workbench.integrations.common import alerts_out, export_masker, refuse_red
from workbench.integrations.misp_event import event
from workbench.integrations.stix_bundle import bundle
from workbench.integrations.thehive_case import case_payload, push
from workbench.integrations.webhook import check_env_name, check_url
from workbench.store import Workspace

FORMATS = ("stix", "misp", "thehive")
PER_TYPE_MAX = 500
DECISION_IDS_MAX = 50


def _observables(ws: Workspace, actor: Actor, incident_id: str, masker, alerts: list[dict[str, Any]]) -> list[dict]:

    rows = list_observables(ws, actor, incident_id)
    out, per_type = [], {}
    for r in rows:
        if str(r.get("tlp") or "").lower() == "red":
            continue
        kind, value = r["type"], str(r["value"])
        if kind == "feature_value" and r.get("feature") and value.startswith(f"{r['feature']}="):
            raw = value[len(r["feature"]) + 1:]
            try:
                parsed: Any = json.loads(raw)
            except ValueError:
                parsed = raw
            value = f"{r['feature']}={masker.value(r.get('system_id'), r['feature'], parsed)}"
        note = masker.text(r.get("note") or "")
        if kind == "api_key":  # a credential never leaves in clear: its hash identifies it
            value, note = hashlib.sha256(value.encode("utf-8")).hexdigest(), "SHA-256 of an API key seen in the logs"
        limit = DECISION_IDS_MAX if kind == "decision_id" else PER_TYPE_MAX
        per_type[kind] = per_type.get(kind, 0) + 1
        if per_type[kind] > limit:
            continue
        out.append({"type": kind, "value": value, "tlp": r.get("tlp"), "note": note,
                    "system_id": r.get("system_id"), "first_seen": r.get("first_seen"),
                    "last_seen": r.get("last_seen")})
    return dedupe(out)


def dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with a (type, value) pair kept once, in order."""
    seen, out = set(), []
    for r in rows:
        key = (r["type"], r["value"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def gather(ws: Workspace, actor: Actor, incident_id: str, unmasked: bool = False) -> dict[str, Any]:
    """What of an incident may leave the workspace (raises for TLP:RED)."""
    require(actor, "read:incidents", ws)
    require(actor, "export", ws)
    inc = get_incident(ws, actor, incident_id)
    tlp = refuse_red(inc)
    masker = export_masker(ws, actor, unmasked)
    ids = [r[0] for r in ws.rows("SELECT DISTINCT ref FROM evidence WHERE incident_id = ? AND kind = 'alert' "
                                 "AND ref IS NOT NULL ORDER BY ref", [inc["incident_id"]])]
    alerts = alerts_out(ws, masker, ids=ids) if ids else []
    techniques = atlas_ids.normalise([*(inc.get("atlas") or []), *(t for a in alerts for t in a.get("atlas") or [])])
    observables = _observables(ws, actor, inc["incident_id"], masker, alerts)
    return {"incident_id": inc["incident_id"], "title": masker.text(inc["title"]),
            "description": masker.text(inc.get("description") or ""), "severity": inc["severity"],
            "status": inc["status"], "tlp": tlp, "pap": str(inc.get("pap") or "amber").lower(),
            "systems": list(inc.get("systems") or []), "created_at": inc["created_at"],
            "updated_at": inc["updated_at"], "owner": inc.get("owner"),
            "atlas": [{"id": t, "name": atlas_ids.name(t) or t} for t in techniques],
            "alerts": alerts, "observables": observables}


def export_incident(ws: Workspace, actor: Actor, incident_id: str, fmt: str, *, unmasked: bool = False) -> Any:
    """The incident as a STIX 2.1 bundle, a MISP event or a TheHive 5 case payload (a JSON-ready dict); audited."""
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    data = gather(ws, actor, incident_id, unmasked)
    if fmt == "stix":

        doc: Any = json.loads(bundle(data).serialize())
    elif fmt == "misp":

        doc = event(data)
    else:

        doc = case_payload(data)
    audit.record(ws, actor, "export.incident", data["incident_id"],
                 {"format": fmt, "tlp": data["tlp"], "alerts": [a["alert_id"] for a in data["alerts"]],
                  "observables": len(data["observables"]), "unmasked": unmasked})
    return doc


def push_thehive(ws: Workspace, actor: Actor, incident_id: str, url: str, api_key_env: str, *,
                 unmasked: bool = False, organisation: str | None = None) -> dict[str, Any]:
    """Create the incident as a case in TheHive 5 (with its observables and TTPs) through thehive4py; audited."""

    check_url(url)
    check_env_name(api_key_env)
    data = gather(ws, actor, incident_id, unmasked)
    try:
        result = push(data, url, api_key_env, organisation=organisation)
    except WorkbenchError as exc:
        audit.record(ws, actor, "export.push", data["incident_id"],
                     {"to": "thehive", "url": url, "ok": False, "error": str(exc)})
        raise
    audit.record(ws, actor, "export.push", data["incident_id"],
                 {"to": "thehive", "url": url, "ok": True, "case_id": result["case_id"],
                  "observables": result["observables"], "procedures": result["procedures"], "tlp": data["tlp"],
                  "unmasked": unmasked})
    return result
