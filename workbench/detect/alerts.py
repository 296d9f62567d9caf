"""The alert model and its storage: deterministic ids, idempotent upsert, listing, status changes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.access.masking import mask_alerts
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import iso_z

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "acknowledged", "resolved", "false_positive")
CONTRACT = ("alert_id", "detector", "system_id", "severity", "window_start", "window_end", "principal", "feature",
            "metric", "decision_ids", "atlas", "summary", "evidence")
_COLS = ("alert_id, detector, system_id, severity, window_start, window_end, principal, feature, metric, atlas, "
         "summary, evidence, score, n_decisions, status, status_by, status_at, note, first_seen, last_seen, run_id")


@dataclass
class Alert:
    """One alert as a detector produces it; `hits` names the rows of the run's hit table that belong to it."""

    detector: str
    system_id: str
    severity: str
    window_start: datetime
    window_end: datetime
    summary: str
    evidence: dict[str, Any]
    atlas: list[str] = field(default_factory=list)
    principal: str | None = None
    feature: str | None = None
    metric: str | None = None
    score: float = 0.0
    subject: str | None = None  # extra identity (artifact hash, keyed trigger token) folded into the id
    hits: str | None = None  # key in the run's _hits table (detector, key, system_id, decision_id)

    @property
    def alert_id(self) -> str:
        """Deterministic id: detector, system, principal/feature/metric and the window's start hour."""
        return alert_id(self.detector, self.system_id, self.principal, self.feature, self.metric,
                        self.window_start, self.subject)


def alert_id(detector: str, system_id: str, principal: str | None, feature: str | None, metric: str | None,
             window_start: datetime, subject: str | None = None) -> str:
    """The id an alert keeps across runs: the window is keyed by the hour it starts in, so a growing
    episode (later data, a re-run) updates the same alert instead of adding a new one."""
    start = window_start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    parts = [detector, system_id, principal or "", feature or "", metric or "", iso_z(start) or ""]
    key = "|".join(parts + ([subject] if subject else []))
    return "AL-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def severity_at_least(sev: str, floor: str) -> bool:
    """Whether sev is at least as severe as floor."""
    return SEVERITIES.index(sev) >= SEVERITIES.index(floor)


def bump(sev: str, steps: int = 1) -> str:
    """Raise (or with negative steps lower) a severity, clipped to the scale."""
    return SEVERITIES[max(0, min(len(SEVERITIES) - 1, SEVERITIES.index(sev) + steps))]


