"""Incidents: create (from alerts or by hand), list, show, move through statuses, assign, annotate.

Statuses run ``open -> triage -> contained -> eradicated -> recovered -> closed``. A step back is allowed
where real work needs it (containment failed, eradication incomplete), an incident judged benign may be
closed from ``open`` or ``triage``, and a closed incident may be reopened to ``triage``. Closing and
reopening need ``close:incidents`` (lead, admin) and a note; every other write needs ``write:incidents``.

Every incident carries a TLP (who may it be shared with) and a PAP (what may be done with its information),
both ``amber`` unless set. Observables, tasks and merges live in ``observables``, ``tasks`` and ``merge``.
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
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
PAP_LEVELS = ("clear", "green", "amber", "red")
_INSERT_COLUMNS = (
    "incident_id, title, severity, status, owner, systems, atlas, description, created_at, created_by, "
    "updated_at, closed_at"
)
_COLUMNS = _INSERT_COLUMNS + ", tlp, pap, merged_into"
TITLE_MAX = 120


def _now() -> datetime:
    return datetime.now(UTC)


def _check_severity(severity: str) -> str:
    sev = str(severity).strip().lower()
    if sev not in SEVERITIES:
        raise WorkbenchError(f"unknown severity {severity!r}; choose from {', '.join(SEVERITIES)}")
    return sev


def check_tlp(value: str, levels: tuple[str, ...] = TLP_LEVELS, what: str = "TLP") -> str:
    """A TLP (or PAP, with its levels) in canonical lower case, or WorkbenchError."""
    v = str(value).strip().lower().removeprefix("tlp:").removeprefix("pap:")
    if v == "white":  # TLP 1.0's name for clear
        v = "clear"
    if v not in levels:
        raise WorkbenchError(f"unknown {what} {value!r}; choose from {', '.join(levels)}")
    return v


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
    tlp: str = "amber",
    pap: str = "amber",
) -> dict[str, Any]:
    """Open an incident by hand or from alerts (their systems, ATLAS IDs merged; each frozen as evidence).

    The result's ``alert_already_in`` lists the open incidents that already held one of the alerts (the
    app asks before opening such a duplicate; the CLI warns)."""
    require(actor, "write:incidents", ws)
    title = (title or "").strip()
    if not title:
        raise WorkbenchError("an incident needs a title")
    sev = _check_severity(severity)
    tlp_v, pap_v = check_tlp(tlp), check_tlp(pap, PAP_LEVELS, "PAP")
    owner = _check_user(ws, owner)
    alert_ids = [str(a) for a in alert_ids]
    alerts = []
    already: list[dict[str, Any]] = []
    if alert_ids:
        # imported here: moving this file's imports to the top forms an import cycle
        from workbench.cases.evidence import fetch_alert

        alerts = [fetch_alert(ws, actor, a) for a in alert_ids]
        already = open_incidents_with_alerts(ws, actor, alert_ids)
    systems_l = _clean_list([*systems, *(a.get("system_id") for a in alerts if a.get("system_id"))])
    atlas_l = atlas_ids.normalise([*atlas, *(t for a in alerts for t in (a.get("atlas") or []))])
    now = _now()
    with ws.transaction():
        n = ws.scalar("SELECT nextval('incident_seq')")
        incident_id = f"INC-{n:04d}"
        ws.execute(
            f"INSERT INTO incidents({_INSERT_COLUMNS}, tlp, pap) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, "
            "NULL, ?, ?)",
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
                tlp_v,
                pap_v,
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
                "tlp": tlp_v,
                "pap": pap_v,
                "alert_already_in": [a["incident_id"] for a in already],
            },
        )
        if alerts:
            # imported here: moving this file's imports to the top forms an import cycle
            from workbench.cases.evidence import _insert_alert

            for alert in alerts:
                _insert_alert(ws, actor, incident_id, alert)
    return {**get_incident(ws, actor, incident_id), "alert_already_in": already}


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
    require(actor, "read:incidents", ws)
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
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)
    inc["history"] = ws.dicts(
        "SELECT ts, actor, role, from_status, to_status, note FROM incident_status WHERE incident_id = ? "
        "ORDER BY ts",
        [inc["incident_id"]],
    )
    inc["evidence"] = ws.scalar("SELECT count(*) FROM evidence WHERE incident_id = ?", [inc["incident_id"]])
    inc["allowed_next"] = list(TRANSITIONS[inc["status"]])
    inc["merged_from"] = [r[0] for r in ws.rows(
        "SELECT incident_id FROM incidents WHERE merged_into = ? ORDER BY incident_id", [inc["incident_id"]])]
    return inc


def set_status(
    ws: Workspace, actor: Actor, incident_id: str, status: str, note: str | None = None
) -> dict[str, Any]:
    """Move an incident to a new status on an allowed transition (closing or reopening: close:incidents)."""
    require(actor, "write:incidents", ws)
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
        require(actor, "close:incidents", ws)
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
    """Set (or clear, with None) the incident's owner (an account's name when the workspace has accounts)."""
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    owner = _check_user(ws, owner)
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
    require(actor, "write:incidents", ws)
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
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.cases.evidence import add_note as _add

    return _add(ws, actor, incident_id, text)


# -- people, markings, alerts already in a case, titles ------------------------------------------------------------
_WORKERS = ("analyst", "lead", "admin")  # the roles that hold write:incidents


def _check_user(ws: Workspace, user: str | None) -> str | None:
    """None for none; with accounts, an active account that may work incidents; else any name."""
    user = (user or "").strip() or None
    if user is None or not ws.scalar("SELECT count(*) FROM accounts"):
        return user
    row = ws.one('SELECT role, disabled FROM accounts WHERE "user" = ?', [user])
    if row is None or row[1]:
        raise WorkbenchError(f"no active account {user!r} to give this to")
    if row[0] not in _WORKERS:
        raise WorkbenchError(f"{user} is a {row[0]} and cannot work incidents")
    return user


def assignable_users(ws: Workspace, actor: Actor) -> list[str]:
    """Who can own an incident or a task: active accounts that may work incidents, else the names in use."""
    require(actor, "read:incidents", ws)
    if ws.scalar("SELECT count(*) FROM accounts"):
        return [r[0] for r in ws.rows(
            'SELECT "user" FROM accounts WHERE NOT disabled AND list_contains(?, role) ORDER BY "user"',
            [list(_WORKERS)])]
    names = {r[0] for r in ws.rows(
        "SELECT owner FROM incidents WHERE owner IS NOT NULL UNION SELECT assignee FROM incident_tasks "
        "WHERE assignee IS NOT NULL UNION SELECT created_by FROM incidents")}
    return sorted(names | {actor.user})


def mark(
    ws: Workspace, actor: Actor, incident_id: str, *, tlp: str | None = None, pap: str | None = None
) -> dict[str, Any]:
    """Set the incident's TLP and/or PAP."""
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    changes = {}
    if tlp is not None:
        changes["tlp"] = check_tlp(tlp)
    if pap is not None:
        changes["pap"] = check_tlp(pap, PAP_LEVELS, "PAP")
    changes = {k: v for k, v in changes.items() if v != inc[k]}
    if changes:
        sets = ", ".join(f"{k} = ?" for k in changes)
        with ws.transaction():
            ws.execute(f"UPDATE incidents SET {sets}, updated_at = ? WHERE incident_id = ?",
                       [*changes.values(), _now(), inc["incident_id"]])
            audit.record(ws, actor, "incident.mark", inc["incident_id"],
                         {k: {"from": inc[k], "to": v} for k, v in changes.items()})
    return get_incident(ws, actor, inc["incident_id"])


