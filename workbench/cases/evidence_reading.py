"""Reading and verifying frozen evidence: list, get, the snapshot rows, and re-hashing every item.

Items are frozen as they were added; every read masks personal feature values for the reading actor (alert
evidence, explanation values, snapshot rows, and labels and notes quoting a masked value), through
workbench.access.masking. `incident_masker` gives the same scrubbing to other text about an incident.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.access.masking import Masker, mask_frame
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


def _primed(ws: Workspace, actor: Actor, items: list[dict[str, Any]]) -> Masker:
    """A masker for the actor that has seen the personal values of these items (alerts, explanations)."""
    m = Masker(ws, actor)
    if m.active:
        for item in items:
            _mask_content(m, item)
    return m


def _mask_content(m: Masker, item: dict[str, Any]) -> Any:
    content = item.get("content")
    if item["kind"] == "alert" and isinstance(content, dict):
        return m.alert(content)
    if item["kind"] == "explanation":
        system = content.get("system_id") if isinstance(content, dict) else None
        return m.payload(content, system if isinstance(system, str) else item.get("ref"))
    return content


def _shown(m: Masker, item: dict[str, Any]) -> dict[str, Any]:
    """An item as the masker's actor may see it: content masked, label and text scrubbed of masked values."""
    if not m.active:
        return item
    out = dict(item)
    if "content" in out:
        out["content"] = _mask_content(m, out)
        if out["kind"] == "note":
            out["content"] = m.text(out["content"])
    out["label"] = m.text(out.get("label"))
    return out


def incident_masker(ws: Workspace, actor: Actor, incident_id: str) -> Masker:
    """A masker primed with the personal values in an incident's evidence: `.text(...)` scrubs them from
    free text about the incident (timeline lines, audit details, titles) for roles without read:personal."""
    m = Masker(ws, actor)
    if not m.active:
        return m
    rows = ws.dicts(
        "SELECT kind, ref, content FROM evidence WHERE incident_id = ? AND kind IN ('alert', 'explanation') "
        "ORDER BY evidence_id",
        [str(incident_id).upper()],
    )
    return _primed(ws, actor, [_decode(r) for r in rows]) if rows else m


def list_evidence(
    ws: Workspace, actor: Actor, incident_id: str, kind: str | None = None, with_content: bool = False
) -> list[dict[str, Any]]:
    """The incident's evidence items in the order they were added (personal values masked for the actor)."""
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)
    rows = ws.dicts(
        f"SELECT {LIST_COLS}, content FROM evidence WHERE incident_id = ? AND (? IS NULL OR kind = ?) "
        "ORDER BY evidence_id",
        [inc["incident_id"], kind, kind],
    )
    m = incident_masker(ws, actor, inc["incident_id"])
    out = [_shown(m, _decode(r)) for r in rows]
    if not with_content:
        for r in out:
            r.pop("content", None)
    return out


def get_evidence(ws: Workspace, actor: Actor, evidence_id: int) -> dict[str, Any]:
    """One evidence item with its content (personal values masked for the actor)."""
    require(actor, "read:incidents", ws)
    rows = ws.dicts(f"SELECT {LIST_COLS}, content FROM evidence WHERE evidence_id = ?", [int(evidence_id)])
    if not rows:
        raise WorkbenchError(f"no evidence item {evidence_id}")
    item = _decode(rows[0])
    return _shown(incident_masker(ws, actor, item["incident_id"]), item)


def snapshot(ws: Workspace, actor: Actor, evidence_id: int, limit: int | None = None) -> pd.DataFrame:
    """The frozen rows of a decision set or metric window (decision rows need read:decisions; audited)."""
    item = get_evidence(ws, actor, evidence_id)
    lim = f"LIMIT {int(limit)}" if limit else ""
    if item["kind"] == "decision_set":
        require(actor, "read:decisions", ws)
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
    require(actor, "read:incidents", ws)
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
    shown = _primed(ws, actor, items)
    for item in items:
        sha, live = recompute(ws, item)
        out.append(
            {
                "evidence_id": item["evidence_id"],
                "incident_id": item["incident_id"],
                "kind": item["kind"],
                "label": shown.text(item["label"]),
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
