"""The playbook library: find, load, lint and install ``playbooks/*.md`` files.

The file format (front matter, phases, steps, ``action:`` syntax) is documented in
``workbench/cases/playbook_format.py`` and in ``playbooks/README.md``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# `detect` as a module, not `from workbench.detect import DETECTOR_NAMES`: workbench.detect imports
# workbench.access.masking, so when detect is imported first this module loads before detect has defined the
# name (it is read at lint time). Import the name once masking no longer lives in workbench.cases.
from workbench import audit, detect, settings
from workbench.access import Actor, require
from workbench.cases import atlas
from workbench.cases.playbook_format import (
    ACTION_VERBS,
    EVIDENCE_KINDS,
    EXPORT_FORMATS,
    PHASES,
    REQUIRED,
    Playbook,
    front_matter_problems,
    parse,
    phase_key,
)
from workbench.errors import WorkbenchError
from workbench.schemas import Problem, line_of, problems_error
from workbench.store import Workspace
from workbench.store.queries import all_queries

__all__ = ["REQUIRED", "get_playbook", "install", "known_detectors", "known_queries", "lint", "lint_one",
           "load_playbooks", "playbook_dir"]


def playbook_dir(directory: str | Path | None = None) -> Path:
    """The playbook directory: the one given, else the shipped ``playbooks/``."""
    return Path(directory) if directory else settings.playbooks_dir()


def load_playbooks(dir: str | Path | None = None) -> dict[str, Playbook]:
    """Every ``*.md`` playbook in the directory (README.md excluded), keyed by id."""
    folder = playbook_dir(dir)
    if not folder.is_dir():
        raise WorkbenchError(f"no playbook directory at {folder}")
    out: dict[str, Playbook] = {}
    for _, pb in _parse_all(folder):
        out.setdefault(pb.id, pb)
    return out


def _parse_all(folder: Path) -> Iterator[tuple[Path, Playbook]]:
    """Each ``*.md`` file of the folder but README.md, with its parsed playbook, in file-name order."""
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() != "readme.md":
            yield path, parse(path)


def get_playbook(playbook_id: str, dir: str | Path | None = None) -> Playbook:
    """One playbook by id, or WorkbenchError."""
    found = load_playbooks(dir)
    if playbook_id not in found:
        raise WorkbenchError(f"no playbook {playbook_id!r}; `workbench playbooks list` shows them")
    return found[playbook_id]


def known_detectors() -> set[str]:
    """The detector names of workbench.detect (what ``applies_to`` may name besides ATLAS IDs)."""
    return set(detect.DETECTOR_NAMES)


def known_queries() -> set[str]:
    """The named queries of workbench/store/sql/ (what ``action: query NAME`` may name)."""
    return set(all_queries())


def _issue(pb: Playbook, level: str, message: str, line: int | None = None) -> dict[str, Any]:
    return {"playbook": pb.id, "file": str(pb.path), "line": line, "level": level, "message": message}


def lint_one(pb: Playbook, atlas_path: str | Path | None = None) -> list[dict[str, Any]]:
    """Problems with one playbook: errors break it, warnings are advice."""
    issues = [_issue(pb, "error", msg, line) for line, msg in pb.problems]
    issues += [_issue(pb, "error", str(_unlocated(p)), p.line or 1) for p in front_matter_problems(pb)]
    front_id = pb.front.get("id")
    if front_id and str(front_id) != pb.path.stem:
        issues.append(_issue(pb, "warning", f"id {front_id!r} differs from the file name {pb.path.name}",
                             _line(pb, "id")))
    atlas_ids = pb.atlas
    for bad in atlas.unknown(atlas_ids, atlas_path):
        issues.append(_issue(pb, "error", f"applies_to: unknown ATLAS technique ID {bad}",
                             _line(pb, f"applies_to[{pb.applies_to.index(bad)}]")))
    detectors = known_detectors()
    for d in pb.detectors:
        if d not in detectors:
            issues.append(_issue(pb, "warning", f"applies_to names detector {d!r}, which the detect "
                                 f"package does not know ({', '.join(sorted(detectors))})",
                                 _line(pb, f"applies_to[{pb.applies_to.index(d)}]")))
    issues += _lint_body(pb)
    return issues


def _unlocated(p: Problem) -> Problem:
    """The problem without its line (the issue row carries the line)."""
    return Problem(p.path, p.message)


def _line(pb: Playbook, path: str) -> int:
    """The file line of a front matter field path (1 when unknown)."""
    return line_of(path, pb.front_lines) or 1


def _lint_body(pb: Playbook) -> list[dict[str, Any]]:
    issues = []
    order = [k for k, _ in PHASES]
    seen = []
    for line, heading in pb.headings:
        key = phase_key(heading)
        if key is None:
            issues.append(_issue(pb, "warning", f"heading '{heading}' is not a phase; its text joins no phase", line))
        elif key in seen:
            issues.append(_issue(pb, "error", f"phase '{heading}' appears twice", line))
        else:
            seen.append(key)
    heading_line = {phase_key(h): line for line, h in reversed(pb.headings)}
    for key, title in PHASES:
        if key not in seen:
            issues.append(_issue(pb, "error", f"missing phase '## {title}'"))
        elif not pb.phase_steps(key):
            issues.append(_issue(pb, "error", f"phase '{title}' has no '- [ ]' steps", heading_line.get(key)))
    if seen != [k for k in order if k in seen]:
        issues.append(_issue(pb, "error", "phases are out of order; use: " + ", ".join(t for _, t in PHASES)))
    first: dict[str, int] = {}
    for s in pb.steps:
        if s.id in first:
            issues.append(_issue(pb, "error", f"step id {s.id!r} is used twice (also line {first[s.id]})", s.line))
        first.setdefault(s.id, s.line)
    queries = known_queries()
    for s in pb.steps:
        if s.checked:
            issues.append(_issue(pb, "warning", "a shipped step is pre-ticked ([x]); progress belongs to incidents",
                                 s.line))
        if s.action is None:
            continue
        verb, args = s.action["verb"], s.action["args"]
        if verb not in ACTION_VERBS:
            issues.append(_issue(pb, "error", f"unknown action verb {verb!r}; use one of {', '.join(ACTION_VERBS)}",
                                 s.line))
        elif verb in ("view", "query", "evidence", "export", "cli") and not args:
            issues.append(_issue(pb, "error", f"action '{verb}' needs {ACTION_VERBS[verb]}", s.line))
        elif verb == "evidence" and args[0] not in EVIDENCE_KINDS:
            issues.append(_issue(pb, "error", f"evidence kind {args[0]!r} is not one of {', '.join(EVIDENCE_KINDS)}",
                                 s.line))
        elif verb == "export" and args[0] not in EXPORT_FORMATS:
            issues.append(_issue(pb, "error", f"export format {args[0]!r} is not one of {', '.join(EXPORT_FORMATS)}",
                                 s.line))
        elif verb == "query" and queries is not None and args[0] not in queries:
            issues.append(_issue(pb, "warning", f"no named query {args[0]!r} in workbench/store/sql/", s.line))
    return issues


def lint(dir: str | Path | None = None, atlas_path: str | Path | None = None) -> list[dict[str, Any]]:
    """Lint every playbook in the directory (including duplicate ids across files)."""
    folder = playbook_dir(dir)
    issues: list[dict[str, Any]] = []
    ids: dict[str, Path] = {}
    for path, pb in _parse_all(folder):
        if pb.id in ids:
            issues.append(_issue(pb, "error", f"id {pb.id!r} is also used by {ids[pb.id].name}", 1))
        ids.setdefault(pb.id, path)
        issues += lint_one(pb, atlas_path)
    return issues


def install(
    ws: Workspace, actor: Actor, path: str | Path, dir: str | Path | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """Add a playbook file to the playbook directory after linting it (needs write:playbooks)."""
    require(actor, "write:playbooks", ws)
    src = Path(path)
    if not src.is_file():
        raise WorkbenchError(f"no file at {src}")
    pb = parse(src)
    errors = [Problem("", i["message"], i["line"]) for i in lint_one(pb) if i["level"] == "error"]
    errors.sort(key=lambda p: p.line or 10**9)
    if errors:
        raise problems_error(src.name, errors, "`workbench playbooks check` lists them with warnings")
    dest = playbook_dir(dir) / f"{pb.id}.md"
    if dest.exists() and not overwrite:
        raise WorkbenchError(f"playbook {pb.id} exists; pass overwrite to replace it")
    shutil.copyfile(src, dest)
    audit.record(
        ws, actor, "playbook.add", pb.id, {"version": pb.version, "sha256": pb.sha256, "path": str(dest)}
    )
    return pb.summary()
