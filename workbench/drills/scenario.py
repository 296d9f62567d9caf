"""Drill scenarios: markdown files with YAML front matter (story, incidents to inject, injects, questions, rubric).

A value written "@<incident id>.<field>" in a question is taken from the ground truth of the injected incident
once the drill is built (fields: principals, atlas, start, end, system_id, type, decision_count, ips, feature,
metric, trigger_feature, trigger_value, version, sha256, sha256_prefix), so a scenario can leave the generator
to pick a principal.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench import settings
from workbench.errors import WorkbenchError

QUESTION_KINDS = ("principal", "atlas", "time", "contain", "keywords", "choice", "number")
TRUTH_FIELDS = ("principals", "atlas", "start", "end", "system_id", "type", "decision_count", "ips", "feature",
                "metric", "trigger_feature", "trigger_value", "version", "sha256", "sha256_prefix")
_OFFSET = re.compile(r"^T\s*\+\s*(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?\s*(?:(\d+)s)?$", re.IGNORECASE)
_DUR = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)")
_ATLAS_ID = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_REF = re.compile(r"^@([a-z0-9][a-z0-9_-]*)\.([a-z0-9_]+)$")


@dataclass
class DrillIncident:
    """One incident the drill injects through the sample generator."""

    id: str
    type: str
    system_id: str | None = None
    start: str | None = None
    duration: str | None = None
    principals: list[str] | None = None
    intensity: float = 1.0
    seed: int | None = None
    params: dict = field(default_factory=dict)

    def spec(self) -> Any:
        """The generator's IncidentSpec for this incident."""
        from workbench.sample import IncidentSpec

        return IncidentSpec(type=self.type, system_id=self.system_id, start=self.start, duration=self.duration,
                            principals=list(self.principals) if self.principals else None,
                            intensity=self.intensity, seed=self.seed, params=dict(self.params))


@dataclass
class Inject:
    """What participants are told at a moment of the drill (seconds after the clock starts)."""

    n: int
    at_s: int
    text: str
    title: str = ""

    @property
    def at(self) -> str:
        """The offset written as T+XhYm."""
        return offset_text(self.at_s)


@dataclass
class Question:
    """A question participants answer, its expected answer and how it is marked."""

    id: str
    kind: str
    text: str
    points: float
    expected: Any = None
    incident: str | None = None
    match: str = "all"
    tolerance_s: int = 1800
    partial_tolerance_s: int | None = None
    keywords: list[list[str]] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    detect: bool = False
    hint: str = ""
    number_tolerance: str = "10%"

    def public(self) -> dict[str, Any]:
        """What participants may see of the question (never the expected answer)."""
        return {"id": self.id, "kind": self.kind, "text": self.text, "points": self.points,
                "options": list(self.options), "hint": self.hint}


@dataclass
class Rubric:
    """How a drill is scored beyond the questions."""

    ttd_bands: list[tuple[int, float]] = field(default_factory=lambda: [(900, 20.0), (1800, 10.0), (3600, 5.0)])
    step_points: float = 1.0
    step_max: float = 10.0
    step_playbooks: list[str] = field(default_factory=list)
    evidence_points: float = 2.0
    evidence_max: float = 10.0
    evidence_relevant_only: bool = True

    def max_points(self) -> float:
        """The most points the rubric itself can give."""
        return max((p for _, p in self.ttd_bands), default=0.0) + self.step_max + self.evidence_max


@dataclass
class Scenario:
    """A parsed, validated drill scenario."""

    id: str
    title: str
    version: str
    summary: str
    story: str
    systems: list[str]
    seed: int
    days: int
    decisions_per_day: int
    incidents: list[DrillIncident]
    injects: list[Inject]
    questions: list[Question]
    rubric: Rubric
    release: str = "timed"
    t0: str | None = None
    difficulty: str = "intermediate"
    duration_minutes: int = 60
    playbooks: list[str] = field(default_factory=list)
    body: str = ""
    path: str | None = None
    sha256: str = ""
    text: str = ""

    def question(self, qid: str) -> Question:
        """A question by id, or a clear error listing the ids."""
        for q in self.questions:
            if q.id == qid:
                return q
        raise WorkbenchError(f"no question {qid!r} in drill {self.id}; questions: "
                             f"{', '.join(q.id for q in self.questions)}")

    def max_points(self) -> float:
        """Questions plus rubric: the best possible score."""
        return sum(q.points for q in self.questions) + self.rubric.max_points()

    def public(self) -> dict[str, Any]:
        """What participants may see: story, systems, questions without answers."""
        return {"id": self.id, "title": self.title, "summary": self.summary, "story": self.story,
                "systems": self.systems, "difficulty": self.difficulty, "duration_minutes": self.duration_minutes,
                "questions": [q.public() for q in self.questions], "release": self.release,
                "injects": len(self.injects)}

    def as_dict(self) -> dict[str, Any]:
        """Everything, for the facilitator's key and --json."""
        d = asdict(self)
        d.pop("text", None)
        return d


