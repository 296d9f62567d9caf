"""`workbench incident`: incident cases from the shell (create, triage, evidence, timeline, playbook steps).

`workbench playbooks` lives in playbooks_cmd.py and `workbench report` in report_cmd.py; their command
functions are importable from here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cases import evidence, evidence_results, incidents, playbooks, reports, timeline
from workbench.cases.evidence_size import size_text
from workbench.cli import app
from workbench.cli.common import (
    DbOpt,
    IncidentArg,
    JsonOpt,
    PlaybookDirOpt,
    UserOpt,
    dumps,
    emit,
    emit_rows,
    read_json_file,
    table,
    workspace_actor,
)
from workbench.errors import WorkbenchError

incident_app = typer.Typer(
    help="Incident cases: create, triage, evidence, timeline, playbook steps.", no_args_is_help=True
)
app.add_typer(incident_app, name="incident")

IncArg = IncidentArg
PbDirOpt = PlaybookDirOpt
_INC_COLS = ["incident_id", "severity", "status", "title", "owner", "systems", "atlas", "evidence", "updated_at"]
_EV_COLS = ["evidence_id", "kind", "label", "ref", "added_at", "added_by", "size", "sha256"]


def _with_size(items: list[dict]) -> list[dict]:
    """Evidence rows with a human size column (rows, bytes, features) for text tables."""
    return [{**i, "size": size_text(i)} for i in items]


def _show_incident(inc: dict, json_: bool) -> None:
    emit(
        inc,
        json_,
        f"{inc['incident_id']} [{inc['severity']}] {inc['status']}: {inc['title']}\n"
        f"  owner {inc.get('owner') or '-'}; systems {', '.join(inc['systems']) or '-'}; "
        f"ATLAS {', '.join(inc['atlas']) or '-'}; evidence items {inc.get('evidence', 0)}; "
        f"TLP:{str(inc.get('tlp') or 'amber').upper()} PAP:{str(inc.get('pap') or 'amber').upper()}; "
        f"next: {', '.join(inc.get('allowed_next', []))}"
        + (f"; merged into {inc['merged_into']}" if inc.get("merged_into") else "")
        + (f"; merged from {', '.join(inc['merged_from'])}" if inc.get("merged_from") else ""),
    )


@incident_app.command("create")
def create_cmd(
    title: Annotated[
        str | None, typer.Argument(help="Short title (default with --alert: one made from the alert).")
    ] = None,
    severity: Annotated[str, typer.Option(help="low, medium, high or critical.")] = "medium",
    alert: Annotated[list[str] | None, typer.Option(help="Alert id to open from (repeatable).")] = None,
    system: Annotated[list[str] | None, typer.Option(help="Affected system (repeatable).")] = None,
    atlas: Annotated[list[str] | None, typer.Option(help="ATLAS technique id (repeatable).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner (user name).")] = None,
    description: Annotated[str, typer.Option(help="Longer description.")] = "",
    tlp: Annotated[str, typer.Option(help="TLP: clear, green, amber, amber+strict or red.")] = "amber",
    pap: Annotated[str, typer.Option(help="PAP: clear, green, amber or red.")] = "amber",
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Open an incident by hand or from alerts (warns when an alert is already in an open incident)."""
    ws, who = workspace_actor(db, user)
    if not (title or "").strip():
        if not alert:
            raise WorkbenchError("give a title (or --alert ID to make one from the alert)")
        title = incidents.suggest_title(evidence.fetch_alert(ws, who, alert[0]))
    inc = incidents.create_incident(
        ws, who, title, severity, alert_ids=alert or (), systems=system or (), atlas=atlas or (), owner=owner,
        description=description, tlp=tlp, pap=pap,
    )
    for dup in inc.get("alert_already_in") or []:
        typer.echo(f"warning: alert {dup['alert_id']} is already in open incident {dup['incident_id']} "
                   f"({dup['title']}); `workbench incident merge {dup['incident_id']} {inc['incident_id']}` "
                   "folds this one into it", err=True)
    _show_incident(inc, json_)


