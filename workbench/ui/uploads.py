"""Keep an uploaded file next to the workspace so ingest records a path that still exists for custody checks."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from workbench.store import Workspace

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def uploads_dir(ws: Workspace) -> Path:
    """The folder beside the workspace file where the app keeps uploaded source files."""
    return ws.path.parent / f"{ws.path.stem}.uploads"


def save_upload(ws: Workspace, name: str, data: bytes) -> Path:
    """Write the uploaded bytes under the uploads folder (name kept, so the format is detected the same way)."""
    folder = uploads_dir(ws)
    folder.mkdir(parents=True, exist_ok=True)
    clean = _SAFE.sub("_", Path(name).name).lstrip(".") or "upload"
    digest = hashlib.sha256(data).hexdigest()[:12]
    target = folder / f"{digest}_{clean}"
    if not target.exists():
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
    return target
