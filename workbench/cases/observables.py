"""Observables: the entities of an incident (principals, IPs, API keys, model hashes, decision ids, feature
values, URLs, e-mails) with their sightings in other incidents, alerts and decisions.

Most are extracted from the incident's evidence on every read (never stale): alert evidence gives its
principal(s), decision ids, new source addresses, model hash and backdoor trigger; the implicated decisions
and frozen decision sets give principals, source IPs, model hashes and API keys (``extra.api_key``).
Analysts add others by hand and set a TLP and a note on any. Everything is computed in DuckDB, and values
(attacker text from logs) only ever travel as SQL parameters or table data, never as SQL text.

A ``feature_value`` of a personal feature is masked for roles without ``read:personal``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.evidence_reading import incident_masker
from workbench.cases.incidents import TLP_LEVELS, check_tlp, require_incident
from workbench.errors import WorkbenchError
from workbench.store import Workspace

TYPES = ("principal", "ip", "api_key", "model_sha256", "decision_id", "feature_value", "url", "email", "other")
_DECISION_COLUMN = {"principal": "principal", "ip": "source_ip", "model_sha256": "model_sha256",
                    "decision_id": "decision_id"}
_SAMPLE_IDS = 5

# Every observable extracted from every incident's evidence: (incident_id, type, value, system_id, feature, raw).
# `raw` is the text to match in decision features (feature_value only).
_DERIVED = """
alert_ev AS MATERIALIZED (
    SELECT incident_id, content, content->>'system_id' AS system_id FROM evidence WHERE kind = 'alert'
),
alert_dec AS MATERIALIZED (
    SELECT incident_id, system_id, unnest(json_extract_string(content, '$.decision_ids[*]')) AS decision_id
    FROM alert_ev
),
set_dec AS MATERIALIZED (
    SELECT e.incident_id, d.system_id, d.decision_id, d.principal, d.source_ip, d.model_sha256,
           d.extra->>'api_key' AS api_key
    FROM evidence_decisions d JOIN evidence e USING (evidence_id)
),
live_dec AS MATERIALIZED (
    SELECT a.incident_id, d.system_id, d.decision_id, d.principal, d.source_ip, d.model_sha256,
           d.extra->>'api_key' AS api_key
    FROM alert_dec a JOIN decisions d ON d.system_id = a.system_id AND d.decision_id = a.decision_id
),
derived_raw AS (
    SELECT incident_id, 'principal' AS type, content->>'principal' AS value, system_id, NULL AS feature,
           NULL AS raw FROM alert_ev
    UNION ALL SELECT incident_id, 'principal', unnest(json_extract_string(content, '$.evidence.principals[*]')),
           system_id, NULL, NULL FROM alert_ev
    UNION ALL SELECT incident_id, 'ip', unnest(json_extract_string(content, '$.evidence.new_addresses[*]')),
           system_id, NULL, NULL FROM alert_ev
    UNION ALL SELECT incident_id, 'model_sha256', content->'evidence'->>'model_sha256', system_id, NULL, NULL
           FROM alert_ev
    UNION ALL SELECT incident_id, 'feature_value',
           (content->'evidence'->'trigger'->>'feature') || '=' || (content->'evidence'->'trigger'->>'value'),
           system_id, content->'evidence'->'trigger'->>'feature', content->'evidence'->'trigger'->>'value'
           FROM alert_ev
    UNION ALL SELECT incident_id, 'decision_id', decision_id, system_id, NULL, NULL FROM alert_dec
    UNION ALL SELECT incident_id, 'decision_id', decision_id, system_id, NULL, NULL FROM set_dec
    UNION ALL SELECT incident_id, 'principal', principal, system_id, NULL, NULL FROM live_dec
    UNION ALL SELECT incident_id, 'principal', principal, system_id, NULL, NULL FROM set_dec
    UNION ALL SELECT incident_id, 'ip', source_ip, system_id, NULL, NULL FROM live_dec
    UNION ALL SELECT incident_id, 'ip', source_ip, system_id, NULL, NULL FROM set_dec
    UNION ALL SELECT incident_id, 'model_sha256', model_sha256, system_id, NULL, NULL FROM live_dec
    UNION ALL SELECT incident_id, 'model_sha256', model_sha256, system_id, NULL, NULL FROM set_dec
    UNION ALL SELECT incident_id, 'api_key', api_key, system_id, NULL, NULL FROM live_dec
    UNION ALL SELECT incident_id, 'api_key', api_key, system_id, NULL, NULL FROM set_dec
    UNION ALL SELECT incident_id, 'decision_id', content->>'decision_id', content->>'system_id', NULL, NULL
           FROM evidence WHERE kind = 'explanation'
),
all_obs AS MATERIALIZED (
    SELECT incident_id, type, value, any_value(system_id) AS system_id, any_value(feature) AS feature,
           any_value(raw) AS raw, 'extracted' AS source
    FROM derived_raw WHERE value IS NOT NULL AND value <> '' GROUP BY ALL
    UNION ALL
    SELECT incident_id, type, value, system_id, feature,
           CASE WHEN type = 'feature_value' THEN substr(value, length(feature) + 2) END, 'manual'
    FROM observables WHERE source = 'manual'
),
obs AS MATERIALIZED (
    SELECT type, value, any_value(system_id) AS system_id, any_value(feature) AS feature, any_value(raw) AS raw,
           CASE WHEN bool_or(source = 'extracted') THEN 'extracted' ELSE 'manual' END AS source
    FROM all_obs WHERE incident_id = $inc GROUP BY type, value
)
"""

# The decisions (live table) in which each observable of the incident appears.
_HITS = """
hits AS MATERIALIZED (
    SELECT 'principal' AS type, principal AS value, system_id, decision_id, ts FROM decisions
        WHERE principal IN (SELECT value FROM obs WHERE type = 'principal')
    UNION ALL SELECT 'ip', source_ip, system_id, decision_id, ts FROM decisions
        WHERE source_ip IN (SELECT value FROM obs WHERE type = 'ip')
    UNION ALL SELECT 'model_sha256', model_sha256, system_id, decision_id, ts FROM decisions
        WHERE model_sha256 IN (SELECT value FROM obs WHERE type = 'model_sha256')
    UNION ALL SELECT 'decision_id', decision_id, system_id, decision_id, ts FROM decisions
        WHERE decision_id IN (SELECT value FROM obs WHERE type = 'decision_id')
    UNION ALL SELECT 'api_key', extra->>'api_key', system_id, decision_id, ts FROM decisions
        WHERE (SELECT count(*) FROM obs WHERE type = 'api_key') > 0
          AND extra->>'api_key' IN (SELECT value FROM obs WHERE type = 'api_key')
    UNION ALL SELECT o.type, o.value, d.system_id, d.decision_id, d.ts
        FROM obs o JOIN decisions d ON d.system_id = o.system_id
        WHERE o.type = 'feature_value' AND o.feature IS NOT NULL AND coalesce(
            TRY_CAST(json_extract_string(d.features, '$."' || replace(o.feature, '"', '\\"') || '"') AS DOUBLE)
                = TRY_CAST(o.raw AS DOUBLE),
            json_extract_string(d.features, '$."' || replace(o.feature, '"', '\\"') || '"') = o.raw)
)
"""

_SIGHTINGS = """
SELECT type, value, 'incident' AS kind, o.incident_id AS id, i.title AS label, i.status AS detail,
       NULL AS system_id, i.created_at AS first, coalesce(i.closed_at, i.updated_at) AS last, NULL::BIGINT AS n,
       NULL::VARCHAR[] AS ids