# -- small parsers -----------------------------------------------------------------------------------------
def parse_duration(text: Any) -> int:
    """'30m', '2h', '1h30m', '90s', '1d' (or a number of seconds) to whole seconds."""
    if isinstance(text, int | float):
        return int(text)
    t = str(text).strip().lower()
    parts = _DUR.findall(t)
    if not parts or _DUR.sub("", t).strip():
        raise WorkbenchError(f"cannot read duration {text!r}: use forms like '30m', '2h', '1h30m'")
    units = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}
    return int(sum(float(v) * units[u] for v, u in parts))


def parse_offset(text: Any) -> int:
    """'T+10m', 'T+1h5m', 'T+0' to seconds after the drill clock starts."""
    t = str(text).strip()
    if re.fullmatch(r"T\s*\+?\s*0*", t, flags=re.IGNORECASE):
        return 0
    m = _OFFSET.match(t)
    if not m or not any(m.groups()):
        raise WorkbenchError(f"cannot read inject time {text!r}: use T+10m, T+1h or T+1h30m")
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def offset_text(seconds: float) -> str:
    """Seconds to 'T+1h05m' / 'T-26h00m' (negative before the clock started)."""
    sign = "-" if seconds < 0 else "+"
    s = int(round(abs(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"T{sign}{h}h{m:02d}m"
    return f"T{sign}{m}m" + (f"{sec:02d}s" if sec else "")


def split_front_matter(text: str, where: str) -> tuple[dict, str]:
    """The YAML front matter (a mapping) and the markdown body of a scenario file."""
    if not text.startswith("---"):
        raise WorkbenchError(f"{where}: a drill scenario starts with YAML front matter between '---' lines")
    parts = re.split(r"^---\s*$", text, maxsplit=2, flags=re.MULTILINE)
    if len(parts) < 3:
        raise WorkbenchError(f"{where}: front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{where}: front matter is not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(meta, dict):
        raise WorkbenchError(f"{where}: front matter must be a mapping")
    return meta, parts[2].strip()


# -- the scenario ------------------------------------------------------------------------------------------
def scenarios_dir() -> Path:
    """Where the shipped drill scenarios live (playbooks/drills/)."""
    return settings.playbooks_dir() / "drills"


def list_scenarios(directory: Path | None = None) -> list[Scenario]:
    """Every scenario in a directory (default: the shipped ones), sorted by id."""
    directory = Path(directory) if directory else scenarios_dir()
    return sorted((load_scenario(p) for p in sorted(directory.glob("*.md"))), key=lambda s: s.id)


def find_scenario(name: str | Path, directory: Path | None = None) -> Path:
    """A scenario file from a path, or an id / file stem among the shipped scenarios."""
    p = Path(name)
    if p.is_file():
        return p
    directory = Path(directory) if directory else scenarios_dir()
    for cand in (directory / f"{name}.md", directory / str(name)):
        if cand.is_file():
            return cand
    for path in sorted(directory.glob("*.md")):
        try:
            meta, _ = split_front_matter(path.read_text(encoding="utf-8"), str(path))
        except WorkbenchError:
            continue
        if meta.get("id") == str(name):
            return path
    known = ", ".join(sorted(p.stem for p in directory.glob("*.md"))) or "none"
    raise WorkbenchError(f"no drill scenario {name!r}: give a file path or one of: {known}")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"cannot read drill scenario {path}: {exc.strerror or exc}") from exc
    return parse_scenario(text, str(path))


def parse_scenario(text: str, where: str = "<scenario>") -> Scenario:
    """Parse and validate scenario text; every problem is reported with the file and the field."""
    meta, body = split_front_matter(text, where)
    errs: list[str] = []

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in meta:
            errs.append(f"'{key}' is required")
            return None
        if not isinstance(meta[key], kind):
            errs.append(f"'{key}' has the wrong type")
            return None
        return meta[key]

    sid = need("id", str) or ""
    if sid and not _ID.match(sid):
        errs.append(f"id {sid!r} must be lower-case letters, digits, '-' or '_'")
    title = need("title", str) or ""
    story = need("story", str) or ""
    sample = meta.get("sample") or {}
    if not isinstance(sample, dict):
        errs.append("'sample' must be a mapping (seed, days, decisions_per_day)")
        sample = {}
    incidents = _incidents(meta.get("incidents"), errs)
    ids = {i.id for i in incidents}
    injects = _injects(meta.get("injects"), errs)
    questions = _questions(meta.get("questions"), ids, errs)
    rubric = _rubric(meta.get("scoring") or {}, errs)
    release = str(meta.get("release", "timed"))
    if release not in ("timed", "manual"):
        errs.append("'release' must be 'timed' or 'manual'")
    systems = meta.get("systems") or sorted({i.system_id for i in incidents if i.system_id})
    if not isinstance(systems, list):
        errs.append("'systems' must be a list")
        systems = []
    try:
        days = int(sample.get("days", 4))
        per_day = int(sample.get("decisions_per_day", 3000))
        seed = int(sample.get("seed", meta.get("seed", 1)))
    except (TypeError, ValueError):
        errs.append("sample seed, days and decisions_per_day must be integers")
        days, per_day, seed = 4, 3000, 1
    if not 2 <= days <= 31:
        errs.append("sample days must be between 2 and 31")
    if not 200 <= per_day <= 200_000:
        errs.append("sample decisions_per_day must be between 200 and 200000")
    if errs:
        raise WorkbenchError(f"{where}: " + "; ".join(errs))
    return Scenario(
        id=sid, title=title, version=str(meta.get("version", "1")), summary=str(meta.get("summary", "")),
        story=story.strip(), systems=[str(s) for s in systems], seed=seed, days=days, decisions_per_day=per_day,
        incidents=incidents, injects=injects, questions=questions, rubric=rubric, release=release,
        t0=str(meta["clock"]["t0"]) if isinstance(meta.get("clock"), dict) and meta["clock"].get("t0") else None,
        difficulty=str(meta.get("difficulty", "intermediate")),
        duration_minutes=int(meta.get("duration_minutes", 60)),
        playbooks=[str(p) for p in meta.get("playbooks") or []], body=body, path=where,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), text=text,
    )


def _incidents(raw: Any, errs: list[str]) -> list[DrillIncident]:
    if not isinstance(raw, list) or not raw:
        errs.append("'incidents' must list at least one incident to inject")
        return []
    out: list[DrillIncident] = []
    for k, item in enumerate(raw, 1):
        if not isinstance(item, dict) or "type" not in item:
            errs.append(f"incident {k} needs at least a 'type'")
            continue
        iid = str(item.get("id", f"incident{k}"))
        if not _ID.match(iid) or iid in {i.id for i in out}:
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
        try:
            from workbench.sample.incidents import _check

            _check(inc.spec())
        except ImportError:  # the generator is optional while it is being built
            pass
        except WorkbenchError as exc:
            errs.append(f"incident {iid}: {exc}")
        out.append(inc)
    return out


def _injects(raw: Any, errs: list[str]) -> list[Inject]:
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


def _questions(raw: Any, incident_ids: set[str], errs: list[str]) -> list[Question]:
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


def _rubric(raw: Any, errs: list[str]) -> Rubric:
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
    from workbench.cases import atlas

    wanted = sorted({str(t) for q in scenario.questions if q.kind == "atlas" for t in _as_list(q.expected)
                     if not str(t).startswith("@")})
    return atlas.unknown(wanted, atlas_yaml)


def check_scenario(scenario: Scenario, atlas_yaml: Path | None = None) -> list[str]:
    """Problems found against the rest of the workbench: unknown ATLAS ids and unknown playbooks."""
    problems = [f"unknown ATLAS technique {t}" for t in atlas_ids_known(scenario, atlas_yaml)]
    try:
        from workbench.cases.playbooks import load_playbooks

        known = set(load_playbooks())
    except (ImportError, WorkbenchError):
        return problems
    wanted = {*scenario.playbooks, *scenario.rubric.step_playbooks}
    problems += [f"unknown playbook {p}" for p in sorted(wanted - known)]
    return problems
