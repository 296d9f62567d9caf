"""Reference windows ("normal"): set by the user per system, or learned as the first part of the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import to_datetime

DEFAULT_FRACTION = 0.3      # the first 30% of the data's span ...
DEFAULT_MAX = timedelta(days=7)  # ... but at most the first 7 days once the data spans a fortnight or more
MIN_SPAN = timedelta(hours=1)


parse_time = to_datetime  # the CLI's name for it (cli/detect_cmd.py)


def data_span(ws: Workspace, system_id: str) -> tuple[datetime | None, datetime | None]:
    """First and last decision time of a system."""
    row = ws.one("SELECT min(ts), max(ts) FROM all_decisions WHERE system_id = ?", [system_id])
    return (row[0], row[1]) if row else (None, None)


def default_window(first: datetime, last: datetime) -> tuple[datetime, datetime]:
    """The learned reference: the first 30% of the span, capped at 7 days when the span is 14 days or more."""
    span = last - first
    length = span * DEFAULT_FRACTION
    if span >= 2 * DEFAULT_MAX:
        length = DEFAULT_MAX
    return first, first + max(length, min(span, MIN_SPAN))


def reference(ws: Workspace, system_id: str) -> dict[str, Any] | None:
    """The reference window in force for a system: {since, until, source}; None when it has no decisions."""
    row = ws.one("SELECT since, until, set_by, set_at FROM baselines WHERE system_id = ? "
                 "ORDER BY set_at DESC LIMIT 1", [system_id])
    if row:
        return {"system_id": system_id, "since": row[0], "until": row[1], "source": "set", "set_by": row[2],
                "set_at": row[3]}
    first, last = data_span(ws, system_id)
    if first is None:
        return None
    since, until = default_window(first, last)
    return {"system_id": system_id, "since": since, "until": until, "source": "default", "set_by": None,
            "set_at": None}


def set_baseline(ws: Workspace, actor: Actor, system_id: str, since: str | datetime | None,
                 until: str | datetime | None, note: str | None = None) -> dict[str, Any]:
    """Pin a system's reference window (missing ends default to the data's first/last decision)."""
    require(actor, "write:detect", ws)
    first, last = data_span(ws, system_id)
    if first is None:
        raise WorkbenchError(f"no decisions for system {system_id!r}: ingest some first")
    s, u = to_datetime(since) or first, to_datetime(until) or last
    if u <= s:
        raise WorkbenchError(f"the baseline must end after it starts ({s.isoformat()} .. {u.isoformat()})")
    n = ws.scalar("SELECT count(*) FROM all_decisions WHERE system_id = ? AND ts >= ? AND ts < ?", [system_id, s, u])
    if not n:
        raise WorkbenchError(f"no {system_id} decisions between {s.isoformat()} and {u.isoformat()}")
    with ws.transaction():
        ws.execute("DELETE FROM baselines WHERE system_id = ?", [system_id])
        ws.execute("INSERT INTO baselines VALUES (?, ?, ?, ?, ?, ?)",
                   [system_id, s, u, actor.user, datetime.now(UTC), note])
        audit.record(ws, actor, "detect.baseline.set", system_id,
                     {"since": s.isoformat(), "until": u.isoformat(), "decisions": int(n), "note": note})
    return reference(ws, system_id) | {"decisions": int(n)}


def clear_baseline(ws: Workspace, actor: Actor, system_id: str) -> bool:
    """Go back to the learned default reference window for a system; True if one was set."""
    require(actor, "write:detect", ws)
    had = bool(ws.scalar("SELECT count(*) FROM baselines WHERE system_id = ?", [system_id]))
    with ws.transaction():
        ws.execute("DELETE FROM baselines WHERE system_id = ?", [system_id])
        audit.record(ws, actor, "detect.baseline.clear", system_id, {"had": had})
    return had


def list_baselines(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """The reference window in force for every system with decisions."""
    require(actor, "read:aggregates", ws)
    systems = [r[0] for r in ws.rows("SELECT DISTINCT system_id FROM all_decisions ORDER BY 1")]
    out = []
    for sid in systems:
        ref = reference(ws, sid)
        if ref:
            ref["decisions"] = int(ws.scalar("SELECT count(*) FROM all_decisions WHERE system_id = ? AND ts >= ? "
                                             "AND ts < ?", [sid, ref["since"], ref["until"]]))
            out.append(ref)
    return out
