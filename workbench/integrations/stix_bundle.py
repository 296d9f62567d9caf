"""An incident as a STIX 2.1 bundle, built and checked with the `stix2` library.

Objects: the workbench's identity; the incident; a report grouping everything; an indicator per observable that
has a STIX pattern (IP, principal as user-account, model hash and API-key hash as file/artifact hashes, URL,
e-mail); a note listing the rest (decision ids, feature values); an attack-pattern per ATLAS technique with its
external reference (source_name 'mitre-atlas', external_id); relationships from the incident to each. Ids are
derived from the incident and the value (UUIDv5), so exporting again gives the same ids. TLP as the standard
marking definitions (TLP 1.0 names: clear -> white; amber+strict -> amber, stated in the description).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import stix2

from workbench.integrations.common import to_dt

NAMESPACE = uuid.UUID("5a3f1d2e-8f0b-4c55-9a77-0c2b1f4e6d10")
ATLAS_URL = "https://atlas.mitre.org/techniques/"
TLP = {"clear": stix2.TLP_WHITE, "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER, "amber+strict": stix2.TLP_AMBER}


def _id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join(parts))}"


def _quote(value: str) -> str:
    """A value as a STIX pattern string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern(kind: str, value: str) -> str | None:
    """The STIX pattern for an observable, or None for types without one."""
    if kind == "ip":
        return f"[{'ipv6-addr' if ':' in value else 'ipv4-addr'}:value = {_quote(value)}]"
    if kind == "principal":
        return f"[user-account:user_id = {_quote(value)}]"
    if kind == "model_sha256":
        return f"[file:hashes.'SHA-256' = {_quote(value)}]"
    if kind == "api_key":
        return f"[artifact:hashes.'SHA-256' = {_quote(value)}]"
    if kind == "url":
        return f"[url:value = {_quote(value)}]"
    if kind == "email":
        return f"[email-addr:value = {_quote(value)}]"
    return None


def bundle(data: dict[str, Any]) -> stix2.Bundle:
    """The STIX 2.1 bundle for gathered incident data (see incident_export.gather)."""
    inc_id = data["incident_id"]
    created = to_dt(data.get("created_at")) or datetime.now(UTC)
    marking = [TLP[data["tlp"]]]
    identity = stix2.Identity(id=_id("identity", "workbench"), name="workbench", identity_class="system",
                              created=created, modified=created)
    common = {"created_by_ref": identity.id, "object_marking_refs": marking, "created": created, "modified": created}
    strict = (" (TLP:AMBER+STRICT: share within the recipient organisation only)"
              if data["tlp"] == "amber+strict" else "")
    incident = stix2.Incident(
        id=_id("incident", inc_id), name=f"{inc_id}: {data['title']}",
        description=(data.get("description") or data["title"]) + strict
        + f"\nSeverity: {data['severity']}. Status: {data['status']}. Systems: {', '.join(data['systems'])}.",
        labels=[f"severity:{data['severity']}", f"status:{data['status']}"],
        external_references=[{"source_name": "workbench", "external_id": inc_id}], **common)
    objects: list[Any] = [identity, incident]
    rels = []
    for t in data["atlas"]:
        ap = stix2.AttackPattern(
            id=_id("attack-pattern", t["id"]), name=t["name"],
            external_references=[{"source_name": "mitre-atlas", "external_id": t["id"], "url": ATLAS_URL + t["id"]}],
            **common)
        objects.append(ap)
        rels.append((ap.id, "related-to"))
    rest = []
    for o in data["observables"]:
        pat = pattern(o["type"], o["value"])
        if pat is None:
            rest.append(f"{o['type']}: {o['value']}")
            continue
        seen = to_dt(o.get("first_seen")) or created
        ind = stix2.Indicator(
            id=_id("indicator", inc_id, o["type"], o["value"]), name=f"{o['type']} {o['value']}"[:250],
            description=o.get("note") or f"{o['type']} seen in {inc_id}", pattern=pat, pattern_type="stix",
            valid_from=seen, indicator_types=["malicious-activity"] if o["type"] != "principal" else ["attribution"],
            **common)
        objects.append(ind)
        rels.append((ind.id, "related-to"))
    for a in data["alerts"]:
        rest.append(f"alert {a['alert_id']} ({a['severity']} {a['detector']} on {a['system_id']}): {a['summary']}")
    if rest:
        note = stix2.Note(id=_id("note", inc_id, "details"), abstract=f"Details of {inc_id}",
                          content="\n".join(rest), object_refs=[incident.id], **common)
        objects.append(note)
    for target, kind in rels:
        objects.append(stix2.Relationship(id=_id("relationship", incident.id, kind, target),
                                          relationship_type=kind, source_ref=incident.id, target_ref=target, **common))
    report = stix2.Report(id=_id("report", inc_id), name=f"Incident report {inc_id}: {data['title']}",
                          published=to_dt(data.get("updated_at")) or created, report_types=["attack-pattern"],
                          object_refs=[o.id for o in objects if o.id != identity.id] + [identity.id], **common)
    objects.append(report)
    return stix2.Bundle(objects=objects, allow_custom=False)
