"""Commands for detection: detect, alerts, ack, baseline, eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import app
from workbench.cli.common import DbOpt, JsonOpt, UserOpt, actor, dumps, emit_json, table, workspace

baseline_app = typer.Typer(help="Reference windows ('normal') the detectors learn from.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")

SystemOpt = Annotated[str | None, typer.Option("--system", help="Only this system.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this time (ISO-8601, UTC if no offset).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this time (ISO-8601).")]


@app.command()
def detect(system: SystemOpt = None, since: SinceOpt = None, until: UntilOpt = None,
           only: Annotated[str | None, typer.Option(help="Comma-separated detectors to run (default: all).")] = None,
           engine: Annotated[str, typer.Option(help="duckdb | spark (spark needs --lake).")] = "duckdb",
           lake: Annotated[str | None, typer.Option(help="Attached lake name, or a lake directory to attach.")] = None,
           db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Run every detector, store the alerts (re-runs update, never duplicate) and print them."""
    from workbench.detect import LAST_RUN, run_all

    ws = workspace(db, create=False if lake is None else True)
    who = actor(ws, user)
    todo = [o.strip() for o in only.split(",")] if only else None
    if lake is not None or engine != "duckdb":  # the lake engines (issue 20, workbench/lake/engine.py)
        from workbench.errors import WorkbenchError
        from workbench.lake.engine import detect as lake_detect

        if lake is None:
            raise WorkbenchError(f"--engine {engine} reads a lake: give --lake NAME|DIR")
        alerts, where = lake_detect(ws, who, lake, engine=engine, system=system, since=since, until=until,
                                    only=todo)
        LAST_RUN["engines"] = where
    else:
        alerts = run_all(ws, who, system=system, since=since, until=until, only=todo)
    if json_:
        emit_json(alerts)
        return
    _print(alerts, f"{len(alerts)} alert(s) from {len(LAST_RUN.get('systems', []))} system(s)")
    for name, err in (LAST_RUN.get("errors") or {}).items():
        typer.echo(f"warning: detector {name} failed: {err}", err=True)
    secs = LAST_RUN.get("timings") or {}
    typer.echo("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in secs.items()), err=True)


def _print(alerts: list[dict], title: str) -> None:
    rows = [a | {"decisions": a.get("n_decisions", len(a["decision_ids"]))} for a in alerts]
    table(rows, ["alert_id", "severity", "detector", "system_id", "window_start", "principal", "feature",
                 "metric", "decisions", "summary"], title=title)


@app.command()
def alerts(system: SystemOpt = None, since: SinceOpt = None, until: UntilOpt = None,
           detector: Annotated[str | None, typer.Option(help="Only this detector.")] = None,
           severity: Annotated[str | None, typer.Option(help="At least this severity.")] = None,
           status: Annotated[str | None, typer.Option(help="open | acknowledged | resolved | false_positive")] = None,
           alert_id: Annotated[str | None, typer.Option("--id", help="Show one alert in full.")] = None,
           limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
           db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List stored alerts (most severe first), or show one with --id."""
    from workbench.detect import get_alert, list_alerts
    from workbench.detect.baseline import parse_time

    ws = workspace(db, create=False)
    who = actor(ws, user)
    if alert_id:
        one = get_alert(ws, who, alert_id)
        if json_:
            emit_json([one])
            return
        for key, value in one.items():
            if key == "decision_ids":
                more = f" ... ({len(value)} in all)" if len(value) > 20 else ""
                typer.echo(f"{key}: {', '.join(value[:20])}{more}")
            else:
                typer.echo(f"{key}: {dumps(value) if isinstance(value, dict | list) else value}")
        return
    rows = list_alerts(ws, who, system=system, detector=detector, severity=severity, status=status,
                       since=parse_time(since), until=parse_time(until), limit=limit)
    if json_:
        emit_json(rows)
        return
    _print(rows, f"{len(rows)} alert(s)")


@app.command()
def ack(alert_id: Annotated[str, typer.Argument(help="The alert id (AL-...).")],
        status: Annotated[str, typer.Option(help="acknowledged | resolved | false_positive | open")] = "acknowledged",
        note: Annotated[str | None, typer.Option(help="Why.")] = None,
        db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Acknowledge, resolve or dismiss an alert (kept when detect runs again)."""
    from workbench.detect import set_status

    ws = workspace(db, create=False)
    row = set_status(ws, actor(ws, user), alert_id, status, note)
    if json_:
        emit_json([row])
    else:
        typer.echo(f"{alert_id}: {row['status']}")


@baseline_app.command("set")
def baseline_set(system: Annotated[str, typer.Option("--system", help="The system.")],
                 since: SinceOpt = None, until: UntilOpt = None,
                 note: Annotated[str | None, typer.Option(help="Why this window is normal.")] = None,
                 db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Pin the reference window of a system (default: the first 30% of its data, at most 7 days)."""
    from workbench.detect import set_baseline

    ws = workspace(db, create=False)
    row = set_baseline(ws, actor(ws, user), system, since, until, note)
    if json_:
        emit_json([row])
    else:
        typer.echo(f"{system}: reference {row['since']} .. {row['until']} ({row['decisions']} decisions)")


@baseline_app.command("show")
def baseline_show(db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """The reference window in force for every system."""
    from workbench.detect import list_baselines

    ws = workspace(db, create=False)
    rows = list_baselines(ws, actor(ws, user))
    if json_:
        emit_json(rows)
    else:
        table(rows, ["system_id", "since", "until", "source", "decisions", "set_by"], title="reference windows")


@baseline_app.command("clear")
def baseline_clear(system: Annotated[str, typer.Option("--system", help="The system.")],
                   db: DbOpt = None, user: UserOpt = None) -> None:
    """Go back to the learned default reference window."""
    from workbench.detect import clear_baseline

    ws = workspace(db, create=False)
    had = clear_baseline(ws, actor(ws, user), system)
    typer.echo(f"{system}: {'back to the default reference' if had else 'had no pinned reference'}")


@app.command("eval")
def eval_cmd(truth: Annotated[Path, typer.Option("--truth", help="ground_truth.json of a sample.")],
             clean_db: Annotated[Path | None, typer.Option(
                 "--clean-db", help="A second workspace built from the sample's clean variant (same traffic, no "
                                    "incidents): its alerts are all false, reported per day.")] = None,
             clean_truth: Annotated[Path | None, typer.Option(
                 "--clean-truth", help="The clean variant's ground_truth.json (its span gives the days; "
                                       "default: the clean workspace's decisions).")] = None,
             traces_truth: Annotated[Path | None, typer.Option(
                 "--traces-truth", help="The trace sample's ground_truth.json, scored on the llm_* alerts "
                                        "(default: traces/ground_truth.json beside --truth, when the workspace "
                                        "holds traces).")] = None,
             db: DbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Score the stored alerts against labelled incidents: precision, recall, time to detect, false alerts per day
    (and on the clean variant with --clean-db); LLM trace incidents are scored on the llm_* alerts."""
    from workbench.detect.evaluate import evaluate, load_truth
    from workbench.errors import WorkbenchError

    if clean_truth is not None and clean_db is None:
        raise WorkbenchError("--clean-truth goes with --clean-db, the workspace built from the clean variant")
    data = load_truth(clean_truth) if clean_truth else {"clean": True, "incidents": []}
    if data["incidents"]:
        raise WorkbenchError(f"{clean_truth} lists incidents: it is not a clean variant")
    ws = workspace(db, create=False)
    res = evaluate(ws, actor(ws, user), truth)
    clean = None
    if clean_db is not None:
        cws = workspace(clean_db, create=False)
        clean = evaluate(cws, actor(cws, user), data | {"clean": True})
        res["clean"] = clean
    llm = _eval_traces(ws, actor(ws, user), truth, traces_truth)
    if llm is not None:
        res["traces"] = llm
    if json_:
        emit_json([res])
        return
    rows = [r | {"precision": _pct(r["precision"]), "recall": _pct(r["recall"]),
                 "ttd": None if r["time_to_detect_s"] is None else f"{r['time_to_detect_s'] / 60:.0f} min",
                 "named": _flag(r["principal_named"]), "feat": _flag(r["feature_named"]),
                 "window": _flag(r["window_found"]), "credit": ", ".join(r["credited_by"])}
            for r in res["incidents"]]
    table(rows, ["id", "type", "system_id", "detected", "precision", "recall", "named", "feat", "window", "ttd",
                 "severity", "detectors", "credit"], title="incidents")
    types = [{"type": k, "incidents": v["incidents"], "detected": v["detected"], "precision": _pct(v["precision"]),
              "recall": _pct(v["recall"])} for k, v in res["by_type"].items()]
    if types:
        table(types, ["type", "incidents", "detected", "precision", "recall"], title="by incident type")
    table(res["false_alerts"], ["alert_id", "severity", "detector", "system_id", "window_start", "summary"],
          title=f"{len(res['false_alerts'])} false alert(s)")
    typer.echo("false alerts of medium or higher severity per system: "
               + ", ".join(f"{k} {v}" for k, v in res["false_alerts_medium_plus_by_system"].items()))
    typer.echo(_overall("incident sample", res["summary"]))
    if clean is not None:
        table(clean["false_alerts"], ["alert_id", "severity", "detector", "system_id", "window_start", "summary"],
              title=f"clean variant: {len(clean['false_alerts'])} false alert(s)")
        typer.echo(_overall("clean variant", clean["summary"]))
    typer.echo(f"credit: {res['credit_rule']}")
    for name, r in (("this truth", res), ("LLM traces", llm)):
        if r is not None and "llm" in r:
            _show_llm(name, r)


def _eval_traces(ws, who, truth: Path, traces_truth: Path | None) -> dict | None:
    """The trace sample's scoring when --traces-truth is given or sits beside --truth (and spans are loaded)."""
    from workbench.detect.evaluate import evaluate, is_traces_truth, load_truth

    if traces_truth is None:
        beside = Path(truth).parent / "traces" / "ground_truth.json"
        if not beside.exists() or is_traces_truth(load_truth(truth)) or not ws.table_exists("trace_spans") \
                or not ws.scalar("SELECT count(*) FROM trace_spans"):
            return None
        traces_truth = beside
    return evaluate(ws, who, traces_truth)


def _show_llm(name: str, res: dict) -> None:
    """The LLM view of a trace truth: per incident, its own detector and span recall/precision."""
    s = res["llm"]
    rows = [r | {"span_recall": _pct(r["span_recall"]), "span_precision": _pct(r["span_precision"]),
                 "detectors": ", ".join(r["detectors"])} for r in s["incidents"]]
    table(rows, ["type", "detected", "alerts", "span_recall", "span_precision", "detectors"],
          title=f"LLM incidents ({name})")
    typer.echo(f"LLM traces: {s['detected']} of {s['total']} incidents detected, {s['alerts']} llm_* alerts, "
               f"{s['false_alerts']} false ({s['false_alerts_per_day']:.2f} per day)")


def _overall(name: str, s: dict) -> str:
    """One line of overall figures."""
    ttd = s["time_to_detect_median_s"]
    per_day = s["false_alerts_per_day"]
    loud = s["false_alerts_medium_plus_per_day"]
    return (f"{name}: precision {_pct(s['precision']) or '-'} ({s['credited_alerts']} of {s['alerts']} alerts "
            f"credited), recall {_pct(s['recall']) or '-'} ({s['detected']} of {s['incidents']} incidents), "
            f"median time to detect {'-' if ttd is None else f'{ttd / 60:.0f} min'}, "
            f"false alerts per day {'-' if per_day is None else f'{per_day:.2f}'} "
            f"(medium or higher {'-' if loud is None else f'{loud:.2f}'}) over {s['days']:.1f} days")


def _pct(v: float | None) -> str | None:
    return None if v is None else f"{v:.1%}"


def _flag(v: bool | None) -> str | None:
    return None if v is None else ("yes" if v else "NO")
