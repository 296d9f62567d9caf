"""The after-action report: what happened (the injected ground truth) against what the team did (answers,
incidents, evidence, playbook steps, from the drill workspace and its audit chain), on one timeline, scored.

Scenario (data) time and drill time meet at the scenario's `clock.t0`: the instant in the data at which the
team was called in is T+0, so an attack that began 26 hours earlier appears at T-26h00m.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.cases.report_safe import md_block, md_text
from workbench.cases.report_templates import render_drill
from workbench.cases.timeline import describe_action
from workbench.drills.report_pdf import render_pdf
from workbench.drills.scenario import Scenario, offset_text
from workbench.drills.scoring import DrillScore, _alerts, alert_relevant, score
from workbench.drills.session import _clock_state, _injects, elapsed_at
from workbench.drills.workspace import _truth, require_drill, scenario_of
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import as_datetime, human_utc

FORMATS = ("md", "html", "pdf")
LANES = ("ground truth", "detectors", "facilitator", "team")
_LANE_COLOUR = {"ground truth": "#b42318", "detectors": "#b54708", "facilitator": "#175cd3", "team": "#067647"}
_SKIP = ("drill.start", "drill.answer", "demo.build", "ingest.", "model.add", "detect.", "audit.")


def timeline(ws: Workspace, scenario: Scenario, truth: dict[str, Any], sc: DrillScore) -> list[dict[str, Any]]:
    """Every event of the drill with its drill-time offset and lane, oldest first."""
    c = _clock_state(ws)
    t0 = as_datetime(truth["t0"])
    events: list[dict[str, Any]] = []

    def scen(ts: Any, what: str, lane: str = "ground truth") -> None:
        when = as_datetime(ts)
        events.append({"offset_s": (when - t0).total_seconds(), "lane": lane, "what": what,
                       "scenario_time": when, "who": ""})

    for inc in truth["incidents"].values():
        who = ", ".join(inc["principals"]) or inc["system_id"]
        scen(inc["start"], f"{inc['id']}: {inc['type']} starts on {inc['system_id']} ({who})")
        if inc.get("first_decision") and inc["type"] not in ("drift",):
            scen(inc["first_decision"], f"{inc['id']}: first malicious decision")
        if inc.get("last_decision"):
            scen(inc["last_decision"], f"{inc['id']}: last malicious decision "
                                       f"({inc['decision_count']} decisions in all)")
        if inc["type"] != "drift":
            scen(inc["end"], f"{inc['id']}: {inc['type']} ends")
    for a in _relevant_alerts(ws, truth):
        scen(a["window_start"], f"alert {a['alert_id']} ({a.get('detector')}, {a.get('severity')}): "
                                f"{a.get('summary') or ''}".strip(), lane="detectors")

    def team(ts: Any, what: str, who: str, lane: str = "team") -> None:
        events.append({"offset_s": elapsed_at(c, ts), "lane": lane, "what": what, "scenario_time": None,
                       "who": who})

    for inj in _injects(ws):
        if inj["released"]:
            team(inj["released_at"], f"inject {inj['n']} ({inj['at']}) released: {inj['title'] or inj['text'][:60]}",
                 inj["released_by"] or "", lane="facilitator")
    marks = {q["id"]: q for q in sc.questions}
    for a in ws.dicts("SELECT * FROM drill_answers ORDER BY answer_id"):
        latest = marks.get(a["question_id"], {})
        flag = f" [{latest.get('verdict')}]" if latest.get("answered_at") == a["answered_at"] else " [superseded]"
        team(a["answered_at"], f"answered {a['question_id']}: {a['answer'][:80]}{flag}", a["participant"])
    if not c.get("started_at"):
        events.sort(key=lambda e: (e["offset_s"], LANES.index(e["lane"])))
        return events
    started = as_datetime(c["started_at"])
    reads: set[tuple[str, int]] = set()
    for r in ws.dicts("SELECT seq, ts, actor, action, object, details FROM audit_log WHERE ts >= ? ORDER BY seq",
                      [started]):
        action = r["action"]
        if action.startswith(_SKIP) or action.startswith("drill.inject") or action.startswith("drill.report"):
            continue
        if action.startswith("read."):  # what the team looked at: one line per person per minute
            key = (r["actor"], int(elapsed_at(c, r["ts"]) // 60))
            if key in reads:
                continue
            reads.add(key)
        details = json.loads(r["details"]) if isinstance(r["details"], str) else (r["details"] or {})
        team(r["ts"], _describe(action, r["object"], details), r["actor"],
             lane="facilitator" if action.startswith("drill.clock") else "team")
    events.sort(key=lambda e: (e["offset_s"], LANES.index(e["lane"])))
    return events


def _describe(action: str, obj: Any, details: dict[str, Any]) -> str:

    text = describe_action(action, details)
    if text == action:
        text = f"{action} {obj or ''}".strip()
        if action.startswith("read.") and details.get("rows") is not None:
            text += f" ({details['rows']} rows)"
    elif obj and str(obj).startswith("INC-"):
        text = f"{obj}: {text}"
    return text


def _relevant_alerts(ws: Workspace, truth: dict[str, Any]) -> list[dict[str, Any]]:

    out = [a for a in _alerts(ws).values() if a.get("window_start") and alert_relevant(a, truth)]
    return sorted(out, key=lambda a: str(a["window_start"]))[:30]


# -- rendering ---------------------------------------------------------------------------------------------
# Scenario text, principals, answers, titles, labels and audit details are data: the view below holds them as
# plain strings; Markdown escapes them (report_safe.md_text), HTML renders them through an autoescaping jinja2
# template. The scenario's summary and facilitator notes are authored Markdown: defanged for Markdown,
# rendered and sanitised (nh3) for HTML.
def _t(ts: Any) -> str:
    return "" if ts is None else human_utc(as_datetime(ts), seconds=True)


def _truth_facts(inc: dict[str, Any]) -> list[str]:
    outcomes = f" ({', '.join(f'{k} {v}' for k, v in inc['outcomes'].items())})" if inc["outcomes"] else ""
    facts = [f"window: {_t(inc['start'])} to {_t(inc['end'])}",
             f"principals: {', '.join(inc['principals']) or 'none (not an actor-driven incident)'}",
             f"MITRE ATLAS: {', '.join(inc['atlas']) or 'none (benign)'}",
             f"decisions: {inc['decision_count']}{outcomes}",
             f"first / last malicious decision: {_t(inc['first_decision']) or '-'} / "
             f"{_t(inc['last_decision']) or '-'}"]
    if inc["ips"] and len(inc["ips"]) <= 5:
        facts.append(f"source addresses: {', '.join(inc['ips'])}")
    if inc.get("trigger_feature"):
        facts.append(f"trigger: {inc['trigger_feature']} = {inc['trigger_value']} (model {inc['version']})")
    if inc["type"] == "unregistered_artifact":
        facts.append(f"artifact: version {inc['version']}, sha256 {inc['sha256']}")
    if inc.get("feature") and inc["type"] == "drift":
        facts.append(f"drifting feature: {inc['feature']}")
    return [*facts, str(inc["description"])]


def report_view(ws: Workspace, scenario: Scenario, truth: dict[str, Any], sc: DrillScore,
                events: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the after-action report shows, as plain values for the Markdown and HTML renderers."""
    c = _clock_state(ws)
    ttd, st, ev = sc.time_to_detect, sc.playbook_steps, sc.evidence
    right = sum(q["verdict"] == "right" for q in sc.questions)
    how = f"{ttd['elapsed']} via {ttd['via']} ({ttd['band']})" if ttd["seconds"] is not None else "not detected"
    score_rows = [
        {"part": "questions", "points": f"{sum(q['points'] for q in sc.questions):g}",
         "of": f"{sum(q['max_points'] for q in sc.questions):g}", "how": f"{right} of {len(sc.questions)} right"},
        {"part": "time to detect", "points": f"{ttd['points']:g}", "of": f"{ttd['max_points']:g}", "how": how},
        {"part": "playbook steps", "points": f"{st['points']:g}", "of": f"{st['max_points']:g}",
         "how": f"{st['count']} steps done ({', '.join(st['playbooks']) or 'no playbook'})"},
        {"part": "evidence", "points": f"{ev['points']:g}", "of": f"{ev['max_points']:g}",
         "how": f"{ev['relevant']} relevant of {ev['count']} items"},
    ]
    answers = [{"question": f"{q['id']}: {q['text']}", "expected": q["expected"], "answer": q["answer"] or "-",
                "by": q["participant"] or "",
                "at": offset_text(q["elapsed_s"]) if q["elapsed_s"] is not None else "",
                "points": f"{q['points']:g}/{q['max_points']:g}", "verdict": f"{q['verdict']} ({q['detail']})"}
               for q in sc.questions]
    participants = [{"participant": p["participant"], "answered": p["answered"],
                     "points (own latest answers)": f"{p['points']:g}/{p['max_points']:g}"}
                    for p in sc.participants]
    incidents = [{"incident": i["incident_id"], "title": i["title"], "severity": i["severity"],
                  "status": i["status"], "by": i["created_by"], "at": offset_text(elapsed_at(c, i["created_at"]))}
                 for i in ws.dicts("SELECT incident_id, title, severity, status, created_by, created_at "
                                   "FROM incidents ORDER BY incident_id")]
    evidence = [{"#": i["evidence_id"], "incident": i["incident_id"], "kind": i["kind"], "label": i["label"][:90],
                 "by": i["added_by"], "at": offset_text(elapsed_at(c, i["added_at"])),
                 "relevant": "yes" if i["relevant"] else "no"} for i in ev["items"]]
    steps = [{"incident": s["incident_id"], "playbook": s["playbook_id"], "step": s["step_id"], "by": s["actor"],
              "at": offset_text(elapsed_at(c, s["ts"]))} for s in st["steps"]]
    timeline_rows = [{"T": offset_text(e["offset_s"]), "lane": e["lane"], "event": e["what"], "who": e["who"],
                      "scenario time": _t(e["scenario_time"])} for e in events]
    notes = ""
    if scenario.body:
        body = [("##" + ln if ln.startswith("#") else ln) for ln in scenario.body.splitlines()]
        if body and body[0].lstrip("#").strip().lower() == "facilitator notes":
            body = body[1:]
        notes = "\n".join(body).strip()
    return {
        "title": f"After-action report: {scenario.title}",
        "intro": f"Drill {scenario.id} (scenario v{scenario.version}, sha256 {scenario.sha256[:12]}), workspace "
                 f"{ws.path.name}. Clock started {_t(c.get('started_at')) or 'never'}; T+0 is {_t(truth['t0'])} in the "
                 f"scenario's data. Report generated {_t(sc.scored_at)}.",
        "score": f"Score: {sc.total:g} / {sc.max_points:g} ({sc.percent:g}%)",
        "score_rows": score_rows, "summary": scenario.summary or "",
        "truth": [{"heading": f"{inc['id']}: {inc['type']} on {inc['system_id']}", "facts": _truth_facts(inc)}
                  for inc in truth["incidents"].values()],
        "answers": answers, "participants": participants, "incidents": incidents, "evidence": evidence,
        "steps": steps, "timeline": timeline_rows, "notes": notes, "svg": timeline_shapes(events),
    }


