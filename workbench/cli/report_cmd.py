"""`workbench report`: write an incident report with its manifest of content hashes, or check a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cases import reports
from workbench.cli import app
from workbench.cli.common import (
    DbOpt,
    IncidentArg,
    JsonOpt,
    PlaybookDirOpt,
    UserOpt,
    emit,
    read_json_file,
    workspace_actor,
)
from workbench.errors import WorkbenchError

_SUFFIX = ".manifest.json"


def _report_beside(manifest: Path, man: Any) -> Path | None:
    """The report file a manifest names (beside it), else the manifest's name without .manifest.json."""
    named = man.get("report", {}).get("file") if isinstance(man, dict) and isinstance(man.get("report"), dict) else None
    if isinstance(named, str) and named:
        return manifest.parent / Path(named).name
    if manifest.name.endswith(_SUFFIX) and len(manifest.name) > len(_SUFFIX):
        return manifest.with_name(manifest.name[: -len(_SUFFIX)])
    return None


@app.command("report")
def report_cmd(
    incident: IncidentArg,
    format_: Annotated[str, typer.Option("--format", help="md, html or pdf.")] = "md",
    out: Annotated[Path | None, typer.Option(help="File to write (default: INCIDENT.<format>).")] = None,
    check: Annotated[
        Path | None, typer.Option(help="Check a report manifest (and its report file) against the workspace.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="With --check: the report file (default: the one the manifest names, beside it)."),
    ] = None,
    playbooks_dir: PlaybookDirOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write an incident report (with a manifest of content hashes), or check a filed report and its manifest."""
    ws, who = workspace_actor(db, user)
    if check is not None:
        man = read_json_file(check, "a report manifest")
        if isinstance(man, dict) and str(man.get("incident_id", "")).upper() != incident.upper():
            raise WorkbenchError(f"{check} is the manifest of a report on {man.get('incident_id')}, not {incident}")
        target = file or _report_beside(check, man)
        result = reports.verify_manifest(ws, who, man, report_file=target)
        bad = [k for k, v in {**result["sections"], **result["evidence"]}.items() if not v]
        bad = (["audit chain at the cut"] if not result["chain"] else []) + bad
        if result["file"] is not None and not result["file"]["ok"]:
            bad.append(f"report file {result['file']['path']} ({result['file']['reason']})")
        if result["ok"]:
            checked = f" and {result['file']['path']}" if result["file"] else " (no report file checked: use --file)"
            text = f"report matches the workspace at audit seq {man['as_of_seq']}{checked}"
        else:
            text = f"MISMATCH in: {', '.join(bad)}"
        emit(result, json_, text)
        if not result["ok"]:
            raise typer.Exit(1)
        return
    target = out or Path(f"{incident.upper()}.{format_}")
    info = reports.write_report(ws, who, incident, format_, target, playbooks_dir=playbooks_dir)
    emit(info, json_, f"wrote {info['path']} ({info['bytes']} bytes, sha256 {info['sha256']}, as of audit seq "
                      f"{info['as_of_seq']}); manifest {info['manifest']}")
