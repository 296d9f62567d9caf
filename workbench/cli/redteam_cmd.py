"""Purple team commands: `redteam` (attack a registered model), `redteam coverage|list|report`, and the
supply-chain gate `model assess` with the AI-BOM export `model export-bom`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, dumps, emit_json, table, workspace
from workbench.cli.models_cmd import model_app
from workbench.errors import WorkbenchError

redteam_app = typer.Typer(help="Attack your own registered model offline; check the detectors see the traffic.",
                          invoke_without_command=True)
app.add_typer(redteam_app, name="redteam")


@redteam_app.callback()
def redteam(
    ctx: typer.Context,
    system: Annotated[str | None, typer.Option("--system", help="System id.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Registered version (default: newest).")] = None,
    attack: Annotated[str | None, typer.Option("--attack", help="evasion | extraction | probing | backdoor-scan")
                      ] = None,
    budget: Annotated[int, typer.Option("--budget", help="Queries the attack may send.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same run).")] = 0,
    seconds: Annotated[float, typer.Option("--seconds", help="Time budget in seconds.")] = 120.0,
    mutable: Annotated[str | None, typer.Option("--mutable", help="Comma-separated features the attacker may "
                                                "change (evasion; default: from the feature names).")] = None,
    surrogate: Annotated[bool, typer.Option("--surrogate", help="Attack the system's surrogate (black box).")
                         ] = False,
    emit: Annotated[Path | None, typer.Option("--emit", help="Write the attack as canonical decision logs here.")
                    ] = None,
    check: Annotated[bool, typer.Option("--coverage", help="With --emit: also run the coverage step.")] = False,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Run one attack against a registered model (or a black box's surrogate) within a budget."""
    if ctx.invoked_subcommand is not None:
        return
    if not system or not attack:
        raise WorkbenchError("give --system and --attack (evasion, extraction, probing, backdoor-scan), "
                             "or a subcommand: coverage, list, report")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.redteam import run_attack

    ws = workspace(db, create=False)
    who = actor(ws, user)
    # The attack's queries against its budget, on stderr (stdout stays the result); none with --json.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("queries"),
                  TimeElapsedColumn(), console=Console(stderr=True), disable=json_, transient=True) as bar:
        task = bar.add_task(f"{attack} on {system}", total=budget)
        run = run_attack(ws, who, system, attack, version=version, budget=budget, seed=seed, seconds=seconds,
                         mutable=[m.strip() for m in mutable.split(",") if m.strip()] if mutable else None,
                         surrogate=surrogate, emit_dir=emit,
                         progress=lambda used, total: bar.update(task, completed=used, total=total))
    if check:
        if emit is None:
            raise WorkbenchError("--coverage needs --emit DIR")
        from workbench.redteam.coverage import coverage

        run["coverage"] = coverage(ws, who, emit)
    if json_:
        emit_json([run])
        return
    from workbench.redteam.report import coverage_rows, headline

    h = headline(run)
    typer.echo(f"{run['run_id']}: {attack} on {system} {run['version']} ({run['target_kind']}), "
               f"{run['queries']} of {budget} queries in {run['seconds']:.1f} s: {h['figure']}")
    if run["emit_dir"]:
        typer.echo(f"attack traffic written to {run['emit_dir']} (ingest it, or `workbench redteam coverage "
                   f"--emit-dir {run['emit_dir']}`)")
    if run.get("coverage"):
        table(coverage_rows([run]), ["technique", "fired", "detectors", "time_to_detect", "queries_before",
                                     "attack_decisions_missed"], title="detection coverage")


