"""`workbench incident`, `workbench playbooks` and `workbench report`: incident cases from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from workbench.cases import cacao, evidence, incidents, playbooks, reports, timeline
from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, dumps, emit_json, table, workspace
from workbench.errors import WorkbenchError

incident_app = typer.Typer(
    help="Incident cases: create, triage, evidence, timeline, playbook steps.", no_args_is_help=True
)
playbooks_app = typer.Typer(
    help="Markdown playbooks: list, check, show, suggest, export as CACAO 2.0.", no_args_is_help=True
)
app.add_typer(incident_app, name="incident")
app.add_typer(playbooks_app, name="playbooks")

IncArg = Annotated[str, typer.Argument(help="Incident id, e.g. INC-0001.")]
PbDirOpt = Annotated[
    Path | None, typer.Option("--dir", help="Playbook directory (default: the shipped one).")
]
_INC_COLS = [
    "incident_id",
    "severity",
    "status",
    "title",
    "owner",
    "systems",
    "atlas",
    "evidence",
    "updated_at",
]
_EV_COLS = ["evidence_id", "kind", "label", "ref", "added_at", "added_by", "item_count", "sha256"]


def _show_incident(inc: dict, json_: bool) -> None:
    if json_:
        typer.echo(dumps(inc))
        return
    typer.echo(f"{inc['incident_id']} [{inc['severity']}] {inc['status']}: {inc['title']}")
    typer.echo(
        f"  owner {inc.get('owner') or '-'}; systems {', '.join(inc['systems']) or '-'}; "
        f"ATLAS {', '.join(inc['atlas']) or '-'}; evidence items {inc.get('evidence', 0)}; "
        f"next: {', '.join(inc.get('allowed_next', []))}"
    )


@incident_app.command("create")
def create_cmd(
    title: Annotated[str, typer.Argument(help="Short title.")],
    severity: Annotated[str, typer.Option(help="low, medium, high or critical.")] = "medium",
    alert: Annotated[list[str] | None, typer.Option(help="Alert id to open from (repeatable).")] = None,
    system: Annotated[list[str] | None, typer.Option(help="Affected system (repeatable).")] = None,
    atlas: Annotated[list[str] | None, typer.Option(help="ATLAS technique id (repeatable).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner (user name).")] = None,
    description: Annotated[str, typer.Option(help="Longer description.")] = "",
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Open an incident by hand or from alerts."""
    ws = workspace(db, create=False)
    inc = incidents.create_incident(
        ws,
        actor(ws, user),
        title,
        severity,
        alert_ids=alert or (),
        systems=system or (),
        atlas=atlas or (),
        owner=owner,
        description=description,
    )
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
    ws = workspace(db, create=False)
    rows = incidents.list_incidents(
        ws, actor(ws, user), status=status, severity=severity, system=system, open_only=open_only
    )
    emit_json(rows) if json_ else table(rows, _INC_COLS)


@incident_app.command("show")
def show_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Show an incident with its evidence and playbook progress."""
    ws = workspace(db, create=False)
    who = actor(ws, user)
    inc = incidents.get_incident(ws, who, incident)
    items = evidence.list_evidence(ws, who, incident)
    prog = playbooks.progress(ws, who, incident)
    if json_:
        typer.echo(dumps({**inc, "evidence_items": items, "playbooks": prog}))
        return
    _show_incident(inc, False)
    table(items, _EV_COLS, title="evidence")
    for pb in prog:
        table(
            [
                {
                    "step": s["step_id"],
                    "done": "x" if s["done"] else "",
                    "by": s["by"],
                    "at": s["at"],
                    "note": s["note"],
                    "text": s["text"],
                }
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
    ws = workspace(db, create=False)
    _show_incident(incidents.set_status(ws, actor(ws, user), incident, status, note), json_)


@incident_app.command("assign")
def assign_cmd(
    incident: IncArg,
    owner: Annotated[str, typer.Argument(help="New owner ('-' to clear).")],
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Set the incident's owner."""
    ws = workspace(db, create=False)
    _show_incident(incidents.assign(ws, actor(ws, user), incident, None if owner == "-" else owner), json_)


