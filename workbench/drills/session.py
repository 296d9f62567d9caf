"""A running drill: the inject clock (start, pause, resume), releasing injects, and participants' answers.

Drill time ("T+12m") is wall-clock time since the clock started, minus any pauses. Building a drill workspace
does not start the clock: the facilitator starts it (``start_clock``) when the session starts; until then no inject
is out and no answer is taken. Injects are released by
the clock (scenario `release: timed`, when their T+ offset is reached) or by the facilitator (always
possible, and the only way in `release: manual`); the T+0 inject is out as soon as the clock starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.drills.grading import JUDGED_KINDS, MARKS_KEY
from workbench.drills.scenario import offset_text
from workbench.drills.workspace import CLOCK_KEY, _meta_value, _set_meta, require_drill, scenario_of
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import as_datetime

MAX_ANSWER = 2000


def _now() -> datetime:
    return datetime.now(UTC)


# -- the clock -----------------------------------------------------------------------------------------------
def clock(ws: Workspace, now: datetime | None = None) -> dict[str, Any]:
    """The inject clock: started_at, paused or running, elapsed seconds of drill time."""
    require_drill(ws)
    c = _meta_value(ws, CLOCK_KEY) or {}
    if not c.get("started_at"):
        return {"started": False, "started_at": None, "paused": False, "elapsed_s": 0.0, "elapsed": "not started",
                "pauses": []}
    now = now or _now()
    started = as_datetime(c["started_at"])
    pauses = c.get("pauses") or []
    paused = bool(pauses) and pauses[-1][1] is None
    elapsed = elapsed_at(c, now)
    return {"started": True, "started_at": started, "paused": paused, "elapsed_s": elapsed,
            "elapsed": offset_text(elapsed), "pauses": pauses}


def elapsed_at(c: dict[str, Any], when: datetime) -> float:
    """Drill seconds elapsed at a wall-clock instant (pauses do not count; negative before the start; 0 while the
    clock has not been started)."""
    if not c.get("started_at"):
        return 0.0
    started = as_datetime(c["started_at"])
    when = as_datetime(when)
    total = (when - started).total_seconds()
    for a, b in c.get("pauses") or []:
        lo = max(as_datetime(a), started)
        hi = min(as_datetime(b) if b else when, when)
        if hi > lo:
            total -= (hi - lo).total_seconds()
    return total


def _clock_state(ws: Workspace) -> dict[str, Any]:
    return _meta_value(ws, CLOCK_KEY) or {}


def started(ws: Workspace) -> bool:
    """Whether the facilitator has started the drill's clock."""
    return bool(_clock_state(ws).get("started_at"))


def _require_started(ws: Workspace, what: str) -> None:
    if not started(ws):
        raise WorkbenchError(f"the drill has not started: {what} once the facilitator starts the clock "
                             "(`workbench drill clock start` or the facilitator page)")


def start_clock(ws: Workspace, actor: Actor, at: datetime | None = None) -> dict[str, Any]:
    """(Re)start the inject clock now or at a given instant (when participants actually sat down)."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    started = as_datetime(at) if at else _now()
    with ws.transaction():
        _set_meta(ws, CLOCK_KEY, {"started_at": started.isoformat(), "pauses": []})
        audit.record(ws, actor, "drill.clock.start", None, {"started_at": started.isoformat()})
    return clock(ws)


def pause_clock(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """Stop drill time (a break); timed injects wait."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    _require_started(ws, "pause")
    c = _clock_state(ws)
    pauses = c.get("pauses") or []
    if pauses and pauses[-1][1] is None:
        raise WorkbenchError("the drill clock is already paused")
    now = _now()
    c["pauses"] = [*pauses, [now.isoformat(), None]]
    with ws.transaction():
        _set_meta(ws, CLOCK_KEY, c)
        audit.record(ws, actor, "drill.clock.pause", None, {"at": now.isoformat()})
    return clock(ws)


