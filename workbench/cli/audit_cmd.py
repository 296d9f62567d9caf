"""`workbench audit`: verify and export the hash-chained audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench import audit
from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, dumps, emit_json, table, workspace

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify_cmd(
    file: Annotated[Path | None, typer.Option(help="Check an exported audit file instead of the workspace.")] = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Walk the hash chain; name the first edited, deleted or reordered row and exit 1."""
    if file is not None:
        result = audit.verify_export(file)
    else:
        ws = workspace(db, create=False)
        result = audit.verify(ws, actor(ws, user))
    if json_:
        typer.echo(dumps(result.as_dict()))
    elif result.ok:
        typer.echo(f"audit chain intact: {result.rows} rows")
    else:
        typer.echo(f"audit chain BROKEN at seq {result.first_bad_seq}: {result.reason}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="File to write (JSON Lines with the hashing recipe).")],
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Write the audit log with its chain so an auditor can verify it elsewhere."""
    ws = workspace(db, create=False)
    info = audit.export(ws, actor(ws, user), out)
    typer.echo(dumps(info) if json_ else f"wrote {info['rows']} audit rows to {info['path']} "
                                         f"(sha256 {info['sha256']})")


@audit_app.command("log")
def log_cmd(
    limit: Annotated[int, typer.Option(help="Newest rows to show.")] = 50,
    action: Annotated[str | None, typer.Option(help="Only actions starting with this prefix.")] = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Show the newest audit rows."""
    ws = workspace(db, create=False)
    rows = audit.entries(ws, actor(ws, user), limit, action)
    if json_:
        emit_json(rows)
    else:
        table(rows, ["seq", "ts", "actor", "role", "action", "object", "details"])
