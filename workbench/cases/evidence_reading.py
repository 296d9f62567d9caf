"""Reading and verifying frozen evidence: list, get, the snapshot rows, and re-hashing every item."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.evidence_hashing import (
    DECISION_COLS,
    METRIC_COLS,
    content_hash,
    decision_rows_hash,
    evidence_store,
    metric_rows_hash,
    sha256_bytes,
)
from workbench.cases.incidents import require_incident
from workbench.errors import WorkbenchError
from workbench.store import Workspace

LIST_COLS = (
    "evidence_id, incident_id, kind, label, ref, added_at, added_by, role, event_start, event_end, "
    "item_count, store_path, sha256"
)


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
    cols = LIST_COLS + (", content" if with_content else "")
    rows = ws.dicts(
        f"SELECT {cols} FROM evidence WHERE incident_id = ? AND (? IS NULL OR kind = ?) ORDER BY evidence_id",
        [inc["incident_id"], kind, kind],
    )
    return [_decode(r) for r in rows]


def get_evidence(ws: Workspace, actor: Actor, evidence_id: int) -> dict[str, Any]:
    """One evidence item with its content."""
    require(actor, "read:incidents")
    rows = ws.dicts(f"SELECT {LIST_COLS}, content FROM evidence WHERE evidence_id = ?", [int(evidence_id)])
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
            f"SELECT {DECISION_COLS} FROM evidence_decisions WHERE evidence_id = ? "
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
            f"SELECT {METRIC_COLS} FROM evidence_metrics WHERE evidence_id = ? ORDER BY metric, ts {lim}",
            [item["evidence_id"]],
        )
    raise WorkbenchError(f"evidence {evidence_id} is a {item['kind']}, not a snapshot of rows")


def recompute(ws: Workspace, item: dict[str, Any]) -> tuple[str | None, str]:
    """Re-compute one item's hash from its frozen copy, and whether the live rows still match."""
    eid, kind = item["evidence_id"], item["kind"]
    if kind == "decision_set":
        sha = decision_rows_hash(ws, "evidence_decisions", "evidence_id = ?", [eid])[0]
        live = decision_rows_hash(
            ws,
            "decisions",
            "system_id = ? AND decision_id IN (SELECT decision_id FROM "
            "evidence_decisions WHERE evidence_id = ?)",
            [item["ref"], eid],
        )[0]
        return sha, "same" if live == sha else "changed"
    if kind == "metric_window":
        return metric_rows_hash(ws, "evidence_metrics", "evidence_id = ?", [eid])[0], "n/a"
    if kind == "file":
        path = evidence_store(ws) / (item.get("store_path") or "")
        if not path.is_file():
            return None, "n/a"
        return sha256_bytes(path.read_bytes()), "n/a"
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
        for r in ws.dicts(f"SELECT {LIST_COLS}, content FROM evidence {where} ORDER BY evidence_id", params)
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