FROM (SELECT DISTINCT incident_id, type, value FROM all_obs WHERE incident_id <> $inc) o
JOIN incidents i USING (incident_id) WHERE (type, value) IN (SELECT type, value FROM obs)
UNION ALL
SELECT type, value, 'alert', a.alert_id, a.summary, a.detector, a.system_id, a.window_start, a.window_end,
       NULL, NULL
FROM (
    SELECT 'principal' AS type, principal AS value, alert_id FROM alerts
        WHERE principal IN (SELECT value FROM obs WHERE type = 'principal')
    UNION SELECT h.type, h.value, ad.alert_id FROM hits h
        JOIN alert_decisions ad ON ad.system_id = h.system_id AND ad.decision_id = h.decision_id
) s JOIN alerts a USING (alert_id)
WHERE alert_id NOT IN (SELECT ref FROM evidence WHERE incident_id = $inc AND kind = 'alert' AND ref IS NOT NULL)
UNION ALL
SELECT type, value, 'decisions', NULL, NULL, NULL, system_id, min(ts), max(ts), count(*),
       list(decision_id ORDER BY ts, decision_id)[1:$sample]
FROM hits WHERE $decisions GROUP BY type, value, system_id
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _check_type(kind: str) -> str:
    k = str(kind).strip().lower()
    if k not in TYPES:
        raise WorkbenchError(f"unknown observable type {kind!r}; choose from {', '.join(TYPES)}")
    return k


