"""The after-action report: what happened (the injected ground truth) against what the team did (answers,
incidents, evidence, playbook steps, from the drill workspace and its audit chain), on one timeline, scored.

Scenario (data) time and drill time meet at the scenario's `clock.t0`: the instant in the data at which the
team was called in is T+0, so an attack that began 26 hours earlier appears at T-26h00m.
"""

from __future__ import annotations

import hashlib
import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.drills.scenario import Scenario, offset_text
from workbench.drills.scoring import DrillScore, alert_relevant, score
from workbench.drills.session import _clock_state, _dt, _injects, elapsed_at
from workbench.drills.workspace import _truth, require_drill, scenario_of
from workbench.errors import WorkbenchError
from workbench.store import Workspace

FORMATS = ("md", "html")
LANES = ("ground truth", "detectors", "facilitator", "team")
_LANE_COLOUR = {"ground truth": "#b42318", "detectors": "#b54708", "facilitator": "#175cd3", "team": "#067647"}
_SKIP = ("drill.start", "drill.answer", "demo.build", "ingest.", "model.add", "detect.", "audit.")


def timeline(ws: Workspace, scenario: Scenario, truth: dict[str, Any], sc: DrillScore) -> list[dict[str, Any]]:
    """Every event of the drill with its drill-time offset and lane, oldest first."""
    c = _clock_state(ws)
    t0 = _dt(truth["t0"])
    events: list[dict[str, Any]] = []

    def scen(ts: Any, what: str, lane: str = "ground truth") -> None:
        when = _dt(ts)
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
    started = _dt(c["started_at"])
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
    try:
        from workbench.cases.timeline import describe_action

        text = describe_action(action, details)
    except ImportError:
        text = action
    if text == action:
        text = f"{action} {obj or ''}".strip()
        if action.startswith("read.") and details.get("rows") is not None:
            text += f" ({details['rows']} rows)"
    elif obj and str(obj).startswith("INC-"):
        text = f"{obj}: {text}"
    return text


def _relevant_alerts(ws: Workspace, truth: dict[str, Any]) -> list[dict[str, Any]]:
    from workbench.drills.scoring import _alerts

    out = [a for a in _alerts(ws).values() if a.get("window_start") and alert_relevant(a, truth)]
    return sorted(out, key=lambda a: str(a["window_start"]))[:30]


