"""Evidence items of an incident, frozen when added: alerts, decision sets, metric windows, explanations,
notes and files. Each carries a SHA-256 that ``verify_evidence`` re-computes.

Hash recipes (so anyone can re-check them from an export):

- alert, explanation, note: sha256 of the canonical JSON of ``content`` (``workbench.audit.canonical``:
  sorted keys, no spaces, UTF-8).
- decision_set: the rows are copied into ``evidence_decisions``; sha256 of the rows' ``to_json`` text
  (system_id, decision_id, ts as ``%Y-%m-%dT%H:%M:%S.%fZ``, model_version, principal, prediction, score,
  features, model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra, source_id,
  source_line, in that order), ordered by system_id, decision_id, source_id, source_line, joined by "\\n".
- metric_window: the points are copied into ``evidence_metrics``; same recipe over (ts, system_id, metric,
  value, labels, source_id, source_line) ordered by metric, ts, source_id, source_line.
- file: sha256 of the bytes of the read-only copy in the workspace evidence store ``<db>.evidence/``.

Later ingests never change a frozen item: it reads its own copy, not the live tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.incidents import require_incident
from workbench.errors import WorkbenchError
from workbench.store import Workspace

KINDS = ("alert", "decision_set", "metric_window", "explanation", "note", "file")
_TS = "'%Y-%m-%dT%H:%M:%S.%fZ'"
DECISION_JSON = (
    "to_json({'system_id': system_id, 'decision_id': decision_id, 'ts': strftime(ts, " + _TS + "), "
    "'model_version': model_version, 'principal': principal, 'prediction': prediction, 'score': score, "
    "'features': features, 'model_sha256': model_sha256, 'source_ip': source_ip, 'latency_ms': latency_ms, "
    "'status': status, 'ground_truth': ground_truth, 'session_id': session_id, 'extra': extra, "
    "'source_id': source_id, 'source_line': source_line})::VARCHAR"
)
METRIC_JSON = (
    "to_json({'ts': strftime(ts, " + _TS + "), 'system_id': system_id, 'metric': metric, 'value': value, "
    "'labels': labels, 'source_id': source_id, 'source_line': source_line})::VARCHAR"
)
_DECISION_COLS = (
    "system_id, decision_id, ts, model_version, principal, prediction, score, features, "
    "model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra, source_id, "
    "source_line"
)
_METRIC_COLS = "ts, system_id, metric, value, labels, source_id, source_line"
_LIST_COLS = (
    "evidence_id, incident_id, kind, label, ref, added_at, added_by, role, event_start, event_end, "
    "item_count, store_path, sha256"
)


def sha256_text(text: str) -> str:
    """SHA-256 hex of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex of bytes."""
    return hashlib.sha256(data).hexdigest()


def content_hash(content: Any) -> str:
    """SHA-256 of a value's canonical JSON."""
    return sha256_text(audit.canonical(content))


def evidence_store(ws: Workspace) -> Path:
    """The workspace's evidence store directory, ``<db>.evidence/``."""
    return ws.path.parent / (ws.path.name + ".evidence")


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
    eid = evidence_id if evidence_id is not None else int(ws.scalar("SELECT nextval('evidence_seq')"))
    ws.execute(
        "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            eid,
            incident_id,
            kind,
            label,
            ref,
            datetime.now(UTC),
            actor.user,
            actor.role,
            _ts(start),
            _ts(end),
            count,
            None if content is None else audit.canonical(content),
            store_path,
            sha,
        ],
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
    require(actor, "write:incidents")
    inc = require_incident(ws, incident_id)
    if inc["status"] == "closed":
        raise WorkbenchError(f"{inc['incident_id']} is closed; reopen it before adding evidence")
    return inc["incident_id"]


# -- alerts ----------------------------------------------------------------------------------------
def fetch_alert(ws: Workspace, actor: Actor, alert_id: str) -> dict[str, Any]:
    """An alert as a plain dict under the detect package's alert contract."""
    try:
        from workbench.detect import get_alert
    except ImportError as exc:
        raise WorkbenchError("alerts are not available: the detect package is not installed") from exc
    alert = get_alert(ws, actor, alert_id)
    if not alert:
        raise WorkbenchError(f"no alert {alert_id!r}; `workbench alerts` lists them")
    return json.loads(audit.canonical(dict(alert)))


def _insert_alert(ws: Workspace, actor: Actor, incident_id: str, alert: dict[str, Any]) -> int:
    label = f"{alert.get('detector', 'alert')}: {alert.get('summary') or alert.get('alert_id')}"[:200]
    return _insert(
        ws,
        actor,
        incident_id,
        "alert",
        label,
        str(alert.get("alert_id")),
        content_hash(alert),
        content=alert,
        start=alert.get("window_start"),
        end=alert.get("window_end"),
        count=len(alert.get("decision_ids") or []),
    )


