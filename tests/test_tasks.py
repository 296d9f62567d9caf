"""Tasks: by hand and from playbook steps, with assignee, status and due time; roles, accounts and the CLI."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from workbench.access import Actor, accounts, local_admin
from workbench.cases import incidents, playbooks, tasks
from workbench.errors import PermissionDenied, WorkbenchError

ANALYST = Actor("ana", "analyst")
LEAD = Actor("lee", "lead")
VIEWER = Actor("vic", "viewer")


def _inc(ws) -> str:
    return incidents.create_incident(ws, ANALYST, "Extraction", "high", systems=["loan"])["incident_id"]


def test_add_list_update(ws) -> None:
    iid = _inc(ws)
    past = datetime.now(UTC) - timedelta(hours=1)
    t1 = tasks.add_task(ws, ANALYST, iid, "Rotate the broker's key", assignee="bob", due=past.isoformat())
    t2 = tasks.add_task(ws, ANALYST, iid, "Pull the model", due="2999-01-01T12:00Z")
    assert (t1["status"], t1["assignee"], t1["overdue"]) == ("todo", "bob", True)
    assert t2["due"] == datetime(2999, 1, 1, 12, tzinfo=UTC) and not t2["overdue"]
    done = tasks.update_task(ws, ANALYST, t1["task_id"], status="done", assignee="-")
    assert (done["status"], done["assignee"], done["overdue"]) == ("done", None, False)
    assert [t["task_id"] for t in tasks.list_tasks(ws, ANALYST, iid)] == [t2["task_id"], t1["task_id"]]
    assert [t["task_id"] for t in tasks.list_tasks(ws, ANALYST, iid, status="done")] == [t1["task_id"]]
    audit = ws.rows("SELECT action, details FROM audit_log WHERE object = ? AND action LIKE 'task.%' ORDER BY seq",
                    [iid])
    assert [a for a, _ in audit] == ["task.add", "task.add", "task.update"]
    assert json.loads(audit[-1][1])["status"] == {"from": "todo", "to": "done"}
    with pytest.raises(WorkbenchError, match="task status"):
        tasks.update_task(ws, ANALYST, t2["task_id"], status="finished")
    with pytest.raises(WorkbenchError, match="due time"):
        tasks.add_task(ws, ANALYST, iid, "x", due="tomorrow")
    with pytest.raises(WorkbenchError, match="title"):
        tasks.add_task(ws, ANALYST, iid, "  ")


def test_roles_and_closed(ws) -> None:
    iid = _inc(ws)
    with pytest.raises(PermissionDenied):
        tasks.add_task(ws, VIEWER, iid, "x")
    with pytest.raises(PermissionDenied):
        tasks.list_tasks(ws, VIEWER, iid)
    t = tasks.add_task(ws, ANALYST, iid, "x")
    incidents.set_status(ws, LEAD, iid, "closed", "benign")
    with pytest.raises(WorkbenchError, match="closed"):
        tasks.update_task(ws, ANALYST, t["task_id"], status="done")


def test_assignee_must_be_an_account_when_there_are_accounts(ws) -> None:
    admin = local_admin()
    accounts.add_user(ws, admin, "root", "admin", "correct horse battery")
    root = accounts.authenticate(ws, "root", "correct horse battery")
    accounts.add_user(ws, root, "ann", "analyst", "correct horse battery")
    accounts.add_user(ws, root, "vee", "viewer", "correct horse battery")
    iid = incidents.create_incident(ws, root, "x", "low")["incident_id"]
    assert tasks.add_task(ws, root, iid, "ok", assignee="ann")["assignee"] == "ann"
    with pytest.raises(WorkbenchError, match="no active account"):
        tasks.add_task(ws, root, iid, "x", assignee="nobody")
    with pytest.raises(WorkbenchError, match="cannot work incidents"):
        tasks.add_task(ws, root, iid, "x", assignee="vee")
    assert incidents.assignable_users(ws, root) == ["ann", "root"]


def test_tasks_from_playbook(ws) -> None:
    iid = _inc(ws)
    books = playbooks.load_playbooks()
    pb = sorted(books)[0]
    playbooks.attach(ws, ANALYST, iid, pb)
    first = books[pb].steps[0].id
    playbooks.set_step(ws, ANALYST, iid, pb, first, True)
    made = tasks.tasks_from_playbook(ws, ANALYST, iid, assignee="ana")
    assert len(made) == len(books[pb].steps)
    assert {t["source"] for t in made} == {f"{pb}/{s.id}" for s in books[pb].steps}
    assert next(t for t in made if t["source"] == f"{pb}/{first}")["status"] == "done"
    assert tasks.tasks_from_playbook(ws, ANALYST, iid) == []  # no duplicates


def test_cli_task_add_list_update(ws, capsys, monkeypatch) -> None:
    from workbench.cli import main

    iid = _inc(ws)
    path = str(ws.path)
    ws.close()

    def run(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["workbench", *args, "--db", path])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        return capsys.readouterr().out

    out = run("incident", "task", "add", iid, "Check the other brokers", "--assignee", "bob", "--due",
              "2999-01-01T09:00Z", "--json")
    tid = json.loads(out)["task_id"]
    run("incident", "task", "update", str(tid), "--status", "in_progress")
    rows = [json.loads(line) for line in run("incident", "task", "list", iid, "--json").splitlines()]
    assert [(r["task_id"], r["status"], r["assignee"], r["due"]) for r in rows] == [
        (tid, "in_progress", "bob", "2999-01-01T09:00:00Z")]
