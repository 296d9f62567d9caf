"""The model registry: custody copies, hash re-checks on every load, refusals on record, AI-BOM import."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.explain import loaders
from workbench.explain.loaders import LoadedModel, RefusedModel, load_bytes, sha256_bytes, sniff_format
from workbench.store import Workspace

_LOADED: dict[str, LoadedModel] = {}  # sha256 -> parsed model (bytes are re-hashed on every load)
_LOADED_LOCK = threading.Lock()
_COLUMNS = ("system_id, version, sha256, format, size_bytes, feature_names, added_by, added_role, added_at, "
            "original_path, stored_path, scan, source, approved, bom")


def evidence_dir(ws: Workspace) -> Path:
    """The workspace's evidence store: a folder next to the DuckDB file."""
    return ws.path.parent / (ws.path.name + ".evidence")


def _row(ws: Workspace, system_id: str, version: str) -> dict[str, Any] | None:
    rows = ws.dicts(f"SELECT {_COLUMNS} FROM models WHERE system_id = ? AND version = ?",
                    [system_id, version])
    return _clean(rows[0]) if rows else None


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("scan", "bom"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def record_event(ws: Workspace, actor: Actor, event: str, reason: str, *, system_id: str | None = None,
                 version: str | None = None, sha256: str | None = None, path: str | None = None,
                 details: Any = None) -> None:
    """Keep a refused or failed load, or a registry conflict, in model_events and the audit chain."""
    reason = reason[:2000]
    ws.execute(
        "INSERT INTO model_events(ts, actor, role, event, system_id, version, sha256, path, reason, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [datetime.now(UTC), actor.user, actor.role, event, system_id, version, sha256, path, reason,
         audit.canonical(details) if details is not None else None],
    )
    action = "model.refused" if event.startswith("refused.") else \
        "model.load_failed" if event.startswith("failed.") else "model.event"
    audit.record(ws, actor, action, f"{system_id}/{version}" if system_id else path,
                 {"event": event, "reason": reason, "sha256": sha256, "path": path})


def _load_on_record(ws: Workspace, actor: Actor, data: bytes, fmt: str | None, name: str, where: dict[str, Any],
                    allow_pickle: bool) -> tuple[str, LoadedModel, dict | None]:
    """Sniff and load, recording every refusal and every failure in model_events and the audit chain."""
    try:
        fmt = fmt or sniff_format(data, name)
        model, scan = load_bytes(data, fmt, allow_pickle=allow_pickle)
        return fmt, model, scan
    except RefusedModel as exc:
        record_event(ws, actor, exc.event, str(exc), details=exc.scan, **where)
        raise
    except WorkbenchError as exc:
        record_event(ws, actor, "failed.load", str(exc), details={"format": fmt}, **where)
        raise
    except Exception as exc:  # noqa: BLE001 - a library's parse error becomes one clear line, on record
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        reason = f"{name}: not a loadable {fmt or 'model'} file ({first})"
        record_event(ws, actor, "failed.load", reason, details={"format": fmt, "error": type(exc).__name__},
                     **where)
        raise WorkbenchError(reason) from exc


def _store_copy(ws: Workspace, data: bytes, sha: str) -> Path:
    target = evidence_dir(ws) / "models" / sha
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and sha256_bytes(target.read_bytes()) == sha:
        return target
    if target.exists():
        os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return target