def add_alert(ws: Workspace, actor: Actor, incident_id: str, alert_id: str) -> dict[str, Any]:
    """Freeze an alert (its full contract record) as evidence."""
    incident_id = _start(ws, actor, incident_id)
    alert = fetch_alert(ws, actor, alert_id)
    with ws.transaction():
        eid = _insert_alert(ws, actor, incident_id, alert)
    return get_evidence(ws, actor, eid)


# -- decision sets ---------------------------------------------------------------------------------
def _decision_hash(ws: Workspace, table: str, where: str, params: list[Any]) -> tuple[str, int, Any, Any]:
    row = ws.one(
        f"SELECT sha256(string_agg(j, chr(10) ORDER BY system_id, decision_id, source_id, source_line)), "
        f"count(*), min(ts), max(ts) FROM (SELECT *, {DECISION_JSON} AS j FROM {table} WHERE {where})",
        params,
    )
    return (row[0] or sha256_text("")), int(row[1]), row[2], row[3]


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
    require(actor, "read:decisions")
    ids = sorted({str(d) for d in decision_ids})
    if not ids:
        raise WorkbenchError("a decision set needs at least one decision id")
    with ws.transaction():
        eid = int(ws.scalar("SELECT nextval('evidence_seq')"))
        ws.execute(
            f"INSERT INTO evidence_decisions SELECT ? AS evidence_id, {_DECISION_COLS} FROM decisions "
            "WHERE system_id = ? AND decision_id IN (SELECT unnest(?::VARCHAR[]))",
            [eid, system_id, ids],
        )
        sha, count, t0, t1 = _decision_hash(ws, "evidence_decisions", "evidence_id = ?", [eid])
        if count == 0:
            raise WorkbenchError(f"none of the {len(ids)} decision ids is in {system_id}")
        missing = len(ids) - int(
            ws.scalar(
                "SELECT count(DISTINCT decision_id) FROM evidence_decisions WHERE evidence_id = ?", [eid]
            )
        )
        content = {"system_id": system_id, "requested": len(ids), "rows": count, "missing": missing}
        _insert(
            ws,
            actor,
            incident_id,
            "decision_set",
            label or f"{count} decisions of {system_id}",
            system_id,
            sha,
            content=content,
            start=t0,
            end=t1,
            count=count,
            evidence_id=eid,
        )
    return get_evidence(ws, actor, eid)


