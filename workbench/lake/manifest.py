"""Custody of a lake's files: a manifest of (path, size, SHA-256) and the hash of the manifest itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

MANIFEST = "_manifest.json"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def describe(root: Path, files: list[Path]) -> list[dict[str, Any]]:
    """One manifest entry per file (path relative to root, size, sha256), sorted by path."""
    out = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        out.append({"path": rel, "size_bytes": f.stat().st_size, "sha256": sha256_file(f)})
    return sorted(out, key=lambda e: e["path"])


def manifest_hash(entries: list[dict[str, Any]]) -> str:
    """SHA-256 over the sorted `path size sha256` lines: one value that pins every file."""
    lines = "".join(f"{e['path']}\t{e['size_bytes']}\t{e.get('sha256') or e.get('etag') or ''}\n"
                    for e in sorted(entries, key=lambda e: e["path"]))
    return hashlib.sha256(lines.encode()).hexdigest()


def write(root: Path, entries: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Write the lake's _manifest.json (files and their hashes, plus what was exported) and return it."""
    doc = {"format": "workbench-lake/1", **meta, "files": entries, "manifest_sha256": manifest_hash(entries)}
    (root / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True, default=str), encoding="utf-8")
    return doc


def read(root: Path) -> dict[str, Any] | None:
    """The lake's _manifest.json, if it has one (a lake written by `workbench lake export`)."""
    p = root / MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{p}: unreadable manifest ({type(exc).__name__})") from exc


def check(root: Path, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-hash every listed file; one row per file whose size or hash changed or that is gone."""
    bad = []
    for e in entries:
        p = root / e["path"]
        if not p.is_file():
            bad.append({"path": e["path"], "problem": "missing"})
            continue
        size = p.stat().st_size
        if size != e["size_bytes"]:
            bad.append({"path": e["path"], "problem": f"size {size} != {e['size_bytes']}"})
        elif e.get("sha256") and sha256_file(p) != e["sha256"]:
            bad.append({"path": e["path"], "problem": "sha256 differs"})
    return bad
