"""Commands for lakes: lake export, attach, list, verify, detach."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, emit_json, table, workspace

lake_app = typer.Typer(help="Parquet/Delta lakes: export a workspace, attach a lake read-only, verify custody.",
                       no_args_is_help=True)
app.add_typer(lake_app, name="lake")


@lake_app.command("export")
def export_cmd(out: Annotated[Path, typer.Option("--out", help="Directory to write the lake into.")],
               system: Annotated[str | None, typer.Option("--system", help="Only this system.")] = None,
               overwrite: Annotated[bool, typer.Option(help="Replace what the directory holds.")] = False,
               db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Write decisions and metrics as Parquet partitioned by system and date, with a manifest of file hashes."""
    from workbench.lake import export_lake

    ws = workspace(db, create=False)
    res = export_lake(ws, actor(ws, user), out, system=system, overwrite=overwrite)
    if json_:
        emit_json([res])
        return
    typer.echo(f"exported {res['decisions']} decisions and {res['metrics']} metric points to {res['out']} "
               f"({res['files']} files, {res['size_bytes']} bytes, manifest {res['manifest_sha256'][:16]})")


@lake_app.command("attach")
def attach_cmd(uri: Annotated[str, typer.Argument(help="Lake directory or file:// URI (Parquet or Delta).")],
               name: Annotated[str | None, typer.Option("--name", help="Name (default: the directory's).")] = None,
               db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Register a lake read-only: pin and hash its files; its decisions become searchable and detectable."""
    from workbench.lake import attach

    ws = workspace(db)
    res = attach(ws, actor(ws, user), uri, name=name)
    if json_:
        emit_json([res])
        return
    typer.echo(f"attached {res['name']} ({res['format']}): {res['decisions']} decisions of "
               f"{', '.join(res['systems'])} in {res['files']} files, manifest {res['manifest_sha256'][:16]}")


@lake_app.command("list")
def list_cmd(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """The attached lakes."""
    from workbench.lake import list_lakes

    ws = workspace(db, create=False)
    rows = list_lakes(ws, actor(ws, user))
    if json_:
        emit_json(rows)
        return
    table(rows, ["name", "format", "version", "files", "size_bytes", "uri", "attached_at"],
          title=f"{len(rows)} lake(s)")


@lake_app.command("verify")
def verify_cmd(name: Annotated[str | None, typer.Argument(help="One lake (default: all).")] = None,
               db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Re-hash every pinned file against the custody manifest; exit 1 if any changed."""
    from workbench.lake import verify

    ws = workspace(db, create=False)
    rows = verify(ws, actor(ws, user), name)
    if json_:
        emit_json(rows)
    else:
        for r in rows:
            typer.echo(f"{r['name']}: {'ok' if r['ok'] else 'CHANGED'} ({r['files']} files)")
            for p in r["problems"]:
                typer.echo(f"  {p['path']}: {p['problem']}")
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


@lake_app.command("detach")
def detach_cmd(name: str, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Forget a lake (its files are untouched; frozen evidence keeps its copies)."""
    from workbench.lake import detach

    ws = workspace(db, create=False)
    res = detach(ws, actor(ws, user), name)
    if json_:
        emit_json([res])
        return
    typer.echo(f"detached {res['name']}")
