"""The audit trail: every write and every read of decision-level data, in a SHA-256 hash chain.

Row hash = sha256 of the canonical JSON array
    [seq, ts (ISO-8601 UTC, microseconds), actor, role, action, object, details, prev_hash]
with details serialised as canonical JSON (sorted keys, no spaces). The first row's prev_hash is 64 zeros.
An auditor can re-compute the chain from an export with nothing but this recipe.

A chain that verifies proves no row was edited in place; it cannot show that the newest rows were deleted, or that
a row was edited and every later hash re-computed. An anchor can: the head (seq, hash) written down outside the
workspace (`workbench audit anchor`), optionally with an HMAC under a key the workspace never holds. The row at the
anchor's seq must still exist with the anchor's hash (`verify --anchor`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from workbench.access import Actor, Principal, check_actor, require, workspace_id
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace

GENESIS = "0" * 64
EXPORT_FORMAT = "workbench-audit-v1"
# What a Principal (a name holding no role) may appear in: sign-in failures, refusals, recovery, system clean-up.
PRINCIPAL_ACTIONS = frozenset({"auth.failure", "auth.locked", "access.refused", "account.unlock", "ingest.undone"})
_write_lock = threading.Lock()


def canonical(details: Any) -> str:
    """Canonical JSON text of a value: sorted keys, no spaces, non-JSON types as strings."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def row_hash(seq: int, ts: datetime, actor: str, role: str, action: str, obj: str | None, details: Any,
             prev_hash: str) -> str:
    """The hash of one audit row under the documented recipe."""
    payload = canonical([seq, _stamp(ts), actor, role, action, obj, details, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def head(ws: Workspace) -> tuple[int, str]:
    """The chain head as (seq, hash): the newest row, or (0, GENESIS) for an empty chain. Reports carry it."""
    last = ws.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    return (0, GENESIS) if last is None else (int(last[0]), str(last[1]))


def record(ws: Workspace, actor: Actor | Principal, action: str, obj: str | None = None, details: Any = None) -> int:
    """Append one row to the audit chain (inside the caller's transaction, if any) and return its seq.

    The actor must be one the workspace accepts (on a workspace with accounts: issued by sign-in); a Principal
    (no role) only for sign-in failures, refusals, local recovery and system clean-up."""
    if isinstance(actor, Principal):
        if action not in PRINCIPAL_ACTIONS:
            raise PermissionDenied(f"{actor.user} holds no role: an audit row for {action} needs a signed-in actor")
    else:
        check_actor(ws, actor, f"write the audit row {action}")
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
    """The result of walking the chain: ok, rows checked, the first bad row with the reason, and the head."""

    ok: bool
    rows: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    anchored: bool = False  # checked against an anchor: truncation and re-hashing up to it are ruled out

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for --json output."""
        return {"ok": self.ok, "rows": self.rows, "first_bad_seq": self.first_bad_seq, "reason": self.reason,
                "head_seq": self.head_seq, "head_hash": self.head_hash, "anchored": self.anchored}

    def failed(self, seq: int | None, reason: str) -> ChainCheck:
        """The same check, now failed at seq for the reason."""
        return replace(self, ok=False, first_bad_seq=seq, reason=reason)


def _stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    return ChainCheck(True, len(rows), head_seq=expected_seq - 1, head_hash=prev_hash)


# -- anchors: the head kept outside the workspace -----------------------------------------------------------

ANCHOR_FORMAT = "workbench-audit-anchor-v1"
MIN_KEY_BYTES = 16
_ANCHOR_LINE = re.compile(re.escape(ANCHOR_FORMAT) + r"(?: +[a-z0-9-]+=\S+)+")


@dataclass(frozen=True)
class Anchor:
    """The chain head at a moment, as written outside the workspace; `mac` is an HMAC-SHA256 when keyed."""

    workspace: str
    seq: int
    hash: str
    time: str
    mac: str | None = None

    def message(self) -> bytes:
        """The bytes the HMAC covers."""
        return canonical([ANCHOR_FORMAT, self.workspace, self.seq, self.hash, self.time]).encode("utf-8")

    def line(self) -> str:
        """One line to paste into a ticket (and the anchor file's content)."""
        fields = {"workspace": quote(self.workspace, safe=":@-_."), "seq": self.seq, "hash": self.hash,
                  "time": self.time, "hmac-sha256": self.mac}
        return " ".join([ANCHOR_FORMAT, *(f"{k}={v}" for k, v in fields.items() if v is not None)])

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for --json output."""
        return {"format": ANCHOR_FORMAT, "workspace": self.workspace, "seq": self.seq, "hash": self.hash,
                "time": self.time, "hmac_sha256": self.mac, "line": self.line()}

    @classmethod
    def parse(cls, text: str, source: str = "anchor") -> Anchor:
        """The anchor in a text (the file `audit anchor` wrote, or a ticket the line was pasted into)."""
        found = _ANCHOR_LINE.search(text or "")
        if not found:
            raise WorkbenchError(f"{source}: no {ANCHOR_FORMAT} line (write one with `workbench audit anchor`)")
        fields = dict(part.split("=", 1) for part in found.group(0).split()[1:])
        try:
            anchor = cls(unquote(fields["workspace"]), int(fields["seq"]), fields["hash"], fields["time"],
                         fields.get("hmac-sha256"))
        except (KeyError, ValueError) as exc:
            raise WorkbenchError(f"{source}: incomplete anchor line ({exc})") from exc
        if anchor.seq < 0 or not re.fullmatch(r"[0-9a-f]{64}", anchor.hash):
            raise WorkbenchError(f"{source}: the anchor's seq or hash is malformed")
        return anchor


def anchor_key(env_var: str | None) -> bytes | None:
    """The HMAC key held in the environment variable (None without one); at least 16 bytes."""
    if not env_var:
        return None
    value = os.environ.get(env_var, "")
    if len(value.encode("utf-8")) < MIN_KEY_BYTES:
        raise WorkbenchError(f"{env_var} must hold the anchor key (at least {MIN_KEY_BYTES} bytes): "
                             f"{'it is not set' if not value else 'it is too short'}")
    return value.encode("utf-8")


def _sign(anchor: Anchor, key: bytes) -> str:
    return hmac.new(key, anchor.message(), hashlib.sha256).hexdigest()


def read_anchor(path: Path) -> Anchor:
    """The anchor in a file."""
    try:
        return Anchor.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: cannot read the anchor ({exc})") from exc


def take_anchor(ws: Workspace, actor: Actor, out: Path | None = None, key: bytes | None = None) -> Anchor:
    """Record `audit.anchor`, return the head it makes (HMAC'd with key), and write it to out when given."""
    require(actor, "read:audit", ws=ws)
    with ws.transaction():
        record(ws, actor, "audit.anchor", str(out) if out else None, {"hmac": key is not None})
        seq, digest, ts = ws.one("SELECT seq, hash, ts FROM audit_log ORDER BY seq DESC LIMIT 1")
    anchor = Anchor(workspace_id(ws), int(seq), digest, _stamp(ts))
    if key is not None:
        anchor = replace(anchor, mac=_sign(anchor, key))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(anchor.line() + "\n", encoding="utf-8")
    return anchor


def against_anchor(result: ChainCheck, rows: list[tuple], anchor: Anchor, key: bytes | None,
                   workspace: str | None) -> ChainCheck:
    """The chain check, failed unless the row at the anchor's seq still exists with the anchor's hash."""
    if anchor.mac is not None and key is None:
        raise WorkbenchError("the anchor carries an HMAC: give --key-env with the variable that holds its key")
    result = replace(result, anchored=True)
    if key is not None:
        if anchor.mac is None:
            return result.failed(None, "a key was given but the anchor carries no HMAC: it may be forged")
        if not hmac.compare_digest(anchor.mac, _sign(anchor, key)):
            return result.failed(None, "the anchor's HMAC does not match: the anchor was forged or the key is wrong")
    if workspace is not None and workspace != anchor.workspace:
        return result.failed(None, f"the anchor was taken on workspace {anchor.workspace}, not this one ({workspace})")
    if not result.ok:
        return result
    if anchor.seq > result.head_seq:
        gone = "every row was deleted" if not rows else f"the chain now ends at seq {result.head_seq}"
        return result.failed(result.head_seq + 1, f"truncated: the anchor holds seq {anchor.seq} but {gone}")
    if anchor.seq and rows[anchor.seq - 1][8] != anchor.hash:
        return result.failed(anchor.seq, f"row {anchor.seq}'s hash differs from the anchor's: rows up to it were "
                                         "deleted or edited and the chain re-hashed since the anchor")
    return result


# -- verifying, reading, exporting ----------------------------------------------------------------------------

_COLUMNS = "seq, ts, actor, role, action, object, details, prev_hash, hash"


def verify(ws: Workspace, actor: Actor, anchor: Anchor | None = None, key: bytes | None = None) -> ChainCheck:
    """Re-compute the whole chain and name the first row edited, deleted or reordered; with an anchor, also
    any truncation or re-hashing since it."""
    require(actor, "read:audit", ws=ws)
    rows = ws.rows(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
    result = check_rows(rows)
    if anchor is not None:
        result = against_anchor(result, rows, anchor, key, workspace_id(ws))
    details = result.as_dict()
    if anchor is not None:
        details["anchor"] = {"seq": anchor.seq, "hash": anchor.hash, "time": anchor.time, "hmac": bool(anchor.mac)}
    record(ws, actor, "audit.verify", None, details)
    return result


def entries(ws: Workspace, actor: Actor, limit: int = 1000, action_prefix: str | None = None,
            obj: str | None = None) -> list[dict[str, Any]]:
    """The newest audit rows, optionally filtered by action prefix or object."""
    require(actor, "read:audit", ws=ws)
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
    """Write the whole chain as JSON Lines (a header line with the recipe and the head it was made at, then the
    rows) for outside checking."""
    require(actor, "read:audit", ws=ws)
    rows = ws.rows(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
    seq, digest = (rows[-1][0], rows[-1][8]) if rows else (0, GENESIS)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        fh.write(canonical({"format": EXPORT_FORMAT, "recipe": __doc__.strip(), "rows": len(rows),
                            "workspace": workspace_id(ws), "head": {"seq": seq, "hash": digest}}) + "\n")
        for r_seq, ts, user, role, action, obj, details, prev, r_hash in rows:
            fh.write(canonical({
                "seq": r_seq, "ts": _stamp(ts), "actor": user, "role": role, "action": action, "object": obj,
                "details": json.loads(details) if isinstance(details, str) else details,
                "prev_hash": prev, "hash": r_hash,
            }) + "\n")
    file_hash = hashlib.sha256(out.read_bytes()).hexdigest()
    record(ws, actor, "audit.export", str(out), {"rows": len(rows), "sha256": file_hash, "head_seq": seq,
                                                 "head_hash": digest})
    return {"path": str(out), "rows": len(rows), "sha256": file_hash, "head_seq": seq, "head_hash": digest}


def verify_export(path: Path, anchor: Anchor | None = None, key: bytes | None = None) -> ChainCheck:
    """Check an exported audit file on its own, from its rows alone: the header is never trusted (it can only
    add a failure); truncation and re-hashing are ruled out only against an anchor."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) if lines else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkbenchError(f"{path}: cannot read an audit export ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise WorkbenchError(f"{path}: not a workbench audit export (no {EXPORT_FORMAT} header line)")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            rows.append((r["seq"], r["ts"], r["actor"], r["role"], r["action"], r["object"], r["details"],
                         r["prev_hash"], r["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkbenchError(f"{path}: line {n} is not an audit row ({exc})") from exc
    result = check_rows(rows)
    claimed = header.get("head") if isinstance(header.get("head"), dict) else {}
    if result.ok and header.get("rows") is not None and header["rows"] != len(rows):
        result = result.failed(len(rows) + 1, f"the header announces {header['rows']} rows but the file holds "
                                              f"{len(rows)} (truncated)")
    elif result.ok and claimed and (claimed.get("seq"), claimed.get("hash")) != (result.head_seq, result.head_hash):
        result = result.failed(result.head_seq + 1, "the header's head differs from the last row (altered)")
    if anchor is not None:
        workspace = header.get("workspace") if isinstance(header.get("workspace"), str) else None
        result = against_anchor(result, rows, anchor, key, workspace)
    return result
