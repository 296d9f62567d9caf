"""The playbook file format: YAML front matter and a markdown body of phases with ``- [ ]`` steps.

Front matter (between the first two ``---`` lines)::

    id: ai-model-extraction          # lower-case slug, unique, normally the file name
    title: Model extraction through the inference API
    version: 1.2.0                   # MAJOR.MINOR[.PATCH]
    applies_to: [AML.T0024.002, AML.T0040, extraction]   # ATLAS technique IDs and detector names
    severity: [medium, high, critical]                   # the alert/incident severities it is meant for
    roles: [analyst, lead]                               # who works it (workbench roles)
    references: ["https://atlas.mitre.org/techniques/AML.T0024.002"]   # strings, or {title, url}
    created: 2025-01-10              # optional dates, used for the CACAO export
    modified: 2025-03-02
    summary: One paragraph for the list view.  # optional

Body: ``## `` headings name the five phases in this order: Preparation, Detection & Analysis, Containment,
Eradication & Recovery, Post-Incident Activity. Under each, every ``- [ ] text`` line is a step; indented
lines below it continue the step. Any other text is guidance for the phase.

Step IDs: ``{#my-id}`` at the end of a step pins its ID; otherwise it is ``<phase>-<n>`` (``containment-2``),
with phase keys preparation, detection, containment, recovery, post-incident. Pin IDs before reordering
steps of a playbook that incidents already track.

Workbench actions: a step may carry one inline code span ``action: VERB [ARGS]``, which the app offers as a
button and the CLI prints as a command:

    `action: view PAGE`          open an app page (Overview, Alerts, Explain, Incidents, SQL, Audit, ...)
    `action: query NAME`         run a named query from workbench/store/sql/
    `action: explain`            explain the incident's frozen decision set (SHAP, attribution drift)
    `action: replay [VERSION]`   re-score the decision set with another registered model version
    `action: evidence KIND`      freeze evidence: alert, decision_set, metric_window, explanation, note, file
    `action: detect`             re-run the detectors
    `action: verify`             re-hash evidence and walk the audit chain
    `action: export FORMAT`      export: md, html, pdf (incident report), cacao (this playbook), audit
    `action: cli ARGS...`        a `workbench ARGS...` command line, shown to copy and run
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from workbench.access import ROLES
from workbench.cases.incidents import SEVERITIES
from workbench.schemas import Problem, validate, yaml_lines

PHASES: tuple[tuple[str, str], ...] = (
    ("preparation", "Preparation"),
    ("detection", "Detection & Analysis"),
    ("containment", "Containment"),
    ("recovery", "Eradication & Recovery"),
    ("post-incident", "Post-Incident Activity"),
)
ACTION_VERBS: dict[str, str] = {
    "view": "PAGE",
    "query": "NAME",
    "explain": "",
    "replay": "[VERSION]",
    "evidence": "KIND",
    "detect": "",
    "verify": "",
    "export": "FORMAT",
    "cli": "ARGS...",
}
EVIDENCE_KINDS = ("alert", "decision_set", "metric_window", "explanation", "note", "file")
EXPORT_FORMATS = ("md", "html", "pdf", "cacao", "audit")
_STEP = re.compile(r"^\s{0,3}[-*]\s+\[( |x|X)\]\s+(.*)$")
_ACTION = re.compile(r"`action:\s*([^`]*)`")
_PIN = re.compile(r"\s*\{#([a-z0-9][a-z0-9-]*)\}\s*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def _text(value: Any) -> str:
    """A scalar as text (YAML reads 1.2 as a number, 2025-01-10 as a date); empty or a collection is an error."""
    if value is None or value == "":
        raise ValueError("empty")
    if isinstance(value, dict | list):
        raise ValueError(f"must be text, not a {'mapping' if isinstance(value, dict) else 'list'}")
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else _text(value)


def _non_empty(value: list[Any]) -> list[Any]:
    if not value:
        raise ValueError("empty (list at least one)")
    return value


def _matches(pattern: re.Pattern[str], rule: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} must {rule}")
        return value
    return AfterValidator(check)


def _one_of(allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value
    return AfterValidator(check)


Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
Listed = BeforeValidator(lambda v: _as_list(v))  # a lone value counts as a list of one
NonEmpty = AfterValidator(_non_empty)


class Reference(BaseModel):
    """A reference: ``{title, url}``, or a plain string (a URL is its own title)."""

    model_config = ConfigDict(extra="allow")
    title: OptionalText = None
    url: OptionalText = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        text = "" if value is None else str(value)
        return {"title": text or None, "url": text if text.startswith(("http://", "https://")) else None}

    @model_validator(mode="after")
    def _not_empty(self) -> Reference:
        if not (self.title or self.url):
            raise ValueError("a reference is empty (give a title or a url)")
        return self


class FrontMatter(BaseModel):
    """The playbook front matter schema; other keys are allowed and kept."""

    model_config = ConfigDict(extra="allow")
    id: Annotated[Text, _matches(_SLUG, "be a lower-case slug (a-z, 0-9, -)")]
    title: Text
    version: Annotated[Text, _matches(_VERSION, "look like 1.0 or 1.0.0")]
    applies_to: Annotated[list[Text], Listed, NonEmpty]
    severity: Annotated[list[Annotated[Text, _one_of(SEVERITIES)]], Listed, NonEmpty]
    roles: Annotated[list[Annotated[Text, _one_of(ROLES)]], Listed, NonEmpty]
    references: Annotated[list[Reference], Listed, NonEmpty]
    created: Any = None  # dates (or text) for the CACAO export; its file time when absent
    modified: Any = None
    summary: OptionalText = None


REQUIRED: tuple[str, ...] = tuple(name for name, f in FrontMatter.model_fields.items() if f.is_required())


def phase_key(heading: str) -> str | None:
    """The phase key for a heading ('Detection and Analysis' -> 'detection'), or None."""
    norm = re.sub(r"[^a-z]+", " ", heading.lower().replace("&", " and ")).strip()
    for key, title in PHASES:
        if norm == re.sub(r"[^a-z]+", " ", title.lower().replace("&", " and ")).strip():
            return key
    return None


@dataclass
class Step:
    """One checklist step of a playbook."""

    id: str
    phase: str
    text: str
    action: dict[str, Any] | None = None
    line: int = 0
    checked: bool = False
    pinned: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for JSON."""
        return {
            "id": self.id,
            "phase": self.phase,
            "text": self.text,
            "action": self.action,
            "line": self.line,
        }


