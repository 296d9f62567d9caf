"""`workbench playbooks`: list, check, show, suggest, install and export the markdown playbooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from workbench.cases import cacao, playbooks
from workbench.cli import app
from workbench.cli.common import (
    DbOpt,
    IncidentArg,
    JsonOpt,
    PlaybookDirOpt,
    UserOpt,
    dumps,
    emit,
    emit_json,
    emit_rows,
    table,
    workspace_actor,
)
from workbench.errors import WorkbenchError

playbooks_app = typer.Typer(
    help="Markdown playbooks: list, check, show, suggest, export as CACAO 2.0.", no_args_is_help=True
)
app.add_typer(playbooks_app, name="playbooks")

PlaybookArg = Annotated[str, typer.Argument(help="Playbook id.")]


@playbooks_app.command("list")
def pb_list_cmd(pb_dir: PlaybookDirOpt = None, json_: JsonOpt = False) -> None:
    """List the playbooks."""
    rows = [pb.summary() for pb in playbooks.load_playbooks(pb_dir).values()]
    emit_rows(rows, ["id", "version", "title", "applies_to", "severity", "steps"], json_)


@playbooks_app.command("check")
def pb_check_cmd(
    atlas: Annotated[
        Path | None, typer.Option(help="A full MITRE ATLAS.yaml to check technique IDs against.")
    ] = None,
    pb_dir: PlaybookDirOpt = None,
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
def pb_show_cmd(playbook: PlaybookArg, pb_dir: PlaybookDirOpt = None, json_: JsonOpt = False) -> None:
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
    playbook: PlaybookArg,
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    pb_dir: PlaybookDirOpt = None,
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
    incident: IncidentArg,
    pb_dir: PlaybookDirOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Rank playbooks for an incident by its ATLAS IDs and alert detectors."""
    ws, who = workspace_actor(db, user)
    rows = playbooks.suggest(ws, who, incident, pb_dir)
    emit_rows(rows, ["playbook_id", "score", "atlas", "related_atlas", "detectors", "severity_fit", "title"], json_)


@playbooks_app.command("add")
def pb_add_cmd(
    file: Annotated[Path, typer.Argument(help="Playbook markdown file.")],
    overwrite: Annotated[bool, typer.Option(help="Replace a playbook with the same id.")] = False,
    pb_dir: PlaybookDirOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Lint and install a playbook (lead or admin)."""
    ws, who = workspace_actor(db, user)
    r = playbooks.install(ws, who, file, pb_dir, overwrite)
    emit(r, json_, f"installed {r['id']} v{r['version']}")
