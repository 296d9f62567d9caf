"""Score a drill: answers against the injected ground truth, time to detect, playbook steps, evidence.

Marking rules (documented for facilitators):
- principal / atlas: names found in the answer are compared with the expected set. `match: all` gives
  points x right / expected, `match: any` full points for one right name; each wrong name beside them
  halves that (two wrong names: nothing), so a list of every suspect is not an answer. A wrong name is a
  principal of the workspace (or an ATLAS id) that is not expected; other words do not count against the
  answer. An ATLAS parent technique of an expected sub-technique counts half.
- time: full points within `tolerance` of the expected instant, half within `partial_tolerance`
  (default three times the tolerance).
- contain / keywords: one share of the points per keyword group the answer mentions.
- choice: the expected option (its text, number or letter). number: within tolerance (10% or absolute),
  half within twice the tolerance.
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
from workbench.drills.scenario import Question, Scenario, offset_text
from workbench.drills.session import _clock_state, _dt, elapsed_at
from workbench.drills.workspace import _truth, require_drill, scenario_of
from workbench.errors import WorkbenchError
from workbench.store import Workspace

_ATLAS_RE = re.compile(r"aml\.t\d{4}(?:\.\d{3})?", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]*[A-Za-z0-9]|[A-Za-z0-9]")
_NUMBER = re.compile(r"-?\d[\d,_]*(?:\.\d+)?")
_REF = re.compile(r"^@([a-z0-9][a-z0-9_-]*)\.([a-z0-9_]+)$")
_DEFAULT_FIELD = {"principal": "principals", "atlas": "atlas", "time": "start", "number": "decision_count"}


@dataclass
class Grade:
    """The mark of one answer."""

    points: float
    max_points: float
    verdict: str
    detail: str = ""
    hit: bool = False


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
def resolve(value: Any, truth: dict[str, Any]) -> list[Any]:
    """A literal or an '@incident.field' reference, as a flat list of values."""
    vals = value if isinstance(value, list | tuple) else [value]
    out: list[Any] = []
    for v in vals:
        m = _REF.match(v) if isinstance(v, str) else None
        if m:
            got = truth["incidents"][m.group(1)].get(m.group(2))
            out.extend(got if isinstance(got, list) else [] if got is None else [got])
        elif v is not None:
            out.append(v)
    return out


def expected_values(q: Question, truth: dict[str, Any]) -> list[Any]:
    """What a question expects, with references resolved (default: the incident's matching field)."""
    if q.expected is None and q.incident and q.kind in _DEFAULT_FIELD:
        return resolve(f"@{q.incident}.{_DEFAULT_FIELD[q.kind]}", truth)
    return resolve(q.expected, truth)


def expected_text(q: Question, truth: dict[str, Any]) -> str:
    """The expected answer as a facilitator reads it."""
    if q.kind in ("contain", "keywords"):
        return " AND ".join("(" + " | ".join(str(w) for w in resolve(g, truth)) + ")" for g in q.keywords)
    vals = expected_values(q, truth)
    if q.kind == "time" and vals:
        tol = offset_text(q.tolerance_s).replace("T+", "")
        return f"{_dt(_parse_time(str(vals[0]), truth)).strftime('%Y-%m-%d %H:%M UTC')} (+/- {tol})"
    joiner = " and " if q.match == "all" else " or "
    return joiner.join(str(v) for v in vals)


# -- marking one answer ------------------------------------------------------------------------------------
def grade(q: Question, answer: str | None, truth: dict[str, Any], known_principals: set[str] | None = None
          ) -> Grade:
    """Mark one answer to one question against the ground truth."""
    if answer is None or not str(answer).strip():
        return Grade(0.0, q.points, "unanswered")
    text = str(answer).strip()
    fn = {"principal": _principal, "atlas": _atlas, "time": _time, "contain": _keywords, "keywords": _keywords,
          "choice": _choice, "number": _number}[q.kind]
    share, detail = fn(q, text, truth, known_principals or set())
    share = max(0.0, min(1.0, share))
    verdict = "right" if share >= 0.999 else "partly right" if share > 0 else "wrong"
    return Grade(round(q.points * share, 2), q.points, verdict, detail, hit=share > 0)


def _set_share(q: Question, hits: float, wrong: int, n_expected: int) -> float:
    found = min(1.0, hits) if q.match == "any" else hits / max(1, n_expected)
    return found * max(0.0, 1.0 - 0.5 * wrong)


def _principal(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    expected = {str(v).lower() for v in expected_values(q, truth)}
    tokens = {t.lower() for t in _TOKEN.findall(text)}
    hits = tokens & expected
    wrong = (tokens & {k.lower() for k in known}) - expected
    detail = f"named {sorted(hits) or 'none'} of {sorted(expected)}" + (f"; wrong: {sorted(wrong)}" if wrong else "")
    return _set_share(q, len(hits), len(wrong), len(expected)), detail


def _atlas(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    expected = {str(v).upper() for v in expected_values(q, truth)}
    given = {t.upper() for t in _ATLAS_RE.findall(text)}
    parents = {e.split(".")[0] + "." + e.split(".")[1] for e in expected if e.count(".") == 2}
    hits = len(given & expected) + 0.5 * len((given - expected) & parents)
    wrong = given - expected - parents
    detail = f"gave {sorted(given) or 'no technique id'}; expected {sorted(expected)}"
    return _set_share(q, hits, len(wrong), len(expected)), detail


def _parse_time(text: str, truth: dict) -> datetime:
    from workbench.sample.incidents import parse_start, parse_ts

    t = text.strip().replace(" UTC", "").replace("utc", "")
    if re.match(r"^\d{4}-\d{2}-\d{2} \d", t):
        t = t.replace(" ", "T", 1)
    try:
        us = parse_start(t, parse_ts(truth["sample_start"]))
    except (WorkbenchError, ValueError) as exc:
        raise WorkbenchError(f"cannot read time {text!r}") from exc
    return datetime.fromtimestamp(us / 1e6, UTC)


def _time(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    want = _parse_time(str(expected_values(q, truth)[0]), truth)
    try:
        got = _parse_time(text, truth)
    except WorkbenchError:
        m = re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?|day \d+ \d{1,2}:\d{2}",
                      text, flags=re.IGNORECASE)
        if not m:
            return 0.0, "no time found (use ISO-8601 UTC, e.g. 2026-10-02 09:30, or 'day 1 09:30')"
        got = _parse_time(m.group(0), truth)
    off = abs((got - want).total_seconds())
    partial = q.partial_tolerance_s if q.partial_tolerance_s is not None else 3 * q.tolerance_s
    share = 1.0 if off <= q.tolerance_s else 0.5 if off <= partial else 0.0
    return share, f"{offset_text(off).replace('T+', '')} from the true start"


def _keywords(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    low = text.lower()
    met = []
    for group in q.keywords:
        words = [str(w).lower() for w in resolve(group, truth)]
        met.append(any(w and w in low for w in words))
    return sum(met) / max(1, len(met)), f"{sum(met)} of {len(met)} points covered"


def _choice(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    t = text.strip().lower().rstrip(".)")
    want = str(expected_values(q, truth)[0])
    idx = q.options.index(want)
    ok = t in (want.lower(), str(idx + 1), "abcdefghij"[idx])
    return (1.0 if ok else 0.0), f"chose {text!r}"


def _number(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    m = _NUMBER.search(text)
    if not m:
        return 0.0, "no number found"
    got = float(m.group(0).replace(",", "").replace("_", ""))
    want = float(expected_values(q, truth)[0])
    tol = q.number_tolerance.strip()
    limit = abs(want) * float(tol[:-1]) / 100 if tol.endswith("%") else float(tol)
    off = abs(got - want)
    share = 1.0 if off <= limit else 0.5 if off <= 2 * limit else 0.0
    return share, f"{got:g} against {want:g}"


# -- the whole drill ---------------------------------------------------------------------------------------
def score(ws: Workspace, actor: Actor, scenario: Scenario | None = None, now: datetime | None = None) -> DrillScore:
    """Score the drill so far (facilitators; the score reveals the expected answers)."""
    require(actor, "facilitate:drills")
    require_drill(ws)
    scenario = scenario or scenario_of(ws)
    truth = _truth(ws)
    c = _clock_state(ws)
    known = {r[0] for r in ws.rows("SELECT DISTINCT principal FROM decisions")}
    answers = ws.dicts("SELECT * FROM drill_answers ORDER BY answer_id")
    latest: dict[str, dict] = {}
    for a in answers:
        latest[a["question_id"]] = a
    questions = []
    for q in scenario.questions:
        a = latest.get(q.id)
        g = grade(q, a["answer"] if a else None, truth, known)
        questions.append({
            "id": q.id, "kind": q.kind, "text": q.text, "expected": expected_text(q, truth),
            "answer": a["answer"] if a else None, "participant": a["participant"] if a else None,
            "answered_at": a["answered_at"] if a else None,
            "elapsed_s": elapsed_at(c, a["answered_at"]) if a else None,
            "points": g.points, "max_points": g.max_points, "verdict": g.verdict, "detail": g.detail,
            "attempts": sum(1 for x in answers if x["question_id"] == q.id)})
    ttd = time_to_detect(ws, scenario, truth, answers, known)
    steps = _steps(ws, scenario)
    evidence = _evidence(ws, scenario, truth)
    total = sum(q["points"] for q in questions) + ttd["points"] + steps["points"] + evidence["points"]
    best = scenario.max_points()
    return DrillScore(scenario.id, scenario.title, round(total, 2), round(best, 2),
                      round(100 * total / best, 1) if best else 0.0, questions, ttd, steps, evidence,
                      _participants(scenario, truth, answers, known), now or datetime.now(UTC))


def _participants(scenario: Scenario, truth: dict, answers: list[dict], known: set[str]) -> list[dict[str, Any]]:
    """Each participant's own latest answers, marked (for the debrief, not the team score)."""
    people: dict[str, dict[str, dict]] = {}
    for a in answers:
        people.setdefault(a["participant"], {})[a["question_id"]] = a
    out = []
    for name, mine in sorted(people.items()):
        pts = sum(grade(q, mine[q.id]["answer"], truth, known).points for q in scenario.questions if q.id in mine)
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
        a0, a1 = _dt(alert.get("window_start")), _dt(alert.get("window_end") or alert.get("window_start"))
    except (TypeError, ValueError):
        return False
    return a0 <= _dt(inc["end"]) and a1 >= _dt(inc["start"])


def _alerts(ws: Workspace) -> dict[str, dict[str, Any]]:
    if not ws.table_exists("alerts"):
        return {}
    try:
        from workbench.detect.alerts import fetch
    except ImportError:
        return {r["alert_id"]: r for r in ws.dicts("SELECT * FROM alerts")}
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
            events.append((_dt(a["answered_at"]), f"answer to {q.id} by {a['participant']}"))
    for inc in ws.dicts("SELECT incident_id, title, description, created_at FROM incidents"):
        text = f"{inc['title']} {inc['description']}".lower()
        if any(p in text for p in principals):
            events.append((_dt(inc["created_at"]), f"incident {inc['incident_id']} names the principal"))
    alerts = _alerts(ws)
    for ev in _evidence_rows(ws):
        if _evidence_relevant(ws, ev, truth, alerts, principals, ids):
            events.append((_dt(ev["added_at"]), f"evidence {ev['evidence_id']} ({ev['kind']}) on "
                                                f"{ev['incident_id']}"))
    for row in ws.dicts("SELECT ts, actor, action, object FROM audit_log WHERE action = 'alert.status' AND "
                        "json_extract_string(details, '$.status') IN ('acknowledged', 'resolved')"):
        alert = alerts.get(str(row["object"]))
        if alert and alert_relevant(alert, truth):
            events.append((_dt(row["ts"]), f"alert {row['object']} acknowledged by {row['actor']}"))
    started = _dt(c["started_at"])
    events = [(t, why) for t, why in events if t >= started]
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
