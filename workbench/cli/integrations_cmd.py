"""Commands that talk to the SOC: watch, sink (add/list/remove/test/queue/retry/deliver), export, findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, dumps, emit, emit_rows, workspace_actor
from workbench.errors import WorkbenchError

sink_app = typer.Typer(help="Where new and escalated alerts are delivered (webhook, OCSF or JSON-lines file).",
                       no_args_is_help=True)
export_app = typer.Typer(help="Export alerts (OCSF) and incidents (STIX 2.1, MISP, TheHive 5).", no_args_is_help=True)
findings_app = typer.Typer(help="Findings from other tools (guardrail telemetry, OCSF) as external alerts.",
                           no_args_is_help=True)
app.add_typer(sink_app, name="sink")
app.add_typer(export_app, name="export")
app.add_typer(findings_app, name="findings")

OutOpt = Annotated[Path | None, typer.Option("--out", help="Write to this file (default: standard output).")]
UnmaskedOpt = Annotated[bool, typer.Option("--unmasked", help="Admin only: send personal values unmasked.")]


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"cannot write {out}: {exc.strerror or exc}") from exc
    typer.echo(f"wrote {out}", err=True)


@app.command()
def watch(dirs: Annotated[list[Path], typer.Argument(help="Folders to watch for new files.")],
          every: Annotated[float, typer.Option("--every", help="Seconds between polls.")] = 10.0,
          once: Annotated[bool, typer.Option("--once", help="Poll, wait --settle s, run one cycle, stop.")] = False,
          settle: Annotated[float, typer.Option("--settle", help="With --once: seconds between two polls.")] = 1.0,
          backoff: Annotated[float, typer.Option("--backoff", help="First retry delay (s) after a failure.")] = 5.0,
          db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Load new files from folders, detect on what is new, deliver new or escalated alerts to every sink."""
    from workbench.integrations.watch import watch as run

    ws, who = workspace_actor(db, user)

    def show(f: dict) -> None:
        if json_:
            typer.echo(dumps(f))
        elif any(f.get(k) for k in ("files_loaded", "files_failed", "alerts_new", "alerts_escalated", "delivered",
                                     "retrying", "failed")):
            typer.echo(f"loaded {f['files_loaded']} file(s) ({f['rows_loaded']} rows, {f['rows_quarantined']} "
                       f"quarantined), {f['files_failed']} failed; {f['alerts_new']} new and {f['alerts_escalated']} "
                       f"escalated alert(s); delivered {f['delivered']}, retrying {f['retrying']}, failed "
                       f"{f['failed']}, pending {f['pending']}")
            for err in f.get("errors") or []:
                typer.echo(f"warning: {err}", err=True)

    try:
        run(ws, who, [str(d) for d in dirs], every=every, once=once, settle=settle, backoff=backoff, on_cycle=show)
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)


