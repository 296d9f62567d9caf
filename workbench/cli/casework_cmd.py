"""`workbench incident observables|observable-add|observable-mark|task|merge|mark`: case work from the shell."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.cases import incidents, merge, observables, tasks
from workbench.cli.cases_cmd import _show_incident, incident_app
from workbench.cli.common import DbOpt, IncidentArg, JsonOpt, UserOpt, emit, emit_json, emit_rows, workspace_actor

task_app = typer.Typer(help="Tasks of an incident: add, list, update, from a playbook.", no_args_is_help=True)
incident_app.add_typer(task_app, name="task")

TlpOpt = Annotated[str | None, typer.Option("--tlp", help="TLP: clear, green, amber, amber+strict or red.")]
_TASK_COLS = ["task_id", "status", "title", "assignee", "due", "overdue", "source", "updated_by", "updated_at"]


def _sightings_text(s: list[dict]) -> str:
    parts = []
    for x in s:
        if x["kind"] == "decisions":
            parts.append(f"{x.get('n', 0)} decisions of {x.get('system_id')}")
        else:
            parts.append(f"{x['kind']} {x.get('id')}")
    return "; ".join(parts)


@incident_app.command("observables")
def observables_cmd(
    incident: IncidentArg,
    type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The incident's observables with TLP, first/last seen and sightings (other incidents, alerts, decisions)."""
    ws, who = workspace_actor(db, user)
    rows = observables.list_observables(ws, who, incident, type=type_)
    if json_:
        emit_json(rows)
        return
    emit_rows([{**r, "sightings": _sightings_text(r["sightings"])} for r in rows],
              ["type", "value", "tlp", "first_seen", "last_seen", "note", "sightings"], False)


@incident_app.command("observable-add")
def observable_add_cmd(
    incident: IncidentArg,
    type_: Annotated[str, typer.Argument(metavar="TYPE", help=", ".join(observables.TYPES) + ".")],
    value: Annotated[str, typer.Argument(help="The value (a feature_value as feature=value).")],
    tlp: TlpOpt = None,
    note: Annotated[str, typer.Option(help="Why it matters.")] = "",
    system: Annotated[str | None, typer.Option(help="System of a feature_value.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add an observable by hand (or set the TLP and note of one already there)."""
    ws, who = workspace_actor(db, user)
    r = observables.add_observable(ws, who, incident, type_, value, tlp=tlp, note=note, system_id=system)
    emit(r, json_, f"{r['incident_id']}: {r['type']} {r['value']} (TLP:{r['tlp'].upper()})")


@incident_app.command("observable-mark")
def observable_mark_cmd(
    incident: IncidentArg,
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="Observable type.")],
    value: Annotated[str, typer.Argument(help="The value as listed.")],
    tlp: TlpOpt = None,
    note: Annotated[str | None, typer.Option(help="Note.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set the TLP and/or note of an observable (extracted or by hand)."""
    ws, who = workspace_actor(db, user)
    r = observables.mark_observable(ws, who, incident, type_, value, tlp=tlp, note=note)
    emit(r, json_, f"{r['type']} {r['value']}: TLP:{r['tlp'].upper()} {r['note']}")


@incident_app.command("mark")
def mark_cmd(
    incident: IncidentArg,
    tlp: TlpOpt = None,
    pap: Annotated[str | None, typer.Option("--pap", help="PAP: clear, green, amber or red.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set the incident's TLP and/or PAP."""
    ws, who = workspace_actor(db, user)
    _show_incident(incidents.mark(ws, who, incident, tlp=tlp, pap=pap), json_)


@incident_app.command("merge")
def merge_cmd(
    into: Annotated[str, typer.Argument(help="The incident that stays (e.g. INC-0001).")],
    other: Annotated[str, typer.Argument(help="The incident folded into it, then closed.")],
    note: Annotated[str | None, typer.Option(help="Why they are one incident.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Merge incident OTHER into INTO: evidence, observables, tasks and playbooks copied; OTHER closed."""
    ws, who = workspace_actor(db, user)
    _show_incident(merge.merge_incidents(ws, who, into, other, note), json_)


@task_app.command("add")
def task_add_cmd(
    incident: IncidentArg,
    title: Annotated[str, typer.Argument(help="What to do.")],
    assignee: Annotated[str | None, typer.Option(help="Who does it.")] = None,
    due: Annotated[str | None, typer.Option(help="By when, ISO-8601 (e.g. 2026-10-07T17:00Z).")] = None,
    note: Annotated[str, typer.Option(help="Details.")] = "",
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a task to an incident."""
    ws, who = workspace_actor(db, user)
    t = tasks.add_task(ws, who, incident, title, assignee=assignee, due=due, note=note)
    emit(t, json_, f"task #{t['task_id']} {t['status']}: {t['title']} ({t['assignee'] or 'unassigned'})")


@task_app.command("list")
def task_list_cmd(
    incident: IncidentArg,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Only this assignee.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List an incident's tasks, open ones first."""
    ws, who = workspace_actor(db, user)
    emit_rows(tasks.list_tasks(ws, who, incident, status=status, assignee=assignee), _TASK_COLS, json_)


@task_app.command("update")
def task_update_cmd(
    task_id: Annotated[int, typer.Argument(help="Task number.")],
    status: Annotated[str | None, typer.Option(help="todo, in_progress, done or cancelled.")] = None,
    assignee: Annotated[str | None, typer.Option(help="New assignee ('-' to clear).")] = None,
    due: Annotated[str | None, typer.Option(help="New due time, ISO-8601 ('-' to clear).")] = None,
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    note: Annotated[str | None, typer.Option(help="New note.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Change a task's status, assignee, due time, title or note."""
    ws, who = workspace_actor(db, user)
    t = tasks.update_task(ws, who, task_id, status=status, assignee=assignee, due=due, title=title, note=note)
    emit(t, json_, f"task #{t['task_id']} {t['status']}: {t['title']} ({t['assignee'] or 'unassigned'}"
                   f"{', due ' + t['due'].isoformat() if t['due'] else ''})")


@task_app.command("from-playbook")
def task_from_playbook_cmd(
    incident: IncidentArg,
    playbook: Annotated[str | None, typer.Argument(help="Playbook id (default: every attached one).")] = None,
    assignee: Annotated[str | None, typer.Option(help="Assign the new tasks to.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One task per step of the attached playbook(s) that has none yet."""
    ws, who = workspace_actor(db, user)
    emit_rows(tasks.tasks_from_playbook(ws, who, incident, playbook, assignee=assignee), _TASK_COLS, json_)
