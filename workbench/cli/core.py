"""Commands for the foundation: ingest, sources, rejects, verify, sample, demo, status."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from workbench import ingest as ingest_lib
from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, dumps, emit_json, table, workspace
from workbench.errors import WorkbenchError


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, globs or directories to ingest.")],
    kind: Annotated[str | None, typer.Option(help="Force the kind: decisions, metrics or traces.")] = None,
    from_: Annotated[str | None, typer.Option("--from", "--format",
                                             help="Force the format: jsonl, csv, parquet, prometheus, an "
                                                  "importer name such as sagemaker, or for traces otlp, "
                                                  "otlp-json or langfuse.")] = None,
    system: Annotated[str | None, typer.Option(help="System id for rows or series that do not name one.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping file for a platform export.")] = None,
    reingest: Annotated[bool, typer.Option("--reingest", help="Read files again even if their hash was ingested "
                                           "before (a second try with other options).")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Ingest decision logs or metrics; print one summary row per file."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.ingest.files import expand

    mapping_doc = None
    if mapping is not None:
        import yaml

        try:
            mapping_doc = yaml.safe_load(mapping.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise WorkbenchError(f"{mapping}: cannot read mapping ({str(exc).splitlines()[0]})") from exc
    ws = workspace(db)
    who = actor(ws, user)
    missing: list[str] = []
    files = expand(paths, missing)
    total = sum(f.stat().st_size for f in files)
    show = not json_ and total > 20_000_000 and sys.stderr.isatty()
    if show and len(files) == 1:
        # One large file: DuckDB's own progress bar follows the scan inside the file.
        ws.execute("SET enable_progress_bar = true")
        ws.execute("SET enable_progress_bar_print = true")
        show = False
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), disable=not show,
                  transient=True) as bar:
        task = bar.add_task("ingesting", total=total or 1)
        results = [ingest_lib.FileResult(path=m, error=f"{m}: no such file, directory or matching glob")
                   for m in missing]
        for f in files:
            bar.update(task, description=f"ingesting {f.name}")
            results.append(ingest_lib.ingest_file(ws, who, f, kind=kind, fmt=from_, system=system,
                                                  mapping=mapping_doc, reingest=reingest))
            bar.advance(task, f.stat().st_size)
    if json_:
        emit_json(r.as_dict() for r in results)
    else:
        for r in results:
            if r.error:
                typer.echo(f"error: {r.error}", err=True)
            elif r.skipped and r.note:
                typer.echo(f"{r.path}: skipped: {r.note}")
            elif r.skipped:
                typer.echo(f"{r.path}: already ingested (sha256 {r.sha256[:12]}, source {r.source_id}); skipped "
                           "(--reingest reads it again, e.g. with other options)")
            else:
                typer.echo(f"{r.path}: {r.kind}/{r.format} read {r.rows_read}, loaded {r.rows_loaded}, "
                           f"duplicates {r.duplicates}, quarantined {r.rows_quarantined} ({r.seconds:.1f} s)")
    if any(r.error for r in results):
        raise typer.Exit(1)


@app.command()
def sources(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List ingested source files with their SHA-256 and row accounting."""
    ws = workspace(db, create=False)
    rows = ingest_lib.sources(ws, actor(ws, user))
    if json_:
        emit_json(rows)
    else:
        table(rows, ["source_id", "path", "sha256", "kind", "format", "rows_read", "rows_loaded", "duplicates",
                     "rows_quarantined", "ingested_at", "actor"])


@app.command()
def rejects(
    source: Annotated[int | None, typer.Option(help="Only this source_id.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 1000,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """List quarantined rows: file, line, reason and raw text."""
    ws = workspace(db, create=False)
    rows = ingest_lib.rejects(ws, actor(ws, user), source, limit)
    if json_:
        emit_json(rows)
    else:
        table(rows, ["source_id", "path", "line", "reason", "raw"])


@app.command()
def verify(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Re-hash the source files still on disk; exit 1 if any changed or vanished."""
    ws = workspace(db, create=False)
    rows = ingest_lib.verify_sources(ws, actor(ws, user))
    if json_:
        emit_json(rows)
    else:
        for r in rows:
            typer.echo(f"{r['status']:8} {r['path']}")
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(1)


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Directory to write the sample into.")] = Path("sample_data"),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 7,
    days: Annotated[int, typer.Option(help="Days of traffic.")] = 30,
    clean: Annotated[bool, typer.Option("--clean", help="No injected incidents.")] = False,
    exports: Annotated[bool, typer.Option("--exports/--no-exports",
                                          help="Also write a day of it in each platform's export shape.")] = True,
    json_: JsonOpt = False,
) -> None:
    """Generate the labelled sample: decisions, metrics, LightGBM models and ground truth."""
    from workbench.sample import generate
    from workbench.sample.exports import write_exports

    manifest = generate(out, seed=seed, days=days, clean=clean)
    from workbench.sample.llm_agent import generate_traces  # the LLM agent's traces, under traces/ (issue 18)

    manifest["traces"] = generate_traces(out, seed=seed, days=days, clean=clean)
    if exports:
        manifest["exports"] = write_exports(out, out / "exports")
    if json_:
        typer.echo(dumps(manifest))
    else:
        typer.echo(f"wrote sample (seed {seed}, {days} days{', clean' if clean else ''}) to {out}"
                   + (f", platform exports in {out / 'exports'}" if exports else ""))


@app.command()
def demo(
    sample_dir: Annotated[Path | None, typer.Option("--sample", help="Sample data directory (default: the repo's "
                                                    "sample_data/).")] = None,
    with_accounts: Annotated[bool, typer.Option("--with-accounts", help="Seed one account per role "
                                                "(password printed once).")] = False,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Build a demo workspace from the sample data (ingest, models, detection)."""
    from workbench.access import local_admin
    from workbench.demo import build_demo, is_empty

    ws = workspace(db)
    if not is_empty(ws):
        raise WorkbenchError(f"{ws.path} already holds data; give --db with a new file for the demo")
    who = local_admin()
    result = build_demo(ws, who, sample_dir, progress=None if json_ else (lambda m: typer.echo(f"... {m}")))
    if with_accounts:
        from workbench.access import accounts

        result["accounts"] = accounts.seed_demo_accounts(ws, who)
    if json_:
        typer.echo(dumps(result))
    else:
        loaded = sum(f["rows_loaded"] for f in result["files"])
        typer.echo(f"demo workspace {ws.path}: {loaded} rows, {result['models']} models, {result['alerts']} alerts")
        for acc in result.get("accounts", []):
            typer.echo(f"  account {acc['user']} ({acc['role']}) password: {acc['password']}")


@app.command()
def status(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Summarise the workspace: systems, decisions, metrics, sources, schema version."""
    from workbench.explore.overview import workspace_summary

    ws = workspace(db, create=False)
    summary = workspace_summary(ws, actor(ws, user))
    if json_:
        typer.echo(dumps(summary))
    else:
        typer.echo(f"workspace {ws.path} (schema v{summary['schema_version']})")
        table(summary["systems"], ["system_id", "decisions", "first", "last", "principals", "versions"])
        typer.echo(f"metrics points: {summary['metric_points']}, sources: {summary['sources']}, "
                   f"quarantined rows: {summary['quarantined']}")
