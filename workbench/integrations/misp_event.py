"""An incident as a MISP event (the JSON MISP imports: {"Event": {...}}), built by hand.

Attributes carry MISP types and categories with `to_ids` set for what a sensor could match on (IPs, model
hashes, URLs, e-mail senders) and not for context (principals, decision ids, feature values, an API key's
hash). ATLAS techniques are galaxy tags of the MISP 'mitre-atlas-attack-pattern' galaxy, plus the TLP tag.
Ids are UUIDv5 of the incident and the value, so a re-export updates the same event. Tests load it with pymisp.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from workbench.integrations.common import to_dt

NAMESPACE = uuid.UUID("0b7c2a9e-3d41-4f0e-8c5a-6e2d9b1f7a33")
THREAT_LEVEL = {"critical": "1", "high": "1", "medium": "2", "low": "3"}
ANALYSIS = {"open": "0", "triage": "1", "contained": "1", "eradicated": "1", "recovered": "2", "closed": "2"}
# MISP distribution: 0 your organisation only, 1 this community, 2 connected communities, 3 all.
DISTRIBUTION = {"clear": "3", "green": "2", "amber": "0", "amber+strict": "0"}
# observable type -> (MISP type, category, to_ids)
TYPES = {
    "ip": ("ip-src", "Network activity", True),
    "principal": ("target-user", "Targeting data", False),
    "model_sha256": ("sha256", "Payload delivery", True),
    "api_key": ("sha256", "Other", False),
    "url": ("url", "Network activity", True),
    "email": ("email-src", "Payload delivery", True),
}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def event(data: dict[str, Any]) -> dict[str, Any]:
    """The MISP event for gathered incident data (see incident_export.gather)."""
    inc_id = data["incident_id"]
    created = to_dt(data.get("created_at")) or datetime.now(UTC)
    tags = [{"name": f"tlp:{data['tlp']}"}, {"name": f"workbench:incident=\"{inc_id}\""}]
    tags += [{"name": f'misp-galaxy:mitre-atlas-attack-pattern="{t["name"]} - {t["id"]}"'} for t in data["atlas"]]
    attributes = []
    for o in data["observables"]:
        mtype, category, to_ids = TYPES.get(o["type"], ("text", "Other", False))
        comment = o.get("note") or f"{o['type']} seen in {inc_id}"
        attributes.append({"uuid": _uuid(inc_id, o["type"], o["value"]), "type": mtype, "category": category,
                           "value": o["value"], "to_ids": to_ids, "comment": comment[:1000],
                           "distribution": "5", "timestamp": str(int(created.timestamp()))})
    for a in data["alerts"]:
        attributes.append({"uuid": _uuid(inc_id, "alert", a["alert_id"]), "type": "comment", "category": "Other",
                           "value": f"{a['alert_id']} ({a['severity']} {a['detector']} on {a['system_id']}): "
                                    f"{a['summary']}", "to_ids": False, "distribution": "5",
                           "comment": "workbench alert", "timestamp": str(int(created.timestamp()))})
    info = f"{inc_id}: {data['title']}"
    if data["tlp"] == "amber+strict":
        info += " [TLP:AMBER+STRICT]"
    return {"Event": {
        "uuid": _uuid(inc_id), "info": info, "date": created.date().isoformat(),
        "threat_level_id": THREAT_LEVEL.get(data["severity"], "4"), "analysis": ANALYSIS.get(data["status"], "0"),
        "distribution": DISTRIBUTION.get(data["tlp"], "0"), "published": False,
        "timestamp": str(int(created.timestamp())), "Tag": tags, "Attribute": attributes}}
