"""Sinks: where new and escalated alerts go (a webhook, an OCSF or JSON-lines file). Add, list, remove, test.

A webhook's secret is never stored: the sink keeps the NAME of the environment variable that holds it (and a
webhook URL that is itself a secret, such as Slack's, can be given as env:VAR). A new sink starts with the
alerts that already exist marked as sent, so it receives what is new from then on.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.integrations import webhook
from workbench.integrations.common import SEVERITIES
from workbench.integrations.outbox import send
from workbench.store import Workspace

KINDS = ("webhook", "file")
FILE_FORMATS = ("ocsf", "jsonl")
_COLS = "sink_id, kind, target, format, secret_env, min_severity, unmasked, created_at, created_by"


def add_sink(ws: Workspace, actor: Actor, kind: str, target: str, *, fmt: str | None = None,
             secret_env: str | None = None, min_severity: str = "low", unmasked: bool = False,
             backfill: bool = False) -> dict[str, Any]:
    """Add a sink; it receives alerts new or escalated from now on (all stored alerts too with `backfill`)."""
    require(actor, "write:settings", ws)
    if kind not in KINDS:
        raise WorkbenchError(f"unknown sink kind {kind!r}; use {' or '.join(KINDS)}")
    if min_severity not in SEVERITIES:
        raise WorkbenchError(f"unknown severity {min_severity!r}; use one of {', '.join(SEVERITIES)}")
    if unmasked and actor.role != "admin":
        raise PermissionDenied(f"{actor.user} ({actor.role}) may not send personal values unmasked: admin only")
    if kind == "webhook":
        if fmt not in (None, "json"):
            raise WorkbenchError("a webhook sends JSON; --format is for file sinks")
        fmt = "json"
        if target.startswith("env:"):
            webhook.check_env_name(target[4:])
        else:
            webhook.check_url(target)
        if secret_env:
            webhook.check_env_name(secret_env)
    else:
        if fmt not in FILE_FORMATS:
            raise WorkbenchError(f"a file sink needs --format {' or '.join(FILE_FORMATS)}")
        if secret_env:
            raise WorkbenchError("--secret-env is for webhooks")
        target = str(Path(target).expanduser().absolute())
        if Path(target).is_dir():
            raise WorkbenchError(f"{target} is a directory; give the file to append to")
    now = datetime.now(UTC)
    with ws.transaction():
        sink_id = int(ws.scalar("SELECT nextval('sink_seq')"))
        ws.execute(f"INSERT INTO sinks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [sink_id, kind, target, fmt, secret_env, min_severity, unmasked, now, actor.user])
        if not backfill:
            ws.execute("INSERT INTO sink_notices SELECT ?, alert_id, severity FROM alerts", [sink_id])
        audit.record(ws, actor, "sink.add", str(sink_id),
                     {"kind": kind, "target": target, "format": fmt, "secret_env": secret_env,
                      "min_severity": min_severity, "unmasked": unmasked, "backfill": backfill})
    return get_sink(ws, actor, sink_id)


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["secret_set"] = bool(row["secret_env"] and os.environ.get(row["secret_env"])) if row["secret_env"] else None
    return row


def get_sink(ws: Workspace, actor: Actor, sink_id: int) -> dict[str, Any]:
    """One sink with its delivery counts (the secret's variable name and whether it is set, never its value)."""
    require(actor, "read:aggregates", ws)
    rows = [s for s in list_sinks(ws, actor) if s["sink_id"] == int(sink_id)]
    if not rows:
        raise WorkbenchError(f"no sink {sink_id}; `workbench sink list` shows them")
    return rows[0]


def list_sinks(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """Every sink with pending, delivered and failed deliveries."""
    require(actor, "read:aggregates", ws)
    rows = ws.dicts(f"""
        SELECT {', '.join('s.' + c.strip() for c in _COLS.split(','))},
               count(o.event_id) FILTER (WHERE o.state = 'pending') AS pending,
               count(o.event_id) FILTER (WHERE o.state = 'delivered') AS delivered,
               count(o.event_id) FILTER (WHERE o.state = 'failed') AS failed,
               max(o.delivered_at) AS last_delivery
        FROM sinks s LEFT JOIN outbox o USING (sink_id) GROUP BY ALL ORDER BY s.sink_id""")
    return [_shown(r) for r in rows]


def remove_sink(ws: Workspace, actor: Actor, sink_id: int) -> dict[str, Any]:
    """Remove a sink with its queue (pending deliveries are dropped; the audit chain keeps what was sent)."""
    require(actor, "write:settings", ws)
    sink = get_sink(ws, actor, sink_id)
    with ws.transaction():
        dropped = ws.scalar("SELECT count(*) FROM outbox WHERE sink_id = ? AND state = 'pending'", [sink["sink_id"]])
        for table in ("outbox", "sink_notices", "sinks"):
            ws.execute(f"DELETE FROM {table} WHERE sink_id = ?", [sink["sink_id"]])
        audit.record(ws, actor, "sink.remove", str(sink["sink_id"]),
                     {"kind": sink["kind"], "target": sink["target"], "pending_dropped": dropped})
    return {**sink, "pending_dropped": dropped}


def test_sink(ws: Workspace, actor: Actor, sink_id: int) -> dict[str, Any]:
    """Send one test event to a sink now (not through the outbox) and say whether it went through."""
    require(actor, "export", ws)

    sink = get_sink(ws, actor, sink_id)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event_id = f"test/{sink['sink_id']}/{now}"
    payload = {"text": f"[workbench] test message from sink {sink['sink_id']}", "event": "test",
               "event_id": event_id, "alert_id": None, "sent_at": now}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    try:
        send(sink, event_id, body)
        ok, error = True, None
    except WorkbenchError as exc:
        ok, error = False, str(exc)
    audit.record(ws, actor, "sink.test", str(sink["sink_id"]), {"ok": ok, "error": error, "event_id": event_id})
    return {"sink_id": sink["sink_id"], "ok": ok, "error": error, "event_id": event_id}