@sink_app.command("add")
def sink_add(kind: Annotated[str, typer.Argument(help="webhook | file")],
             target: Annotated[str, typer.Argument(help="URL (or env:VAR) for a webhook; a path for a file")],
             fmt: Annotated[str | None, typer.Option("--format", help="File sinks: ocsf | jsonl.")] = None,
             secret_env: Annotated[str | None, typer.Option("--secret-env",
                                   help="Environment variable holding the HMAC secret (its name is stored).")] = None,
             min_severity: Annotated[str, typer.Option("--min-severity", help="Only alerts at least this severe.")]
             = "low",
             backfill: Annotated[bool, typer.Option("--backfill", help="Also send every alert stored now.")] = False,
             unmasked: UnmaskedOpt = False, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Add a sink: new and escalated alerts go to it from now on."""
    from workbench.integrations.sinks import add_sink

    ws, who = workspace_actor(db, user)
    s = add_sink(ws, who, kind, target, fmt=fmt, secret_env=secret_env, min_severity=min_severity,
                 unmasked=unmasked, backfill=backfill)
    emit(s, json_, f"sink {s['sink_id']}: {s['kind']} {s['target']} ({s['format']}, {s['min_severity']} and up)")


@sink_app.command("list")
def sink_list(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List sinks with pending, delivered and failed deliveries (secrets by variable name only)."""
    from workbench.integrations.sinks import list_sinks

    ws, who = workspace_actor(db, user)
    emit_rows(list_sinks(ws, who), ["sink_id", "kind", "target", "format", "min_severity", "secret_env",
                                    "secret_set", "pending", "delivered", "failed", "last_delivery"], json_)


@sink_app.command("remove")
def sink_remove(sink_id: Annotated[int, typer.Argument(help="Sink id.")], db: DbOpt = None, user: UserOpt = None,
                json_: JsonOpt = False) -> None:
    """Remove a sink and its queue."""
    from workbench.integrations.sinks import remove_sink

    ws, who = workspace_actor(db, user)
    r = remove_sink(ws, who, sink_id)
    emit(r, json_, f"removed sink {r['sink_id']} ({r['pending_dropped']} pending deliveries dropped)")


@sink_app.command("test")
def sink_test(sink_id: Annotated[int, typer.Argument(help="Sink id.")], db: DbOpt = None, user: UserOpt = None,
              json_: JsonOpt = False) -> None:
    """Send a test message to a sink now; exit 1 if it did not go through."""
    from workbench.integrations.sinks import test_sink

    ws, who = workspace_actor(db, user)
    r = test_sink(ws, who, sink_id)
    emit(r, json_, f"sink {sink_id}: " + ("ok" if r["ok"] else f"failed: {r['error']}"))
    if not r["ok"]:
        raise typer.Exit(1)


@sink_app.command("queue")
def sink_queue(state: Annotated[str | None, typer.Option(help="pending | delivered | failed")] = None,
               db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """The delivery outbox, newest first."""
    from workbench.integrations.outbox import queue

    ws, who = workspace_actor(db, user)
    emit_rows(queue(ws, who, state), ["sink_id", "event_id", "event", "state", "attempts", "next_attempt",
                                      "last_error", "delivered_at"], json_)


@sink_app.command("retry")
def sink_retry(sink_id: Annotated[int | None, typer.Argument(help="Sink id (default: all).")] = None,
               db: DbOpt = None, user: UserOpt = None) -> None:
    """Put failed deliveries back in the queue."""
    from workbench.integrations.outbox import retry_failed

    ws, who = workspace_actor(db, user)
    typer.echo(f"{retry_failed(ws, who, sink_id)} deliveries queued again")


@sink_app.command("deliver")
def sink_deliver(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Queue new or escalated alerts and send what is due now (what one watch cycle does after detection)."""
    from workbench.integrations.outbox import deliver, enqueue

    ws, who = workspace_actor(db, user)
    r = {**enqueue(ws, who), **deliver(ws, who)}
    emit(r, json_, f"{r['new']} new, {r['escalated']} escalated; delivered {r['delivered']}, retrying "
                   f"{r['retrying']}, failed {r['failed']}")


@export_app.command("alerts")
def export_alerts(fmt: Annotated[str, typer.Option("--format", help="ocsf")] = "ocsf", out: OutOpt = None,
                  severity: Annotated[str | None, typer.Option(help="At least this severity.")] = None,
                  unmasked: UnmaskedOpt = False, db: DbOpt = None, user: UserOpt = None) -> None:
    """Every alert as an OCSF Detection Finding (class 2004), one JSON object per line."""
    from workbench.integrations.ocsf_findings import export_alerts as run

    if fmt != "ocsf":
        raise WorkbenchError(f"unknown format {fmt!r}; alerts export as ocsf")
    ws, who = workspace_actor(db, user)
    _write("\n".join(json.dumps(f, sort_keys=True) for f in run(ws, who, severity=severity, unmasked=unmasked)), out)


@export_app.command("incident")
def export_incident(incident_id: Annotated[str, typer.Argument(help="Incident id, e.g. INC-0001.")],
                    fmt: Annotated[str, typer.Option("--format", help="stix | misp | thehive")] = "stix",
                    out: OutOpt = None,
                    push: Annotated[str | None, typer.Option("--push", help="TheHive URL to create the case in.")]
                    = None,
                    api_key_env: Annotated[str | None, typer.Option("--api-key-env",
                                           help="Environment variable holding the TheHive API key.")] = None,
                    organisation: Annotated[str | None, typer.Option(help="TheHive organisation.")] = None,
                    unmasked: UnmaskedOpt = False, db: DbOpt = None, user: UserOpt = None,
                    json_: JsonOpt = False) -> None:
    """An incident as a STIX 2.1 bundle, a MISP event or a TheHive 5 case (TLP:RED never leaves)."""
    from workbench.integrations.incident_export import export_incident as run
    from workbench.integrations.incident_export import push_thehive

    ws, who = workspace_actor(db, user)
    if push:
        if fmt != "thehive":
            raise WorkbenchError("--push sends to TheHive: use --format thehive")
        if not api_key_env:
            raise WorkbenchError("--push needs --api-key-env VAR (the variable holding the API key)")
        r = push_thehive(ws, who, incident_id, push, api_key_env, unmasked=unmasked, organisation=organisation)
        emit(r, json_, f"created TheHive case {r['case_id']} with {r['observables']} observable(s) and "
                       f"{r['procedures']} TTP(s)")
        return
    _write(json.dumps(run(ws, who, incident_id, fmt, unmasked=unmasked), indent=2, sort_keys=True), out)


@findings_app.command("import")
def findings_import(paths: Annotated[list[Path], typer.Argument(help="Files of findings.")],
                    fmt: Annotated[str | None, typer.Option("--format", help="otel | ocsf (default: recognised)")]
                    = None, db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Take in guardrail telemetry or OCSF findings from other tools as external alerts."""
    from workbench.integrations.external_alerts import ingest_findings

    ws, who = workspace_actor(db, user)
    failed = 0
    for p in paths:
        try:
            r = ingest_findings(ws, who, p, fmt)
        except WorkbenchError as exc:
            failed += 1
            typer.echo(f"error: {exc}", err=True)
            continue
        emit(r, json_, f"{p}: " + ("already imported" if r["skipped"] else
                                    f"{r['findings']} finding(s), {r['quarantined']} quarantined, "
                                    f"{len(r['alerts'])} alert(s)"))
    if failed:
        raise typer.Exit(1)


@findings_app.command("list")
def findings_list(alert: Annotated[str | None, typer.Option("--alert", help="Only this external alert's.")] = None,
                  limit: Annotated[int, typer.Option(help="At most this many.")] = 200,
                  db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Findings taken in from other tools, newest first."""
    from workbench.integrations.external_alerts import list_findings

    ws, who = workspace_actor(db, user)
    emit_rows(list_findings(ws, who, alert, limit), ["ts", "tool", "system_id", "principal", "category",
                                                      "decision", "severity", "alert_id"], json_)