_RIGHT = {"points", "of", "#", "answered", "points (own latest answers)"}


def _md_table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
    if not rows:
        return ["None."]
    out = ["| " + " | ".join(md_text(c) for c in cols) + " |",
           "|" + "|".join("---:" if c in _RIGHT else "---" for c in cols) + "|"]
    return out + ["| " + " | ".join(md_text(r.get(c, "")) for c in cols) + " |" for r in rows]


def render_markdown(ws: Workspace, scenario: Scenario, truth: dict[str, Any], sc: DrillScore,
                    events: list[dict[str, Any]], view: dict[str, Any] | None = None) -> str:
    """The after-action report as Markdown (every value escaped; authored text defanged)."""
    v = view or report_view(ws, scenario, truth, sc, events)
    lines = [f"# {md_text(v['title'])}", "", md_text(v["intro"]), "", f"## {md_text(v['score'])}", "",
             *_md_table(v["score_rows"], ["part", "points", "of", "how"]), "",
             "## What happened (ground truth)", "", md_block(v["summary"]), ""]
    for t in v["truth"]:
        lines += [f"### {md_text(t['heading'])}", "", *[f"- {md_text(f)}" for f in t["facts"]], ""]
    lines += ["## What the team did", "", "### Answers (latest per question is scored)", "",
              *_md_table(v["answers"], ["question", "expected", "answer", "by", "at", "points", "verdict"])]
    if v["participants"]:
        lines += ["", *_md_table(v["participants"], ["participant", "answered", "points (own latest answers)"])]
    lines += ["", "### Incidents opened", "",
              *_md_table(v["incidents"], ["incident", "title", "severity", "status", "by", "at"])]
    lines += ["", "### Evidence collected", "",
              *_md_table(v["evidence"], ["#", "incident", "kind", "label", "by", "at", "relevant"])]
    lines += ["", "### Playbook steps completed", "",
              *_md_table(v["steps"], ["incident", "playbook", "step", "by", "at"])]
    lines += ["", "## Timeline", "",
              "Drill time; ground-truth and detector events are placed by their time in the scenario's data.", "",
              *_md_table(v["timeline"], ["T", "lane", "event", "who", "scenario time"])]
    if v["notes"]:
        lines += ["", "## Facilitator notes (from the scenario)", "", md_block(v["notes"])]
    return "\n".join(lines) + "\n"


