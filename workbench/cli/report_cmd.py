"""`workbench report`: write an incident report with its manifest of content hashes, or check a manifest;
`workbench incident write`: the analyst-written parts of the report (summary, root cause, lessons, money)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cases import report_writeup, reports
from workbench.cli import app
from workbench.cli.cases_cmd import incident_app
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
    amount_feature: Annotated[
        str | None,
        typer.Option("--amount-feature", help="Feature holding the money at stake (default: the incident's, set "
                     "with `incident write --amount-feature`); the impact section sums it over the affected "
                     "decisions."),
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
    info = reports.write_report(ws, who, incident, format_, target, playbooks_dir=playbooks_dir,
                                amount_feature=amount_feature)
    emit(info, json_, f"wrote {info['path']} ({info['bytes']} bytes, sha256 {info['sha256']}, as of audit seq "
                      f"{info['as_of_seq']}); manifest {info['manifest']}")


def _text(value: str | None) -> str | None:
    """A value as given, or a file's text for @PATH (so long Markdown need not sit on the command line)."""
    if value is None or not value.startswith("@") or len(value) == 1:
        return value
    path = Path(value[1:])
    if not path.is_file():
        raise WorkbenchError(f"{path} is not a file (write @PATH to read a field's text from a file)")
    return path.read_text(encoding="utf-8")


@incident_app.command("write")
def write_cmd(
    incident: IncidentArg,
    summary: Annotated[str | None, typer.Option("--summary", help="Executive summary (Markdown; replaces the "
                                                "generated one; '' clears it; @FILE reads a file).")] = None,
    root_cause: Annotated[str | None, typer.Option("--root-cause", help="Root cause (Markdown, @FILE).")] = None,
    lessons: Annotated[str | None, typer.Option("--lessons", help="Lessons learned (Markdown, @FILE).")] = None,
    amount_feature: Annotated[str | None, typer.Option("--amount-feature", help="Feature holding the money at "
                                                       "stake, e.g. loan_amount.")] = None,
    amount_note: Annotated[str | None, typer.Option("--amount-note", help="What that figure is, e.g. 'EUR, "
                                                    "principal requested'.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write the parts of the incident report only an analyst can: summary, root cause, lessons, money at stake."""
    ws, who = workspace_actor(db, user)
    fields = {"exec_summary": _text(summary), "root_cause": _text(root_cause), "lessons": _text(lessons),
              "amount_feature": amount_feature, "amount_note": amount_note}
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        raise WorkbenchError("give at least one of --summary, --root-cause, --lessons, --amount-feature, "
                             "--amount-note")
    out = report_writeup.write(ws, who, incident, **given)
    emit({"incident_id": incident.upper(), **out}, json_,
         f"{incident.upper()}: wrote {', '.join(sorted(given))} (audited as incident.write)")