def resume_clock(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """Let drill time run again after a pause."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    c = _clock_state(ws)
    pauses = c.get("pauses") or []
    if not pauses or pauses[-1][1] is not None:
        raise WorkbenchError("the drill clock is not paused")
    now = _now()
    pauses[-1][1] = now.isoformat()
    with ws.transaction():
        _set_meta(ws, CLOCK_KEY, c)
        audit.record(ws, actor, "drill.clock.resume", None, {"at": now.isoformat()})
    return clock(ws)


def wall_time(c: dict[str, Any], offset_s: float) -> datetime:
    """The wall-clock instant at which drill time reaches offset_s (pauses so far included)."""
    t = as_datetime(c["started_at"]) + timedelta(seconds=offset_s)
    for a, b in c.get("pauses") or []:
        a_dt = as_datetime(a)
        if a_dt <= t:
            t += ((as_datetime(b) if b else _now()) - a_dt)
    return t


# -- injects -----------------------------------------------------------------------------------------------
def injects(ws: Workspace, actor: Actor, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every inject with its state: due by the clock, released (by whom, when), visible to participants."""
    require(actor, "facilitate:drills", ws)
    return _injects(ws, now)


def _injects(ws: Workspace, now: datetime | None = None) -> list[dict[str, Any]]:
    scenario = scenario_of(ws)
    c = _clock_state(ws)
    now = now or _now()
    elapsed = elapsed_at(c, now) if c.get("started_at") else float("-inf")
    manual = {r[0]: (r[1], r[2]) for r in ws.rows("SELECT inject_no, released_at, released_by FROM drill_releases")}
    out = []
    for inj in scenario.injects:
        due = elapsed >= inj.at_s
        timed = (scenario.release == "timed" or inj.at_s == 0) and due
        released_at, by = manual.get(inj.n, (None, None))
        if timed and c.get("started_at") and (released_at is None
                                                or wall_time(c, inj.at_s) < as_datetime(released_at)):
            released_at, by = wall_time(c, inj.at_s), "clock"
        out.append({"n": inj.n, "at": inj.at, "at_s": inj.at_s, "title": inj.title, "text": inj.text,
                    "due": due, "released": released_at is not None, "released_at": released_at,
                    "released_by": by,
                    "released_elapsed_s": None if released_at is None else elapsed_at(c, released_at)})
    if not c.get("started_at"):  # nothing is out before the session starts
        for i in out:
            i.update(due=False, released=False, released_at=None, released_by=None, released_elapsed_s=None)
    return out


def current_injects(ws: Workspace, actor: Actor, now: datetime | None = None) -> list[dict[str, Any]]:
    """What participants have been told so far, oldest first."""
    require(actor, "run:drills", ws)
    require_drill(ws)
    return [{k: i[k] for k in ("n", "at", "title", "text", "released_at")}
            for i in _injects(ws, now) if i["released"]]


def release_inject(ws: Workspace, actor: Actor, n: int) -> dict[str, Any]:
    """Release inject number n to participants now (facilitator); releasing it again changes nothing."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    _require_started(ws, "release injects")
    scenario = scenario_of(ws)
    if not 1 <= int(n) <= len(scenario.injects):
        raise WorkbenchError(f"no inject {n}: this drill has injects 1..{len(scenario.injects)}")
    state = next(i for i in _injects(ws) if i["n"] == int(n))
    if state["released"]:
        return state | {"already": True}
    now = _now()
    with ws.transaction():
        ws.execute("INSERT INTO drill_releases VALUES (?, ?, ?)", [int(n), now, actor.user])
        audit.record(ws, actor, "drill.inject.release", f"inject {n}", {"at": state["at"], "released_at": now})
    return next(i for i in _injects(ws) if i["n"] == int(n)) | {"already": False}


# -- answers -----------------------------------------------------------------------------------------------
def answer(ws: Workspace, actor: Actor, question_id: str, text: str, participant: str | None = None,
           at: datetime | None = None) -> dict[str, Any]:
    """Record a participant's answer; the latest answer per question is scored. `at` is for facilitators
    transcribing answers given on paper (recorded as such in the audit chain)."""
    require(actor, "run:drills", ws)
    require_drill(ws)
    scenario = scenario_of(ws)
    q = scenario.question(question_id)
    _require_started(ws, "answers are taken")
    text = (text or "").strip()
    if not text:
        raise WorkbenchError("an answer cannot be empty")
    if len(text) > MAX_ANSWER:
        raise WorkbenchError(f"an answer is at most {MAX_ANSWER} characters")
    who = (participant or actor.user).strip()
    if who != actor.user or at is not None:
        require(actor, "facilitate:drills", ws)  # answering for someone else, or backdating, is the facilitator's
    when = as_datetime(at) if at else _now()
    with ws.transaction():
        aid = int(ws.scalar("SELECT nextval('drill_answer_seq')"))
        ws.execute("INSERT INTO drill_answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [aid, q.id, who, text, when, actor.user, actor.role])
        audit.record(ws, actor, "drill.answer", q.id, {"answer_id": aid, "participant": who, "answer": text,
                                                        "answered_at": when, "transcribed": at is not None})
    elapsed = elapsed_at(_clock_state(ws), when)
    return {"answer_id": aid, "question_id": q.id, "participant": who, "answer": text, "answered_at": when,
            "elapsed_s": elapsed, "elapsed": offset_text(elapsed)}


def my_answers(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """The acting participant's own answers (never marked: marks are for the facilitator)."""
    require(actor, "run:drills", ws)
    require_drill(ws)
    return ws.dicts("SELECT answer_id, question_id, answer, answered_at FROM drill_answers "
                    "WHERE participant = ? ORDER BY answer_id", [actor.user])


def all_answers(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """Every answer so far with drill time, oldest first (facilitator)."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    c = _clock_state(ws)
    rows = ws.dicts("SELECT * FROM drill_answers ORDER BY answer_id")
    for r in rows:
        r["elapsed_s"] = elapsed_at(c, r["answered_at"])
        r["elapsed"] = offset_text(r["elapsed_s"])
    return rows


def mark_answer(ws: Workspace, actor: Actor, question_id: str, points: float, note: str = "") -> dict[str, Any]:
    """The facilitator's mark for the latest answer to a free-text question (contain, keywords); audited."""

    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    q = scenario_of(ws).question(question_id)
    if q.kind not in JUDGED_KINDS:
        raise WorkbenchError(f"{q.id} is a {q.kind} question, marked against the ground truth; only free-text "
                             f"questions ({', '.join(JUDGED_KINDS)}) are marked by hand")
    if not 0 <= float(points) <= q.points:
        raise WorkbenchError(f"a mark for {q.id} is between 0 and {q.points:g} points")
    row = ws.one("SELECT answer_id, participant FROM drill_answers WHERE question_id = ? ORDER BY answer_id DESC "
                 "LIMIT 1", [q.id])
    if row is None:
        raise WorkbenchError(f"no answer to {q.id} yet")
    marks = _meta_value(ws, MARKS_KEY) or {}
    mark = {"points": float(points), "note": (note or "").strip()[:MAX_ANSWER], "by": actor.user,
            "at": _now().isoformat(), "question_id": q.id}
    marks[str(row[0])] = mark
    with ws.transaction():
        _set_meta(ws, MARKS_KEY, marks)
        audit.record(ws, actor, "drill.mark", q.id, {"answer_id": int(row[0]), "participant": row[1], **mark})
    return {"answer_id": int(row[0]), "participant": row[1], **mark}
