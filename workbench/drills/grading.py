"""Mark one drill answer against the ground truth (the marking rules below are documented in docs/drills.md).

- entity questions (principal, atlas, feature, version, ip, artifact): the answer is the entity asked for, one or
  several separated by commas, semicolons, new lines or "and". Each item is normalised (case, surrounding quotes,
  brackets and spaces; a version's leading "v"; an artifact may be a SHA-256 prefix of 12+ characters) and must
  equal an expected value exactly: free text around a name makes the item wrong, so loosely matching text gets
  nothing. `match: all` gives points x right / expected, `match: any` full points for one right item; each wrong
  item halves that (two wrong: nothing), so a list of every suspect is not an answer. An ATLAS parent technique of
  an expected sub-technique counts half.
- time: full points within `tolerance` of the expected instant, half within `partial_tolerance`
  (default three times the tolerance).
- contain / keywords: free text, marked by the facilitator (``session.mark_answer``); the keyword groups the
  answer mentions only suggest a mark. Until marked, the answer scores nothing.
- choice: the expected option (its text, number or letter). number: within tolerance (10% or absolute),
  half within twice the tolerance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workbench.drills.scenario import Question, offset_text
from workbench.errors import WorkbenchError
from workbench.sample.incidents import parse_start
from workbench.timestamps import from_epoch_us, human_utc, us_from_iso

_ATLAS_ID = re.compile(r"^AML\.T\d{4}(?:\.\d{3})?$")
_SPLIT = re.compile(r"[,;\n]|\s+and\s+", re.IGNORECASE)
_STRIP = " \t\"'`()[]{}<>.:"
ENTITY_KINDS = ("principal", "atlas", "feature", "version", "ip", "artifact")
JUDGED_KINDS = ("contain", "keywords")
_NUMBER = re.compile(r"-?\d[\d,_]*(?:\.\d+)?")
_REF = re.compile(r"^@([a-z0-9][a-z0-9_-]*)\.([a-z0-9_]+)$")
_DEFAULT_FIELD = {"principal": "principals", "atlas": "atlas", "time": "start", "number": "decision_count",
                  "feature": "feature", "version": "version", "ip": "ips", "artifact": "sha256"}
MARKS_KEY = "drill_marks"


@dataclass
class Grade:
    """The mark of one answer."""

    points: float
    max_points: float
    verdict: str
    detail: str = ""
    hit: bool = False


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
        return f"{human_utc(_parse_time(str(vals[0]), truth))} (+/- {tol})"
    joiner = " and " if q.match == "all" else " or "
    return joiner.join(str(v) for v in vals)


# -- marking one answer ------------------------------------------------------------------------------------
def items(text: str, kind: str = "principal") -> list[str]:
    """The entities an answer names: split on commas, semicolons, new lines and 'and', each normalised."""
    out = []
    for raw in _SPLIT.split(str(text)):
        item = " ".join(raw.split()).strip(_STRIP)
        if not item:
            continue
        item = item.upper() if kind == "atlas" else item.lower()
        if kind == "version" and re.fullmatch(r"v\d.*", item):
            item = item[1:]
        out.append(item)
    return out


def grade(q: Question, answer: str | None, truth: dict[str, Any], known_principals: set[str] | None = None,
          mark: dict[str, Any] | None = None) -> Grade:
    """Mark one answer to one question against the ground truth (free-text kinds: the facilitator's mark)."""
    if answer is None or not str(answer).strip():
        return Grade(0.0, q.points, "unanswered")
    text = str(answer).strip()
    if q.kind in JUDGED_KINDS:
        share, detail = _keywords(q, text, truth, known_principals or set())
        hint = f"keywords suggest {round(q.points * share, 2):g} of {q.points:g} ({detail})"
        if mark is None:
            return Grade(0.0, q.points, "awaiting mark", f"free text, marked by the facilitator; {hint}")
        pts = max(0.0, min(q.points, float(mark["points"])))
        verdict = "right" if pts >= q.points else "partly right" if pts > 0 else "wrong"
        return Grade(pts, q.points, verdict, f"marked {pts:g} by {mark['by']}" + (
            f": {mark['note']}" if mark.get("note") else "") + f"; {hint}", hit=pts > 0)
    fn = {"principal": _principal, "atlas": _atlas, "time": _time, "choice": _choice, "number": _number,
          "feature": _entity, "version": _entity, "ip": _entity, "artifact": _entity}[q.kind]
    share, detail = fn(q, text, truth, known_principals or set())
    share = max(0.0, min(1.0, share))
    verdict = "right" if share >= 0.999 else "partly right" if share > 0 else "wrong"
    return Grade(round(q.points * share, 2), q.points, verdict, detail, hit=share > 0)


def _set_share(q: Question, hits: float, wrong: int, n_expected: int) -> float:
    found = min(1.0, hits) if q.match == "any" else hits / max(1, n_expected)
    return found * max(0.0, 1.0 - 0.5 * wrong)


def _entity(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    """Exact entities (after normalisation) against the expected set; anything else named counts as wrong."""
    expected = {items(str(v), q.kind)[0] for v in expected_values(q, truth) if items(str(v), q.kind)}
    given = set(items(text, q.kind))
    if q.kind == "artifact":  # a SHA-256 or a prefix of at least 12 hex characters
        full = {g: next((e for e in expected if len(g) >= 12 and e.startswith(g)), g) for g in given}
        given = set(full.values())
    hits = given & expected
    wrong = given - expected
    detail = f"named {sorted(hits) or 'none'} of {len(expected)} expected" + (
        f"; not expected: {sorted(wrong)}" if wrong else "")
    return _set_share(q, len(hits), len(wrong), len(expected)), detail


def _principal(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    return _entity(q, text, truth, known)


def _atlas(q: Question, text: str, truth: dict, known: set[str]) -> tuple[float, str]:
    expected = {str(v).upper() for v in expected_values(q, truth)}
    given = set(items(text, "atlas"))
    parents = {e.split(".")[0] + "." + e.split(".")[1] for e in expected if e.count(".") == 2}
    hits = len(given & expected) + 0.5 * len((given - expected) & parents)
    wrong = given - expected - parents
    bad = sorted(g for g in wrong if not _ATLAS_ID.match(g))
    detail = f"gave {sorted(given & (expected | parents)) or 'no expected technique id'}; expected {sorted(expected)}"
    return _set_share(q, hits, len(wrong), len(expected)), detail + (f"; not a technique id: {bad}" if bad else "")


def _parse_time(text: str, truth: dict) -> datetime:
    t = text.strip().replace(" UTC", "").replace("utc", "")
    if re.match(r"^\d{4}-\d{2}-\d{2} \d", t):
        t = t.replace(" ", "T", 1)
    try:
        us = parse_start(t, us_from_iso(truth["sample_start"]))
    except (WorkbenchError, ValueError) as exc:
        raise WorkbenchError(f"cannot read time {text!r}") from exc
    return from_epoch_us(us)


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