@incident_app.command("note")
def note_cmd(
    incident: IncArg,
    text: Annotated[str, typer.Argument(help="The note.")],
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a note (kept as hashed evidence)."""
    ws = workspace(db, create=False)
    item = incidents.add_note(ws, actor(ws, user), incident, text)
    typer.echo(dumps(item) if json_ else f"note #{item['evidence_id']} added (sha256 {item['sha256']})")


def _ids(ids: str | None, ids_file: Path | None) -> list[str]:
    out = [i.strip() for i in (ids or "").split(",") if i.strip()]
    if ids_file is not None:
        out += [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


@incident_app.command("add-evidence")
def add_evidence_cmd(
    incident: IncArg,
    kind: Annotated[str, typer.Option(help="alert, decision_set, metric_window, explanation or file.")],
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
    ws = workspace(db, create=False)
    who = actor(ws, user)
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
    elif kind == "explanation":
        if file is None:
            raise WorkbenchError("--kind explanation needs --file with the explanation JSON")
        try:
            payload = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{file}: not a JSON file ({str(exc).splitlines()[0]})") from exc
        if isinstance(payload, list):
            payload = {"decisions": payload}
        item = evidence.add_explanation(ws, who, incident, payload, label)
    elif kind == "file":
        if file is None:
            raise WorkbenchError("--kind file needs --file PATH")
        item = evidence.add_file(ws, who, incident, file, label)
    else:
        raise WorkbenchError(f"unknown evidence kind {kind!r} (notes: `workbench incident note`)")
    if json_:
        typer.echo(dumps(item))
    else:
        typer.echo(
            f"evidence #{item['evidence_id']} {item['kind']}: {item['label']} "
            f"({item.get('item_count') or 0} items, sha256 {item['sha256']})"
        )


@incident_app.command("evidence")
def evidence_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List the incident's evidence items with their hashes."""
    ws = workspace(db, create=False)
    rows = evidence.list_evidence(ws, actor(ws, user), incident)
    emit_json(rows) if json_ else table(rows, _EV_COLS)


@incident_app.command("verify")
def verify_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Re-hash the incident's frozen evidence; exit 1 if any item no longer matches."""
    ws = workspace(db, create=False)
    rows = evidence.verify_evidence(ws, actor(ws, user), incident)
    emit_json(rows) if json_ else table(rows, ["evidence_id", "kind", "label", "ok", "live", "sha256"])
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


@incident_app.command("timeline")
def timeline_cmd(incident: IncArg, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Events from the evidence and analysts' actions, in time order."""
    ws = workspace(db, create=False)
    df = timeline.build_timeline(ws, actor(ws, user), incident)
    rows = reports.plain(df.to_dict("records"))
    emit_json(rows) if json_ else table(rows, ["ts", "source", "what", "actor", "evidence_id"])


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
    ws = workspace(db, create=False)
    r = playbooks.set_step(ws, actor(ws, user), incident, playbook, step, done, note, pb_dir)
    typer.echo(
        dumps(r)
        if json_
        else f"{r['incident_id']} {r['playbook_id']} {r['step_id']}: "
        f"{'done' if r['done'] else 'not done'} by {r['by']}"
    )


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
    ws = workspace(db, create=False)
    r = playbooks.attach(ws, actor(ws, user), incident, playbook, pb_dir)
    typer.echo(dumps(r) if json_ else f"attached {r['id']} v{r['version']} ({r['steps']} steps)")


# -- playbooks ---------------------------------------------------------------------------------------------
@playbooks_app.command("list")
def pb_list_cmd(pb_dir: PbDirOpt = None, json_: JsonOpt = False) -> None:
    """List the playbooks."""
    rows = [pb.summary() for pb in playbooks.load_playbooks(pb_dir).values()]
    emit_json(rows) if json_ else table(rows, ["id", "version", "title", "applies_to", "severity", "steps"])


@playbooks_app.command("check")
def pb_check_cmd(
    atlas: Annotated[
        Path | None, typer.Option(help="A full MITRE ATLAS.yaml to check technique IDs against.")
    ] = None,
    pb_dir: PbDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Lint front matter, phases, steps, actions and ATLAS IDs; exit 1 on any error."""
    issues = playbooks.lint(pb_dir, atlas)
    if json_:
        emit_json(issues)
    elif issues:
        table(issues, ["level", "playbook", "line", "message"])
    else:
        typer.echo(f"{len(playbooks.load_playbooks(pb_dir))} playbooks OK")
    if any(i["level"] == "error" for i in issues):
        raise typer.Exit(1)


@playbooks_app.command("show")
def pb_show_cmd(
    playbook: Annotated[str, typer.Argument(help="Playbook id.")],
    pb_dir: PbDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show a playbook's steps with their ids and actions."""
    pb = playbooks.get_playbook(playbook, pb_dir)
    if json_:
        typer.echo(dumps(pb.as_dict()))
        return
    typer.echo(f"{pb.id} v{pb.version}: {pb.title}\napplies to {', '.join(pb.applies_to)}")
    rows = [{"step": s.id, "text": s.text, "action": (s.action or {}).get("text")} for s in pb.steps]
    table(rows, ["step", "text", "action"])


@playbooks_app.command("export-cacao")
def pb_cacao_cmd(
    playbook: Annotated[str, typer.Argument(help="Playbook id.")],
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    pb_dir: PbDirOpt = None,
) -> None:
    """Export a playbook as OASIS CACAO 2.0 JSON for a SOAR platform."""
    doc = cacao.to_cacao(playbooks.get_playbook(playbook, pb_dir))
    problems = cacao.validate(doc)
    if problems:
        raise WorkbenchError("CACAO export is invalid: " + "; ".join(problems))
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out} ({doc['id']}, {len(doc['workflow'])} workflow steps)", err=True)


@playbooks_app.command("suggest")
def pb_suggest_cmd(
    incident: IncArg, pb_dir: PbDirOpt = None, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False
) -> None:
    """Rank playbooks for an incident by its ATLAS IDs and alert detectors."""
    ws = workspace(db, create=False)
    rows = playbooks.suggest(ws, actor(ws, user), incident, pb_dir)
    emit_json(rows) if json_ else table(
        rows, ["playbook_id", "score", "atlas", "related_atlas", "detectors", "severity_fit", "title"]
    )


@playbooks_app.command("add")
def pb_add_cmd(
    file: Annotated[Path, typer.Argument(help="Playbook markdown file.")],
    overwrite: Annotated[bool, typer.Option(help="Replace a playbook with the same id.")] = False,
    pb_dir: PbDirOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Lint and install a playbook (lead or admin)."""
    ws = workspace(db, create=False)
    r = playbooks.install(ws, actor(ws, user), file, pb_dir, overwrite)
    typer.echo(dumps(r) if json_ else f"installed {r['id']} v{r['version']}")


# -- reports -----------------------------------------------------------------------------------------------
@app.command("report")
def report_cmd(
    incident: IncArg,
    format_: Annotated[str, typer.Option("--format", help="md, html or pdf.")] = "md",
    out: Annotated[Path | None, typer.Option(help="File to write (default: INCIDENT.<format>).")] = None,
    check: Annotated[
        Path | None, typer.Option(help="Check a report manifest against the workspace instead.")
    ] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write an incident report (with a manifest of content hashes), or check a manifest."""
    ws = workspace(db, create=False)
    who = actor(ws, user)
    if check is not None:
        try:
            manifest = json.loads(check.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise WorkbenchError(f"{check}: not a report manifest ({str(exc).splitlines()[0]})") from exc
        result = reports.verify_manifest(ws, who, manifest)
        if json_:
            typer.echo(dumps(result))
        else:
            bad = [k for k, v in {**result["sections"], **result["evidence"]}.items() if not v]
            typer.echo("report matches the workspace" if result["ok"] else f"MISMATCH in: {', '.join(bad)}")
        if not result["ok"]:
            raise typer.Exit(1)
        return
    target = out or Path(f"{incident.upper()}.{format_}")
    info = reports.write_report(ws, who, incident, format_, target)
    typer.echo(
        dumps(info)
        if json_
        else f"wrote {info['path']} ({info['bytes']} bytes, sha256 {info['sha256']}); "
        f"manifest {info['manifest']}"
    )
