"""Commands for explaining decisions: the model registry, explain, replay, surrogate, attribution drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, emit_json, table, workspace
from workbench.errors import WorkbenchError

model_app = typer.Typer(help="The model registry: add artifacts safely, list the inventory, import an AI-BOM.",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

SystemOpt = Annotated[str, typer.Option("--system", help="System id.")]
IdsOpt = Annotated[list[str] | None, typer.Option("--decision-id", help="Decision id (repeatable).")]
SinceOpt = Annotated[str | None, typer.Option(help="Window start (ISO-8601, inclusive).")]
UntilOpt = Annotated[str | None, typer.Option(help="Window end (ISO-8601, exclusive).")]


@model_app.command("add")
def model_add(
    path: Annotated[Path, typer.Argument(help="LightGBM text, XGBoost JSON/UBJ, or skops file.")],
    system: SystemOpt,
    version: Annotated[str, typer.Option("--version", help="Model version as logged in decisions.")],
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Accept a pickle/joblib file if a static "
                                               "scan finds only model-library imports.")] = False,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Register a model artifact: hash, safe load, read-only copy in the evidence store."""
    from workbench.explain import registry

    ws = workspace(db)
    row = registry.add_model(ws, actor(ws, user), system, version, path, allow_pickle=allow_pickle)
    if json_:
        emit_json([row])
    else:
        typer.echo(f"registered {system} {version}: {row['format']}, {len(row['feature_names'] or [])} features, "
                   f"sha256 {row['sha256']}")


