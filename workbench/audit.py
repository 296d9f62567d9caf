"""The audit trail: every write and every read of decision-level data, in a SHA-256 hash chain.

Row hash = sha256 of the canonical JSON array
    [seq, ts (ISO-8601 UTC, microseconds), actor, role, action, object, details, prev_hash]
with details serialised as canonical JSON (sorted keys, no spaces). The first row's prev_hash is 64 zeros.
An auditor can re-compute the chain from an export with nothing but this recipe.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.store import Workspace

GENESIS = "0" * 64
_write_lock = threading.Lock()


def canonical(details: Any) -> str:
    """Canonical JSON text of a value: sorted keys, no spaces, non-JSON types as strings."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def row_hash(seq: int, ts: datetime, actor: str, role: str, action: str, obj: str | None, details: Any,
             prev_hash: str) -> str:
    """The hash of one audit row under the documented recipe."""
    stamp = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = canonical([seq, stamp, actor, role, action, obj, details, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(ws: Workspace, actor: Actor, action: str, obj: str | None = None, details: Any = None) -> int:
    """Append one row to the audit chain (inside the caller's transaction, if any) and return its seq."""
    details = {} if details is None else json.loads(canonical(details))
    with _write_lock:
        last = ws.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
        ts = datetime.now(UTC)
        digest = row_hash(seq, ts, actor.user, actor.role, action, obj, details, prev)
        ws.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, ts, actor.user, actor.role, action, obj, canonical(details), prev, digest],
        )
    return seq


@dataclass
class ChainCheck:
    """The result of walking the chain: ok, rows checked, and the first bad row with the reason."""

    ok: bool
    rows: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for --json output."""
        return {"ok": self.ok, "rows": self.rows, "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def check_rows(rows: list[tuple]) -> ChainCheck:
    """Walk (seq, ts, actor, role, action, object, details, prev_hash, hash) rows in stored order."""
    prev_hash, expected_seq = GENESIS, 1
    for seq, ts, user, role, action, obj, details, stored_prev, stored_hash in rows:
        if seq != expected_seq:
            why = "a row is missing before it" if seq > expected_seq else "rows are out of order or repeated"
            return ChainCheck(False, len(rows), seq, f"expected seq {expected_seq}, found {seq}: {why}")
        if stored_prev != prev_hash:
            return ChainCheck(False, len(rows), seq, "prev_hash does not match the previous row's hash")
        parsed = json.loads(details) if isinstance(details, str) else (details or {})
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if row_hash(seq, ts, user, role, action, obj, parsed, stored_prev) != stored_hash:
            return ChainCheck(False, len(rows), seq, "row content does not match its hash (edited)")
        prev_hash, expected_seq = stored_hash, expected_seq + 1
    return ChainCheck(True, len(rows))


def verify(ws: Workspace, actor: Actor) -> ChainCheck:
    """Re-compute the whole chain and name the first row edited, deleted or reordered."""
    require(actor, "read:audit")
    rows = ws.rows(
        "SELECT seq, ts, actor, role, action, object, details, prev_hash, hash FROM audit_log ORDER BY seq"
    )
    result = check_rows(rows)
    record(ws, actor, "audit.verify", None, result.as_dict())
    return result


def entries(ws: Workspace, actor: Actor, limit: int = 1000, action_prefix: str | None = None,
            obj: str | None = None) -> list[dict[str, Any]]:
    """The newest audit rows, optionally filtered by action prefix or object."""
    require(actor, "read:audit")
    where, params = [], []
    if action_prefix:
        where.append("starts_with(action, ?)")
        params.append(action_prefix)
    if obj:
        where.append("object = ?")
        params.append(obj)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    return ws.dicts(f"SELECT * FROM audit_log {clause} ORDER BY seq DESC LIMIT ?", [*params, limit])


def export(ws: Workspace, actor: Actor, out: Path) -> dict[str, Any]:
    """Write the whole chain as JSON Lines (one header line with the recipe, then rows) for outside checking."""
    require(actor, "read:audit")
    rows = ws.rows(
        "SELECT seq, ts, actor, role, action, object, details, prev_hash, hash FROM audit_log ORDER BY seq"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        fh.write(canonical({"format": "workbench-audit-v1", "recipe": __doc__.strip(), "rows": len(rows)}) + "\n")
        for seq, ts, user, role, action, obj, details, prev, digest in rows:
            fh.write(canonical({
                "seq": seq, "ts": ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": user,
                "role": role, "action": action, "object": obj,
                "details": json.loads(details) if isinstance(details, str) else details,
                "prev_hash": prev, "hash": digest,
            }) + "\n")
    file_hash = hashlib.sha256(out.read_bytes()).hexdigest()
    record(ws, actor, "audit.export", str(out), {"rows": len(rows), "sha256": file_hash})
    return {"path": str(out), "rows": len(rows), "sha256": file_hash}


def verify_export(path: Path) -> ChainCheck:
    """Check an exported audit file on its own, without a workspace."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) if lines else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkbenchError(f"{path}: cannot read an audit export ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != "workbench-audit-v1":
        raise WorkbenchError(f"{path}: not a workbench audit export (no workbench-audit-v1 header line)")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            r = json.loads(line)
            rows.append((r["seq"], r["ts"], r["actor"], r["role"], r["action"], r["object"], r["details"],
                         r["prev_hash"], r["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkbenchError(f"{path}: line {n} is not an audit row ({exc})") from exc
    result = check_rows(rows)
    if result.ok and header.get("rows") is not None and header["rows"] != len(rows):
        return ChainCheck(False, len(rows), len(rows) + 1,
                          f"the header announces {header['rows']} rows but the file holds {len(rows)} (truncated)")
    return result