def add_model(ws: Workspace, actor: Actor, system_id: str, version: str, path: str | Path, *,
              allow_pickle: bool = False, exist_ok: bool = False) -> dict[str, Any]:
    """Register a model artifact: hash, sniff, load safely, keep a read-only copy, record who added it."""
    require(actor, "write:models", ws)
    path = Path(path)
    where: dict[str, Any] = {"system_id": system_id, "version": version, "sha256": None,
                             "path": str(path.resolve())}
    try:
        size = path.stat().st_size
        if size > loaders.MAX_MODEL_BYTES:
            reason = (f"{path.name} is {size >> 20} MiB, larger than the {loaders.MAX_MODEL_BYTES >> 20} MiB "
                      "a model file may be; refused before reading it")
            record_event(ws, actor, "refused.size", reason, details={"size": size}, **where)
            raise WorkbenchError(reason)
        data = path.read_bytes()
    except OSError as exc:
        reason = f"{path}: cannot read model file ({exc.strerror or exc})"
        record_event(ws, actor, "failed.read", reason, **where)
        raise WorkbenchError(reason) from exc
    sha = sha256_bytes(data)
    where["sha256"] = sha
    existing = _row(ws, system_id, version)
    if existing and existing["sha256"] != sha:
        kind = "refused.bom_mismatch" if existing["source"] == "bom" else "refused.hash_mismatch"
        reason = (f"{system_id} {version} is registered with sha256 {existing['sha256'][:12]}…, "
                  f"but {path.name} hashes to {sha[:12]}…: the artifact is not the registered one")
        record_event(ws, actor, kind, reason, **where)
        raise WorkbenchError(reason)
    if existing and existing["stored_path"]:
        if exist_ok:
            return existing
        raise WorkbenchError(f"{system_id} {version} is already registered (sha256 {sha[:12]}…)")
    fmt, model, scan = _load_on_record(ws, actor, data, None, path.name, where, allow_pickle)
    stored = _store_copy(ws, data, sha)
    approved = bool(ws.scalar("SELECT count(*) FROM models WHERE sha256 = ? AND approved", [sha]))
    now = datetime.now(UTC)
    with ws.transaction() as con:
        if existing:  # a BOM entry with this very hash: attach the artifact, keep the approval
            con.execute("UPDATE models SET format = ?, size_bytes = ?, feature_names = ?, original_path = ?, "
                        "stored_path = ?, scan = ? WHERE system_id = ? AND version = ?",
                        [fmt, len(data), model.feature_names, str(path.resolve()), str(stored),
                         audit.canonical(scan) if scan else None, system_id, version])
        else:
            con.execute(f"INSERT INTO models({_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'file', ?, NULL)",
                        [system_id, version, sha, fmt, len(data), model.feature_names, actor.user, actor.role,
                         now, str(path.resolve()), str(stored), audit.canonical(scan) if scan else None,
                         approved])
        audit.record(ws, actor, "model.add", f"{system_id}/{version}",
                     {"sha256": sha, "format": fmt, "size": len(data), "path": str(path.resolve()),
                      "features": len(model.feature_names), "scan": scan})
    return _row(ws, system_id, version) or {}


def list_models(ws: Workspace, actor: Actor) -> list[dict[str, Any]]:
    """The model inventory, each entry with whether its stored copy still matches its hash."""
    require(actor, "read:aggregates", ws)
    rows = [_clean(r) for r in ws.dicts(f"SELECT {_COLUMNS} FROM models ORDER BY system_id, version")]
    for r in rows:
        r["verified"] = None
        if r["stored_path"]:
            try:
                r["verified"] = sha256_bytes(Path(r["stored_path"]).read_bytes()) == r["sha256"]
            except OSError:
                r["verified"] = False
    audit.record(ws, actor, "read.models", None, {"rows": len(rows)})
    return rows


def list_events(ws: Workspace, actor: Actor, limit: int = 200, system_id: str | None = None
                ) -> list[dict[str, Any]]:
    """Refused and failed loads and registry conflicts, newest first."""
    require(actor, "read:aggregates", ws)
    where, params = ("WHERE system_id = ?", [system_id]) if system_id else ("", [])
    rows = ws.dicts(f"SELECT event_id, ts, actor, role, event, system_id, version, sha256, path, reason, details "
                    f"FROM model_events {where} ORDER BY event_id DESC LIMIT ?", [*params, int(limit)])
    for r in rows:
        if isinstance(r.get("details"), str):
            r["details"] = json.loads(r["details"])
    audit.record(ws, actor, "read.model_events", system_id, {"rows": len(rows)})
    return rows


def is_registered(ws: Workspace, system_id: str, sha256: str) -> bool:
    """Whether this hash is a registered (or BOM-approved) artifact of the system."""
    return bool(ws.scalar("SELECT count(*) FROM models WHERE system_id = ? AND sha256 = ?",
                          [system_id, sha256]))


def registered_hashes(ws: Workspace, system_id: str | None = None) -> set[str]:
    """Every registered (or BOM-approved) hash, for one system or all."""
    if system_id is None:
        return {r[0] for r in ws.rows("SELECT DISTINCT sha256 FROM models")}
    return {r[0] for r in ws.rows("SELECT DISTINCT sha256 FROM models WHERE system_id = ?", [system_id])}


def versions(ws: Workspace, system_id: str) -> list[dict[str, Any]]:
    """Registered versions of a system that have an artifact to load, oldest first."""
    return ws.dicts("SELECT version, sha256, format, feature_names FROM models "
                    "WHERE system_id = ? AND stored_path IS NOT NULL ORDER BY added_at, version", [system_id])


