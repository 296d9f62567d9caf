"""An incident as it stood at an audit sequence number: the state a report cut at seq N showed.

A report is cut at the audit chain's head (seq N and that row's hash). Every section is rebuilt as of N, so a
filed report still checks after more work on the case, and any change to the state it showed is found:

- incident fields: the current row with every later change undone, using the chain's own record of each
  change (``incident.status`` and ``incident.assign`` rows, and every row whose details map a field to
  ``{"from": old, "to": new}`` such as ``incident.update``, keep the previous value). A writer that changes an
  incident field without such a row would make older reports fail their check: record the previous value;
- status history: the first 1 + k rows of ``incident_status`` (k = ``incident.status`` rows up to N);
  ``closed_at`` is the time of the last move to closed among them, when the incident was closed at N;
- evidence: the items whose ``evidence.add`` row is at or before N (their rows are frozen);
- playbooks: those attached (``playbook.attach``) at or before N and each step's last ``playbook.step`` row at or
  before N (done, note, who, when). The hashed state needs no playbook file; the step texts of the rendered
  report come from the library (``playbook_view``), and a library that cannot be read is an error.

The audit rows are the record of who changed what: they are hash-chained, and the report carries the hash of
row N so a rewritten chain no longer matches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.cases.evidence_reading import LIST_COLS
from workbench.cases.playbook_library import load_playbooks, playbook_dir
from workbench.cases.timeline import _EVENT_SQL, COLUMNS, describe_action
from workbench.errors import WorkbenchError
from workbench.store import Workspace

FIELDS = ("title", "severity", "status", "owner", "systems", "atlas", "description")
EXTRA_FIELDS = ("tlp", "pap", "merged_into")  # undone the same way when the incident row has them
# Audit actions that change one field and record {"from": old, "to": new} at the top level of their details.
_ONE_FIELD = {"incident.status": "status", "incident.assign": "owner"}


def chain_head(ws: Workspace, as_of_seq: int | None = None) -> tuple[int, str | None]:
    """(seq, hash) of the audit row a report is cut at: the newest row, or row as_of_seq (hash None if gone)."""
    if as_of_seq is None:
        row = ws.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return (0, None) if row is None else (int(row[0]), str(row[1]))
    row = ws.one("SELECT seq, hash FROM audit_log WHERE seq = ?", [int(as_of_seq)])
    return int(as_of_seq), None if row is None else str(row[1])


def incident_rows(ws: Workspace, incident_id: str) -> list[dict[str, Any]]:
    """Every audit row about the incident, oldest first, with details parsed."""
    rows = ws.dicts(
        "SELECT seq, ts, actor, role, action, details, hash FROM audit_log WHERE object = ? ORDER BY seq",
        [incident_id],
    )
    for r in rows:
        d = r["details"]
        r["details"] = (json.loads(d) if isinstance(d, str) else d) or {}
    return rows


def incident_at(ws: Workspace, inc: dict[str, Any], rows: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    """The incident's fields and status history as they were at audit seq `seq`."""
    iid = inc["incident_id"]
    created = next((r for r in rows if r["action"] == "incident.create"), None)
    if created is None or created["seq"] > seq:
        raise WorkbenchError(f"{iid} did not exist at audit seq {seq}")
    state = {k: inc[k] for k in (*FIELDS, *EXTRA_FIELDS) if k in inc}
    for r in reversed([r for r in rows if r["seq"] > seq]):
        d = r["details"] if isinstance(r["details"], dict) else {}
        if r["action"] in _ONE_FIELD:
            if "from" in d:
                state[_ONE_FIELD[r["action"]]] = d["from"]
            continue
        for k, change in d.items():  # incident.update, incident.mark, ...: {field: {"from": old, "to": new}}
            if k in state and isinstance(change, dict) and "from" in change and "to" in change:
                state[k] = change["from"]
    changes = sum(1 for r in rows if r["action"] == "incident.status" and r["seq"] <= seq)
    history = ws.dicts(
        "SELECT ts, actor, role, from_status, to_status, note FROM incident_status WHERE incident_id = ? "
        "ORDER BY ts, rowid LIMIT ?",
        [iid, 1 + changes],
    )
    closed = [h["ts"] for h in history if h["to_status"] == "closed"]
    state["closed_at"] = closed[-1] if state["status"] == "closed" and closed else None
    state["history"] = history
    return {"incident_id": iid, "created_at": inc["created_at"], "created_by": inc["created_by"], **state}


def evidence_ids_at(rows: list[dict[str, Any]], seq: int) -> set[int]:
    """The ids of the evidence items added to the incident at or before audit seq `seq`."""
    out = set()
    for r in rows:
        if r["action"] == "evidence.add" and r["seq"] <= seq and isinstance(r["details"], dict):
            eid = r["details"].get("evidence_id")
            if isinstance(eid, int):
                out.add(eid)
    return out