def _incident_tlp(inc: dict[str, Any]) -> str:
    return inc.get("tlp") or "amber"


def list_observables(
    ws: Workspace, actor: Actor, incident_id: str, *, type: str | None = None  # noqa: A002 - the field's name
) -> list[dict[str, Any]]:
    """The incident's observables (extracted and by hand) with TLP, note, first/last seen and sightings.

    Sightings: other incidents holding the same value, alerts (not already in this incident) naming it or
    implicating decisions that carry it, and per system the decisions carrying it (count, first, last, a few
    ids; only for roles that may read decisions). Personal feature values are masked for the actor."""
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)
    params = {"inc": inc["incident_id"]}
    obs_rows = ws.dicts(
        "WITH " + _DERIVED + """
        SELECT o.type, o.value, o.system_id, o.feature, o.source, m.observable_id, m.tlp, m.note, m.added_at,
               m.added_by, m.first_seen AS m_first, m.last_seen AS m_last
        FROM obs o LEFT JOIN observables m ON m.incident_id = $inc AND m.type = o.type AND m.value = o.value
        ORDER BY list_position($types, o.type), o.value""",
        {**params, "types": list(TYPES)},
    )
    if type is not None:
        kind = _check_type(type)
        obs_rows = [r for r in obs_rows if r["type"] == kind]
    sightings = ws.dicts(
        "WITH " + _DERIVED + "," + _HITS + _SIGHTINGS.replace("$decisions", "$show_decisions"),
        {**params, "sample": _SAMPLE_IDS, "show_decisions": actor.can("read:decisions")},
    )
    masker = incident_masker(ws, actor, inc["incident_id"])
    by_obs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in sightings:
        key = (s.pop("type"), s.pop("value"))
        entry = {k: v for k, v in s.items() if v is not None}
        if entry["kind"] == "alert" and masker.active:  # an alert's summary may quote a personal value
            entry["label"] = f"{entry.get('detail', 'an')} alert on {entry.get('system_id')}"
        by_obs.setdefault(key, []).append(entry)
    out = []
    for r in obs_rows:
        seen = by_obs.get((r["type"], r["value"]), [])
        times = [t for s in seen if s["kind"] != "incident" for t in (s.get("first"), s.get("last")) if t]
        first = min(times, default=r["m_first"] or r["added_at"])
        last = max(times, default=r["m_last"] or r["added_at"])
        value = r["value"]
        if r["type"] == "feature_value" and r["feature"] and masker.active:
            raw = value[len(r["feature"]) + 1:]
            try:
                raw_v: Any = json.loads(raw)
            except ValueError:
                raw_v = raw
            value = f"{r['feature']}={masker.value(r['system_id'], r['feature'], raw_v)}"
        out.append({
            "type": r["type"], "value": value, "tlp": r["tlp"] or _incident_tlp(inc), "note": r["note"] or "",
            "source": r["source"], "system_id": r["system_id"], "feature": r["feature"],
            "first_seen": first, "last_seen": last,
            "sightings": sorted(seen, key=lambda s: (s["kind"], str(s.get("first") or ""), str(s.get("id") or ""))),
        })
    return out