def load_model(ws: Workspace, actor: Actor, system_id: str, version: str) -> LoadedModel:
    """Load a registered version from its stored copy, re-checking the hash (mismatch: refused, recorded)."""
    require(actor, "read:decisions", ws)
    row = _row(ws, system_id, version)
    if row is None or not row["stored_path"]:
        have = ", ".join(v["version"] for v in versions(ws, system_id)) or "none"
        raise WorkbenchError(f"no registered artifact for {system_id} version {version} "
                             f"(registered: {have}); add it with `workbench model add`")
    stored = Path(row["stored_path"])
    where = {"system_id": system_id, "version": version, "sha256": row["sha256"], "path": str(stored)}
    try:
        data = stored.read_bytes()
    except OSError as exc:
        reason = f"the stored copy of {system_id} {version} is missing or unreadable ({exc.strerror or exc})"
        record_event(ws, actor, "refused.missing", reason, **where)
        raise WorkbenchError(reason) from exc
    actual = sha256_bytes(data)
    if actual != row["sha256"]:
        reason = (f"refused to load {system_id} {version}: the stored copy hashes to {actual[:12]}…, "
                  f"registered {row['sha256'][:12]}… (modified after registration)")
        record_event(ws, actor, "refused.hash_mismatch", reason, details={"actual": actual}, **where)
        raise WorkbenchError(reason)
    with _LOADED_LOCK:
        model = _LOADED.get(actual)
    if model is None:
        _, model, _ = _load_on_record(ws, actor, data, row["format"], stored.name, where,
                                      row["format"] in ("pickle", "joblib"))
        with _LOADED_LOCK:
            _LOADED[actual] = model
    model.system_id, model.version = system_id, version
    return model


def _bom_components(doc: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(doc.get("components") or [])
    while stack:
        comp = stack.pop(0)
        if isinstance(comp, dict):
            if comp.get("type") == "machine-learning-model":
                out.append(comp)
            stack.extend(comp.get("components") or [])
    return out


def _bom_system(comp: dict[str, Any]) -> str:
    for prop in comp.get("properties") or []:
        if prop.get("name") in ("workbench:system_id", "workbench:system", "system_id"):
            return str(prop.get("value"))
    return str(comp.get("group") or comp.get("name"))


def import_bom(ws: Workspace, actor: Actor, path: str | Path) -> dict[str, Any]:
    """Import a CycloneDX JSON AI-BOM: each machine-learning-model component's SHA-256 becomes approved."""
    require(actor, "write:models", ws)
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: not a readable JSON BOM ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise WorkbenchError(f"{path}: not a CycloneDX BOM (bomFormat is not 'CycloneDX')")
    result: dict[str, Any] = {"path": str(path), "components": 0, "added": [], "approved": [],
                              "conflicts": [], "skipped": []}
    now = datetime.now(UTC)
    for comp in _bom_components(doc):
        result["components"] += 1
        hashes = {str(h.get("alg", "")).upper().replace("_", "-"): str(h.get("content", "")).lower()
                  for h in comp.get("hashes") or []}
        sha, system_id, version = hashes.get("SHA-256"), _bom_system(comp), comp.get("version")
        label = f"{system_id}/{version}"
        if not sha or len(sha) != 64 or not version:
            result["skipped"].append({"model": label, "reason": "no SHA-256 hash or no version"})
            continue
        bom = {"name": comp.get("name"), "bom_ref": comp.get("bom-ref"), "file": str(path),
               "serial": doc.get("serialNumber"), "supplier": (comp.get("supplier") or {}).get("name")}
        existing = _row(ws, system_id, str(version))
        if existing and existing["sha256"] != sha:
            reason = (f"BOM lists {label} with sha256 {sha[:12]}…, registered artifact is "
                      f"{existing['sha256'][:12]}…")
            record_event(ws, actor, "refused.bom_mismatch", reason, system_id=system_id, version=str(version),
                         sha256=sha, path=str(path), details=bom)
            result["conflicts"].append({"model": label, "reason": reason})
        elif existing:
            ws.execute("UPDATE models SET approved = true, bom = ? WHERE system_id = ? AND version = ?",
                       [audit.canonical(bom), system_id, str(version)])
            result["approved"].append(label)
        else:
            ws.execute(f"INSERT INTO models({_COLUMNS}) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?, ?, NULL, "
                       "NULL, NULL, 'bom', true, ?)",
                       [system_id, str(version), sha, actor.user, actor.role, now, audit.canonical(bom)])
            result["added"].append(label)
    audit.record(ws, actor, "model.import_bom", str(path),
                 {k: (len(v) if isinstance(v, list) else v) for k, v in result.items()})
    return result
