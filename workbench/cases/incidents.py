"""Incidents: create (from alerts or by hand), list, show, move through statuses, assign, annotate.

Statuses run ``open -> triage -> contained -> eradicated -> recovered -> closed``. A step back is allowed
where real work needs it (containment failed, eradication incomplete), an incident judged benign may be
closed from ``open`` or ``triage``, and a closed incident may be reopened to ``triage``. Closing and
reopening need ``close:incidents`` (lead, admin) and a note; every other write needs ``write:incidents``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import atlas as atlas_ids
from workbench.errors import WorkbenchError
from workbench.store import Workspace

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "triage", "contained", "eradicated", "recovered", "closed")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("triage", "closed"),
    "triage": ("contained", "closed", "open"),
    "contained": ("eradicated", "triage"),
    "eradicated": ("recovered", "contained"),
    "recovered": ("closed", "eradicated"),
    "closed": ("triage",),
}
_COLUMNS = (
    "incident_id, title, severity, status, owner, systems, atlas, description, created_at, created_by, "
    "updated_at, closed_at"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _check_severity(severity: str) -> str:
    sev = str(severity).strip().lower()
    if sev not in SEVERITIES:
        raise WorkbenchError(f"unknown severity {severity!r}; choose from {', '.join(SEVERITIES)}")
    return sev


def _clean_list(values: Iterable[str]) -> list[str]:
    return sorted({str(v).strip() for v in values if str(v).strip()})


def require_incident(ws: Workspace, incident_id: str) -> dict[str, Any]:
    """The stored incident row (no permission check: callers check first), or WorkbenchError."""
    rows = ws.dicts(f"SELECT {_COLUMNS} FROM incidents WHERE incident_id = ?", [str(incident_id).upper()])
    if not rows:
        raise WorkbenchError(f"no incident {incident_id!r}; `workbench incident list` shows them")
    return rows[0]


def create_incident(
    ws: Workspace,
    actor: Actor,
    title: str,
    severity: str,
    *,
    alert_ids: Iterable[str] = (),
    systems: Iterable[str] = (),
    atlas: Iterable[str] = (),
    owner: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Open an incident by hand or from alerts (their systems, ATLAS IDs merged; each frozen as evidence)."""
    require(actor, "write:incidents")
    title = (title or "").strip()
    if not title:
        raise WorkbenchError("an incident needs a title")
    sev = _check_severity(severity)
    alert_ids = [str(a) for a in alert_ids]
    alerts = []
    if alert_ids:
        from workbench.cases.evidence import fetch_alert

        alerts = [fetch_alert(ws, actor, a) for a in alert_ids]
    systems_l = _clean_list([*systems, *(a.get("system_id") for a in alerts if a.get("system_id"))])
    atlas_l = atlas_ids.normalise([*atlas, *(t for a in alerts for t in (a.get("atlas") or []))])
    now = _now()
    with ws.transaction():
        n = ws.scalar("SELECT nextval('incident_seq')")
        incident_id = f"INC-{n:04d}"
        ws.execute(
            f"INSERT INTO incidents({_COLUMNS}) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                incident_id,
                title,
                sev,
                owner or None,
                systems_l,
                atlas_l,
                description or "",
                now,
                actor.user,
                now,
            ],
        )
        ws.execute(
            "INSERT INTO incident_status VALUES (?, ?, ?, ?, NULL, 'open', ?)",
            [incident_id, now, actor.user, actor.role, "created"],
        )
        audit.record(
            ws,
            actor,
            "incident.create",
            incident_id,
            {
                "title": title,
                "severity": sev,
                "systems": systems_l,
                "atlas": atlas_l,
                "owner": owner,
                "alerts": alert_ids,
            },
        )
        if alerts:
            from workbench.cases.evidence import _insert_alert

            for alert in alerts:
                _insert_alert(ws, actor, incident_id, alert)
    return get_incident(ws, actor, incident_id)


def list_incidents(
    ws: Workspace,
    actor: Actor,
    *,
    status: str | None = None,
    severity: str | None = None,
    system: str | None = None,
    open_only: bool = False,
) -> list[dict[str, Any]]:
    """Incidents, newest first, with evidence counts; optionally filtered."""
    require(actor, "read:incidents")
    where, params = [], []
    if status:
        where.append("i.status = ?")
        params.append(status)
    if severity:
        where.append("i.severity = ?")
        params.append(_check_severity(severity))
    if system:
        where.append("list_contains(i.systems, ?)")
        params.append(system)
    if open_only:
        where.append("i.status <> 'closed'")
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    cols = ", ".join(f"i.{c.strip()}" for c in _COLUMNS.split(","))
    return ws.dicts(
        f"SELECT {cols}, (SELECT count(*) FROM evidence e WHERE e.incident_id = i.incident_id) AS evidence "
        f"FROM incidents i {clause} ORDER BY i.created_at DESC, i.incident_id DESC",
        params,
    )


