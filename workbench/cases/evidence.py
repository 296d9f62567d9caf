"""Adding evidence to an incident, frozen when added: alerts, decision sets, metric windows, explanations,
notes and files. Each carries a SHA-256 that ``verify_evidence`` re-computes (recipes in ``evidence_hashing``).

Later ingests never change a frozen item: it reads its own copy, not the live tables. Reading and verifying
live in ``evidence_reading``; their names are importable from here too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import audit, settings
from workbench.access import Actor, require
from workbench.cases.evidence_hashing import (
    DECISION_COLS,
    DECISION_JSON,
    KINDS,
    METRIC_COLS,
    METRIC_JSON,
    content_hash,
    decision_rows_hash,
    evidence_store,
    metric_rows_hash,
    sha256_bytes,
    sha256_text,
)
from workbench.cases.evidence_reading import get_evidence, list_evidence, recompute, snapshot, verify_evidence
from workbench.cases.incidents import require_incident
from workbench.errors import WorkbenchError
from workbench.store import Workspace

__all__ = [
    "DECISION_JSON",
    "KINDS",
    "METRIC_JSON",
    "add_alert",
    "add_decision_set",
    "add_explanation",
    "add_file",
    "add_file_bytes",
    "add_metric_window",
    "add_note",
    "content_hash",
    "evidence_store",
    "fetch_alert",
    "get_evidence",
    "list_evidence",
    "recompute",
    "sha256_bytes",
    "sha256_text",
    "snapshot",
    "verify_evidence",
]


def _ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise WorkbenchError(f"cannot read timestamp {value!r}: use ISO-8601") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _next_id(ws: Workspace) -> int:
    return int(ws.scalar("SELECT nextval('evidence_seq')"))


def _insert(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    kind: str,
    label: str,
    ref: str | None,
    sha: str,
    *,
    content: Any = None,
    start: Any = None,
    end: Any = None,
    count: int | None = None,
    store_path: str | None = None,
    evidence_id: int | None = None,
) -> int:
    """Insert one evidence row and its audit record (inside the caller's transaction)."""
    eid = evidence_id if evidence_id is not None else _next_id(ws)
    ws.execute(
        "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [eid, incident_id, kind, label, ref, datetime.now(UTC), actor.user, actor.role, _ts(start), _ts(end),
         count, None if content is None else audit.canonical(content), store_path, sha],
    )
    ws.execute("UPDATE incidents SET updated_at = ? WHERE incident_id = ?", [datetime.now(UTC), incident_id])
    audit.record(
        ws,
        actor,
        "evidence.add",
        incident_id,
        {"evidence_id": eid, "kind": kind, "label": label, "ref": ref, "sha256": sha, "items": count},
    )
    return eid


def _start(ws: Workspace, actor: Actor, incident_id: str) -> str:
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    if inc["status"] == "closed":
        raise WorkbenchError(f"{inc['incident_id']} is closed; reopen it before adding evidence")
    return inc["incident_id"]


# -- alerts ----------------------------------------------------------------------------------------
def fetch_alert(ws: Workspace, actor: Actor, alert_id: str) -> dict[str, Any]:
    """An alert as a plain dict under the detect package's alert contract."""
    from workbench.detect import get_alert  # detect imports workbench.cases (masking): imported on use

    alert = get_alert(ws, actor, alert_id)
    if not alert:
        raise WorkbenchError(f"no alert {alert_id!r}; `workbench alerts` lists them")
    return json.loads(audit.canonical(dict(alert)))


def _insert_alert(ws: Workspace, actor: Actor, incident_id: str, alert: dict[str, Any]) -> int:
    label = f"{alert.get('detector', 'alert')}: {alert.get('summary') or alert.get('alert_id')}"[:200]
    return _insert(
        ws, actor, incident_id, "alert", label, str(alert.get("alert_id")), content_hash(alert),
        content=alert, start=alert.get("window_start"), end=alert.get("window_end"),
        count=len(alert.get("decision_ids") or []),
    )


