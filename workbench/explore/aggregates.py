"""Aggregate reads (need only `read:aggregates`): one principal's activity per time bucket, metric points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pandas as pd

from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.explore.sql import SqlParams, as_list, in_list, run_query, time_window
from workbench.store import Workspace


def principal_activity(
    ws: Workspace,
    actor: Actor,
    system_id: str,
    principal: str,
    bucket: str = "1 hour",
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """Per time bucket: decisions, scores, predictions, IPs and sessions of one principal (aggregates)."""
    require(actor, "read:aggregates", ws)
    _check_interval(ws, bucket)
    p = SqlParams()
    conds = [f"system_id = {p(system_id)}", f"principal = {p(principal)}", *time_window(p, since, until)]
    return run_query(
        ws,
        f"""
        SELECT time_bucket({p(bucket)}::INTERVAL, ts) AS bucket, count(*) AS decisions,
               avg(score) AS mean_score, min(score) AS min_score, max(score) AS max_score,
               count(DISTINCT prediction) AS predictions, mode(prediction) AS top_prediction,
               count(DISTINCT source_ip) AS source_ips, count(DISTINCT session_id) AS sessions,
               avg(latency_ms) AS mean_latency_ms, count(DISTINCT model_version) AS model_versions
        FROM decisions WHERE {" AND ".join(conds)} GROUP BY ALL ORDER BY bucket""",
        p.values,
    )


def _check_interval(ws: Workspace, bucket: str) -> None:
    try:
        ok = ws.scalar("SELECT TRY_CAST(? AS INTERVAL) > INTERVAL 0 SECOND", [str(bucket)])
    except duckdb.Error:
        ok = False
    if not ok:
        raise WorkbenchError(
            f"bucket {bucket!r} is not a positive interval (e.g. '15 minutes', '1 hour', '1 day')"
        )


def metric_window(
    ws: Workspace,
    actor: Actor,
    system_id: str,
    metrics: str | Sequence[str] | None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """Metric points (ts, metric, value, labels) of a system in [since, until), named metrics or all."""
    require(actor, "read:aggregates", ws)
    p = SqlParams()
    conds = [f"system_id = {p(system_id)}"]
    names = as_list(metrics)
    if names is not None:
        conds.append(in_list(p, names, "metric"))
    conds += time_window(p, since, until)
    return run_query(
        ws,
        f"SELECT ts, metric, value, labels FROM metrics WHERE {' AND '.join(conds)} ORDER BY metric, ts",
        p.values,
    )