@incident_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    severity: Annotated[str | None, typer.Option(help="Only this severity.")] = None,
    system: Annotated[str | None, typer.Option(help="Only incidents touching this system.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Hide closed incidents.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List incidents, newest first."""
    ws, who = workspace_actor(db, user)
    rows = incidents.list_incidents(ws, who, status=status, severity=severity, system=system, open_only=open_only)
    emit_rows(rows, _INC_COLS, json_)


@incident_app.command("show")
def show_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Show an incident with its evidence and playbook progress."""
    ws, who = workspace_actor(db, user)
    inc = incidents.get_incident(ws, who, incident)
    items = evidence.list_evidence(ws, who, incident)
    prog = playbooks.progress(ws, who, incident)
    if json_:
        typer.echo(dumps({**inc, "evidence_items": items, "playbooks": prog}))
        return
    _show_incident(inc, False)
    table(_with_size(items), _EV_COLS, title="evidence")
    for pb in prog:
        table(
            [
                {"step": s["step_id"], "done": "x" if s["done"] else "", "by": s["by"], "at": s["at"],
                 "note": s["note"], "text": s["text"]}
                for s in pb["steps"]
            ],
            ["step", "done", "by", "at", "note", "text"],
            title=f"{pb['playbook_id']} v{pb['attached_version']}: {pb['done']}/{pb['total']} done",
        )


@incident_app.command("status")
def status_cmd(
    incident: IncArg,
    status: Annotated[str, typer.Argument(help="open, triage, contained, eradicated, recovered, closed.")],
    note: Annotated[str | None, typer.Option(help="Why (required to close or reopen).")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Move an incident to its next status."""
    ws, who = workspace_actor(db, user)
    _show_incident(incidents.set_status(ws, who, incident, status, note), json_)


@incident_app.command("assign")
def assign_cmd(
    incident: IncArg,
    owner: Annotated[str, typer.Argument(help="New owner ('-' to clear).")],
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set the incident's owner."""
    ws, who = workspace_actor(db, user)
    _show_incident(incidents.assign(ws, who, incident, None if owner == "-" else owner), json_)


@incident_app.command("note")
def note_cmd(
    incident: IncArg,
    text: Annotated[str, typer.Argument(help="The note.")],
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a note (kept as hashed evidence)."""
    ws, who = workspace_actor(db, user)
    item = incidents.add_note(ws, who, incident, text)
    emit(item, json_, f"note #{item['evidence_id']} added (sha256 {item['sha256']})")


def _ids(ids: str | None, ids_file: Path | None) -> list[str]:
    out = [i.strip() for i in (ids or "").split(",") if i.strip()]
    if ids_file is not None:
        out += [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


@incident_app.command("add-evidence")
def add_evidence_cmd(
    incident: IncArg,
    kind: Annotated[str, typer.Option(help="alert, decision_set, metric_window, explanation, file, or json "
                                           "(the workbench's own --json output, recognised and labelled).")],
    alert: Annotated[
        str | None, typer.Option(help="Alert id (kind alert; or the source of a decision set).")
    ] = None,
    system: Annotated[str | None, typer.Option(help="System id (decision_set, metric_window).")] = None,
    ids: Annotated[str | None, typer.Option(help="Comma-separated decision ids.")] = None,
    ids_file: Annotated[Path | None, typer.Option(help="File with one decision id per line.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric name (metric_window; all metrics if omitted).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Window start, ISO-8601.")] = None,
    end: Annotated[str | None, typer.Option(help="Window end, ISO-8601.")] = None,
    file: Annotated[
        Path | None, typer.Option(help="File to copy in (file) or explanation JSON (explanation).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label shown in lists and reports.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Freeze an evidence item into the incident (snapshots are hashed and never change)."""
    ws, who = workspace_actor(db, user)
    if kind == "alert":
        if not alert:
            raise WorkbenchError("--kind alert needs --alert ID")
        item = evidence.add_alert(ws, who, incident, alert)
    elif kind == "decision_set":
        decision_ids = _ids(ids, ids_file)
        if alert:
            a = evidence.fetch_alert(ws, who, alert)
            decision_ids += list(a.get("decision_ids") or [])
            system = system or a.get("system_id")
            label = label or f"decisions of alert {alert}"
        if not system:
            raise WorkbenchError("--kind decision_set needs --system (or --alert)")
        item = evidence.add_decision_set(ws, who, incident, system, decision_ids, label)
    elif kind == "metric_window":
        if not (system and start and end):
            raise WorkbenchError("--kind metric_window needs --system, --start and --end")
        item = evidence.add_metric_window(ws, who, incident, system, metric, start, end, label)
    elif kind in ("explanation", "json"):
        if file is None:
            raise WorkbenchError(f"--kind {kind} needs --file with the JSON or JSON Lines output")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WorkbenchError(f"{file}: cannot read it ({str(exc).splitlines()[0]})") from exc
        if kind == "explanation" and not _is_output(text):
            payload = read_json_file(file)
            item = evidence.add_explanation(ws, who, incident, payload if isinstance(payload, dict)
                                            else {"decisions": payload}, label)
        else:
            items = evidence_results.add_cli_output(ws, who, incident, text, name=file.name, system_id=system,
                                                    label=label)
            for extra in items[:-1]:
                _said(extra, json_)
            item = items[-1]
    elif kind == "file":
        if file is None:
            raise WorkbenchError("--kind file needs --file PATH")
        item = evidence.add_file(ws, who, incident, file, label)
    else:
        raise WorkbenchError(f"unknown evidence kind {kind!r} (notes: `workbench incident note`)")
    _said(item, json_)


def _said(item: dict, json_: bool) -> None:
    emit(
        item,
        json_,
        f"evidence #{item['evidence_id']} {item['kind']}: {item['label']} "
        f"({size_text(item) or 'no size'}, sha256 {item['sha256']})",
    )


def _is_output(text: str) -> bool:
    """Whether text is JSON Lines or a list the workbench recognises (not one hand-made explanation object)."""
    from workbench.cases.evidence_results import _parse_output, recognise_output

    try:
        rows = _parse_output(text)
    except WorkbenchError:
        return False
    return len(text.strip().splitlines()) > 1 or recognise_output(rows) != "other"


@incident_app.command("evidence")
def evidence_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List the incident's evidence items with their hashes."""
    ws, who = workspace_actor(db, user)
    emit_rows(_with_size(evidence.list_evidence(ws, who, incident)), _EV_COLS, json_)


@incident_app.command("verify")
def verify_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Re-hash the incident's frozen evidence; exit 1 if any item no longer matches."""
    ws, who = workspace_actor(db, user)
    rows = evidence.verify_evidence(ws, who, incident)
    emit_rows(rows, ["evidence_id", "kind", "label", "ok", "live", "sha256"], json_)
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


@incident_app.command("timeline")
def timeline_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Events from the evidence and analysts' actions, in time order."""
    ws, who = workspace_actor(db, user)
    rows = reports.plain(timeline.build_timeline(ws, who, incident).to_dict("records"))
    emit_rows(rows, ["ts", "source", "what", "actor", "evidence_id"], json_)


@incident_app.command("step")
def step_cmd(
    incident: IncArg,
    playbook: Annotated[str, typer.Argument(help="Playbook id.")],
    step: Annotated[str, typer.Argument(help="Step id, e.g. containment-2.")],
    done: Annotated[bool, typer.Option("--done/--undone", help="Mark done (default) or not done.")] = True,
    note: Annotated[str | None, typer.Option(help="What was done, ticket numbers, ...")] = None,
    pb_dir: PbDirOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Record a playbook step as done (or not) for an incident."""
    ws, who = workspace_actor(db, user)
    r = playbooks.set_step(ws, who, incident, playbook, step, done, note, pb_dir)
    emit(r, json_, f"{r['incident_id']} {r['playbook_id']} {r['step_id']}: "
                   f"{'done' if r['done'] else 'not done'} by {r['by']}")


@incident_app.command("playbook")
def attach_cmd(
    incident: IncArg,
    playbook: Annotated[str, typer.Argument(help="Playbook id.")],
    pb_dir: PbDirOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Attach a playbook to an incident so its steps are tracked."""
    ws, who = workspace_actor(db, user)
    r = playbooks.attach(ws, who, incident, playbook, pb_dir)
    emit(r, json_, f"attached {r['id']} v{r['version']} ({r['steps']} steps)")

