"""The parts of a drill scenario (incidents to inject, injects, questions, rubric) and drill-time helpers."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.durations import duration_seconds
from workbench.errors import WorkbenchError
from workbench.sample.incidents import IncidentSpec

_OFFSET = re.compile(r"^T\s*\+\s*(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?\s*(?:(\d+)s)?$", re.IGNORECASE)


DrillIncident = IncidentSpec  # a drill's incident is the generator's spec, named by its `id`


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
    """'30m', '2h', '1h30m', '90s', '1d', ISO 8601 'PT30M' (or a number of seconds) to whole seconds."""
    return duration_seconds(text)


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
