"""Validating the sections of a drill scenario (incidents, injects, questions, scoring) and checking a parsed
scenario against the rest of the workbench (ATLAS catalogue, playbooks).

Each section validator appends what is wrong to `errs` and returns what it could read, so one parse reports
every problem at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench.cases import atlas
from workbench.cases.playbooks import load_playbooks
from workbench.drills.model import (
    DrillIncident,
    Inject,
    Question,
    Rubric,
    Scenario,
    parse_duration,
    parse_offset,
)
from workbench.drills.traces import check_incident
from workbench.errors import WorkbenchError
from workbench.sample.incidents import _check

QUESTION_KINDS = ("principal", "atlas", "feature", "version", "ip", "artifact", "time", "contain", "keywords", "choice",
                  "number")
TRUTH_FIELDS = ("principals", "atlas", "start", "end", "system_id", "type", "decision_count", "ips", "feature",
                "metric", "trigger_feature", "trigger_value", "version", "sha256", "sha256_prefix")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ATLAS_ID = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")
_REF = re.compile(r"^@([a-z0-9][a-z0-9_-]*)\.([a-z0-9_]+)$")


def incidents_section(raw: Any, errs: list[str]) -> list[DrillIncident]:
    """The incidents to inject (at least one), each checked against the sample generator."""
    if not isinstance(raw, list) or not raw:
        errs.append("'incidents' must list at least one incident to inject")
        return []
    out: list[DrillIncident] = []
    for k, item in enumerate(raw, 1):
        if not isinstance(item, dict) or "type" not in item:
            errs.append(f"incident {k} needs at least a 'type'")
            continue
        iid = str(item.get("id", f"incident{k}"))
        if not ID_PATTERN.match(iid) or iid in {i.id for i in out}:
            errs.append(f"incident id {iid!r} must be unique, lower-case letters, digits, '-' or '_'")
        unknown = set(item) - {"id", "type", "system", "system_id", "start", "duration", "principals",
                               "intensity", "seed", "params"}
        if unknown:
            errs.append(f"incident {iid}: unknown keys {sorted(unknown)}")
        principals = item.get("principals")
        if principals is not None and not (isinstance(principals, list) and all(isinstance(p, str)
                                                                               for p in principals)):
            errs.append(f"incident {iid}: principals must be a list of names")
            principals = None
        inc = DrillIncident(id=iid, type=str(item["type"]), system_id=item.get("system") or item.get("system_id"),
                            start=None if item.get("start") is None else str(item["start"]),
                            duration=None if item.get("duration") is None else str(item["duration"]),
                            principals=principals, intensity=float(item.get("intensity", 1.0)),
                            seed=None if item.get("seed") is None else int(item["seed"]),
                            params=dict(item.get("params") or {}))
        if inc.type.startswith("llm_"):  # an LLM trace incident: injected by the trace generator (drills/traces.py)

            errs += [f"incident {iid}: {e}" for e in check_incident(inc)]
            out.append(inc)
            continue

        try:
            _check(inc)
        except WorkbenchError as exc:
            errs.append(f"incident {iid}: {exc}")
        out.append(inc)
    return out


def injects_section(raw: Any, errs: list[str]) -> list[Inject]:
    """The timed injects, numbered in time order; the first must be at T+0."""
    items: list[tuple[Any, str, str]] = []
    if isinstance(raw, dict):  # {"T+10m": "text"}
        items = [(k, str(v), "") for k, v in raw.items()]
    elif isinstance(raw, list):
        for k, item in enumerate(raw, 1):
            if isinstance(item, dict) and "at" in item and "text" in item:
                items.append((item["at"], str(item["text"]), str(item.get("title", ""))))
            elif isinstance(item, dict) and len(item) == 1:
                (at, text), = item.items()
                items.append((at, str(text), ""))
            else:
                errs.append(f"inject {k} needs 'at' (T+10m) and 'text'")
    else:
        errs.append("'injects' must list the timed injects (at: T+10m, text: ...)")
    out: list[Inject] = []
    for at, text, title in items:
        try:
            out.append(Inject(0, parse_offset(at), text.strip(), title))
        except WorkbenchError as exc:
            errs.append(str(exc))
    out.sort(key=lambda i: i.at_s)
    for n, inj in enumerate(out, 1):
        inj.n = n
    if out and out[0].at_s != 0:
        errs.append("the first inject must be at T+0 (what participants are told when the drill starts)")
    return out


def questions_section(raw: Any, incident_ids: set[str], errs: list[str]) -> list[Question]:
    """The questions (at least one), with their kinds, expected answers and @incident references checked."""
    if not isinstance(raw, list) or not raw:
        errs.append("'questions' must list at least one question")
        return []
    out: list[Question] = []
    for k, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            errs.append(f"question {k} must be a mapping")
            continue
        qid = str(item.get("id", f"q{k}"))
        kind = str(item.get("kind", ""))
        where = f"question {qid}"
        if qid in {q.id for q in out}:
            errs.append(f"{where}: duplicate id")
        if kind not in QUESTION_KINDS:
            errs.append(f"{where}: kind must be one of {', '.join(QUESTION_KINDS)}")
            continue
        if not item.get("text"):
            errs.append(f"{where}: 'text' is required")
        try:
            points = float(item.get("points", 10))
        except (TypeError, ValueError):
            errs.append(f"{where}: points must be a number")
            points = 0.0
        q = Question(id=qid, kind=kind, text=str(item.get("text", "")),
                     points=points, expected=item.get("expected"), incident=item.get("incident"),
                     match=str(item.get("match", "any" if kind == "atlas" else "all")),
                     detect=bool(item.get("detect", kind == "principal")), hint=str(item.get("hint", "")))
        if q.match not in ("any", "all"):
            errs.append(f"{where}: match must be 'any' or 'all'")
        try:
            if "tolerance" in item and kind == "time":
                q.tolerance_s = parse_duration(item["tolerance"])
            if "partial_tolerance" in item:
                q.partial_tolerance_s = parse_duration(item["partial_tolerance"])
        except WorkbenchError as exc:
            errs.append(f"{where}: {exc}")
        if kind == "number":
            q.number_tolerance = str(item.get("tolerance", "10%"))
        if kind in ("contain", "keywords"):
            groups = item.get("keywords")
            if not isinstance(groups, list) or not groups:
                errs.append(f"{where}: 'keywords' must list groups of accepted words (one group per point)")
            else:
                q.keywords = [[str(w) for w in (g if isinstance(g, list) else [g])] for g in groups]
        elif q.expected is None and not q.incident:
            errs.append(f"{where}: give 'expected' (or 'incident' to take it from the ground truth)")
        if kind == "choice":
            q.options = [str(o) for o in item.get("options") or []]
            if len(q.options) < 2 or str(q.expected) not in q.options:
                errs.append(f"{where}: a choice needs 'options' and an 'expected' that is one of them")
        if q.incident and q.incident not in incident_ids:
            errs.append(f"{where}: incident {q.incident!r} is not one of {sorted(incident_ids)}")
        for ref in _refs(q):
            m = _REF.match(ref)
            if not m or m.group(1) not in incident_ids or m.group(2) not in TRUTH_FIELDS:
                errs.append(f"{where}: reference {ref!r} must be @<incident id>.<{'|'.join(TRUTH_FIELDS)}>")
        if kind == "atlas":
            for t in _as_list(q.expected):
                if not str(t).startswith("@") and not _ATLAS_ID.match(str(t)):
                    errs.append(f"{where}: {t!r} is not an ATLAS technique id (AML.T0000 or AML.T0000.000)")
        out.append(q)
    return out


def _refs(q: Question) -> list[str]:
    vals = [*_as_list(q.expected), *(w for g in q.keywords for w in g)]
    return [v for v in vals if isinstance(v, str) and v.startswith("@")]


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]


def rubric_section(raw: Any, errs: list[str]) -> Rubric:
    """The scoring rubric: time-to-detect bands and points for playbook steps and evidence."""
    r = Rubric()
    if not isinstance(raw, dict):
        errs.append("'scoring' must be a mapping")
        return r
    try:
        if "time_to_detect" in raw:
            r.ttd_bands = sorted((parse_duration(b["within"]), float(b["points"])) for b in raw["time_to_detect"])
        steps = raw.get("playbook_steps") or {}
        r.step_points = float(steps.get("points_each", r.step_points))
        r.step_max = float(steps.get("max", r.step_max))
        r.step_playbooks = [str(p) for p in steps.get("playbooks") or []]
        ev = raw.get("evidence") or {}
        r.evidence_points = float(ev.get("points_each", r.evidence_points))
        r.evidence_max = float(ev.get("max", r.evidence_max))
        r.evidence_relevant_only = bool(ev.get("relevant_only", True))
    except (KeyError, TypeError, ValueError, WorkbenchError) as exc:
        errs.append(f"scoring: time_to_detect bands need 'within' and 'points'; steps and evidence need numbers "
                    f"({exc})")
    return r


def atlas_ids_known(scenario: Scenario, atlas_yaml: Path | None = None) -> list[str]:
    """ATLAS ids the scenario expects that the catalogue in force (or the given ATLAS.yaml) does not know."""

    wanted = sorted({str(t) for q in scenario.questions if q.kind == "atlas" for t in _as_list(q.expected)
                     if not str(t).startswith("@")})
    return atlas.unknown(wanted, atlas_yaml)


def check_scenario(scenario: Scenario, atlas_yaml: Path | None = None) -> list[str]:
    """Problems found against the rest of the workbench: unknown ATLAS ids and unknown playbooks."""
    problems = [f"unknown ATLAS technique {t}" for t in atlas_ids_known(scenario, atlas_yaml)]

    try:
        known = set(load_playbooks())
    except WorkbenchError:
        return problems
    wanted = {*scenario.playbooks, *scenario.rubric.step_playbooks}
    problems += [f"unknown playbook {p}" for p in sorted(wanted - known)]
    return problems
