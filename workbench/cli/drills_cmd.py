"""`workbench drill ...`: list scenarios, build a drill workspace, run the clock and injects, answer, score, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli import app
from workbench.cli.common import JsonOpt, UserOpt, actor, dumps, emit_json, table
from workbench.errors import WorkbenchError

drill_app = typer.Typer(help="Tabletop drills: separate drill workspaces, injects, answers, scoring, reports.",
                        no_args_is_help=True)
app.add_typer(drill_app, name="drill")

DrillDbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Drill workspace (default: the newest *.duckdb under ./drills).", show_default=False),
]


def _drill_ws(db: Path | None):  # noqa: ANN202 - a Workspace
    from workbench.drills.workspace import find_drill, require_drill
    from workbench.store import open_workspace

    path = find_drill(db)
    ws = open_workspace(path, create=False)
    try:
        require_drill(ws)
    except WorkbenchError:
        ws.close()
        raise
    return ws


@drill_app.command("list")
def list_(directory: Annotated[Path | None, typer.Option("--dir", help="Scenario folder (default: "
                                                          "playbooks/drills).")] = None,
          json_: JsonOpt = False) -> None:
    """List the drill scenarios (invalid ones are shown with the reason)."""
    from workbench.drills.scenario import check_scenario, load_scenario, scenarios_dir

    folder = directory or scenarios_dir()
    rows = []
    for path in sorted(Path(folder).glob("*.md")):
        try:
            s = load_scenario(path)
            rows.append({"id": s.id, "title": s.title, "difficulty": s.difficulty,
                         "minutes": s.duration_minutes, "incidents": ", ".join(i.type for i in s.incidents),
                         "systems": ", ".join(s.systems), "questions": len(s.questions),
                         "max_points": s.max_points(), "release": s.release, "path": str(path),
                         "error": "; ".join(check_scenario(s)) or None})
        except WorkbenchError as exc:
            rows.append({"id": path.stem, "title": "", "path": str(path), "error": str(exc)})
    if json_:
        emit_json(rows)
    else:
        table(rows, ["id", "title", "difficulty", "minutes", "incidents", "questions", "max_points", "error"],
              title=f"drill scenarios in {folder}")


@drill_app.command()
def start(scenario: Annotated[str | None, typer.Argument(help="Scenario file or id (see `workbench drill list`).")
                              ] = None,
          out: Annotated[Path, typer.Option("--out", help="Folder for the drill workspace and its data.")] = Path(
              "drills"),
          force: Annotated[bool, typer.Option("--force", help="Rebuild an existing drill workspace "
                                                               "(its answers are lost).")] = False,
          models: Annotated[Path | None, typer.Option("--models", help="Folder of trained sample models to "
                                                                       "reuse.")] = None,
          start_clock: Annotated[bool, typer.Option("--start-clock", help="Start the clock now too (a solo run or a "
                                                    "notebook; in a room the facilitator starts it).")] = False,
          from_redteam: Annotated[str | None, typer.Option("--from-redteam", help="Build it from this red-team "
                                                           "run's emitted traffic (`workbench redteam --emit`) in "
                                                           "$WORKBENCH_DB instead of a scenario.")] = None,
          json_: JsonOpt = False) -> None:
    """Build a separate drill workspace (baseline traffic plus the injected incidents); the clock waits for the
    facilitator (`workbench drill clock start`)."""
    from workbench.drills.scenario import find_scenario
    from workbench.drills.workspace import start_drill

    say = (lambda m: None) if json_ else (lambda m: typer.echo(f"  {m}", err=True))
    if (scenario is None) == (from_redteam is None):
        raise WorkbenchError("give a scenario (see `workbench drill list`) or --from-redteam RUN_ID, not both")
    if from_redteam is not None:
        from workbench.cli.common import workspace
        from workbench.drills.from_redteam import start_drill_from_redteam

        with workspace(None, create=False) as src:
            info = start_drill_from_redteam(src, actor(src, None), from_redteam, out, force=force, progress=say)
    else:
        info = start_drill(find_scenario(scenario), out, models_dir=models, force=force, progress=say)
    started = None
    if start_clock:
        from workbench.drills import session
        from workbench.store import open_workspace

        with open_workspace(info.path, create=False) as ws:
            started = session.start_clock(ws, actor(ws, None))["started_at"]
    if json_:
        emit_json([info.as_dict() | {"started_at": started}])
        return
    clock_text = (f"clock started {started:%H:%M:%S} UTC" if started else
                  f"clock NOT started: start it when the session starts (`workbench drill clock start --db "
                  f"{info.path}` or the facilitator page)")
    typer.echo(f"drill {info.scenario_id} ready: {info.path} ({info.decisions} decisions, {info.alerts} alerts, "
               f"built in {info.seconds:.1f} s); {clock_text}")
    typer.echo(f"participants: WORKBENCH_DRILL_ROLE=participant WORKBENCH_DB={info.path} streamlit run workbench"
               f"   |   facilitator: WORKBENCH_DRILL_ROLE=facilitator (or an account with facilitate:drills)")


@drill_app.command()
def status(db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """The drill's clock, released injects and answers so far."""
    from workbench.drills import session
    from workbench.drills.workspace import scenario_of

    ws = _drill_ws(db)
    who = actor(ws, user)
    s = scenario_of(ws)
    c = session.clock(ws)
    released = session.current_injects(ws, who)
    n_answers = ws.scalar("SELECT count(*) FROM drill_answers")
    row = {"drill": s.id, "title": s.title, "path": str(ws.path), "started_at": c["started_at"],
           "elapsed": c["elapsed"], "paused": c["paused"], "injects_released": len(released),
           "injects": len(s.injects), "answers": n_answers, "questions": len(s.questions)}
    if json_:
        emit_json([row])
    else:
        table([row], list(row))


