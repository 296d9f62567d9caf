"""Score a drill: answers (marked by ``grading``) against the injected ground truth, time to detect, playbook
steps, evidence.

Time to detect is drill time from the clock start to the first of: a right answer to a detection question
(principal questions by default), an incident or evidence item naming an injected principal or holding its
decisions or alerts, or an alert about the injected incident being acknowledged.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from workbench.access import Actor, require
from workbench.detect.alerts import fetch
from workbench.drills.grading import MARKS_KEY, expected_text, expected_values, grade
from workbench.drills.scenario import Scenario, offset_text
from workbench.drills.session import _clock_state, elapsed_at
from workbench.drills.workspace import _meta_value, _truth, require_drill, scenario_of
from workbench.store import Workspace
from workbench.timestamps import as_datetime

__all__ = ["DrillScore", "alert_relevant", "expected_values", "score", "time_to_detect"]

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]*[A-Za-z0-9]|[A-Za-z0-9]")


@dataclass
class DrillScore:
    """The drill's score, with every part explained."""

    scenario_id: str
    title: str
    total: float
    max_points: float
    percent: float
    questions: list[dict[str, Any]]
    time_to_detect: dict[str, Any]
    playbook_steps: dict[str, Any]
    evidence: dict[str, Any]
    participants: list[dict[str, Any]] = field(default_factory=list)
    scored_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for --json."""
        return asdict(self)


# -- expected values ----------------------------------------------------------------------------------------


# -- the whole drill ---------------------------------------------------------------------------------------
def score(ws: Workspace, actor: Actor, scenario: Scenario | None = None, now: datetime | None = None) -> DrillScore:
    """Score the drill so far (facilitators; the score reveals the expected answers)."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    scenario = scenario or scenario_of(ws)
    truth = _truth(ws)
    c = _clock_state(ws)
    known = {r[0] for r in ws.rows("SELECT DISTINCT principal FROM decisions")}
    answers = ws.dicts("SELECT * FROM drill_answers ORDER BY answer_id")
    marks = _marks(ws)
    latest: dict[str, dict] = {}
    for a in answers:
        latest[a["question_id"]] = a
    questions = []
    for q in scenario.questions:
        a = latest.get(q.id)
        g = grade(q, a["answer"] if a else None, truth, known, marks.get(a["answer_id"]) if a else None)
        questions.append({
            "id": q.id, "kind": q.kind, "text": q.text, "expected": expected_text(q, truth),
            "answer": a["answer"] if a else None, "participant": a["participant"] if a else None,
            "answered_at": a["answered_at"] if a else None,
            "elapsed_s": elapsed_at(c, a["answered_at"]) if a else None,
            "points": g.points, "max_points": g.max_points, "verdict": g.verdict, "detail": g.detail,
            "answer_id": a["answer_id"] if a else None,
            "attempts": sum(1 for x in answers if x["question_id"] == q.id)})
    ttd = time_to_detect(ws, scenario, truth, answers, known)
    steps = _steps(ws, scenario)
    evidence = _evidence(ws, scenario, truth)
    total = sum(q["points"] for q in questions) + ttd["points"] + steps["points"] + evidence["points"]
    best = scenario.max_points()
    return DrillScore(scenario.id, scenario.title, round(total, 2), round(best, 2),
                      round(100 * total / best, 1) if best else 0.0, questions, ttd, steps, evidence,
                      _participants(scenario, truth, answers, known, marks), now or datetime.now(UTC))


def _marks(ws: Workspace) -> dict[int, dict[str, Any]]:
    """The facilitator's marks of free-text answers, by answer id."""

    return {int(k): v for k, v in (_meta_value(ws, MARKS_KEY) or {}).items()}