def add_alert(ws: Workspace, actor: Actor, incident_id: str, alert_id: str) -> dict[str, Any]:
    """Freeze an alert (its full contract record) as evidence."""
    incident_id = _start(ws, actor, incident_id)
    alert = fetch_alert(ws, actor, alert_id)
    with ws.transaction():
        eid = _insert_alert(ws, actor, incident_id, alert)
    return get_evidence(ws, actor, eid)


# -- decision sets and metric windows: rows copied into a snapshot table ------------------------------------
def _copy_snapshot(
    ws: Workspace, insert_sql: str, params: list[Any], rows_hash: Callable[..., tuple[str, int, Any, Any]], table: str
) -> tuple[int, str, int, Any, Any]:
    """Copy rows into `table` under a new evidence id (in the caller's transaction): id, sha256, count, t0, t1."""
    eid = _next_id(ws)
    ws.execute(insert_sql, [eid, *params])
    return (eid, *rows_hash(ws, table, "evidence_id = ?", [eid]))


# -- decision sets ---------------------------------------------------------------------------------
def add_decision_set(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    system_id: str,
    decision_ids: Iterable[str],
    label: str | None = None,
) -> dict[str, Any]:
    """Freeze a set of decisions (copied rows + SHA-256 of the snapshot); later ingests do not change it."""
    incident_id = _start(ws, actor, incident_id)
    require(actor, "read:decisions", ws)
    ids = sorted({str(d) for d in decision_ids})
    if not ids:
        raise WorkbenchError("a decision set needs at least one decision id")
    with ws.transaction():
        eid, sha, count, t0, t1 = _copy_snapshot(
            ws,
            f"INSERT INTO evidence_decisions SELECT ? AS evidence_id, {DECISION_COLS} FROM all_decisions "
            "WHERE system_id = ? AND decision_id IN (SELECT unnest(?::VARCHAR[]))",
            [system_id, ids], decision_rows_hash, "evidence_decisions",
        )
        if count == 0:
            raise WorkbenchError(f"none of the {len(ids)} decision ids is in {system_id}")
        found = ws.scalar("SELECT count(DISTINCT decision_id) FROM evidence_decisions WHERE evidence_id = ?", [eid])
        missing = len(ids) - int(found)
        content = {"system_id": system_id, "requested": len(ids), "rows": count, "missing": missing}
        _insert(
            ws, actor, incident_id, "decision_set", label or f"{count} decisions of {system_id}", system_id, sha,
            content=content, start=t0, end=t1, count=count, evidence_id=eid,
        )
    return get_evidence(ws, actor, eid)


# -- metric windows --------------------------------------------------------------------------------
def add_metric_window(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    system_id: str,
    metric: str | None,
    start: Any,
    end: Any,
    label: str | None = None,
) -> dict[str, Any]:
    """Freeze the metric points of a system (one metric, or all with None) in [start, end) as evidence."""
    incident_id = _start(ws, actor, incident_id)
    t0, t1 = _ts(start), _ts(end)
    if t0 is None or t1 is None or t1 <= t0:
        raise WorkbenchError("a metric window needs a start before its end")
    with ws.transaction():
        eid, sha, count, _, _ = _copy_snapshot(
            ws,
            f"INSERT INTO evidence_metrics SELECT ?, {METRIC_COLS} FROM metrics WHERE system_id = ? "
            "AND (? IS NULL OR metric = ?) AND ts >= ? AND ts < ?",
            [system_id, metric, metric, t0, t1], metric_rows_hash, "evidence_metrics",
        )
        if count == 0:
            raise WorkbenchError(f"no {metric or 'metric'} points for {system_id} in that window")
        content = {"system_id": system_id, "metric": metric, "start": t0.isoformat(), "end": t1.isoformat(),
                   "points": count}
        _insert(
            ws, actor, incident_id, "metric_window", label or f"{metric or 'metrics'} of {system_id}", system_id,
            sha, content=content, start=t0, end=t1, count=count, evidence_id=eid,
        )
    return get_evidence(ws, actor, eid)


