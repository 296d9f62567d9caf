"""The playbook library: find, load, lint and install ``playbooks/*.md`` files.

The file format (front matter, phases, steps, ``action:`` syntax) is documented in
``workbench/cases/playbook_format.py`` and in ``playbooks/README.md``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from workbench import audit, settings
from workbench.access import ROLES, Actor, require
from workbench.cases import atlas
from workbench.cases.incidents import SEVERITIES
from workbench.cases.playbook_format import (
    ACTION_VERBS,
    EVIDENCE_KINDS,
    EXPORT_FORMATS,
    PHASES,
    Playbook,
    parse,
    phase_key,
)
from workbench.errors import WorkbenchError
from workbench.store import Workspace

REQUIRED = ("id", "title", "version", "applies_to", "severity", "roles", "references")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


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


def _names_from(module: ModuleType, attrs: tuple[str, ...], names: Callable[[Any], set[str]]) -> set[str] | None:
    """The names listed by the first of `attrs` the module has and that is not empty (called if callable)."""
    for attr in attrs:
        value = getattr(module, attr, None)
        if callable(value):
            value = value()
        if value:
            return names(value)
    return None


def _detector_names(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k) for k in value}
    return {str(v[0]) if isinstance(v, tuple | list) else str(getattr(v, "name", v)) for v in value}


def known_detectors() -> set[str] | None:
    """Detector names from the detect package, or None when it is not available."""
    try:
        from workbench import detect
    except ImportError:
        return None
    return _names_from(detect, ("DETECTOR_NAMES", "DETECTORS", "detector_names"), _detector_names)


def known_queries() -> set[str] | None:
    """Named query names from workbench/store/sql/, or None when there are none."""
    try:
        from workbench.store import queries
    except ImportError:
        return None
    return _names_from(queries, ("names", "all_queries", "QUERIES"), lambda v: {str(getattr(q, "name", q)) for q in v})


def _issue(pb: Playbook, level: str, message: str, line: int | None = None) -> dict[str, Any]:
    return {"playbook": pb.id, "file": str(pb.path), "line": line, "level": level, "message": message}


def lint_one(pb: Playbook, atlas_path: str | Path | None = None) -> list[dict[str, Any]]:
    """Problems with one playbook: errors break it, warnings are advice."""
    issues = [_issue(pb, "error", msg, line) for line, msg in pb.problems]
    f = pb.front
    for key in REQUIRED:
        if f.get(key) in (None, "", []):
            issues.append(_issue(pb, "error", f"front matter lacks '{key}'", 1))
    if f.get("id") and not _SLUG.match(str(f["id"])):
        issues.append(_issue(pb, "error", f"id {f['id']!r} must be a lower-case slug (a-z, 0-9, -)", 1))
    if f.get("id") and str(f["id"]) != pb.path.stem:
        issues.append(_issue(pb, "warning", f"id {f['id']!r} differs from the file name {pb.path.name}", 1))
    if f.get("version") is not None and not _VERSION.match(str(f["version"])):
        issues.append(_issue(pb, "error", f"version {f['version']!r} must look like 1.0 or 1.0.0", 1))
    bad_atlas = atlas.unknown(pb.atlas, atlas_path)
    if bad_atlas:
        issues.append(_issue(pb, "error", "unknown ATLAS technique IDs: " + ", ".join(bad_atlas), 1))
    detectors = known_detectors()
    if detectors is not None:
        for d in pb.detectors:
            if d not in detectors:
                issues.append(_issue(pb, "warning", f"applies_to names detector {d!r}, which the detect "
                                     f"package does not know ({', '.join(sorted(detectors))})", 1))
    for s in pb.severity:
        if s not in SEVERITIES:
            issues.append(_issue(pb, "error", f"severity {s!r} is not one of {', '.join(SEVERITIES)}", 1))
    for r in pb.roles:
        if r not in ROLES:
            issues.append(_issue(pb, "error", f"role {r!r} is not one of {', '.join(ROLES)}", 1))
    for ref in pb.references:
        if not ref["title"]:
            issues.append(_issue(pb, "error", "a reference is empty", 1))
    issues += _lint_body(pb)
    return issues


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
    for key, title in PHASES:
        if key not in seen:
            issues.append(_issue(pb, "error", f"missing phase '## {title}'"))
        elif not pb.phase_steps(key):
            issues.append(_issue(pb, "error", f"phase '{title}' has no '- [ ]' steps"))
    if seen != [k for k in order if k in seen]:
        issues.append(_issue(pb, "error", "phases are out of order; use: " + ", ".join(t for _, t in PHASES)))
    ids = [s.id for s in pb.steps]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        issues.append(_issue(pb, "error", f"step id {dup!r} is used twice"))
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
    require(actor, "write:playbooks")
    src = Path(path)
    if not src.is_file():
        raise WorkbenchError(f"no file at {src}")
    pb = parse(src)
    errors = [i for i in lint_one(pb) if i["level"] == "error"]
    if errors:
        raise WorkbenchError(
            f"{src.name}: {errors[0]['message']} ({len(errors)} error(s); run playbooks check)"
        )
    dest = playbook_dir(dir) / f"{pb.id}.md"
    if dest.exists() and not overwrite:
        raise WorkbenchError(f"playbook {pb.id} exists; pass overwrite to replace it")
    shutil.copyfile(src, dest)
    audit.record(
        ws, actor, "playbook.add", pb.id, {"version": pb.version, "sha256": pb.sha256, "path": str(dest)}
    )
    return pb.summary()