def _participants(scenario: Scenario, truth: dict, answers: list[dict], known: set[str],
                  marks: dict[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each participant's own latest answers, marked (for the debrief, not the team score)."""
    people: dict[str, dict[str, dict]] = {}
    for a in answers:
        people.setdefault(a["participant"], {})[a["question_id"]] = a
    out = []
    for name, mine in sorted(people.items()):
        pts = sum(grade(q, mine[q.id]["answer"], truth, known, (marks or {}).get(mine[q.id]["answer_id"])).points
                  for q in scenario.questions if q.id in mine)
        out.append({"participant": name, "answered": len(mine), "points": round(pts, 2),
                    "max_points": sum(q.points for q in scenario.questions)})
    return out


def _injected(truth: dict) -> tuple[set[str], set[str], list[dict]]:
    incs = list(truth["incidents"].values())
    principals = {p.lower() for i in incs for p in i["principals"]}
    ids = {d for i in incs for d in i["decision_ids"]}
    return principals, ids, incs


def alert_relevant(alert: dict[str, Any], truth: dict[str, Any]) -> bool:
    """Whether an alert is about an injected incident (its principal, its decisions, its drift feature)."""
    principals, ids, incs = _injected(truth)
    if str(alert.get("principal") or "").lower() in principals:
        return True
    if ids & set(alert.get("decision_ids") or []):
        return True
    for i in incs:
        same_system = alert.get("system_id") == i["system_id"]
        if same_system and i["type"] == "drift" and alert.get("feature") and alert.get("feature") == i["feature"]:
            return True
        if same_system and i.get("metric") and alert.get("metric") == i["metric"] and _overlaps(alert, i):
            return True
    return False


def _overlaps(alert: dict, inc: dict) -> bool:
    try:
        a0 = as_datetime(alert.get("window_start"))
        a1 = as_datetime(alert.get("window_end") or alert.get("window_start"))
    except (TypeError, ValueError):
        return False
    return a0 <= as_datetime(inc["end"]) and a1 >= as_datetime(inc["start"])


def _alerts(ws: Workspace) -> dict[str, dict[str, Any]]:
    if not ws.table_exists("alerts"):
        return {}

    return {str(a["alert_id"]): a for a in fetch(ws, with_decisions=True)}


def time_to_detect(ws: Workspace, scenario: Scenario, truth: dict, answers: list[dict], known: set[str]
                   ) -> dict[str, Any]:
    """Drill seconds to the first sign that the team found the injected attack, how, and its points."""
    c = _clock_state(ws)
    principals, ids, _ = _injected(truth)
    events: list[tuple[datetime, str]] = []
    detect_qs = {q.id: q for q in scenario.questions if q.detect}
    for a in answers:
        q = detect_qs.get(a["question_id"])
        if q and grade(q, a["answer"], truth, known).hit:
            events.append((as_datetime(a["answered_at"]), f"answer to {q.id} by {a['participant']}"))
    for inc in ws.dicts("SELECT incident_id, title, description, created_at FROM incidents"):
        text = f"{inc['title']} {inc['description']}".lower()
        if any(p in text for p in principals):
            events.append((as_datetime(inc["created_at"]), f"incident {inc['incident_id']} names the principal"))
    alerts = _alerts(ws)
    for ev in _evidence_rows(ws):
        if _evidence_relevant(ws, ev, truth, alerts, principals, ids):
            events.append((as_datetime(ev["added_at"]), f"evidence {ev['evidence_id']} ({ev['kind']}) on "
                                                f"{ev['incident_id']}"))
    for row in ws.dicts("SELECT ts, actor, action, object FROM audit_log WHERE action = 'alert.status' AND "
                        "json_extract_string(details, '$.status') IN ('acknowledged', 'resolved')"):
        alert = alerts.get(str(row["object"]))
        if alert and alert_relevant(alert, truth):
            events.append((as_datetime(row["ts"]), f"alert {row['object']} acknowledged by {row['actor']}"))
    started = as_datetime(c["started_at"]) if c.get("started_at") else None
    events = [(t, why) for t, why in events if started is not None and t >= started]
    if not events:
        return {"seconds": None, "elapsed": None, "via": None, "points": 0.0,
                "max_points": max((p for _, p in scenario.rubric.ttd_bands), default=0.0), "band": None}
    when, via = min(events)
    secs = elapsed_at(c, when)
    pts, band = 0.0, None
    for within, p in scenario.rubric.ttd_bands:
        if secs <= within:
            pts, band = p, f"within {offset_text(within).replace('T+', '')}"
            break
    return {"seconds": round(secs, 1), "elapsed": offset_text(secs), "at": when, "via": via, "points": pts,
            "max_points": max((p for _, p in scenario.rubric.ttd_bands), default=0.0), "band": band}


def _evidence_rows(ws: Workspace) -> list[dict[str, Any]]:
    return ws.dicts("SELECT evidence_id, incident_id, kind, label, ref, added_at, added_by, event_start, "
                    "event_end, content FROM evidence ORDER BY evidence_id")


def _evidence_relevant(ws: Workspace, ev: dict, truth: dict, alerts: dict, principals: set[str],
                       ids: set[str]) -> bool:
    import json

    content = ev.get("content")
    content = json.loads(content) if isinstance(content, str) else (content or {})
    kind = ev["kind"]
    if kind == "alert":
        alert = content if isinstance(content, dict) and content else alerts.get(str(ev.get("ref")), {})
        return alert_relevant(alert, truth)
    if kind == "decision_set":
        rows = ws.rows("SELECT decision_id, lower(principal) FROM evidence_decisions WHERE evidence_id = ?",
                       [ev["evidence_id"]])
        return any(d in ids or p in principals for d, p in rows)
    if kind == "metric_window":
        fake = {"system_id": ev.get("ref"), "window_start": ev.get("event_start"), "window_end": ev.get("event_end")}
        return any(fake["system_id"] == i["system_id"] and fake["window_start"] and _overlaps(fake, i)
                   for i in truth["incidents"].values())
    raw = json.dumps(content, default=str) + " " + str(ev.get("label") or "")
    text = raw.lower()
    if any(p in text for p in principals) or set(_TOKEN.findall(raw)) & ids:
        return True
    if kind == "file":
        return True
    for i in truth["incidents"].values():
        clues = [*i.get("ips", []), i.get("trigger_value"), i.get("sha256")]
        if any(c is not None and str(c).lower() in text for c in clues if str(c)):
            return True
    return False


def _steps(ws: Workspace, scenario: Scenario) -> dict[str, Any]:
    r = scenario.rubric
    where, params = "WHERE done", []
    if r.step_playbooks:
        where += " AND playbook_id IN (SELECT unnest(?))"
        params.append(r.step_playbooks)
    rows = ws.dicts(f"SELECT incident_id, playbook_id, step_id, actor, ts FROM playbook_progress {where} "
                    "ORDER BY ts", params)
    pts = min(r.step_max, r.step_points * len(rows))
    return {"count": len(rows), "points": round(pts, 2), "max_points": r.step_max, "steps": rows,
            "playbooks": sorted({x["playbook_id"] for x in rows})}


def _evidence(ws: Workspace, scenario: Scenario, truth: dict) -> dict[str, Any]:
    r = scenario.rubric
    principals, ids, _ = _injected(truth)
    alerts = _alerts(ws)
    items = []
    for ev in _evidence_rows(ws):
        rel = _evidence_relevant(ws, ev, truth, alerts, principals, ids)
        items.append({"evidence_id": ev["evidence_id"], "incident_id": ev["incident_id"], "kind": ev["kind"],
                      "label": ev["label"], "added_at": ev["added_at"], "added_by": ev["added_by"],
                      "relevant": rel})
    counted = [i for i in items if i["relevant"] or not r.evidence_relevant_only]
    pts = min(r.evidence_max, r.evidence_points * len(counted))
    return {"count": len(items), "relevant": sum(i["relevant"] for i in items), "counted": len(counted),
            "points": round(pts, 2), "max_points": r.evidence_max, "items": items}