def add_observable(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    type: str,  # noqa: A002 - the field's name
    value: str,
    *,
    tlp: str | None = None,
    note: str = "",
    system_id: str | None = None,
    feature: str | None = None,
) -> dict[str, Any]:
    """Add an observable by hand (a feature_value is 'feature=value', of one system), or mark an existing one."""
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    if inc["status"] == "closed":
        raise WorkbenchError(f"{inc['incident_id']} is closed; reopen it before adding observables")
    kind = _check_type(type)
    value = str(value or "").strip()
    if not value:
        raise WorkbenchError("an observable needs a value")
    if len(value) > 2000:
        raise WorkbenchError("an observable's value is limited to 2000 characters")
    if kind == "feature_value":
        if feature is None:
            if "=" not in value:
                raise WorkbenchError("a feature_value is written feature=value")
            feature = value.split("=", 1)[0].strip()
        else:
            value = value if value.startswith(f"{feature}=") else f"{feature}={value}"
        systems = list(inc["systems"] or [])
        system_id = system_id or (systems[0] if len(systems) == 1 else None)
        if not system_id:
            raise WorkbenchError("a feature_value needs the system whose feature it is (--system)")
    level = check_tlp(tlp) if tlp else _incident_tlp(inc)
    now = _now()
    with ws.transaction():
        existing = ws.one("SELECT observable_id FROM observables WHERE incident_id = ? AND type = ? AND value = ?",
                          [inc["incident_id"], kind, value])
        if existing:
            ws.execute("UPDATE observables SET tlp = ?, note = ? WHERE observable_id = ?",
                       [level, note or "", existing[0]])
            oid = existing[0]
        else:
            oid = int(ws.scalar("SELECT nextval('observable_seq')"))
            ws.execute(
                "INSERT INTO observables VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'manual', ?, ?, NULL, NULL)",
                [oid, inc["incident_id"], kind, value, system_id, feature, level, note or "", now, actor.user],
            )
        audit.record(ws, actor, "observable.add", inc["incident_id"],
                     {"observable_id": oid, "type": kind, "value": value, "tlp": level, "note": note or ""})
    return {"observable_id": oid, "incident_id": inc["incident_id"], "type": kind, "value": value, "tlp": level,
            "note": note or ""}


def mark_observable(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    type: str,  # noqa: A002 - the field's name
    value: str,
    *,
    tlp: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Set the TLP and/or note of one of the incident's observables (extracted or by hand)."""
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    kind = _check_type(type)
    found = [o for o in list_observables(ws, actor, inc["incident_id"], type=kind) if o["value"] == value]
    if not found:
        raise WorkbenchError(f"{inc['incident_id']} has no {kind} observable {value!r}")
    level = check_tlp(tlp) if tlp else found[0]["tlp"]
    text = found[0]["note"] if note is None else note
    now = _now()
    with ws.transaction():
        row = ws.one("SELECT observable_id FROM observables WHERE incident_id = ? AND type = ? AND value = ?",
                     [inc["incident_id"], kind, value])
        if row:
            oid = row[0]
            ws.execute("UPDATE observables SET tlp = ?, note = ? WHERE observable_id = ?", [level, text, oid])
        else:
            oid = int(ws.scalar("SELECT nextval('observable_seq')"))
            ws.execute(
                "INSERT INTO observables VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'extracted', ?, ?, NULL, NULL)",
                [oid, inc["incident_id"], kind, value, found[0]["system_id"], found[0]["feature"], level, text,
                 now, actor.user],
            )
        audit.record(ws, actor, "observable.mark", inc["incident_id"],
                     {"observable_id": oid, "type": kind, "value": value, "tlp": level, "note": text})
    return {**found[0], "tlp": level, "note": text}


__all__ = ["TLP_LEVELS", "TYPES", "add_observable", "list_observables", "mark_observable"]