@model_app.command("list")
def model_list(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """The model inventory with hashes, approval and whether the stored copy still verifies."""
    from workbench.explain import registry

    ws = workspace(db, create=False)
    rows = registry.list_models(ws, actor(ws, user))
    if json_:
        emit_json(rows)
        return
    for r in rows:
        r["sha256"] = r["sha256"][:16]
        r["features"] = len(r["feature_names"] or [])
    table(rows, ["system_id", "version", "format", "sha256", "features", "source", "approved", "verified",
                 "added_by", "added_at"], title="models")


@model_app.command("events")
def model_events(
    system: Annotated[str | None, typer.Option("--system", help="Only this system's events.")] = None,
    limit: Annotated[int, typer.Option(help="Newest events shown.")] = 50,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Refused and failed model loads and registry conflicts, newest first (also in the audit chain)."""
    from workbench.explain import registry

    ws = workspace(db, create=False)
    rows = registry.list_events(ws, actor(ws, user), limit=limit, system_id=system)
    if json_:
        emit_json(rows)
        return
    for r in rows:
        r["sha256"] = (r["sha256"] or "")[:12]
        r["model"] = f"{r['system_id']}/{r['version']}" if r["system_id"] else r["path"]
    table(rows, ["event_id", "ts", "actor", "event", "model", "sha256", "reason"], title="model events")


@model_app.command("import-bom")
def model_import_bom(
    path: Annotated[Path, typer.Argument(help="CycloneDX JSON BOM.")],
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Import approved model hashes from a CycloneDX AI-BOM (machine-learning-model components)."""
    from workbench.explain import registry

    ws = workspace(db)
    result = registry.import_bom(ws, actor(ws, user), path)
    if json_:
        emit_json([result])
        return
    typer.echo(f"{result['components']} model component(s): {len(result['added'])} added, "
               f"{len(result['approved'])} approved, {len(result['conflicts'])} conflict(s), "
               f"{len(result['skipped'])} skipped")
    for c in result["conflicts"]:
        typer.echo(f"conflict: {c['reason']}", err=True)


@app.command()
def explain(
    system: SystemOpt, decision_id: IdsOpt = None,
    version: Annotated[str | None, typer.Option("--version", help="Explain with this registered version "
                                                "instead of the one that served each decision.")] = None,
    top: Annotated[int, typer.Option(help="Attributions shown per decision in text output.")] = 8,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Explain logged decisions with exact TreeSHAP (or a labelled surrogate); cached per model hash."""
    from workbench.explain import explain_decisions

    if not decision_id:
        raise WorkbenchError("give at least one --decision-id")
    ws = workspace(db, create=False)
    rows = explain_decisions(ws, actor(ws, user), system, decision_id, version=version)
    if json_:
        emit_json(rows)
        return
    for r in rows:
        label = "TreeSHAP" if r["method"] == "tree" else f"SURROGATE (held-out R² {r.get('surrogate_r2', 0):.3f})"
        cls = f"  class {r['class_index']}" if r.get("class_index") is not None else ""
        typer.echo(f"{r['decision_id']}  {system} {r['model_version']}  {label}{cls}  base {r['base_value']:.4f} "
                   f"-> output {r['output']:.4f}")
        for a in r["attributions"][:top]:
            typer.echo(f"    {a['shap']:+.4f}  {a['feature']} = {a['value']}")
        if r["ignored_features"]:
            typer.echo(f"    (logged but unknown to the model: {', '.join(r['ignored_features'])})")


@app.command()
def replay(
    system: SystemOpt,
    to_version: Annotated[str, typer.Option("--to-version", help="Registered version to re-score with.")],
    decision_id: IdsOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="List unchanged decisions too (text output).")] = False,
    alert: Annotated[str | None, typer.Option("--alert", help="Replay the decisions this alert names.")] = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Re-score decisions with another version under the learned decision rule; list changed predictions."""
    from workbench.explain import replay as replay_lib
    from workbench.explain.replay import ids_between

    ws = workspace(db, create=False)
    who = actor(ws, user)
    ids = list(decision_id or [])
    if alert:  # README: `workbench replay --system S --to-version V --alert AL-...`
        from workbench.explain import alert_decision_ids

        alert_system, alert_ids = alert_decision_ids(ws, who, alert)
        if alert_system != system:
            raise WorkbenchError(f"alert {alert} is about {alert_system}, not {system}")
        ids += alert_ids
    ids = ids or ids_between(ws, system, since, until)
    if not ids:
        raise WorkbenchError("no decisions to replay: give --alert, --decision-id or a --since/--until window")
    frame = replay_lib(ws, who, system, ids, to_version)
    rows = frame.to_dict("records")
    if json_:
        emit_json(rows)
        return
    for ver, rule in frame.attrs["rules"].items():
        cuts = ", ".join(f"{t:.4g}" for t in rule["thresholds"])
        typer.echo(f"rule of {ver} (learned from its log, agreement {rule['agreement']:.2%}): "
                   f"{' < '.join(rule['labels'])} at {cuts or 'no thresholds'}")
    shown = rows if all_ else [r for r in rows if r["changed"]]
    table(shown, ["decision_id", "served_version", "served_prediction", "served_score", "replay_score",
                  "replay_prediction", "changed"], title=f"replay on {to_version}")
    typer.echo(f"{frame.attrs['changed']} of {len(rows)} decision(s) would change under {to_version}")


@app.command()
def surrogate(
    system: SystemOpt, since: SinceOpt = None, until: UntilOpt = None,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Fit a LightGBM surrogate to a black-box system's logged scores; report held-out fidelity (R²)."""
    from workbench.explain import fit_surrogate

    ws = workspace(db, create=False)
    info = fit_surrogate(ws, actor(ws, user), system, since, until)
    if json_:
        emit_json([info])
    else:
        typer.echo(f"surrogate of {system}: held-out R² {info['r2']:.4f} (train {info['n_train']}, "
                   f"test {info['n_test']}, {len(info['features'])} features), sha256 {info['sha256'][:16]}")


@app.command("attribution-drift")
def attribution_drift(
    system: Annotated[str | None, typer.Option("--system", help="System id (implied by --alert).")] = None,
    decision_id: IdsOpt = None,
    alert: Annotated[str | None, typer.Option("--alert", help="Alert whose decisions to compare.")] = None,
    reference_size: Annotated[int, typer.Option(help="Reference decisions of the same versions.")] = 2000,
    db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False,
) -> None:
    """Mean |SHAP| share per feature, alert vs normal decisions of the same version; biggest rise first."""
    from workbench.explain import alert_decision_ids
    from workbench.explain import attribution_drift as drift

    ws = workspace(db, create=False)
    who = actor(ws, user)
    ids = list(decision_id or [])
    if alert:
        system, ids = alert_decision_ids(ws, who, alert)
    if not system or not ids:
        raise WorkbenchError("give --alert ALERT_ID, or --system with --decision-id")
    frame = drift(ws, who, system, ids, reference_size=reference_size)
    if json_:
        emit_json(frame.to_dict("records"))
        return
    table(frame.to_dict("records"), list(frame.columns),
          title=f"{system}: {frame.attrs['alert_n']} decisions vs {frame.attrs['reference_n']} reference")
