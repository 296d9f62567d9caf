"""Playbooks on an incident: attach them, tick steps, show progress, and suggest which ones fit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import atlas
from workbench.cases.incidents import require_incident
from workbench.cases.playbook_library import get_playbook, load_playbooks, playbook_dir
from workbench.errors import WorkbenchError
from workbench.store import Workspace


def attach(
    ws: Workspace, actor: Actor, incident_id: str, playbook_id: str, dir: str | Path | None = None
) -> dict[str, Any]:
    """Attach a playbook to an incident (idempotent); its steps then show in progress()."""
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)["incident_id"]
    pb = get_playbook(playbook_id, dir)
    if not ws.scalar(
        "SELECT count(*) FROM incident_playbooks WHERE incident_id = ? AND playbook_id = ?", [inc, pb.id]
    ):
        with ws.transaction():
            ws.execute(
                "INSERT INTO incident_playbooks VALUES (?, ?, ?, ?, ?)",
                [inc, pb.id, pb.version, datetime.now(UTC), actor.user],
            )
            audit.record(
                ws,
                actor,
                "playbook.attach",
                inc,
                {"playbook": pb.id, "version": pb.version, "sha256": pb.sha256},
            )
    return pb.summary()


def set_step(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    playbook_id: str,
    step_id: str,
    done: bool,
    note: str | None = None,
    dir: str | Path | None = None,
) -> dict[str, Any]:
    """Mark a step done or not done for an incident, by this actor, now, with an optional note."""
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    if inc["status"] == "closed":
        raise WorkbenchError(f"{inc['incident_id']} is closed; reopen it to change playbook progress")
    pb = get_playbook(playbook_id, dir)
    step = pb.step(step_id)
    if step is None:
        raise WorkbenchError(
            f"playbook {pb.id} has no step {step_id!r}; steps: " + ", ".join(s.id for s in pb.steps)
        )
    attach(ws, actor, inc["incident_id"], pb.id, dir)
    now = datetime.now(UTC)
    with ws.transaction():
        ws.execute(
            "INSERT OR REPLACE INTO playbook_progress VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [inc["incident_id"], pb.id, step.id, bool(done), actor.user, actor.role, now, note],
        )
        audit.record(
            ws,
            actor,
            "playbook.step",
            inc["incident_id"],
            {"playbook": pb.id, "step": step.id, "done": bool(done), "note": note},
        )
    return {
        "incident_id": inc["incident_id"],
        "playbook_id": pb.id,
        "step_id": step.id,
        "done": bool(done),
        "by": actor.user,
        "at": now,
        "note": note,
    }


def progress(
    ws: Workspace, actor: Actor, incident_id: str, dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """Each attached playbook with every step's state: done, by whom, when, note."""
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)["incident_id"]
    attached = ws.dicts(
        "SELECT playbook_id, version, attached_at, attached_by FROM incident_playbooks "
        "WHERE incident_id = ? ORDER BY attached_at",
        [inc],
    )
    state = {
        (r["playbook_id"], r["step_id"]): r
        for r in ws.dicts(
            "SELECT playbook_id, step_id, done, actor, role, ts, note FROM playbook_progress "
            "WHERE incident_id = ?",
            [inc],
        )
    }
    books = load_playbooks(dir) if playbook_dir(dir).is_dir() else {}
    out = []
    for a in attached:
        pb = books.get(a["playbook_id"])
        steps = []
        ids = [s.id for s in pb.steps] if pb else []
        ids += sorted(k[1] for k in state if k[0] == a["playbook_id"] and k[1] not in ids)
        for sid in ids:
            st = pb.step(sid) if pb else None
            s = state.get((a["playbook_id"], sid), {})
            steps.append(
                {
                    "step_id": sid,
                    "phase": st.phase if st else None,
                    "text": st.text if st else "(step no longer in the playbook)",
                    "action": st.action if st else None,
                    "done": bool(s.get("done")),
                    "by": s.get("actor"),
                    "role": s.get("role"),
                    "at": s.get("ts"),
                    "note": s.get("note"),
                }
            )
        out.append(
            {
                "playbook_id": a["playbook_id"],
                "title": pb.title if pb else a["playbook_id"],
                "version": pb.version if pb else None,
                "attached_version": a["version"],
                "attached_at": a["attached_at"],
                "attached_by": a["attached_by"],
                "done": sum(s["done"] for s in steps),
                "total": len(steps),
                "steps": steps,
            }
        )
    return out


def suggest(
    ws: Workspace, actor: Actor, incident_id: str, dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """Playbooks ranked for an incident by its ATLAS IDs and the detectors of its alert evidence."""
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)
    ids = set(inc["atlas"] or [])
    detectors = {
        r[0]
        for r in ws.rows(
            "SELECT DISTINCT content->>'detector' FROM evidence WHERE incident_id = ? AND kind = 'alert'",
            [inc["incident_id"]],
        )
        if r[0]
    }
    out = []
    for pb in load_playbooks(dir).values():
        exact = sorted(ids & set(pb.atlas))
        family = sorted(
            {i for i in ids - set(exact) if atlas.parent(i) in {atlas.parent(a) for a in pb.atlas}}
        )
        dets = sorted(detectors & set(pb.detectors))
        score = 3 * len(dets) + 2 * len(exact) + len(family)
        if score:
            out.append(
                {
                    "playbook_id": pb.id,
                    "title": pb.title,
                    "score": score,
                    "atlas": exact,
                    "related_atlas": family,
                    "detectors": dets,
                    "severity_fit": inc["severity"] in pb.severity,
                }
            )
    return sorted(out, key=lambda r: (-r["score"], not r["severity_fit"], r["playbook_id"]))