def get_incident(ws: Workspace, actor: Actor, incident_id: str) -> dict[str, Any]:
    """One incident with its status history and evidence count."""
    require(actor, "read:incidents")
    inc = require_incident(ws, incident_id)
    inc["history"] = ws.dicts(
        "SELECT ts, actor, role, from_status, to_status, note FROM incident_status WHERE incident_id = ? "
        "ORDER BY ts",
        [inc["incident_id"]],
    )
    inc["evidence"] = ws.scalar("SELECT count(*) FROM evidence WHERE incident_id = ?", [inc["incident_id"]])
    inc["allowed_next"] = list(TRANSITIONS[inc["status"]])
    return inc


def set_status(
    ws: Workspace, actor: Actor, incident_id: str, status: str, note: str | None = None
) -> dict[str, Any]:
    """Move an incident to a new status on an allowed transition (closing or reopening: close:incidents)."""
    require(actor, "write:incidents")
    new = str(status).strip().lower()
    if new not in STATUSES:
        raise WorkbenchError(f"unknown status {status!r}; statuses are {' -> '.join(STATUSES)}")
    inc = require_incident(ws, incident_id)
    old = inc["status"]
    if new == old:
        raise WorkbenchError(f"{inc['incident_id']} is already {old}")
    if new not in TRANSITIONS[old]:
        raise WorkbenchError(
            f"{inc['incident_id']}: cannot go from {old} to {new}; allowed: {', '.join(TRANSITIONS[old])}"
        )
    if new == "closed" or old == "closed":
        require(actor, "close:incidents")
        if not (note or "").strip():
            raise WorkbenchError(
                f"{'closing' if new == 'closed' else 'reopening'} an incident needs a note "
                "(the resolution or the reason)"
            )
    now = _now()
    with ws.transaction():
        ws.execute(
            "UPDATE incidents SET status = ?, updated_at = ?, closed_at = ? WHERE incident_id = ?",
            [new, now, now if new == "closed" else None, inc["incident_id"]],
        )
        ws.execute(
            "INSERT INTO incident_status VALUES (?, ?, ?, ?, ?, ?, ?)",
            [inc["incident_id"], now, actor.user, actor.role, old, new, note],
        )
        audit.record(ws, actor, "incident.status", inc["incident_id"], {"from": old, "to": new, "note": note})
    return get_incident(ws, actor, inc["incident_id"])


def assign(ws: Workspace, actor: Actor, incident_id: str, owner: str | None) -> dict[str, Any]:
    """Set (or clear, with None) the incident's owner."""
    require(actor, "write:incidents")
    inc = require_incident(ws, incident_id)
    with ws.transaction():
        ws.execute(
            "UPDATE incidents SET owner = ?, updated_at = ? WHERE incident_id = ?",
            [owner or None, _now(), inc["incident_id"]],
        )
        audit.record(ws, actor, "incident.assign", inc["incident_id"], {"from": inc["owner"], "to": owner})
    return get_incident(ws, actor, inc["incident_id"])


def update(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    *,
    title: str | None = None,
    severity: str | None = None,
    systems: Iterable[str] | None = None,
    atlas: Iterable[str] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Change an incident's title, severity, systems, ATLAS IDs or description (only the fields given)."""
    require(actor, "write:incidents")
    inc = require_incident(ws, incident_id)
    changes: dict[str, Any] = {}
    if title is not None and title.strip():
        changes["title"] = title.strip()
    if severity is not None:
        changes["severity"] = _check_severity(severity)
    if systems is not None:
        changes["systems"] = _clean_list(systems)
    if atlas is not None:
        changes["atlas"] = atlas_ids.normalise(list(atlas))
    if description is not None:
        changes["description"] = description
    if not changes:
        return get_incident(ws, actor, inc["incident_id"])
    sets = ", ".join(f"{k} = ?" for k in changes)
    with ws.transaction():
        ws.execute(
            f"UPDATE incidents SET {sets}, updated_at = ? WHERE incident_id = ?",
            [*changes.values(), _now(), inc["incident_id"]],
        )
        audit.record(
            ws,
            actor,
            "incident.update",
            inc["incident_id"],
            {k: {"from": inc[k], "to": v} for k, v in changes.items()},
        )
    return get_incident(ws, actor, inc["incident_id"])


def add_note(ws: Workspace, actor: Actor, incident_id: str, text: str) -> dict[str, Any]:
    """Add an analyst's note to the incident (kept as a hashed evidence item of kind note)."""
    from workbench.cases.evidence import add_note as _add

    return _add(ws, actor, incident_id, text)