@redteam_app.command("coverage")
def redteam_coverage(
    emit_dir: Annotated[Path, typer.Option("--emit-dir", help="A directory written by `redteam --emit`.")],
    keep: Annotated[Path | None, typer.Option("--keep-scratch", help="Keep the scratch workspace here.")] = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Ingest emitted attack traffic into a scratch copy of the workspace, detect, report per ATLAS technique."""
    from workbench.redteam.coverage import coverage

    ws = workspace(db, create=False)
    cov = coverage(ws, actor(ws, user), emit_dir, keep_scratch=keep)
    if json_:
        emit_json([cov])
        return
    rows = [{"technique": t, **c, "detectors": ", ".join(c["detectors"])} for t, c in cov["techniques"].items()]
    table(rows, ["technique", "fired", "detectors", "time_to_detect_s", "queries_before_first_flag",
                 "decisions_flagged"], title=f"{cov['attack']} {cov['run_id']}: coverage")
    typer.echo(f"{cov['decisions_flagged']} of {cov['attack_decisions']} attack decisions flagged; "
               f"missed techniques: {', '.join(cov['techniques_missed']) or 'none'}")


@redteam_app.command("list")
def redteam_list(
    system: Annotated[str | None, typer.Option("--system", help="Only this system.")] = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Red-team runs, newest first."""
    from workbench.redteam import list_runs
    from workbench.redteam.report import headline

    ws = workspace(db, create=False)
    runs = list_runs(ws, actor(ws, user), system)
    if json_:
        emit_json(runs)
        return
    table([headline(r) | {"system_id": r["system_id"]} for r in runs],
          ["run_id", "system_id", "version", "attack", "figure", "queries", "seconds", "detected"], title="runs")


@redteam_app.command("report")
def redteam_report(
    system: Annotated[str, typer.Option("--system", help="System id.")],
    version: Annotated[str | None, typer.Option("--version", help="Only runs on this version.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md | html | pdf")] = "md",
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout for md).")] = None,
    incident: Annotated[str | None, typer.Option("--incident", help="Also file it as evidence of this incident.")
                        ] = None,
    db: DbOpt = None, user: UserOpt = None,
) -> None:
    """The robustness and detection-coverage report (md, html or pdf); optionally filed as incident evidence."""
    from workbench.redteam.report import render

    ws = workspace(db, create=False)
    who = actor(ws, user)
    body = render(ws, who, system, version, fmt)
    if out is None:
        if fmt == "pdf":
            raise WorkbenchError("a PDF needs --out")
        typer.echo(body.decode("utf-8"))
    else:
        out.write_bytes(body)
        typer.echo(f"wrote {out} ({len(body)} bytes)")
    if incident:
        from workbench.cases.evidence import add_file_bytes

        item = add_file_bytes(ws, who, incident, f"redteam-{system}.{fmt}", body,
                              label=f"red-team report {system} {version or ''}".strip())
        typer.echo(f"filed as evidence #{item.get('evidence_id')} of {incident}")


@model_app.command("assess")
def model_assess(
    path: Annotated[Path, typer.Argument(help="A model artifact from a vendor or a hub.")],
    bom: Annotated[Path | None, typer.Option("--bom", help="CycloneDX AI-BOM that should list its hash.")] = None,
    signature: Annotated[Path | None, typer.Option("--signature", help="model-signing signature (bundle).")] = None,
    public_key: Annotated[Path | None, typer.Option("--public-key", help="PEM public key for the signature.")
                          ] = None,
    certificate: Annotated[list[Path] | None, typer.Option("--certificate", help="Certificate chain (PEM, "
                                                           "repeatable).")] = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Before `model add`: what the artifact is, whether loading it runs code, signature, AI-BOM hash, decision."""
    from workbench.redteam.assess import assess

    ws = workspace(db)
    a = assess(ws, actor(ws, user), path, bom=bom, signature=signature, public_key=public_key,
               certificate=certificate)
    if json_:
        emit_json([a])
        return
    sig = a["signature"]
    typer.echo(f"{path.name}: {a['format']}, {a['size']:,} bytes, sha256 {a['sha256']}")
    typer.echo(f"  loading can run code: {'YES' if a['can_run_code'] else 'no'}; registry loaders: "
               f"{'load it' if a['loads']['ok'] else 'refuse it (' + str(a['loads'].get('reason'))[:120] + ')'}")
    typer.echo(f"  signature: {'verified' if sig.get('verified') else sig.get('reason') or 'not given'}; AI-BOM: "
               f"{'not given' if a['bom'] is None else 'listed' if a['bom'].get('listed') else 'NOT listed'}")
    typer.echo(f"decision: {a['decision'].upper()}: " + "; ".join(a["reasons"]))
    if a["decision"] == "refuse":
        raise typer.Exit(3)


@model_app.command("export-bom")
def model_export_bom(
    system: Annotated[str | None, typer.Option("--system", help="Only this system's models.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the BOM here (default: stdout).")] = None,
    db: DbOpt = None, user: UserOpt = None,
) -> None:
    """CycloneDX AI-BOM of the registered models with red-team results and assessments in their model cards."""
    from workbench.redteam.bom import export_bom

    ws = workspace(db, create=False)
    doc = export_bom(ws, actor(ws, user), system)
    text = json.dumps(json.loads(dumps(doc)), indent=1)
    if out:
        out.write_text(text)
        typer.echo(f"wrote {out} ({len(doc['components'])} model components)")
    else:
        typer.echo(text)