def evidence_at(ws: Workspace, incident_id: str, ids: set[int]) -> list[dict[str, Any]]:
    """The evidence rows (content decoded) of the items in `ids`, as recorded: for hashing, never for display."""

    rows = ws.dicts(
        f"SELECT {LIST_COLS}, content FROM evidence WHERE incident_id = ? AND evidence_id IN "
        "(SELECT unnest(?::INTEGER[])) ORDER BY evidence_id",
        [incident_id, sorted(ids)],
    )
    for r in rows:
        if isinstance(r.get("content"), str):
            r["content"] = json.loads(r["content"])
    return rows


def timeline_at(
    ws: Workspace, incident_id: str, rows: list[dict[str, Any]], seq: int, ids: set[int]
) -> pd.DataFrame:
    """The incident's timeline as of `seq`, as recorded (``timeline.build_timeline`` without masking)."""

    events = ws.df(_EVENT_SQL, [incident_id, incident_id])
    events = events[events["evidence_id"].isin(sorted(ids))]
    actions = pd.DataFrame(
        [
            {"ts": r["ts"], "source": "action", "kind": r["action"], "what": describe_action(r["action"], r["details"]),
             "actor": f"{r['actor']} ({r['role']})",
             "evidence_id": r["details"].get("evidence_id") if isinstance(r["details"], dict) else None,
             "seq": r["seq"]}
            for r in rows
            if r["seq"] <= seq
        ],
        columns=COLUMNS,
    )
    frames = [f for f in (events, actions) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out["evidence_id"] = out["evidence_id"].astype("Int64")
    out["seq"] = out["seq"].astype("Int64")
    return out.sort_values(["ts", "seq"], kind="stable", na_position="first").reset_index(drop=True)


def playbooks_at(ws: Workspace, incident_id: str, rows: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    """Playbooks attached at or before `seq`, each with its steps' recorded state then (no library needed)."""
    table = {
        r["playbook_id"]: r
        for r in ws.dicts(
            "SELECT playbook_id, version, attached_at, attached_by FROM incident_playbooks WHERE incident_id = ?",
            [incident_id],
        )
    }
    attached: dict[str, dict[str, Any]] = {}
    steps: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["seq"] > seq or not isinstance(r["details"], dict):
            continue
        d = r["details"]
        pid = str(d.get("playbook"))
        if r["action"] == "playbook.attach" and pid not in attached:
            row = table.get(pid, {})
            attached[pid] = {"playbook_id": pid, "attached_version": d.get("version"),
                             "attached_sha256": d.get("sha256"), "attached_at": row.get("attached_at"),
                             "attached_by": row.get("attached_by")}
        elif r["action"] == "playbook.step":
            steps.setdefault(pid, {})[str(d.get("step"))] = {
                "step_id": str(d.get("step")), "done": bool(d.get("done")), "note": d.get("note"),
                "by": r["actor"], "role": r["role"], "at": r["ts"],
            }
    return [{**a, "steps": [steps.get(pid, {})[k] for k in sorted(steps.get(pid, {}))]}
            for pid, a in attached.items()]


def playbook_view(state: list[dict[str, Any]], dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The recorded playbook state joined with the library's step texts, for rendering (not hashed)."""
    if not state:
        return []

    try:
        books = load_playbooks(dir)
    except (WorkbenchError, OSError, UnicodeError, ValueError) as exc:
        raise WorkbenchError(
            f"cannot build the report's playbook section: the playbook library at {playbook_dir(dir)} "
            f"cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from exc
    out = []
    for a in state:
        pb = books.get(a["playbook_id"])
        recorded = {s["step_id"]: s for s in a["steps"]}
        ids = [s.id for s in pb.steps] if pb else []
        ids += [k for k in recorded if k not in ids]
        problem = None
        if pb is None:
            problem = f"playbook {a['playbook_id']} is not in the library any more: only recorded steps are listed"
        elif str(pb.version) != str(a["attached_version"]):
            problem = f"attached at v{a['attached_version']}; step texts are from the library's v{pb.version}"
        steps = []
        for sid in ids:
            st = pb.step(sid) if pb else None
            s = recorded.get(sid, {})
            steps.append({"step_id": sid, "phase": st.phase if st else None,
                          "text": st.text if st else "(step no longer in the playbook)",
                          "done": bool(s.get("done")), "by": s.get("by"), "role": s.get("role"), "at": s.get("at"),
                          "note": s.get("note")})
        out.append({**{k: v for k, v in a.items() if k != "steps"}, "title": pb.title if pb else a["playbook_id"],
                    "version": pb.version if pb else None, "problem": problem, "steps": steps,
                    "done": sum(s["done"] for s in steps), "total": len(steps)})
    return out
