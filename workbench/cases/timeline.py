"""An incident's timeline: what happened (from the evidence's own timestamps) and what analysts did
(from the audit chain rows whose object is the incident), in one time-ordered table.

Reading the incident's own audit rows needs only ``read:incidents``: they are the case's history, not the
whole audit log (which stays behind ``read:audit``).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from workbench.access import Actor, require
from workbench.cases.evidence_reading import incident_masker
from workbench.cases.incidents import require_incident
from workbench.store import Workspace

COLUMNS = ["ts", "source", "kind", "what", "actor", "evidence_id", "seq"]

_EVENT_SQL = """
SELECT event_start AS ts, 'evidence' AS source, kind,
       CASE kind WHEN 'file' THEN 'file last modified: ' WHEN 'alert' THEN 'alert window opens: '
                 WHEN 'decision_set' THEN 'first decision in set: '
                 WHEN 'metric_window' THEN 'metric window opens: '
                 ELSE 'evidence time: ' END || label AS what,
       NULL::VARCHAR AS actor, evidence_id, NULL::BIGINT AS seq
FROM evidence WHERE incident_id = ? AND event_start IS NOT NULL
UNION ALL
SELECT event_end, 'evidence', kind,
       CASE kind WHEN 'alert' THEN 'alert window closes: ' WHEN 'decision_set' THEN 'last decision in set: '
                 WHEN 'metric_window' THEN 'metric window closes: ' ELSE 'evidence ends: ' END || label,
       NULL, evidence_id, NULL
FROM evidence WHERE incident_id = ? AND event_end IS NOT NULL AND event_end <> event_start
"""


def describe_action(action: str, details: dict[str, Any]) -> str:
    """A short plain sentence for an audit row about an incident."""
    d = details or {}
    if action == "incident.create":
        return f"opened incident '{d.get('title')}' ({d.get('severity')})"
    if action == "incident.status":
        note = f" - {d['note']}" if d.get("note") else ""
        return f"status {d.get('from')} -> {d.get('to')}{note}"
    if action == "incident.assign":
        return f"assigned to {d.get('to') or 'nobody'}"
    if action == "incident.update":
        return "changed " + ", ".join(sorted(d))
    if action == "evidence.add":
        return f"added {d.get('kind')} evidence #{d.get('evidence_id')}: {d.get('label')}"
    if action == "evidence.verify":
        bad = d.get("bad") or []
        return f"verified {d.get('items')} evidence items" + (f", MISMATCH {bad}" if bad else ", all intact")
    if action == "playbook.step":
        state = "done" if d.get("done") else "not done"
        return f"playbook {d.get('playbook')} step {d.get('step')} marked {state}" + (
            f" - {d['note']}" if d.get("note") else ""
        )
    if action == "playbook.attach":
        return f"attached playbook {d.get('playbook')} v{d.get('version')}"
    if action == "report.export":
        return f"exported {d.get('format')} report (sha256 {str(d.get('sha256'))[:12]})"
    if action == "read.decisions":
        return f"viewed {d.get('rows')} frozen decisions of evidence #{d.get('evidence_id')}"
    return action


def build_timeline(
    ws: Workspace, actor: Actor, incident_id: str, as_of_seq: int | None = None
) -> pd.DataFrame:
    """Events (evidence timestamps) and analyst actions (audit rows, up to as_of_seq) in time order."""
    require(actor, "read:incidents", ws)
    inc_id = require_incident(ws, incident_id)["incident_id"]
    events = ws.df(_EVENT_SQL, [inc_id, inc_id])
    audit_rows = ws.dicts(
        "SELECT seq, ts, actor, role, action, details FROM audit_log "
        "WHERE object = ? AND (? IS NULL OR seq <= ?) "
        "ORDER BY seq",
        [inc_id, as_of_seq, as_of_seq],
    )
    actions = []
    for r in audit_rows:
        details = json.loads(r["details"]) if isinstance(r["details"], str) else (r["details"] or {})
        actions.append(
            {
                "ts": r["ts"],
                "source": "action",
                "kind": r["action"],
                "what": describe_action(r["action"], details),
                "actor": f"{r['actor']} ({r['role']})",
                "evidence_id": details.get("evidence_id"),
                "seq": r["seq"],
            }
        )
    frames = [f for f in (events, pd.DataFrame(actions, columns=COLUMNS)) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out["evidence_id"] = out["evidence_id"].astype("Int64")
    out["seq"] = out["seq"].astype("Int64")
    out["what"] = out["what"].map(incident_masker(ws, actor, inc_id).text)  # personal values quoted in labels
    return out.sort_values(["ts", "seq"], kind="stable", na_position="first").reset_index(drop=True)