def _jsonable(value: Any) -> Any:
    """Evidence made JSON-safe: numpy scalars to Python, floats rounded, timestamps to ISO."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso_z(value)
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return round(value, 6)
    return value


def store(ws: Workspace, alerts: list[Alert], run_id: str) -> list[str]:
    """Upsert alerts and their decisions (the caller holds the transaction); keep status and first_seen."""
    now = datetime.now(UTC)
    merged: dict[str, Alert] = {}
    for a in alerts:
        if a.severity not in SEVERITIES:
            raise ValueError(f"bad severity {a.severity!r}")
        prev = merged.get(a.alert_id)
        if prev is None or a.score > prev.score:
            merged[a.alert_id] = a
    if not merged:
        return []
    rows = [[aid, a.detector, a.system_id, a.severity, a.window_start, a.window_end, a.principal, a.feature,
             a.metric, list(a.atlas), a.summary, json.dumps(_jsonable(a.evidence), sort_keys=True),
             float(a.score), a.hits or ""] for aid, a in merged.items()]
    ws.execute("CREATE OR REPLACE TEMP TABLE _new_alerts(alert_id VARCHAR, detector VARCHAR, system_id VARCHAR, "
               "severity VARCHAR, window_start TIMESTAMPTZ, window_end TIMESTAMPTZ, principal VARCHAR, "
               "feature VARCHAR, metric VARCHAR, atlas VARCHAR[], summary VARCHAR, evidence JSON, score DOUBLE, "
               "hits VARCHAR)")
    ws.con.executemany("INSERT INTO _new_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    ws.execute("CREATE TEMP TABLE IF NOT EXISTS _hits(detector VARCHAR, key VARCHAR, system_id VARCHAR, "
               "decision_id VARCHAR)")
    ws.execute("""
        CREATE OR REPLACE TEMP TABLE _new_dec AS
        SELECT DISTINCT n.alert_id, h.system_id, h.decision_id
        FROM _new_alerts n JOIN _hits h ON h.detector = n.detector AND h.key = n.hits AND n.hits <> ''
    """)
    ws.execute("DELETE FROM alert_decisions WHERE alert_id IN (SELECT alert_id FROM _new_alerts)")
    ws.execute("INSERT INTO alert_decisions SELECT alert_id, system_id, decision_id FROM _new_dec")
    ws.execute("""
        UPDATE alerts SET severity = n.severity, window_start = n.window_start, window_end = n.window_end,
               atlas = n.atlas, summary = n.summary, evidence = n.evidence, score = n.score,
               n_decisions = coalesce((SELECT count(*) FROM _new_dec d WHERE d.alert_id = n.alert_id), 0),
               last_seen = ?, run_id = ?
        FROM _new_alerts n WHERE alerts.alert_id = n.alert_id
    """, [now, run_id])
    ws.execute("""
        INSERT INTO alerts (alert_id, detector, system_id, severity, window_start, window_end, principal, feature,
                            metric, atlas, summary, evidence, score, n_decisions, status, first_seen, last_seen,
                            run_id)
        SELECT n.alert_id, n.detector, n.system_id, n.severity, n.window_start, n.window_end, n.principal,
               n.feature, n.metric, n.atlas, n.summary, n.evidence, n.score,
               coalesce((SELECT count(*) FROM _new_dec d WHERE d.alert_id = n.alert_id), 0), 'open', ?, ?, ?
        FROM _new_alerts n WHERE n.alert_id NOT IN (SELECT alert_id FROM alerts)
    """, [now, now, run_id])
    return list(merged)


def _where(system: str | None, detector: str | None, severity: str | None, status: str | None,
           since: datetime | None, until: datetime | None, ids: list[str] | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if system:
        clauses.append("system_id = ?")
        params.append(system)
    if detector:
        clauses.append("detector = ?")
        params.append(detector)
    if severity:
        if severity not in SEVERITIES:
            raise WorkbenchError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}")
        clauses.append("list_position(?, severity) >= ?")
        params += [list(SEVERITIES), SEVERITIES.index(severity) + 1]
    if status:
        clauses.append("status = ?")
        params.append(status)
    if since:
        clauses.append("window_end >= ?")
        params.append(since)
    if until:
        clauses.append("window_start < ?")
        params.append(until)
    if ids is not None:
        clauses.append("list_contains(?, alert_id)")
        params.append(ids)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def fetch(ws: Workspace, *, with_decisions: bool, system: str | None = None, detector: str | None = None,
          severity: str | None = None, status: str | None = None, since: datetime | None = None,
          until: datetime | None = None, ids: list[str] | None = None, limit: int | None = None,
          actor: Actor | None = None) -> list[dict[str, Any]]:
    """Stored alerts as contract dictionaries (most severe and newest first); no permission check.

    Every alert shown to someone is read with their `actor`: personal feature values in its evidence and
    summary are then masked for roles without read:personal (workbench.access.masking). Without an actor
    the values are raw, for the detectors' and evaluators' own use only."""
    where, params = _where(system, detector, severity, status, since, until, ids)
    lim = f" LIMIT {int(limit)}" if limit else ""
    rows = ws.dicts(f"SELECT {_COLS} FROM alerts {where} ORDER BY list_position(?, severity) DESC, "
                    f"window_start DESC, alert_id{lim}", [*params, list(SEVERITIES)])
    decisions: dict[str, list[str]] = {}
    if with_decisions and rows:
        for aid, dec in ws.rows("SELECT alert_id, list(decision_id ORDER BY decision_id) FROM alert_decisions "
                                "WHERE list_contains(?, alert_id) GROUP BY alert_id", [[r["alert_id"] for r in rows]]):
            decisions[aid] = dec
    out = []
    for r in rows:
        r["evidence"] = json.loads(r["evidence"]) if isinstance(r["evidence"], str) else r["evidence"]
        r["atlas"] = list(r["atlas"] or [])
        r["decision_ids"] = decisions.get(r["alert_id"], []) if with_decisions else []
        for key in ("window_start", "window_end", "status_at", "first_seen", "last_seen"):
            r[key] = iso_z(r[key])
        out.append({k: r[k] for k in CONTRACT} | {k: r[k] for k in r if k not in CONTRACT})
    return out if actor is None else mask_alerts(ws, actor, out)


def list_alerts(ws: Workspace, actor: Actor, *, system: str | None = None, detector: str | None = None,
                severity: str | None = None, status: str | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Stored alerts matching the filters; decision ids only for roles that may read decisions."""
    require(actor, "read:aggregates", ws)
    return fetch(ws, with_decisions=actor.can("read:decisions"), system=system, detector=detector,
                 severity=severity, status=status, since=since, until=until, limit=limit, actor=actor)


def get_alert(ws: Workspace, actor: Actor, alert_id_: str) -> dict[str, Any]:
    """One stored alert with all its fields; raise if there is none with that id."""
    require(actor, "read:aggregates", ws)
    rows = fetch(ws, with_decisions=actor.can("read:decisions"), ids=[alert_id_], actor=actor)
    if not rows:
        raise WorkbenchError(f"no alert {alert_id_!r}: list them with `workbench alerts`")
    if actor.can("read:decisions"):
        audit.record(ws, actor, "read.alert", alert_id_, {"decisions": len(rows[0]["decision_ids"])})
    return rows[0]


def set_status(ws: Workspace, actor: Actor, alert_id_: str, status: str, note: str | None = None) -> dict[str, Any]:
    """Acknowledge, resolve or mark an alert a false positive (kept across detector re-runs)."""
    require(actor, "write:detect", ws)
    if status not in STATUSES:
        raise WorkbenchError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if not ws.scalar("SELECT count(*) FROM alerts WHERE alert_id = ?", [alert_id_]):
        raise WorkbenchError(f"no alert {alert_id_!r}: list them with `workbench alerts`")
    with ws.transaction():
        ws.execute("UPDATE alerts SET status = ?, status_by = ?, status_at = ?, note = coalesce(?, note) "
                   "WHERE alert_id = ?", [status, actor.user, datetime.now(UTC), note, alert_id_])
        audit.record(ws, actor, "alert.status", alert_id_, {"status": status, "note": note})
    return fetch(ws, with_decisions=False, ids=[alert_id_], actor=actor)[0]
