"""Per-system trace settings: content policy (keep, mask, drop), a canary string, the organisation's domains."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.store import Workspace

POLICIES = ("keep", "mask", "drop")


def configure(ws: Workspace, actor: Actor, system_id: str, *, content_policy: str | None = None,
              canary: str | None = None, org_domains: list[str] | None = None) -> dict[str, Any]:
    """Set a system's content policy (applies to spans ingested from now on), canary and organisation domains."""
    require(actor, "write:settings", ws)
    if content_policy is not None and content_policy not in POLICIES:
        raise WorkbenchError(f"unknown content policy {content_policy!r}; use keep, mask or drop")
    domains = None if org_domains is None else sorted({d.strip().lower().lstrip("@") for d in org_domains
                                                       if d.strip()})
    with ws.transaction():
        ws.execute("INSERT OR IGNORE INTO trace_systems (system_id) VALUES (?)", [system_id])
        ws.execute("UPDATE trace_systems SET content_policy = coalesce(?, content_policy), "
                   "canary = coalesce(?, canary), org_domains = coalesce(?, org_domains), updated_at = ?, "
                   "updated_by = ? WHERE system_id = ?",
                   [content_policy, canary, domains, datetime.now(UTC), actor.user, system_id])
        audit.record(ws, actor, "traces.configure", system_id,
                     {"content_policy": content_policy, "canary_set": canary is not None, "org_domains": domains})
    return settings(ws, actor, system_id)


def settings(ws: Workspace, actor: Actor, system_id: str) -> dict[str, Any]:
    """A system's trace settings (defaults when none were set); the canary itself only for read:personal."""
    require(actor, "read:aggregates", ws)
    row = ws.dicts("SELECT * FROM trace_systems WHERE system_id = ?", [system_id])
    out = row[0] if row else {"system_id": system_id, "content_policy": "keep", "canary": None, "org_domains": None}
    out["canary_set"] = bool(out.get("canary"))
    if not actor.can("read:personal"):
        out["canary"] = None
    return out


def org_domains(ws: Workspace) -> dict[str, list[str]]:
    """Configured organisation domains per system (no permission check: detectors' own use)."""
    return {s: list(d or []) for s, d in ws.rows("SELECT system_id, org_domains FROM trace_systems")}


def canaries(ws: Workspace) -> dict[str, str]:
    """Configured canary strings per system (no permission check: detectors' own use)."""
    return {s: c for s, c in ws.rows("SELECT system_id, canary FROM trace_systems WHERE canary IS NOT NULL")}
