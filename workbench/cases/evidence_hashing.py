"""How evidence items are hashed, so anyone can re-check them from an export.

Hash recipes:

- alert, explanation, note: sha256 of the canonical JSON of ``content`` (``workbench.audit.canonical``:
  sorted keys, no spaces, UTF-8).
- decision_set: the rows are copied into ``evidence_decisions``; sha256 of the rows' ``to_json`` text
  (system_id, decision_id, ts as ``%Y-%m-%dT%H:%M:%S.%fZ``, model_version, principal, prediction, score,
  features, model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra, source_id,
  source_line, in that order), ordered by system_id, decision_id, source_id, source_line, joined by "\\n".
- metric_window: the points are copied into ``evidence_metrics``; same recipe over (ts, system_id, metric,
  value, labels, source_id, source_line) ordered by metric, ts, source_id, source_line.
- file: sha256 of the bytes of the read-only copy in the workspace evidence store ``<db>.evidence/``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from workbench import audit
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
DECISION_COLS = (
    "system_id, decision_id, ts, model_version, principal, prediction, score, features, "
    "model_sha256, source_ip, latency_ms, status, ground_truth, session_id, extra, source_id, "
    "source_line"
)
METRIC_COLS = "ts, system_id, metric, value, labels, source_id, source_line"


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


def _rows_hash(
    ws: Workspace, row_json: str, order: str, table: str, where: str, params: list[Any]
) -> tuple[str, int, Any, Any]:
    row = ws.one(
        f"SELECT sha256(string_agg(j, chr(10) ORDER BY {order})), count(*), min(ts), max(ts) "
        f"FROM (SELECT *, {row_json} AS j FROM {table} WHERE {where})",
        params,
    )
    return (row[0] or sha256_text("")), int(row[1]), row[2], row[3]


def decision_rows_hash(ws: Workspace, table: str, where: str, params: list[Any]) -> tuple[str, int, Any, Any]:
    """SHA-256, row count, first and last ts of the decision rows of `table` matching `where`."""
    return _rows_hash(ws, DECISION_JSON, "system_id, decision_id, source_id, source_line", table, where, params)


def metric_rows_hash(ws: Workspace, table: str, where: str, params: list[Any]) -> tuple[str, int, Any, Any]:
    """SHA-256, point count, first and last ts of the metric points of `table` matching `where`."""
    return _rows_hash(ws, METRIC_JSON, "metric, ts, source_id, source_line", table, where, params)
