"""`workbench report`: write an incident report with its manifest of content hashes, or check a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cases import reports
from workbench.cli import app
from workbench.cli.common import DbOpt, IncidentArg, JsonOpt, UserOpt, emit, read_json_file, workspace_actor


@app.command("report")
def report_cmd(
    incident: IncidentArg,
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
    ws, who = workspace_actor(db, user)
    if check is not None:
        result = reports.verify_manifest(ws, who, read_json_file(check, "a report manifest"))
        bad = [k for k, v in {**result["sections"], **result["evidence"]}.items() if not v]
        emit(result, json_, "report matches the workspace" if result["ok"] else f"MISMATCH in: {', '.join(bad)}")
        if not result["ok"]:
            raise typer.Exit(1)
        return
    target = out or Path(f"{incident.upper()}.{format_}")
    info = reports.write_report(ws, who, incident, format_, target)
    emit(info, json_, f"wrote {info['path']} ({info['bytes']} bytes, sha256 {info['sha256']}); "
                      f"manifest {info['manifest']}")
