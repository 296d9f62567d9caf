"""Personal-data features: marked per system, masked for roles without `read:personal`.

A masked value is a keyed hash, '#' + 12 hex digits of sha256(key | system | feature | value), so equal values
stay equal (an analyst can still group and compare) but cannot be read back. The key is a random workspace
secret in `access_secrets` (never reachable through ad-hoc SQL). Values are hashed from a canonical text:
numbers as Python's repr of the float (DuckDB's DOUBLE -> VARCHAR gives the same), booleans as true/false,
strings as they are; the SQL form (`mask_sql`) and the Python form (`mask_value`) give identical results.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.store import Workspace

MASK = "***"
_KEY_NAME = "masking_key"


def masked_for(actor: Actor) -> bool:
    """Whether personal features must be masked for this actor."""
    return not actor.can("read:personal")


def catalog(ws: Workspace, system_id: str) -> dict[str, str]:
    """Feature name -> type (number, string, bool) of one system, from feature_catalog."""
    return {
        f: t
        for f, t in ws.rows(
            "SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY feature", [system_id]
        )
    }


def mark_personal(
    ws: Workspace, actor: Actor, system_id: str, features: Iterable[str], personal: bool = True
) -> list[str]:
    """Mark (or unmark) features of a system as personal data; returns the system's personal features."""
    require(actor, "write:settings")
    features = list(dict.fromkeys(features))
    if not features:
        raise WorkbenchError("give at least one feature to mark")
    known = catalog(ws, system_id)
    if not known:
        raise WorkbenchError(f"unknown system {system_id!r} (no features in the catalog)")
    unknown = [f for f in features if f not in known]
    if unknown:
        raise WorkbenchError(
            f"system {system_id} has no feature(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    with ws.transaction():
        for f in features:
            if personal:
                ws.execute(
                    "INSERT OR IGNORE INTO personal_features VALUES (?, ?, now(), ?)",
                    [system_id, f, actor.user],
                )
            else:
                ws.execute(
                    "DELETE FROM personal_features WHERE system_id = ? AND feature = ?", [system_id, f]
                )
        audit.record(
            ws, actor, "personal.mark" if personal else "personal.unmark", system_id, {"features": features}
        )
    return personal_features(ws, system_id)


def personal_features(ws: Workspace, system_id: str) -> list[str]:
    """The features of a system marked as personal data."""
    return [
        r[0]
        for r in ws.rows(
            "SELECT feature FROM personal_features WHERE system_id = ? ORDER BY feature", [system_id]
        )
    ]


def all_personal(ws: Workspace) -> dict[str, list[str]]:
    """Every system's personal features."""
    out: dict[str, list[str]] = {}
    for system_id, feature in ws.rows("SELECT system_id, feature FROM personal_features ORDER BY ALL"):
        out.setdefault(system_id, []).append(feature)
    return out


def any_personal(ws: Workspace) -> bool:
    """Whether any feature of any system is marked personal."""
    return bool(ws.scalar("SELECT count(*) FROM personal_features"))


def masking_key(ws: Workspace) -> str | None:
    """The workspace's masking key, created on first use (None in a read-only workspace without one)."""
    key = ws.scalar("SELECT value FROM access_secrets WHERE name = ?", [_KEY_NAME])
    if key is None and not ws.read_only:
        ws.execute("INSERT OR IGNORE INTO access_secrets VALUES (?, ?)", [_KEY_NAME, secrets.token_hex(32)])
        key = ws.scalar("SELECT value FROM access_secrets WHERE name = ?", [_KEY_NAME])
    return key


def canonical_text(value: Any) -> str | None:
    """The text a value is hashed from (see the module docstring)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    if hasattr(value, "item"):  # numpy scalars
        return canonical_text(value.item())
    return str(value)


def mask_value(key: str | None, system_id: str, feature: str, value: Any) -> str | None:
    """The masked form of one value (None stays None)."""
    text = canonical_text(value)
    if text is None:
        return None
    if key is None:
        return MASK
    return "#" + hashlib.sha256(f"{key}|{system_id}|{feature}|{text}".encode()).hexdigest()[:12]


def mask_sql(system_sql: str, text_sql: str, key_sql: str, feature_sql: str) -> str:
    """SQL for the masked value of a VARCHAR expression, given placeholders for the key and feature name."""
    return (
        f"CASE WHEN ({text_sql}) IS NULL THEN NULL "
        f"ELSE '#' || left(sha256({key_sql} || '|' || ({system_sql}) "
        f"|| '|' || {feature_sql} || '|' || ({text_sql})), 12) END"
    )


def mask_features(
    ws: Workspace, actor: Actor, system_id: str, features: dict[str, Any] | str
) -> dict[str, Any]:
    """A features object (dict or JSON text) with personal values masked for this actor."""
    values = json.loads(features) if isinstance(features, str) else dict(features)
    if not masked_for(actor):
        return values
    personal = set(personal_features(ws, system_id))
    if personal:
        key = masking_key(ws)
        values = {k: (mask_value(key, system_id, k, v) if k in personal else v) for k, v in values.items()}
    return values


def mask_frame(
    ws: Workspace, actor: Actor, df: pd.DataFrame, system_id: str | None = None, prefix: str = "f."
) -> pd.DataFrame:
    """A copy of a decision-level frame with personal values masked for this actor.

    Masks columns named `<prefix><feature>` and, if present, a `features` column (dict or JSON text).
    The system comes from `system_id` or, per row, from the frame's `system_id` column.
    """
    if not masked_for(actor) or df.empty:
        return df
    marks = all_personal(ws)
    if system_id is not None:
        marks = {system_id: marks.get(system_id, [])}
    if not any(marks.values()):
        return df
    key = masking_key(ws)
    out = df.copy()
    for sys_id, feats in marks.items():
        rows = (
            (out["system_id"] == sys_id)
            if system_id is None and "system_id" in out
            else pd.Series(system_id is not None, index=out.index)
        )
        if not rows.any():
            continue
        for f in feats:
            col = prefix + f
            if col in out.columns:
                out[col] = out[col].astype(object)
                out.loc[rows, col] = out.loc[rows, col].map(_masker(key, sys_id, f))
        if "features" in out.columns:
            personal = set(feats)
            out.loc[rows, "features"] = out.loc[rows, "features"].map(
                lambda v, s=sys_id, p=personal: _mask_json(v, key, s, p)
            )
    return out


def _masker(key: str | None, system_id: str, feature: str):  # noqa: ANN202 - a small closure
    """mask_value for one column, computed once per distinct value."""
    cache: dict[str | None, str | None] = {}

    def mask(value: Any) -> str | None:
        text = canonical_text(value)
        if text not in cache:
            cache[text] = mask_value(key, system_id, feature, value)
        return cache[text]

    return mask


def _mask_json(value: Any, key: str | None, system_id: str, personal: set[str]) -> Any:
    if value is None:
        return None
    was_text = isinstance(value, str)
    values = json.loads(value) if was_text else dict(value)
    values = {k: (mask_value(key, system_id, k, v) if k in personal else v) for k, v in values.items()}
    return json.dumps(values) if was_text else values
