"""Tasks per incident: who does what by when, by hand or from the steps of an attached playbook.

A task has a title, a status (``todo -> in_progress -> done``, or ``cancelled``), an assignee (an account
that may work incidents, when the workspace has accounts) and a due time. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.incidents import _check_user, require_incident
from workbench.cases.playbooks import progress
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import to_datetime

STATUSES = ("todo", "in_progress", "done", "cancelled")
_COLS = ("task_id, incident_id, title, status, assignee, due, source, note, created_at, created_by, updated_at, "
         "updated_by")
CLEAR = "-"  # given as assignee or due: clear it


def _now() -> datetime:
    return datetime.now(UTC)


def _due(value: Any) -> datetime | None:
    if isinstance(value, str) and value == CLEAR:
        return None
    return to_datetime(value, "due time")


def _status(value: str) -> str:
    s = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if s not in STATUSES:
        raise WorkbenchError(f"unknown task status {value!r}; choose from {', '.join(STATUSES)}")
    return s


def _writable(ws: Workspace, actor: Actor, incident_id: str) -> dict[str, Any]:
    require(actor, "write:incidents", ws)
    inc = require_incident(ws, incident_id)
    if inc["status"] == "closed":
        raise WorkbenchError(f"{inc['incident_id']} is closed; reopen it before changing its tasks")
    return inc


def _get(ws: Workspace, task_id: int) -> dict[str, Any]:
    rows = ws.dicts(f"SELECT {_COLS} FROM incident_tasks WHERE task_id = ?", [int(task_id)])
    if not rows:
        raise WorkbenchError(f"no task {task_id}; `workbench incident task list INC` shows them")
    return rows[0]


def _insert(ws: Workspace, actor: Actor, incident_id: str, title: str, *, status: str = "todo",
            assignee: str | None = None, due: datetime | None = None, source: str | None = None,
            note: str = "") -> int:
    """Insert one task and its audit record (inside the caller's transaction)."""
    tid = int(ws.scalar("SELECT nextval('task_seq')"))
    now = _now()
    ws.execute(f"INSERT INTO incident_tasks({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               [tid, incident_id, title, status, assignee, due, source, note, now, actor.user, now, actor.user])
    audit.record(ws, actor, "task.add", incident_id,
                 {"task_id": tid, "title": title, "status": status, "assignee": assignee,
                  "due": due.isoformat() if due else None, "source": source})
    return tid


def add_task(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    title: str,
    *,
    assignee: str | None = None,
    due: Any = None,
    note: str = "",
    source: str | None = None,
) -> dict[str, Any]:
    """Add a task to an incident (assignee and due time optional)."""
    inc = _writable(ws, actor, incident_id)
    title = " ".join(str(title or "").split())
    if not title:
        raise WorkbenchError("a task needs a title")
    who = _check_user(ws, assignee)
    with ws.transaction():
        tid = _insert(ws, actor, inc["incident_id"], title[:500], assignee=who, due=_due(due), source=source,
                      note=note or "")
    return _shown(_get(ws, tid))


def _shown(task: dict[str, Any]) -> dict[str, Any]:
    due = task.get("due")
    task["overdue"] = bool(due and task["status"] in ("todo", "in_progress") and due < _now())
    return task


def list_tasks(
    ws: Workspace, actor: Actor, incident_id: str, *, status: str | None = None, assignee: str | None = None
) -> list[dict[str, Any]]:
    """The incident's tasks (optionally of one status or assignee), open ones first, then by due time."""
    require(actor, "read:incidents", ws)
    inc = require_incident(ws, incident_id)
    rows = ws.dicts(
        f"SELECT {_COLS} FROM incident_tasks WHERE incident_id = ? AND (? IS NULL OR status = ?) "
        "AND (? IS NULL OR assignee = ?) ORDER BY list_position(?, status), due NULLS LAST, task_id",
        [inc["incident_id"], status and _status(status), status and _status(status), assignee, assignee,
         list(STATUSES)],
    )
    return [_shown(r) for r in rows]


def update_task(
    ws: Workspace,
    actor: Actor,
    task_id: int,
    *,
    status: str | None = None,
    assignee: str | None = None,
    due: Any = None,
    title: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Change a task's status, assignee, due time, title or note (only the fields given; '-' clears
    assignee or due)."""
    task = _get(ws, task_id)
    _writable(ws, actor, task["incident_id"])
    changes: dict[str, Any] = {}
    if status is not None:
        changes["status"] = _status(status)
    if assignee is not None:
        changes["assignee"] = None if assignee in ("", CLEAR) else _check_user(ws, assignee)
    if due is not None:
        changes["due"] = _due(due)
    if title is not None and title.strip():
        changes["title"] = " ".join(title.split())[:500]
    if note is not None:
        changes["note"] = note
    changes = {k: v for k, v in changes.items() if v != task[k]}
    if changes:
        sets = ", ".join(f"{k} = ?" for k in changes)
        with ws.transaction():
            ws.execute(f"UPDATE incident_tasks SET {sets}, updated_at = ?, updated_by = ? WHERE task_id = ?",
                       [*changes.values(), _now(), actor.user, task["task_id"]])
            audit.record(ws, actor, "task.update", task["incident_id"],
                         {"task_id": task["task_id"],
                          **{k: {"from": _plain(task[k]), "to": _plain(v)} for k, v in changes.items()}})
    return _shown(_get(ws, task["task_id"]))


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def tasks_from_playbook(
    ws: Workspace,
    actor: Actor,
    incident_id: str,
    playbook_id: str | None = None,
    *,
    assignee: str | None = None,
    dir: str | Path | None = None,  # noqa: A002 - the playbooks' own argument name
) -> list[dict[str, Any]]:
    """One task per step of the attached playbook(s) that has none yet (done steps give done tasks)."""

    inc = _writable(ws, actor, incident_id)
    books = progress(ws, actor, inc["incident_id"], dir)
    if playbook_id:
        books = [b for b in books if b["playbook_id"] == playbook_id]
        if not books:
            raise WorkbenchError(f"playbook {playbook_id!r} is not attached to {inc['incident_id']}")
    if not books:
        raise WorkbenchError(f"{inc['incident_id']} has no playbook attached; attach one first")
    who = _check_user(ws, assignee)
    have = {r[0] for r in ws.rows("SELECT source FROM incident_tasks WHERE incident_id = ? AND source IS NOT NULL",
                                  [inc["incident_id"]])}
    made: list[int] = []
    with ws.transaction():
        for book in books:
            for step in book["steps"]:
                source = f"{book['playbook_id']}/{step['step_id']}"
                if source in have:
                    continue
                title = " ".join(str(step.get("text") or step["step_id"]).split())[:500]
                made.append(_insert(ws, actor, inc["incident_id"], title, status="done" if step["done"] else "todo",
                                    assignee=who, source=source))
    return [_shown(_get(ws, t)) for t in made]


def copy_tasks(ws: Workspace, actor: Actor, from_incident: str, to_incident: str) -> list[int]:
    """Copy every task of one incident to another (inside the caller's transaction; used by merges)."""
    out: list[int] = []
    for t in ws.dicts(f"SELECT {_COLS} FROM incident_tasks WHERE incident_id = ? ORDER BY task_id", [from_incident]):
        out.append(_insert(ws, actor, to_incident, t["title"], status=t["status"], assignee=t["assignee"],
                           due=t["due"], source=t["source"] or f"merged from {from_incident}", note=t["note"]))
    return out


def incidents_tasks(ws: Workspace, actor: Actor, ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per incident: tasks open and overdue (for lists)."""
    require(actor, "read:incidents", ws)
    rows = ws.rows(
        "SELECT incident_id, count(*) FILTER (WHERE status IN ('todo', 'in_progress')), "
        "count(*) FILTER (WHERE status IN ('todo', 'in_progress') AND due < now()) FROM incident_tasks "
        "WHERE list_contains(?, incident_id) GROUP BY 1",
        [list(ids)],
    )
    return {r[0]: {"open": int(r[1]), "overdue": int(r[2])} for r in rows}
