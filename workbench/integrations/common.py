"""What every integration shares: the masker for what leaves, TLP rules, alerts to send, time conversions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workbench.access import Actor, require
from workbench.access.masking import Masker
from workbench.detect.alerts import fetch
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace

PRODUCT = {"name": "workbench", "vendor_name": "workbench", "version": "0.1.0"}
SEVERITIES = ("low", "medium", "high", "critical")
DECISION_IDS_MAX = 100  # decision ids carried by one alert outside the workspace (the count says how many)
# Alerts held as evidence by an incident marked TLP:RED never leave (sinks, alert exports).
NOT_RED_SQL = ("alert_id NOT IN (SELECT e.ref FROM evidence e JOIN incidents i USING (incident_id) "
               "WHERE e.kind = 'alert' AND e.ref IS NOT NULL AND i.tlp = 'red')")


def export_masker(ws: Workspace, actor: Actor, unmasked: bool = False) -> Masker:
    """The masker for data leaving the workspace: personal values masked, whatever the role, unless an admin
    explicitly asks for them unmasked (`unmasked`), which needs read:personal too."""
    if unmasked:
        if actor.role != "admin":
            raise PermissionDenied(f"{actor.user} ({actor.role}) may not send personal values unmasked: admin only")
        require(actor, "read:personal", ws)
        return Masker(ws, actor)
    return Masker(ws, Actor(actor.user, "analyst"))  # a role without read:personal: masks everything marked


def tlp_of(incident: dict[str, Any]) -> str:
    """An incident's TLP (amber when missing)."""
    return str(incident.get("tlp") or "amber").lower()


def refuse_red(incident: dict[str, Any]) -> str:
    """The incident's TLP, or WorkbenchError when it is TLP:RED (which never leaves)."""
    level = tlp_of(incident)
    if level == "red":
        raise WorkbenchError(f"{incident['incident_id']} is marked TLP:RED and never leaves the workspace")
    return level


def alerts_out(ws: Workspace, masker: Masker, *, ids: list[str] | None = None,
               severity: str | None = None) -> list[dict[str, Any]]:
    """Stored alerts as contract dicts for leaving the workspace: masked, without TLP:RED ones, decision ids
    capped at DECISION_IDS_MAX (n_decisions keeps the count), with the models their decisions were served by."""

    allowed = {r[0] for r in ws.rows(f"SELECT alert_id FROM alerts WHERE {NOT_RED_SQL}")}
    rows = [a for a in fetch(ws, with_decisions=True, ids=ids, severity=severity) if a["alert_id"] in allowed]
    if not rows:
        return []
    models: dict[str, list[dict[str, Any]]] = {}
    for aid, version, sha in ws.rows(
            "SELECT ad.alert_id, d.model_version, d.model_sha256 FROM alert_decisions ad JOIN decisions d "
            "ON d.system_id = ad.system_id AND d.decision_id = ad.decision_id WHERE list_contains(?, ad.alert_id) "
            "GROUP BY ALL ORDER BY ALL", [[a["alert_id"] for a in rows]]):
        models.setdefault(aid, []).append({"model_version": version, "model_sha256": sha})
    out = []
    for a in rows:
        a = masker.alert(a)
        a["decision_ids"] = list(a.get("decision_ids") or [])[:DECISION_IDS_MAX]
        a["models"] = models.get(a["alert_id"], [])
        out.append(a)
    return out


def to_dt(value: Any) -> datetime | None:
    """A datetime (UTC) from a datetime or ISO-8601 text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def ms(value: Any) -> int | None:
    """Milliseconds since the epoch (OCSF and TheHive time) of a datetime or ISO text."""
    dt = to_dt(value)
    return None if dt is None else int(dt.timestamp() * 1000)


def iso(value: Any) -> str | None:
    """ISO-8601 UTC with a trailing Z."""
    dt = to_dt(value)
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summary_text(alert: dict[str, Any], event: str = "new") -> str:
    """A one-line, chat-friendly summary of an alert (Slack's and Teams' `text`)."""
    verb = "escalated to" if event == "escalated" else "new"
    atlas = ", ".join(alert.get("atlas") or [])
    return (f"[workbench] {verb} {str(alert.get('severity', '')).upper()} {alert.get('detector')} alert "
            f"{alert.get('alert_id')} on {alert.get('system_id')}: {alert.get('summary')}"
            + (f" (ATLAS {atlas})" if atlas else ""))