@drill_app.command()
def clock(action: Annotated[str, typer.Argument(help="start | pause | resume | show")] = "show",
          db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Show, (re)start, pause or resume the inject clock (facilitator)."""
    from workbench.drills import session

    ws = _drill_ws(db)
    who = actor(ws, user)
    fn = {"start": session.start_clock, "pause": session.pause_clock, "resume": session.resume_clock}.get(action)
    if fn is None and action != "show":
        raise WorkbenchError("clock action must be start, pause, resume or show")
    c = fn(ws, who) if fn else session.clock(ws)
    row = {k: c[k] for k in ("started", "started_at", "elapsed", "paused")}
    if json_:
        emit_json([row])
    elif not c["started"]:
        typer.echo("clock not started (`workbench drill clock start` when the session starts)")
    else:
        typer.echo(f"clock started {c['started_at']:%Y-%m-%d %H:%M:%S} UTC, now {c['elapsed']}"
                   f"{' (paused)' if c['paused'] else ''}")


@drill_app.command()
def inject(release: Annotated[int | None, typer.Option("--release", help="Release inject N now.")] = None,
           db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """List the injects and their state, or release one (facilitator)."""
    from workbench.drills import session

    ws = _drill_ws(db)
    who = actor(ws, user)
    if release is not None:
        r = session.release_inject(ws, who, release)
        if json_:
            emit_json([r])
        else:
            note = "was already released" if r["already"] else "released"
            typer.echo(f"inject {r['n']} ({r['at']}) {note}: {r['title'] or r['text'][:70]}")
        return
    rows = session.injects(ws, who)
    if json_:
        emit_json(rows)
    else:
        table([r | {"text": r["text"][:90]} for r in rows], ["n", "at", "title", "due", "released", "released_by",
                                                              "text"])


@drill_app.command()
def brief(db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """What participants know so far: the story, the injects released, the questions."""
    from workbench.drills import session
    from workbench.drills.workspace import scenario_of

    ws = _drill_ws(db)
    who = actor(ws, user)
    injects = session.current_injects(ws, who)
    s = scenario_of(ws)
    if json_:
        emit_json([{"story": s.story, "injects": injects, "questions": [q.public() for q in s.questions]}])
        return
    typer.echo(f"{s.title}\n\n{s.story}\n")
    for i in injects:
        typer.echo(f"[{i['at']}] {i['title']}: {i['text']}\n")
    for q in s.questions:
        typer.echo(f"  {q.id} ({q.points:g} pts): {q.text}")


@drill_app.command()
def answer(question_id: Annotated[str, typer.Argument(help="Question id (see `workbench drill brief`).")],
           text: Annotated[str, typer.Argument(help="The answer.")],
           participant: Annotated[str | None, typer.Option("--participant", help="Who answers (default: the "
                                                           "acting user; others need a facilitator).")] = None,
           db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Record an answer to a drill question (the latest answer per question is scored)."""
    from workbench.drills import session

    ws = _drill_ws(db)
    who = actor(ws, user)
    r = session.answer(ws, who, question_id, text, participant=participant)
    emit_json([r]) if json_ else typer.echo(f"answer {r['answer_id']} to {r['question_id']} recorded for "
                                            f"{r['participant']} at {r['elapsed']}")


@drill_app.command()
def score(db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Score the drill so far (facilitator: shows the expected answers)."""
    from workbench.drills.scoring import score as score_drill

    ws = _drill_ws(db)
    sc = score_drill(ws, actor(ws, user))
    if json_:
        typer.echo(dumps(sc.as_dict()))
        return
    table([{k: q[k] for k in ("id", "answer", "expected", "points", "max_points", "verdict")} for q in sc.questions],
          ["id", "answer", "expected", "points", "max_points", "verdict"], title=sc.title)
    t = sc.time_to_detect
    typer.echo(f"time to detect: {t['elapsed'] or 'not detected'}"
               + (f" via {t['via']}" if t["via"] else "") + f" -> {t['points']:g}/{t['max_points']:g}")
    typer.echo(f"playbook steps: {sc.playbook_steps['count']} -> {sc.playbook_steps['points']:g}/"
               f"{sc.playbook_steps['max_points']:g}")
    typer.echo(f"evidence: {sc.evidence['relevant']} relevant of {sc.evidence['count']} -> "
               f"{sc.evidence['points']:g}/{sc.evidence['max_points']:g}")
    typer.echo(f"TOTAL {sc.total:g} / {sc.max_points:g} ({sc.percent:g}%)")


@drill_app.command()
def mark(question_id: Annotated[str, typer.Argument(help="A free-text question (contain, keywords).")],
         points: Annotated[float, typer.Argument(help="Points for its latest answer.")],
         note: Annotated[str, typer.Option("--note", help="Why (shown in the score and the report).")] = "",
         db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Mark the latest answer to a free-text question (facilitator); other questions are marked automatically."""
    from workbench.drills import session

    ws = _drill_ws(db)
    r = session.mark_answer(ws, actor(ws, user), question_id, points, note)
    emit_json([r]) if json_ else typer.echo(f"answer {r['answer_id']} to {question_id} by {r['participant']}: "
                                            f"{r['points']:g} points")


@drill_app.command()
def report(fmt: Annotated[str, typer.Option("--format", help="md, html or pdf")] = "md",
           out: Annotated[Path | None, typer.Option("--out", help="Output file (default: "
                                                    "<drill>-after-action.<format> beside the workspace).")] = None,
           db: DrillDbOpt = None, user: UserOpt = None, json_: JsonOpt = False) -> None:
    """Write the after-action report: ground truth against what the team did, one timeline, the score."""
    from workbench.drills.report import write_report

    ws = _drill_ws(db)
    target = out or ws.path.with_name(f"{ws.path.stem}-after-action.{fmt}")
    r = write_report(ws, actor(ws, user), fmt, target)
    emit_json([r]) if json_ else typer.echo(f"wrote {r['path']} ({r['format']}, score {r['score']:g}/"
                                            f"{r['max_points']:g}, sha256 {r['sha256'][:12]})")

