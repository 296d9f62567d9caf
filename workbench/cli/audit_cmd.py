"""`workbench audit`: verify, anchor and export the hash-chained audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench import audit
from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, dumps, emit_json, table, workspace

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


KeyEnvOpt = Annotated[str | None, typer.Option(
    "--key-env", help="Environment variable holding the anchor's HMAC key (16+ bytes, kept outside the workspace).")]


@audit_app.command("verify")
def verify_cmd(
    file: Annotated[Path | None, typer.Option(help="Check an exported audit file instead of the workspace.")] = None,
    anchor: Annotated[Path | None, typer.Option(
        help="An anchor written by `audit anchor` (or a ticket holding its line): fail on any truncation or "
             "re-hash since it.")] = None,
    key_env: KeyEnvOpt = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Walk the hash chain; name the first edited, deleted or reordered row and exit 1.

    With --anchor, also exit 1 when rows up to the anchor were deleted (newest or all) or re-hashed. An export
    given with --file is checked from its rows alone: its header is never trusted."""
    pinned = audit.read_anchor(anchor) if anchor is not None else None
    key = audit.anchor_key(key_env)
    if file is not None:
        result = audit.verify_export(file, pinned, key)
    else:
        ws = workspace(db, create=False)
        result = audit.verify(ws, actor(ws, user), pinned, key)
    if json_:
        typer.echo(dumps(result.as_dict()))
    elif result.ok:
        head = f"head seq {result.head_seq} {result.head_hash[:16]}"
        if pinned is not None:
            typer.echo(f"audit chain intact: {result.rows} rows, {head}; anchor seq {pinned.seq} matches "
                       f"(nothing truncated or re-hashed up to it)")
        else:
            typer.echo(f"audit chain intact: {result.rows} rows, {head} (no anchor given: deleted newest rows "
                       f"or a re-hashed chain cannot be ruled out; use --anchor)")
    else:
        where = f" at seq {result.first_bad_seq}" if result.first_bad_seq is not None else ""
        typer.echo(f"audit chain BROKEN{where}: {result.reason}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def anchor_cmd(
    out: Annotated[Path | None, typer.Option(help="File to write the anchor line to (keep it outside the "
                                                  "workspace: a ticket, another machine).")] = None,
    key_env: KeyEnvOpt = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Record the chain head (seq, hash, time, workspace id) and print it as one line to paste into a ticket.

    `audit verify --anchor FILE` later fails if any row up to it was deleted or the chain re-hashed. With
    --key-env the line carries an HMAC, so whoever can edit the workspace cannot forge a matching anchor."""
    key = audit.anchor_key(key_env)
    ws = workspace(db, create=False)
    pinned = audit.take_anchor(ws, actor(ws, user), out, key)
    if json_:
        typer.echo(dumps({**pinned.as_dict(), "path": str(out) if out else None}))
    else:
        typer.echo(pinned.line())
        if out is not None:
            typer.echo(f"anchor written to {out}", err=True)
@audit_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="File to write (JSON Lines with the hashing recipe).")],
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Write the audit log with its chain so an auditor can verify it elsewhere."""
    ws = workspace(db, create=False)
    info = audit.export(ws, actor(ws, user), out)
    typer.echo(dumps(info) if json_ else f"wrote {info['rows']} audit rows to {info['path']} "
                                         f"(head seq {info['head_seq']}, sha256 {info['sha256']})")


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