@dataclass
class Playbook:
    """A parsed playbook file."""

    path: Path
    front: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    guidance: dict[str, str] = field(default_factory=dict)
    headings: list[tuple[int, str]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    sha256: str = ""
    front_lines: dict[str, int] = field(default_factory=dict)  # front matter field path -> file line

    id = property(lambda self: str(self.front.get("id") or self.path.stem))
    title = property(lambda self: str(self.front.get("title") or self.id))
    version = property(lambda self: str(self.front.get("version") or "0"))

    @property
    def applies_to(self) -> list[str]:
        """ATLAS IDs and detector names, as listed."""
        return [str(a) for a in _as_list(self.front.get("applies_to"))]

    @property
    def atlas(self) -> list[str]:
        """The ATLAS technique IDs this playbook applies to."""
        return [a for a in self.applies_to if a.upper().startswith("AML.")]

    @property
    def detectors(self) -> list[str]:
        """The detector names this playbook applies to."""
        return [a for a in self.applies_to if not a.upper().startswith("AML.")]

    @property
    def severity(self) -> list[str]:
        """Severities the playbook is meant for."""
        return [str(s) for s in _as_list(self.front.get("severity"))]

    @property
    def roles(self) -> list[str]:
        """Roles that work the playbook."""
        return [str(s) for s in _as_list(self.front.get("roles"))]

    @property
    def references(self) -> list[dict[str, str]]:
        """References as {title, url} dictionaries."""
        out = []
        for r in _as_list(self.front.get("references")):
            if isinstance(r, dict):
                out.append(
                    {"title": str(r.get("title") or r.get("url") or ""), "url": str(r.get("url") or "")}
                )
            else:
                text = str(r)
                out.append({"title": text, "url": text if text.startswith(("http://", "https://")) else ""})
        return out

    def step(self, step_id: str) -> Step | None:
        """The step with that ID, or None."""
        return next((s for s in self.steps if s.id == step_id), None)

    def phase_steps(self, key: str) -> list[Step]:
        """The steps of one phase, in order."""
        return [s for s in self.steps if s.phase == key]

    def summary(self) -> dict[str, Any]:
        """The listing row for this playbook."""
        return {
            "id": self.id,
            "title": self.title,
            "version": self.version,
            "applies_to": self.applies_to,
            "severity": self.severity,
            "roles": self.roles,
            "steps": len(self.steps),
            "path": str(self.path),
            "sha256": self.sha256,
        }

    def as_dict(self) -> dict[str, Any]:
        """The whole playbook as plain data."""
        d = self.summary()
        d.update(
            {
                "references": self.references,
                "summary": self.front.get("summary"),
                "phases": [
                    {
                        "key": k,
                        "title": t,
                        "guidance": self.guidance.get(k, ""),
                        "steps": [s.as_dict() for s in self.phase_steps(k)],
                    }
                    for k, t in PHASES
                ],
            }
        )
        return d


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def front_matter_problems(pb: Playbook) -> list[Problem]:
    """Every problem of the front matter against `FrontMatter`, each with its field path and line."""
    return validate(FrontMatter, pb.front, pb.front_lines)[1]


def parse_action(text: str) -> dict[str, Any]:
    """`action: VERB ARGS` content -> {verb, args, text}."""
    parts = text.strip().split()
    return {"verb": parts[0].lower() if parts else "", "args": parts[1:], "text": text.strip()}


def parse(path: Path, text: str | None = None) -> Playbook:
    """Parse one playbook file; format problems are collected in ``problems`` rather than raised."""
    raw = path.read_text(encoding="utf-8") if text is None else text
    pb = Playbook(path=path, front={}, sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest())
    lines = raw.splitlines()
    body_start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            pb.problems.append((1, "front matter is not closed by a '---' line"))
        else:
            pb.front_lines = yaml_lines("\n".join(lines[1:end]), first_line=2)
            try:
                front = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as exc:
                front = {}
                pb.problems.append((1, f"front matter is not valid YAML: {str(exc).splitlines()[0]}"))
            if not isinstance(front, dict):
                pb.problems.append((1, "front matter must be a YAML mapping"))
                front = {}
            pb.front = front
            body_start = end + 1
    else:
        pb.problems.append((1, "no YAML front matter (the file must start with '---')"))
    phase: str | None = None
    counts: dict[str, int] = {}
    current: Step | None = None
    guidance: dict[str, list[str]] = {}
    for i in range(body_start, len(lines)):
        line, lineno = lines[i], i + 1
        if line.startswith("## "):
            heading = line[3:].strip()
            phase = phase_key(heading)
            pb.headings.append((lineno, heading))
            current = None
            continue
        m = _STEP.match(line)
        if m:
            if phase is None:
                pb.problems.append((lineno, "a step outside the five phase headings"))
                current = None
                continue
            counts[phase] = counts.get(phase, 0) + 1
            body = m.group(2).strip()
            pin = _PIN.search(body)
            body = _PIN.sub("", body).strip() if pin else body
            acts = _ACTION.findall(body)
            if len(acts) > 1:
                pb.problems.append((lineno, "a step may name at most one `action: ...`"))
            current = Step(
                id=pin.group(1) if pin else f"{phase}-{counts[phase]}",
                phase=phase,
                text=body,
                action=parse_action(acts[0]) if acts else None,
                line=lineno,
                checked=m.group(1) != " ",
                pinned=bool(pin),
            )
            pb.steps.append(current)
            continue
        if current is not None and line.startswith(("  ", "\t")) and line.strip():
            current.text += " " + line.strip()
            extra = _ACTION.findall(line)
            if extra and current.action is None:
                current.action = parse_action(extra[0])
            continue
        current = None
        if phase is not None and line.strip():
            guidance.setdefault(phase, []).append(line.strip())
    pb.guidance = {k: " ".join(v) for k, v in guidance.items()}
    return pb
