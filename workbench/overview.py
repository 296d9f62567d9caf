"""Workspace-level aggregates for the landing page and `workbench status` (no decision-level rows)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.access import Actor, require
from workbench.store import Workspace


def workspace_summary(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """Systems with decision counts, time span, principals and versions; totals of metrics and sources."""
    require(actor, "read:aggregates")
    systems = ws.dicts("""
        SELECT system_id, count(*) AS decisions, min(ts) AS first, max(ts) AS last,
               count(DISTINCT principal) AS principals, list(DISTINCT model_version ORDER BY model_version) AS versions
        FROM decisions GROUP BY system_id ORDER BY system_id""")
    return {
        "schema_version": ws.schema_version(),
        "systems": systems,
        "metric_points": ws.scalar("SELECT count(*) FROM metrics"),
        "sources": ws.scalar("SELECT count(*) FROM sources"),
        "quarantined": ws.scalar("SELECT count(*) FROM quarantine"),
    }


def decisions_per_day(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """Decisions per system per UTC day."""
    require(actor, "read:aggregates")
    return ws.df("""SELECT system_id, date_trunc('day', ts) AS day, count(*) AS decisions
                    FROM decisions GROUP BY ALL ORDER BY day, system_id""")


def sources_table(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """The custody table of ingested files."""
    require(actor, "read:aggregates")
    return ws.df("""SELECT source_id, path, sha256, size_bytes, kind, format, ingested_at, actor, rows_read,
                           rows_loaded, duplicates, rows_quarantined FROM sources ORDER BY source_id""")
