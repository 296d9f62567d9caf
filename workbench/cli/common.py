"""Options and output helpers shared by every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench import settings
from workbench.access import Actor
from workbench.access.session import actor_for, has_accounts
from workbench.errors import WorkbenchError
from workbench.store import Workspace, open_workspace

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Workspace DuckDB file (default: $WORKBENCH_DB, else ./workbench.duckdb).",
                 show_default=False),
]
UserOpt = Annotated[
    str | None,
    typer.Option("--user", help="Account to act as when the workspace has accounts (default: $WORKBENCH_USER).",
                 show_default=False),
]
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line) instead of text.")]


def workspace(db: Path | None, *, create: bool = True) -> Workspace:
    """Open the workspace named by --db or the environment."""
    return open_workspace(db, create=create)


# Set by the root option `workbench --password-stdin ...` (workbench/cli/access_cmd.py).
SIGN_IN = {"password_stdin": False, "password": None}


def read_password_stdin() -> str:
    """One password from the next line of standard input."""
    line = sys.stdin.readline()
    if not line.strip():
        raise WorkbenchError("--password-stdin: no password on standard input")
    return line.rstrip("\r\n")


def actor(ws: Workspace, user: str | None) -> Actor:
    """The acting user for this command (password: --password-stdin, WORKBENCH_PASSWORD, or a prompt)."""
    password = SIGN_IN["password"]
    if password is None and has_accounts(ws):
        if SIGN_IN["password_stdin"]:
            password = SIGN_IN["password"] = read_password_stdin()
        elif not settings.get("password") and sys.stdin.isatty() and (user or settings.get("user")):
            import getpass

            password = SIGN_IN["password"] = getpass.getpass(f"password for {user or settings.get('user')}: ")
    return actor_for(ws, user, password)


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat().replace("+00:00", "Z")
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def dumps(obj: Any) -> str:
    """One JSON line, with timestamps as ISO-8601 UTC."""
    return json.dumps(obj, default=_default, ensure_ascii=False)


def emit_json(rows: Iterable[dict[str, Any]]) -> None:
    """Print one JSON object per line on stdout."""
    for row in rows:
        sys.stdout.write(dumps(row) + "\n")


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    """Print rows as a plain aligned text table."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if r.get(c) is None else _cell(r.get(c)) for c in columns])
    Console(width=200).print(t)


def _cell(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return dumps(v)
    return str(v)


# -- shared by the incident, playbook and report commands (and any other module that wants them) --------------
IncidentArg = Annotated[str, typer.Argument(help="Incident id, e.g. INC-0001.")]
PlaybookDirOpt = Annotated[Path | None, typer.Option("--dir", help="Playbook directory (default: the shipped one).")]


def workspace_actor(db: Path | None, user: str | None) -> tuple[Workspace, Actor]:
    """The existing workspace named by --db and the acting user, for commands that read or change it."""
    ws = workspace(db, create=False)
    return ws, actor(ws, user)


def emit(obj: Any, json_: bool, text: str) -> None:
    """Print one result: as a JSON line with --json, else as the given text."""
    typer.echo(dumps(obj) if json_ else text)


def emit_rows(rows: list[dict[str, Any]], columns: list[str], json_: bool, title: str | None = None) -> None:
    """Print a listing: JSON lines with --json, else a text table of the given columns."""
    if json_:
        emit_json(rows)
    else:
        table(rows, columns, title=title)


def read_json_file(path: Path, what: str = "a JSON file") -> Any:
    """The JSON value in a file; an unreadable or invalid file is a one-line user error naming `what`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: not {what} ({str(exc).splitlines()[0]})") from exc