# -- metric windows --------------------------------------------------------------------------------
def _metric_hash(ws: Workspace, table: str, where: str, params: list[Any]) -> tuple[str, int, Any, Any]:
    row = ws.one(
        f"SELECT sha256(string_agg(j, chr(10) ORDER BY metric, ts, source_id, source_line)), count(*), "
        f"min(ts), max(ts) FROM (SELECT *, {METRIC_JSON} AS j FROM {table} WHERE {where})",
        params,
    )
    return (row[0] or sha256_text("")), int(row[1]), row[2], row[3]


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
        eid = int(ws.scalar("SELECT nextval('evidence_seq')"))
        ws.execute(
            f"INSERT INTO evidence_metrics SELECT ?, {_METRIC_COLS} FROM metrics WHERE system_id = ? "
            "AND (? IS NULL OR metric = ?) AND ts >= ? AND ts < ?",
            [eid, system_id, metric, metric, t0, t1],
        )
        sha, count, _, _ = _metric_hash(ws, "evidence_metrics", "evidence_id = ?", [eid])
        if count == 0:
            raise WorkbenchError(f"no {metric or 'metric'} points for {system_id} in that window")
        content = {
            "system_id": system_id,
            "metric": metric,
            "start": t0.isoformat(),
            "end": t1.isoformat(),
            "points": count,
        }
        _insert(
            ws,
            actor,
            incident_id,
            "metric_window",
            label or f"{metric or 'metrics'} of {system_id}",
            system_id,
            sha,
            content=content,
            start=t0,
            end=t1,
            count=count,
            evidence_id=eid,
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
            ws,
            actor,
            incident_id,
            "explanation",
            str(label),
            content.get("system_id"),
            content_hash(content),
            content=content,
            start=content.get("window_start") or content.get("computed_at"),
            end=content.get("window_end"),
            count=len(content.get("decision_ids") or []) or None,
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
            ws,
            actor,
            incident_id,
            "note",
            text.splitlines()[0][:80],
            None,
            content_hash(content),
            content=content,
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
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", src.name)[:100] or "file"
    with ws.transaction():
        eid = int(ws.scalar("SELECT nextval('evidence_seq')"))
        rel = Path("incidents") / incident_id / f"E{eid:06d}-{safe}"
        dest = evidence_store(ws) / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        os.chmod(dest, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        sha = hashlib.sha256(dest.read_bytes()).hexdigest()
        mtime = datetime.fromtimestamp(src.stat().st_mtime, UTC)
        content = {"name": src.name, "original_path": str(src.resolve()), "bytes": dest.stat().st_size}
        _insert(
            ws,
            actor,
            incident_id,
            "file",
            label or src.name,
            src.name,
            sha,
            content=content,
            start=mtime,
            count=dest.stat().st_size,
            store_path=rel.as_posix(),
            evidence_id=eid,
        )
    return get_evidence(ws, actor, eid)


# -- reading and verifying -------------------------------------------------------------------------
def _decode(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("content"), str):
        row["content"] = json.loads(row["content"])
    return row


def list_evidence(
    ws: Workspace, actor: Actor, incident_id: str, kind: str | None = None, with_content: bool = False
) -> list[dict[str, Any]]:
    """The incident's evidence items in the order they were added."""
    require(actor, "read:incidents")
    inc = require_incident(ws, incident_id)
    cols = _LIST_COLS + (", content" if with_content else "")
    rows = ws.dicts(
        f"SELECT {cols} FROM evidence WHERE incident_id = ? AND (? IS NULL OR kind = ?) ORDER BY evidence_id",
        [inc["incident_id"], kind, kind],
    )
    return [_decode(r) for r in rows]


def get_evidence(ws: Workspace, actor: Actor, evidence_id: int) -> dict[str, Any]:
    """One evidence item with its content."""
    require(actor, "read:incidents")
    rows = ws.dicts(f"SELECT {_LIST_COLS}, content FROM evidence WHERE evidence_id = ?", [int(evidence_id)])
    if not rows:
        raise WorkbenchError(f"no evidence item {evidence_id}")
    return _decode(rows[0])


def snapshot(ws: Workspace, actor: Actor, evidence_id: int, limit: int | None = None) -> pd.DataFrame:
    """The frozen rows of a decision set or metric window (decision rows need read:decisions; audited)."""
    item = get_evidence(ws, actor, evidence_id)
    lim = f"LIMIT {int(limit)}" if limit else ""
    if item["kind"] == "decision_set":
        require(actor, "read:decisions")
        df = ws.df(
            f"SELECT {_DECISION_COLS} FROM evidence_decisions WHERE evidence_id = ? "
            f"ORDER BY system_id, decision_id {lim}",
            [item["evidence_id"]],
        )
        audit.record(
            ws,
            actor,
            "read.decisions",
            item["incident_id"],
            {"evidence_id": item["evidence_id"], "rows": len(df)},
        )
        try:
            from workbench.cases.masking import mask_frame
        except ImportError:  # accounts/masking not installed: nothing is marked personal
            return df
        return mask_frame(ws, actor, df, item["ref"])
    if item["kind"] == "metric_window":
        return ws.df(
            f"SELECT {_METRIC_COLS} FROM evidence_metrics WHERE evidence_id = ? ORDER BY metric, ts {lim}",
            [item["evidence_id"]],
        )
    raise WorkbenchError(f"evidence {evidence_id} is a {item['kind']}, not a snapshot of rows")


def recompute(ws: Workspace, item: dict[str, Any]) -> tuple[str | None, str]:
    """Re-compute one item's hash from its frozen copy, and whether the live rows still match."""
    eid, kind = item["evidence_id"], item["kind"]
    if kind == "decision_set":
        sha = _decision_hash(ws, "evidence_decisions", "evidence_id = ?", [eid])[0]
        live = _decision_hash(
            ws,
            "decisions",
            "system_id = ? AND decision_id IN (SELECT decision_id FROM "
            "evidence_decisions WHERE evidence_id = ?)",
            [item["ref"], eid],
        )[0]
        return sha, "same" if live == sha else "changed"
    if kind == "metric_window":
        return _metric_hash(ws, "evidence_metrics", "evidence_id = ?", [eid])[0], "n/a"
    if kind == "file":
        path = evidence_store(ws) / (item.get("store_path") or "")
        if not path.is_file():
            return None, "n/a"
        return hashlib.sha256(path.read_bytes()).hexdigest(), "n/a"
    content = item.get("content")
    if isinstance(content, str):
        content = json.loads(content)
    return content_hash(content), "n/a"


def verify_evidence(ws: Workspace, actor: Actor, incident_id: str | None = None) -> list[dict[str, Any]]:
    """Re-hash every frozen item (one incident's, or all) and say which no longer match."""
    require(actor, "read:incidents")
    where, params = (
        ("WHERE incident_id = ?", [require_incident(ws, incident_id)["incident_id"]])
        if incident_id
        else ("", [])
    )
    items = [
        _decode(r)
        for r in ws.dicts(f"SELECT {_LIST_COLS}, content FROM evidence {where} ORDER BY evidence_id", params)
    ]
    out = []
    for item in items:
        sha, live = recompute(ws, item)
        out.append(
            {
                "evidence_id": item["evidence_id"],
                "incident_id": item["incident_id"],
                "kind": item["kind"],
                "label": item["label"],
                "sha256": item["sha256"],
                "recomputed": sha,
                "ok": sha == item["sha256"],
                "live": live,
            }
        )
    audit.record(
        ws,
        actor,
        "evidence.verify",
        incident_id,
        {"items": len(out), "bad": [r["evidence_id"] for r in out if not r["ok"]]},
    )
    return out
