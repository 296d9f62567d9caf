"""Drill scenarios: markdown files with YAML front matter (story, incidents to inject, injects, questions, rubric).

A value written "@<incident id>.<field>" in a question is taken from the ground truth of the injected incident
once the drill is built (fields: principals, atlas, start, end, system_id, type, decision_count, ips, feature,
metric, trigger_feature, trigger_value, version, sha256, sha256_prefix), so a scenario can leave the generator
to pick a principal.

This module finds, reads and parses scenario files; the sections are validated in ``scenario_validation``
(whose public names are importable from here too).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from workbench import settings
from workbench.drills.model import (
    DrillIncident,
    Inject,
    Question,
    Rubric,
    Scenario,
    offset_text,
    parse_duration,
    parse_offset,
)
from workbench.drills.scenario_validation import (
    ID_PATTERN,
    QUESTION_KINDS,
    TRUTH_FIELDS,
    atlas_ids_known,
    check_scenario,
    incidents_section,
    injects_section,
    questions_section,
    rubric_section,
)
from workbench.errors import WorkbenchError

__all__ = ["QUESTION_KINDS", "TRUTH_FIELDS", "DrillIncident", "Inject", "Question", "Rubric", "Scenario",
           "atlas_ids_known", "check_scenario", "find_scenario", "list_scenarios", "load_scenario", "offset_text",
           "parse_duration", "parse_offset", "parse_scenario", "scenarios_dir", "split_front_matter"]


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
    if sid and not ID_PATTERN.match(sid):
        errs.append(f"id {sid!r} must be lower-case letters, digits, '-' or '_'")
    title = need("title", str) or ""
    story = need("story", str) or ""
    sample = meta.get("sample") or {}
    if not isinstance(sample, dict):
        errs.append("'sample' must be a mapping (seed, days, decisions_per_day)")
        sample = {}
    incidents = incidents_section(meta.get("incidents"), errs)
    ids = {i.id for i in incidents}
    injects = injects_section(meta.get("injects"), errs)
    questions = questions_section(meta.get("questions"), ids, errs)
    rubric = rubric_section(meta.get("scoring") or {}, errs)
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
