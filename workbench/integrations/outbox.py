"""The delivery outbox: alerts new or escalated since a sink last heard of them, queued and sent with retries.

`enqueue` compares every alert's severity with the highest one already queued for each sink (sink_notices) and
queues one event per (sink, alert, severity), event_id = '<alert_id>/<severity>', in one transaction with the
notice: a kill at any point loses nothing. `deliver` sends what is due; a row is marked delivered (and audited)
in a transaction after the send. A kill between the send and that mark resends the event on resume with the same
event id (the Idempotency-Key header; file sinks look for the id in the file's tail first), so a receiver that
keys on it processes every event exactly once. Failures back off exponentially; after `max_attempts` a row is
marked failed and the audit chain says so.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.integrations import webhook
from workbench.integrations.common import NOT_RED_SQL, SEVERITIES, alerts_out, export_masker, summary_text
from workbench.integrations.ocsf_findings import finding
from workbench.store import Workspace

BACKOFF_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 3600.0
MAX_ATTEMPTS = 10
_TAIL_BYTES = 1 << 20


def _rank_sql(col: str) -> str:
    return f"list_position({list(SEVERITIES)!r}, {col})"


def due_alerts(ws: Workspace, sink: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(alert_id, severity, previous severity or None) of the alerts the sink has not heard of at this severity."""
    return ws.rows(f"""
        SELECT a.alert_id, a.severity, n.severity FROM alerts a
        LEFT JOIN sink_notices n ON n.sink_id = ? AND n.alert_id = a.alert_id
        WHERE {_rank_sql('a.severity')} >= {_rank_sql('?')} AND a.{NOT_RED_SQL}
          AND (n.severity IS NULL OR {_rank_sql('a.severity')} > {_rank_sql('n.severity')})
        ORDER BY a.first_seen, a.alert_id""", [sink["sink_id"], sink["min_severity"]])


def payload(sink: dict[str, Any], alert: dict[str, Any], event: str, event_id: str,
            previous: str | None) -> str:
    """The text delivered for one event: OCSF for an ocsf file, else the alert JSON with event fields and `text`."""
    if sink["format"] == "ocsf":
        doc: dict[str, Any] = finding(alert, "update" if event == "escalated" else "create", event_id)
    else:
        doc = {**alert, "event": event, "event_id": event_id, "previous_severity": previous,
               "text": summary_text(alert, event)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def enqueue(ws: Workspace, actor: Actor) -> dict[str, int]:
    """Queue every new or escalated alert for every sink (masked unless the sink's admin chose otherwise)."""
    require(actor, "export", ws)
    counts = {"new": 0, "escalated": 0}
    now = datetime.now(UTC)
    for sink in ws.dicts("SELECT * FROM sinks ORDER BY sink_id"):
        due = due_alerts(ws, sink)
        if not due:
            continue
        masker = export_masker(ws, actor, bool(sink["unmasked"]))
        alerts = {a["alert_id"]: a for a in alerts_out(ws, masker, ids=[d[0] for d in due])}
        with ws.transaction():
            for alert_id, severity, previous in due:
                alert = alerts.get(alert_id)
                if alert is None:
                    continue
                event = "new" if previous is None else "escalated"
                event_id = f"{alert_id}/{severity}"
                ws.execute("INSERT OR IGNORE INTO outbox (sink_id, event_id, alert_id, event, severity, payload, "
                           "state, attempts, next_attempt, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                           [sink["sink_id"], event_id, alert_id, event, severity,
                            payload(sink, alert, event, event_id, previous), now, now])
                ws.execute("INSERT OR REPLACE INTO sink_notices VALUES (?, ?, ?)",
                           [sink["sink_id"], alert_id, severity])
                counts[event] += 1
    return counts


def _file_has(path: Path, event_id: str, fmt: str) -> bool:
    """Whether the file's tail already holds the event (a send cut off before it was marked delivered)."""
    if not path.exists():
        return False
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - _TAIL_BYTES))
        tail = fh.read().decode("utf-8", errors="replace").splitlines()
    for line in tail:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        found = (doc.get("metadata") or {}).get("uid") if fmt == "ocsf" else doc.get("event_id")
        if found == event_id:
            return True
    return False


