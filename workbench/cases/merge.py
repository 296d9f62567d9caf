"""Merging two incidents about the same attack: the second is folded into the first, nothing is lost.

Every evidence item of the merged incident is copied into the surviving one under a new evidence id, with
its frozen rows, its file copy (shared, read-only), its original time, author and SHA-256 (so it still
verifies); its observables marked or added by hand, tasks, playbooks and step progress are copied too;
systems and ATLAS IDs are united, the stricter TLP and PAP kept. The merged incident itself is kept as it
was (its own evidence, history and audit rows stay readable and verifiable), then closed with a note naming
the survivor and ``merged_into`` set. Both incidents' audit chains record the merge. A merge closes an
incident, so it needs ``close:incidents``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import atlas as atlas_ids
from workbench.cases.incidents import PAP_LEVELS, SEVERITIES, TLP_LEVELS, get_incident, require_incident
from workbench.cases.tasks import copy_tasks
from workbench.errors import WorkbenchError
from workbench.store import Workspace

_EVIDENCE_COLS = ("incident_id, kind, label, ref, added_at, added_by, role, event_start, event_end, item_count, "
                  "content, store_path, sha256")


def _copy_evidence(ws: Workspace, source: str, target: str) -> list[dict[str, int]]:
    """Copy every evidence row (and its frozen snapshot rows) of `source` into `target`; old -> new ids."""
    moved = []
    for (old,) in ws.rows("SELECT evidence_id FROM evidence WHERE incident_id = ? ORDER BY evidence_id", [source]):
        new = int(ws.scalar("SELECT nextval('evidence_seq')"))
        ws.execute(
            f"INSERT INTO evidence (evidence_id, {_EVIDENCE_COLS}) SELECT ?, ?, "
            f"{_EVIDENCE_COLS.split(', ', 1)[1]} FROM evidence WHERE evidence_id = ?",
            [new, target, old],
        )
        ws.execute("INSERT INTO evidence_decisions SELECT ? AS evidence_id, * EXCLUDE (evidence_id) "
                   "FROM evidence_decisions WHERE evidence_id = ?", [new, old])
        ws.execute("INSERT INTO evidence_metrics SELECT ? AS evidence_id, * EXCLUDE (evidence_id) "
                   "FROM evidence_metrics WHERE evidence_id = ?", [new, old])
        moved.append({"from": int(old), "to": new})
    return moved


def _copy_playbooks(ws: Workspace, source: str, target: str) -> list[str]:
    """Attach the source's playbooks the target lacks, and copy step progress the target has not recorded."""
    added = [r[0] for r in ws.rows(
        "SELECT playbook_id FROM incident_playbooks WHERE incident_id = ? AND playbook_id NOT IN "
        "(SELECT playbook_id FROM incident_playbooks WHERE incident_id = ?) ORDER BY playbook_id", [source, target])]
    ws.execute(
        "INSERT INTO incident_playbooks SELECT ?, playbook_id, version, attached_at, attached_by "
        "FROM incident_playbooks WHERE incident_id = ? AND list_contains(?, playbook_id)", [target, source, added])
    ws.execute(
        "INSERT INTO playbook_progress SELECT ?, p.playbook_id, p.step_id, p.done, p.actor, p.role, p.ts, p.note "
        "FROM playbook_progress p WHERE p.incident_id = ? AND NOT EXISTS (SELECT 1 FROM playbook_progress q "
        "WHERE q.incident_id = ? AND q.playbook_id = p.playbook_id AND q.step_id = p.step_id)",
        [target, source, target],
    )
    return added


def _copy_observables(ws: Workspace, source: str, target: str) -> int:
    """Copy the source's observables added by hand or marked, unless the target already has the same one."""
    rows = ws.dicts(
        "SELECT * FROM observables o WHERE incident_id = ? AND NOT EXISTS (SELECT 1 FROM observables t "
        "WHERE t.incident_id = ? AND t.type = o.type AND t.value = o.value) ORDER BY observable_id", [source, target])
    for r in rows:
        r["observable_id"] = int(ws.scalar("SELECT nextval('observable_seq')"))
        r["incident_id"] = target
        cols = list(r)
        ws.execute(f"INSERT INTO observables ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                   list(r.values()))
    return len(rows)


def merge_incidents(
    ws: Workspace, actor: Actor, target: str, source: str, note: str | None = None
) -> dict[str, Any]:
    """Fold incident `source` into `target` (see the module docstring); returns the surviving incident."""
    require(actor, "write:incidents", ws)
    require(actor, "close:incidents", ws)
    into, other = require_incident(ws, target), require_incident(ws, source)
    a, b = into["incident_id"], other["incident_id"]
    if a == b:
        raise WorkbenchError("an incident cannot be merged into itself")
    if into["status"] == "closed":
        raise WorkbenchError(f"{a} is closed; reopen it before merging into it")
    if other["status"] == "closed":
        raise WorkbenchError(f"{b} is closed; reopen it before merging it")
    now = datetime.now(UTC)
    why = (note or "").strip() or f"merged into {a}"
    severity = max(into["severity"], other["severity"], key=SEVERITIES.index)
    tlp = max(into["tlp"], other["tlp"], key=TLP_LEVELS.index)  # the stricter marking wins
    pap = max(into["pap"], other["pap"], key=PAP_LEVELS.index)
    systems = sorted(set(into["systems"] or []) | set(other["systems"] or []))
    atlas = atlas_ids.normalise([*(into["atlas"] or []), *(other["atlas"] or [])])
    with ws.transaction():
        moved = _copy_evidence(ws, b, a)
        for m in moved:
            row = ws.dicts("SELECT kind, label, ref, sha256, item_count FROM evidence WHERE evidence_id = ?",
                           [m["to"]])[0]
            audit.record(ws, actor, "evidence.add", a,
                         {"evidence_id": m["to"], "kind": row["kind"], "label": row["label"], "ref": row["ref"],
                          "sha256": row["sha256"], "items": row["item_count"], "merged_from": b,
                          "original_evidence_id": m["from"]})
        playbooks = _copy_playbooks(ws, b, a)
        observables = _copy_observables(ws, b, a)
        tasks = copy_tasks(ws, actor, b, a)
        description = into["description"] or ""
        if other["description"]:
            description = (description + "\n\n" if description else "") + f"From {b}: {other['description']}"
        ws.execute(
            "UPDATE incidents SET severity = ?, systems = ?, atlas = ?, description = ?, tlp = ?, pap = ?, "
            "updated_at = ? WHERE incident_id = ?", [severity, systems, atlas, description, tlp, pap, now, a])
        ws.execute("UPDATE incidents SET status = 'closed', closed_at = ?, updated_at = ?, merged_into = ? "
                   "WHERE incident_id = ?", [now, now, a, b])
        ws.execute("INSERT INTO incident_status VALUES (?, ?, ?, ?, ?, 'closed', ?)",
                   [b, now, actor.user, actor.role, other["status"], why])
        details = {"into": a, "merged": b, "evidence": moved, "playbooks": playbooks, "observables": observables,
                   "tasks": len(tasks), "note": why}
        audit.record(ws, actor, "incident.merge", a, details)
        audit.record(ws, actor, "incident.merged", b, {**details, "from": other["status"], "to": "closed"})
    return get_incident(ws, actor, a)