def timeline_shapes(events: list[dict[str, Any]], width: int = 1100) -> dict[str, Any] | None:
    """The timeline figure's geometry: one row per lane, a dot per event (its text a hover title)."""
    if not events:
        return None
    lo = min(e["offset_s"] for e in events)
    hi = max(max(e["offset_s"] for e in events), 0)
    span = max(hi - lo, 60.0)
    left, right, row = 110, 20, 34
    x = lambda s: round(left + (s - lo) / span * (width - left - right), 1)  # noqa: E731
    h = row * len(LANES) + 40
    return {
        "width": width, "height": h, "left": left, "right_x": width - right, "zero": x(0),
        "lanes": [{"name": lane, "y": 20 + i * row} for i, lane in enumerate(LANES)],
        "lo": offset_text(lo), "hi": offset_text(hi),
        "dots": [{"cx": x(e["offset_s"]), "cy": 20 + LANES.index(e["lane"]) * row, "fill": _LANE_COLOUR[e["lane"]],
                  "tip": f"{offset_text(e['offset_s'])} {e['what']} {e['who']}".strip()} for e in events],
    }


def render_html(view: dict[str, Any]) -> str:
    """One self-contained HTML file (jinja2, autoescaped): the report with an SVG timeline, no script at all."""

    return render_drill(view=view)


def write_report(ws: Workspace, actor: Actor, fmt: str, out: str | Path, now: datetime | None = None
                 ) -> dict[str, Any]:
    """Write the after-action report (md, html or pdf) and record it in the audit chain."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}; choose md, html or pdf")
    scenario = scenario_of(ws)
    truth = _truth(ws)
    sc = score(ws, actor, scenario, now=now)
    events = timeline(ws, scenario, truth, sc)
    view = report_view(ws, scenario, truth, sc, events)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pdf":

        out.write_bytes(render_pdf(view))
    else:
        text = render_html(view) if fmt == "html" else render_markdown(ws, scenario, truth, sc, events, view)
        out.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    audit.record(ws, actor, "drill.report", str(out), {"format": fmt, "sha256": digest, "score": sc.total,
                                                      "max_points": sc.max_points})
    return {"path": str(out), "format": fmt, "sha256": digest, "score": sc.total, "max_points": sc.max_points,
            "percent": sc.percent, "events": len(events)}
