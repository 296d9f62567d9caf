"""Workspace-level aggregates for the landing page and `workbench status` (no decision-level rows)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.access import Actor, require
from workbench.store import Workspace


def workspace_summary(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """Systems with decision counts, time span, principals and versions; totals of metrics and sources."""
    require(actor, "read:aggregates")
    cur = ws.named("systems_summary")
    names = [d[0] for d in cur.description]
    systems = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
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
    return ws.named("decisions_per_day").df()


def sources_table(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """The custody table of ingested files."""
    require(actor, "read:aggregates")
    return ws.named("sources").df()


# -- added by the app helper (additive): aggregates the Overview and Drift pages chart ----------------------


def models_seen(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """Model versions and artifact hashes as seen in the decision logs, with decision counts and time span."""
    require(actor, "read:aggregates")
    return ws.df("""SELECT system_id, model_version, model_sha256, count(*) AS decisions, min(ts) AS first,
                           max(ts) AS last FROM decisions GROUP BY ALL ORDER BY system_id, model_version, first""")


def metric_series(ws: Workspace, actor: Actor, system_id: str, bucket: str = "1 hour") -> pd.DataFrame:
    """Each metric of a system averaged per time bucket (and its peak), small enough to chart any span."""
    require(actor, "read:aggregates")
    return ws.df("""SELECT time_bucket(?::INTERVAL, ts) AS ts, metric, avg(value) AS value, max(value) AS peak
                    FROM metrics WHERE system_id = ? GROUP BY ALL ORDER BY metric, ts""", [bucket, system_id])


def feature_drift(ws: Workspace, actor: Actor, system_id: str, bucket: str = "1 day",
                  max_rows: int = 400_000) -> pd.DataFrame:
    """Per feature and period, drift against the first period: |mean shift| in baseline SDs for numbers,
    total variation distance of the value mix for strings and bools (a sample above max_rows decisions)."""
    require(actor, "read:aggregates")
    types = dict(ws.rows("SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY feature",
                         [system_id]))
    if not types:
        return pd.DataFrame(columns=["bucket", "feature", "type", "drift", "n"])
    total = ws.scalar("SELECT count(*) FROM decisions WHERE system_id = ?", [system_id]) or 0
    pct = min(100.0, 100.0 * max_rows / total) if total else 100.0
    sample = f"USING SAMPLE {pct:.4f}% (system, 7)" if pct < 100 else ""
    spec = "{" + ",".join(f'"{f}":"{"DOUBLE" if t == "number" else "VARCHAR"}"'
                          for f, t in types.items() if '"' not in f and "\\" not in f) + "}"
    num = [f for f, t in types.items() if t == "number" and '"' not in f]
    cat = [f for f, t in types.items() if t != "number" and '"' not in f]
    step = int(ws.scalar("SELECT epoch_us(?::INTERVAL)", [bucket]) or 86_400_000_000)
    ws.execute(f"""CREATE OR REPLACE TEMP TABLE _wb_drift AS
        SELECT make_timestamptz((epoch_us(ts) // {step}) * {step}) AS bucket,
               json_transform(features, '{spec}') AS f
        FROM (SELECT ts, features FROM decisions WHERE system_id = ? {sample})""", [system_id])
    parts = []
    for f in num:
        q = f'f."{f}"'
        parts.append(f"""SELECT bucket, '{f.replace("'", "''")}' AS feature, 'number' AS type,
            abs(avg({q}) - first(avg({q})) OVER w) / nullif(first(stddev_samp({q})) OVER w, 0) AS drift,
            count({q}) AS n FROM _wb_drift GROUP BY bucket WINDOW w AS (ORDER BY bucket)""")
    for f in cat:
        q = f'f."{f}"'
        name = f.replace("'", "''")
        parts.append(f"""SELECT bucket, '{name}' AS feature, 'category' AS type, 0.5 * sum(abs(p - coalesce(p0, 0)))
            AS drift, sum(c) AS n FROM (
              SELECT b.bucket, b.v, b.c, b.c / sum(b.c) OVER (PARTITION BY b.bucket) AS p, z.p0 FROM
                (SELECT bucket, coalesce({q}, '∅') AS v, count(*) AS c FROM _wb_drift GROUP BY ALL) b
                LEFT JOIN (SELECT coalesce({q}, '∅') AS v, count(*) / sum(count(*)) OVER () AS p0 FROM _wb_drift
                           WHERE bucket = (SELECT min(bucket) FROM _wb_drift) GROUP BY ALL) z USING (v))
            GROUP BY bucket""")
    try:
        out = ws.df(" UNION ALL ".join(parts) + " ORDER BY feature, bucket") if parts else pd.DataFrame()
    finally:
        ws.execute("DROP TABLE IF EXISTS _wb_drift")
    return out