def send(sink: dict[str, Any], event_id: str, body: str, timeout: float = 10.0) -> None:
    """Send one event's body to a sink now; raise WorkbenchError (DeliveryError) when it did not go through."""
    if sink["kind"] == "webhook":
        webhook.post(sink["target"], body.encode("utf-8"), event_id=event_id, secret_env=sink["secret_env"],
                     timeout=timeout)
        return
    path = Path(sink["target"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if event_id.startswith("test/"):
            with path.open("a", encoding="utf-8"):
                return  # a test only checks that the file can be appended to
        if _file_has(path, event_id, sink["format"]):
            return
        with path.open("a", encoding="utf-8") as fh:
            fh.write(body.replace("\n", " ") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise webhook.DeliveryError(f"cannot append to {path}: {exc.strerror or exc}") from exc


def deliver(ws: Workspace, actor: Actor, *, limit: int = 500, backoff: float = BACKOFF_SECONDS,
            max_attempts: int = MAX_ATTEMPTS, timeout: float = 10.0) -> dict[str, int]:
    """Send every due event (oldest first); mark each delivered, or retry later with exponential backoff."""
    require(actor, "export", ws)
    sinks = {s["sink_id"]: s for s in ws.dicts("SELECT * FROM sinks")}
    due = ws.dicts("SELECT sink_id, event_id, alert_id, event, severity, payload::VARCHAR AS payload, attempts "
                   "FROM outbox WHERE state = 'pending' AND next_attempt <= ? ORDER BY created_at, sink_id, event_id "
                   "LIMIT ?", [datetime.now(UTC), int(limit)])
    figures = {"delivered": 0, "retrying": 0, "failed": 0}
    # A sink whose last send failed waits out its backoff for every event (keeps the order, spares the receiver).
    broken = {r[0] for r in ws.rows("SELECT DISTINCT sink_id FROM outbox WHERE state = 'pending' AND attempts > 0 "
                                    "AND next_attempt > ?", [datetime.now(UTC)])}
    for row in due:
        sink = sinks.get(row["sink_id"])
        if sink is None or row["sink_id"] in broken:
            continue
        try:
            send(sink, row["event_id"], row["payload"], timeout)
        except WorkbenchError as exc:
            broken.add(row["sink_id"])
            attempts = row["attempts"] + 1
            gave_up = attempts >= max_attempts
            wait = min(backoff * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)
            with ws.transaction():
                ws.execute("UPDATE outbox SET attempts = ?, last_error = ?, next_attempt = ?, state = ? "
                           "WHERE sink_id = ? AND event_id = ?",
                           [attempts, str(exc), datetime.now(UTC) + timedelta(seconds=wait),
                            "failed" if gave_up else "pending", row["sink_id"], row["event_id"]])
                if gave_up:
                    audit.record(ws, actor, "sink.gave_up", str(row["sink_id"]),
                                 {"event_id": row["event_id"], "attempts": attempts, "error": str(exc)})
            figures["failed" if gave_up else "retrying"] += 1
            continue
        with ws.transaction():
            ws.execute("UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, "
                       "last_error = NULL WHERE sink_id = ? AND event_id = ?",
                       [datetime.now(UTC), row["sink_id"], row["event_id"]])
            audit.record(ws, actor, "sink.deliver", str(row["sink_id"]),
                         {"event_id": row["event_id"], "alert_id": row["alert_id"], "event": row["event"],
                          "severity": row["severity"], "kind": sink["kind"], "target": sink["target"]})
        figures["delivered"] += 1
    return figures


def retry_failed(ws: Workspace, actor: Actor, sink_id: int | None = None) -> int:
    """Put failed deliveries (of one sink, or all) back in the queue, due now; return how many."""
    require(actor, "export", ws)
    with ws.transaction():
        n = ws.scalar("SELECT count(*) FROM outbox WHERE state = 'failed' AND (? IS NULL OR sink_id = ?)",
                      [sink_id, sink_id])
        ws.execute("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = ? "
                   "WHERE state = 'failed' AND (? IS NULL OR sink_id = ?)", [datetime.now(UTC), sink_id, sink_id])
        audit.record(ws, actor, "sink.retry", None if sink_id is None else str(sink_id), {"events": n})
    return int(n or 0)


def queue(ws: Workspace, actor: Actor, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The outbox rows (without payloads), newest first."""
    require(actor, "read:aggregates", ws)
    if state is not None and state not in ("pending", "delivered", "failed"):
        raise WorkbenchError(f"unknown state {state!r}; use pending, delivered or failed")
    return ws.dicts("SELECT sink_id, event_id, alert_id, event, severity, state, attempts, next_attempt, last_error, "
                    "created_at, delivered_at FROM outbox WHERE (? IS NULL OR state = ?) "
                    "ORDER BY created_at DESC, event_id LIMIT ?", [state, state, int(limit)])