# -- explanations, notes, files --------------------------------------------------------------------
def add_explanation(
    ws: Workspace, actor: Actor, incident_id: str, payload: dict[str, Any], label: str | None = None
) -> dict[str, Any]:
    """Freeze an explanation (the explain package's JSON output, or any dict) as evidence."""
    incident_id = _start(ws, actor, incident_id)
    if not isinstance(payload, dict) or not payload:
        raise WorkbenchError("an explanation payload must be a non-empty JSON object")
    content = json.loads(audit.canonical(payload))
    label = label or content.get("label") or f"explanation ({content.get('method', 'attributions')})"
    with ws.transaction():
        eid = _insert(
            ws, actor, incident_id, "explanation", str(label), content.get("system_id"), content_hash(content),
            content=content, start=content.get("window_start") or content.get("computed_at"),
            end=content.get("window_end"), count=len(content.get("decision_ids") or []) or None,
        )
    return get_evidence(ws, actor, eid)


def add_note(ws: Workspace, actor: Actor, incident_id: str, text: str) -> dict[str, Any]:
    """Add an analyst's note as a hashed evidence item."""
    incident_id = _start(ws, actor, incident_id)
    text = (text or "").strip()
    if not text:
        raise WorkbenchError("a note needs text")
    content = {"text": text, "author": actor.user}
    with ws.transaction():
        eid = _insert(
            ws, actor, incident_id, "note", text.splitlines()[0][:80], None, content_hash(content), content=content
        )
    return get_evidence(ws, actor, eid)


def _store_file(ws: Workspace, actor: Actor, incident_id: str, name: str, write: Callable[[Path], None],
                facts: dict[str, Any], label: str | None, mtime: datetime | None) -> dict[str, Any]:
    """Write a file into the evidence store (read-only), hash it and record it (one transaction)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".")[:100] or "file"
    with ws.transaction():
        eid = _next_id(ws)
        rel = Path("incidents") / incident_id / f"E{eid:06d}-{safe}"
        dest = evidence_store(ws) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        write(dest)
        os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        sha = sha256_bytes(dest.read_bytes())
        content = {"name": Path(name).name, **facts, "bytes": dest.stat().st_size}
        _insert(
            ws, actor, incident_id, "file", label or Path(name).name, Path(name).name, sha,
            content=content, start=mtime, count=dest.stat().st_size, store_path=rel.as_posix(), evidence_id=eid,
        )
    return get_evidence(ws, actor, eid)


def add_file(
    ws: Workspace, actor: Actor, incident_id: str, path: str | Path, label: str | None = None
) -> dict[str, Any]:
    """Copy a file into the evidence store (read-only) and record its SHA-256."""
    incident_id = _start(ws, actor, incident_id)
    src = Path(path)
    if not src.is_file():
        raise WorkbenchError(f"no file at {src}")
    return _store_file(ws, actor, incident_id, src.name, lambda dest: shutil.copyfile(src, dest),
                       {"original_path": str(src.resolve())}, label,
                       datetime.fromtimestamp(src.stat().st_mtime, UTC))


def max_upload_bytes() -> int:
    """The largest file the app accepts as evidence (setting evidence_max_mb, MiB)."""

    try:
        mib = float(settings.get("evidence_max_mb"))
    except ValueError as exc:
        raise WorkbenchError("WORKBENCH_EVIDENCE_MAX_MB must be a number of MiB") from exc
    return int(mib * 1024 * 1024)


def add_file_bytes(
    ws: Workspace, actor: Actor, incident_id: str, name: str, data: bytes, label: str | None = None,
    *, max_bytes: int | None = None,
) -> dict[str, Any]:
    """Keep uploaded bytes as a file evidence item (read-only copy, SHA-256), refusing files over the limit."""
    incident_id = _start(ws, actor, incident_id)
    limit = max_upload_bytes() if max_bytes is None else int(max_bytes)
    if len(data) > limit:
        raise WorkbenchError(f"{Path(str(name)).name} is {len(data):,} bytes; evidence files are limited to "
                             f"{limit:,} bytes (WORKBENCH_EVIDENCE_MAX_MB)")
    if not data:
        raise WorkbenchError(f"{Path(str(name)).name} is empty")
    return _store_file(ws, actor, incident_id, str(name), lambda dest: dest.write_bytes(data),
                       {"uploaded_by": actor.user}, label, None)