def open_incidents_with_alerts(ws: Workspace, actor: Actor, alert_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The incidents not closed that already hold one of these alerts as evidence (id, title, status, alert)."""
    require(actor, "read:incidents", ws)
    return ws.dicts(
        "SELECT i.incident_id, i.title, i.status, i.severity, e.ref AS alert_id FROM evidence e "
        "JOIN incidents i USING (incident_id) WHERE e.kind = 'alert' AND list_contains(?, e.ref) "
        "AND i.status <> 'closed' GROUP BY ALL ORDER BY i.incident_id, e.ref",
        [[str(a) for a in alert_ids]],
    )


_DETECTOR_NAMES = {"extraction": "Model extraction", "evasion": "Evasion", "backdoor": "Backdoor trigger",
                   "artifact": "Model artifact change", "flood": "Request flood", "credential": "Credential misuse",
                   "drift": "Drift", "metric_anomaly": "Metric anomaly"}


def _short(text: str, limit: int) -> str:
    """Text cut at a word boundary with an ellipsis, never mid-word."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return cut + "…"


def suggest_title(alert: dict[str, Any]) -> str:
    """A whole, readable incident title for an alert: what, on which system, by or about whom, and when."""
    det = str(alert.get("detector") or "alert")
    what = _DETECTOR_NAMES.get(det, det.replace("_", " ").capitalize())
    parts = [f"{what} on {alert.get('system_id') or 'an unknown system'}"]
    if alert.get("principal"):
        parts.append(f"by {alert['principal']}")
    elif alert.get("feature"):
        parts.append(f"in {alert['feature']}")
    elif alert.get("metric"):
        parts.append(f"in {alert['metric']}")
    start = str(alert.get("window_start") or "")[:10]
    title = " ".join(parts) + (f" ({start})" if start else "")
    return _short(title, TITLE_MAX)