# -- rendering ---------------------------------------------------------------------------------------------
def _t(ts: Any) -> str:
    return "" if ts is None else _dt(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def _esc(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def render_markdown(ws: Workspace, scenario: Scenario, truth: dict[str, Any], sc: DrillScore,
                    events: list[dict[str, Any]]) -> str:
    """The after-action report as markdown."""
    c = _clock_state(ws)
    ttd = sc.time_to_detect
    lines = [f"# After-action report: {scenario.title}", "",
             f"Drill `{scenario.id}` (scenario v{scenario.version}, sha256 `{scenario.sha256[:12]}`), workspace "
             f"`{ws.path.name}`. Clock started {_t(c['started_at'])}; T+0 is {_t(truth['t0'])} in the scenario's "
             f"data. Report generated {_t(sc.scored_at)}.", "",
             f"## Score: {sc.total:g} / {sc.max_points:g} ({sc.percent:g}%)", "",
             "| part | points | of | how |", "|---|---:|---:|---|"]
    q_pts = sum(q["points"] for q in sc.questions)
    q_max = sum(q["max_points"] for q in sc.questions)
    right = sum(q["verdict"] == "right" for q in sc.questions)
    lines.append(f"| questions | {q_pts:g} | {q_max:g} | {right} of {len(sc.questions)} right |")
    how = (f"{ttd['elapsed']} via {ttd['via']} ({ttd['band']})" if ttd["seconds"] is not None
           else "not detected")
    lines.append(f"| time to detect | {ttd['points']:g} | {ttd['max_points']:g} | {_esc(how)} |")
    st, ev = sc.playbook_steps, sc.evidence
    lines.append(f"| playbook steps | {st['points']:g} | {st['max_points']:g} | {st['count']} steps done "
                 f"({', '.join(st['playbooks']) or 'no playbook'}) |")
    lines.append(f"| evidence | {ev['points']:g} | {ev['max_points']:g} | {ev['relevant']} relevant of "
                 f"{ev['count']} items |")
    lines += ["", "## What happened (ground truth)", "", scenario.summary, ""]
    for inc in truth["incidents"].values():
        lines += [f"### {inc['id']}: {inc['type']} on {inc['system_id']}", "",
                  f"- window: {_t(inc['start'])} to {_t(inc['end'])}",
                  f"- principals: {', '.join(inc['principals']) or 'none (not an actor-driven incident)'}",
                  f"- MITRE ATLAS: {', '.join(inc['atlas']) or 'none (benign)'}",
                  f"- decisions: {inc['decision_count']}"
                  + (f" ({', '.join(f'{k} {v}' for k, v in inc['outcomes'].items())})" if inc["outcomes"] else ""),
                  f"- first / last malicious decision: {_t(inc['first_decision']) or '-'} / "
                  f"{_t(inc['last_decision']) or '-'}"]
        if inc["ips"] and len(inc["ips"]) <= 5:
            lines.append(f"- source addresses: {', '.join(inc['ips'])}")
        if inc.get("trigger_feature"):
            lines.append(f"- trigger: {inc['trigger_feature']} = {inc['trigger_value']} (model {inc['version']})")
        if inc["type"] == "unregistered_artifact":
            lines.append(f"- artifact: version {inc['version']}, sha256 {inc['sha256']}")
        if inc.get("feature") and inc["type"] == "drift":
            lines.append(f"- drifting feature: {inc['feature']}")
        lines += [f"- {inc['description']}", ""]
    lines += ["## What the team did", "", "### Answers (latest per question is scored)", "",
              "| question | expected | answer | by | at | points | verdict |", "|---|---|---|---|---|---:|---|"]
    for q in sc.questions:
        at = offset_text(q["elapsed_s"]) if q["elapsed_s"] is not None else ""
        lines.append(f"| {_esc(q['id'])}: {_esc(q['text'])} | {_esc(q['expected'])} | {_esc(q['answer'] or '-')} | "
                     f"{_esc(q['participant'] or '')} | {at} | {q['points']:g}/{q['max_points']:g} | "
                     f"{q['verdict']} ({_esc(q['detail'])}) |")
    if sc.participants:
        lines += ["", "| participant | answered | points (own latest answers) |", "|---|---:|---:|"]
        lines += [f"| {_esc(p['participant'])} | {p['answered']} | {p['points']:g}/{p['max_points']:g} |"
                  for p in sc.participants]
    incidents = ws.dicts("SELECT incident_id, title, severity, status, created_by, created_at FROM incidents "
                         "ORDER BY incident_id")
    lines += ["", "### Incidents opened", ""]
    if incidents:
        lines += ["| incident | title | severity | status | by | at |", "|---|---|---|---|---|---|"]
        lines += [f"| {i['incident_id']} | {_esc(i['title'])} | {i['severity']} | {i['status']} | {i['created_by']} | "
                  f"{offset_text(elapsed_at(c, i['created_at']))} |" for i in incidents]
    else:
        lines.append("None.")
    lines += ["", "### Evidence collected", ""]
    if ev["items"]:
        lines += ["| # | incident | kind | label | by | at | relevant |", "|---:|---|---|---|---|---|---|"]
        lines += [f"| {i['evidence_id']} | {i['incident_id']} | {i['kind']} | {_esc(i['label'][:90])} | "
                  f"{i['added_by']} | {offset_text(elapsed_at(c, i['added_at']))} | "
                  f"{'yes' if i['relevant'] else 'no'} |"
                  for i in ev["items"]]
    else:
        lines.append("None.")
    lines += ["", "### Playbook steps completed", ""]
    if st["steps"]:
        lines += ["| incident | playbook | step | by | at |", "|---|---|---|---|---|"]
        lines += [f"| {s['incident_id']} | {s['playbook_id']} | {_esc(s['step_id'])} | {s['actor']} | "
                  f"{offset_text(elapsed_at(c, s['ts']))} |" for s in st["steps"]]
    else:
        lines.append("None.")
    lines += ["", "## Timeline", "",
              "Drill time; ground-truth and detector events are placed by their time in the scenario's data.", "",
              "| T | lane | event | who | scenario time |", "|---|---|---|---|---|"]
    lines += [f"| {offset_text(e['offset_s'])} | {e['lane']} | {_esc(e['what'])} | {_esc(e['who'])} | "
              f"{_t(e['scenario_time'])} |" for e in events]
    if scenario.body:
        body = [("##" + ln if ln.startswith("#") else ln) for ln in scenario.body.splitlines()]
        if body and body[0].lstrip("#").strip().lower() == "facilitator notes":
            body = body[1:]
        lines += ["", "## Facilitator notes (from the scenario)", "", *body]
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
color:#101828;line-height:1.45}table{border-collapse:collapse;margin:.6em 0;font-size:.9em;width:100%}
th,td{border:1px solid #d0d5dd;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f2f4f7}
h1{border-bottom:3px solid #101828}h2{margin-top:1.6em;border-bottom:1px solid #d0d5dd}code{background:#f2f4f7}
.tl text{font-size:11px;font-family:system-ui,sans-serif}
"""


def timeline_svg(events: list[dict[str, Any]], width: int = 1100) -> str:
    """A self-contained SVG of the timeline: one row per lane, a dot per event (hover for the text)."""
    if not events:
        return ""
    lo = min(e["offset_s"] for e in events)
    hi = max(max(e["offset_s"] for e in events), 0)
    span = max(hi - lo, 60.0)
    left, right, row = 110, 20, 34
    x = lambda s: left + (s - lo) / span * (width - left - right)  # noqa: E731
    h = row * len(LANES) + 40
    parts = [f'<svg class="tl" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" role="img" aria-label="drill timeline">']
    for i, lane in enumerate(LANES):
        y = 20 + i * row
        parts.append(f'<text x="4" y="{y + 4}">{lane}</text><line x1="{left}" x2="{width - right}" y1="{y}" '
                     f'y2="{y}" stroke="#eaecf0"/>')
    zx = x(0)
    parts.append(f'<line x1="{zx:.1f}" x2="{zx:.1f}" y1="8" y2="{h - 24}" stroke="#101828" stroke-dasharray="4 3"/>'
                 f'<text x="{zx + 3:.1f}" y="{h - 8}">T+0</text>')
    parts.append(f'<text x="{left}" y="{h - 8}">{offset_text(lo)}</text>'
                 f'<text x="{width - right - 60}" y="{h - 8}">{offset_text(hi)}</text>')
    for e in events:
        y = 20 + LANES.index(e["lane"]) * row
        tip = html.escape(f"{offset_text(e['offset_s'])} {e['what']} {e['who']}".strip())
        parts.append(f'<circle cx="{x(e["offset_s"]):.1f}" cy="{y}" r="5" fill="{_LANE_COLOUR[e["lane"]]}" '
                     f'fill-opacity="0.75"><title>{tip}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(markdown_text: str, title: str, events: list[dict[str, Any]]) -> str:
    """One self-contained HTML file: the markdown rendered, with an SVG timeline above the timeline table."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    svg = timeline_svg(events)
    body = body.replace("<h2>Timeline</h2>", f"<h2>Timeline</h2>\n{svg}", 1)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")


def write_report(ws: Workspace, actor: Actor, fmt: str, out: str | Path, now: datetime | None = None
                 ) -> dict[str, Any]:
    """Write the after-action report (md or html) and record it in the audit chain."""
    require(actor, "facilitate:drills")
    require_drill(ws)
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown report format {fmt!r}; choose md or html")
    scenario = scenario_of(ws)
    truth = _truth(ws)
    sc = score(ws, actor, scenario, now=now)
    events = timeline(ws, scenario, truth, sc)
    text = render_markdown(ws, scenario, truth, sc, events)
    if fmt == "html":
        text = render_html(text, f"After-action report: {scenario.title}", events)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    audit.record(ws, actor, "drill.report", str(out), {"format": fmt, "sha256": digest, "score": sc.total,
                                                      "max_points": sc.max_points})
    return {"path": str(out), "format": fmt, "sha256": digest, "score": sc.total, "max_points": sc.max_points,
            "percent": sc.percent, "events": len(events)}
