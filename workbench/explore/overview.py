"""Workspace-level aggregates for the landing page and `workbench status` (no decision-level rows)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.access import Actor, require
from workbench.ingest import typed
from workbench.store import Workspace


def decision_rollup(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """One aggregated scan of the decisions: count, errors and span per system, UTC day, model version and hash,
    with each system's distinct principals (system_principals); small whatever the number of decisions."""
    require(actor, "read:aggregates", ws)
    return ws.named("decision_rollup").df()


def _systems(rollup: pd.DataFrame) -> list[dict[str, Any]]:
    """Per system: decisions, time span, distinct principals and model versions (from the rollup)."""
    if rollup.empty:
        return []
    g = rollup.groupby("system_id", sort=True)
    out = pd.DataFrame({"decisions": g["decisions"].sum(), "first": g["first"].min(), "last": g["last"].max(),
                        "principals": g["system_principals"].max()})
    versions = g["model_version"].agg(lambda v: sorted({str(x) for x in v.dropna()}))
    rows = []
    for system_id, row in out.iterrows():
        rows.append({"system_id": system_id, "decisions": int(row["decisions"]),
                     "first": row["first"].to_pydatetime(), "last": row["last"].to_pydatetime(),
                     "principals": int(row["principals"]), "versions": versions[system_id]})
    return rows


def _per_day(rollup: pd.DataFrame) -> pd.DataFrame:
    """Decisions per system per UTC day with the share that errored (from the rollup)."""
    if rollup.empty:
        return pd.DataFrame(columns=["system_id", "day", "decisions", "error_share"])
    out = rollup.groupby(["system_id", "day"], as_index=False)[["decisions", "errors"]].sum()
    out["error_share"] = out["errors"] / out["decisions"]
    return out.drop(columns="errors").sort_values(["day", "system_id"], ignore_index=True)


def _models_seen(rollup: pd.DataFrame) -> pd.DataFrame:
    """Model versions and logged artifact hashes with decision counts and time span (from the rollup)."""
    cols = ["system_id", "model_version", "model_sha256", "decisions", "first", "last"]
    if rollup.empty:
        return pd.DataFrame(columns=cols)
    out = (rollup.groupby(["system_id", "model_version", "model_sha256"], dropna=False, as_index=False)
           .agg(decisions=("decisions", "sum"), first=("first", "min"), last=("last", "max")))
    return out[cols].sort_values(["system_id", "model_version", "first"], ignore_index=True)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values (None for missing, datetime for timestamps), ready for JSON."""
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()} for r in rows]


def workspace_summary(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """Systems with decision counts, time span, principals and versions; decisions per day and model hashes
    seen in the logs (all from one scan); totals of metrics and sources."""
    require(actor, "read:aggregates", ws)
    rollup = decision_rollup(ws, actor)
    counts = ws.one("""SELECT (SELECT count(*) FROM metrics), (SELECT count(*) FROM sources),
                              (SELECT count(*) FROM quarantine)""") or (0, 0, 0)
    return {
        "schema_version": ws.schema_version(),
        "systems": _systems(rollup),
        "metric_points": counts[0],
        "sources": counts[1],
        "quarantined": counts[2],
        "decisions_per_day": _records(_per_day(rollup)),
        "models_seen": _records(_models_seen(rollup)),
    }


def decisions_per_day(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """Decisions per system per UTC day, with the share that errored."""
    require(actor, "read:aggregates", ws)
    return _per_day(decision_rollup(ws, actor))


def sources_table(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """The custody table of ingested files."""
    require(actor, "read:aggregates", ws)
    return ws.named("sources").df()


# -- added by the app helper (additive): aggregates the Overview and Drift pages chart ----------------------


def models_seen(ws: Workspace, actor: Actor) -> pd.DataFrame:
    """Model versions and artifact hashes as seen in the decision logs, with decision counts and time span."""
    require(actor, "read:aggregates", ws)
    return _models_seen(decision_rollup(ws, actor))


def metric_series(ws: Workspace, actor: Actor, system_id: str, bucket: str = "1 hour") -> pd.DataFrame:
    """Each metric of a system averaged per time bucket (and its peak), small enough to chart any span."""
    require(actor, "read:aggregates", ws)
    return ws.df("""SELECT time_bucket(?::INTERVAL, ts) AS ts, metric, avg(value) AS value, max(value) AS peak
                    FROM metrics WHERE system_id = ? GROUP BY ALL ORDER BY metric, ts""", [bucket, system_id])


def feature_drift(ws: Workspace, actor: Actor, system_id: str, bucket: str = "1 day",
                  max_rows: int = 400_000) -> pd.DataFrame:
    """Per feature and period, drift against the first period: |mean shift| in baseline SDs for numbers,
    total variation distance of the value mix for strings and bools (a sample above max_rows decisions)."""
    require(actor, "read:aggregates", ws)
    types = dict(ws.rows("SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY feature",
                         [system_id]))
    if not types:
        return pd.DataFrame(columns=["bucket", "feature", "type", "drift", "n"])
    total = ws.scalar("SELECT count(*) FROM decisions WHERE system_id = ?", [system_id]) or 0
    pct = min(100.0, 100.0 * max_rows / total) if total else 100.0
    sample = f"USING SAMPLE {pct:.4f}% (system, 7)" if pct < 100 else ""
    # Feature names come from the logs: they reach DuckDB as parameters (or through workbench.store.sqltext's
    # quoting) only; the temp table's columns are positional (c0, c1, ...).
    names = list(types)
    kinds = ["number" if types[f] == "number" else "string" for f in names]
    # typed columns written at ingest (workbench.ingest.typed); the JSON is parsed only for rows without them
    rel, items, rparams = typed.relation(ws.con, system_id, dict(zip(names, kinds, strict=True)),
                                         source="decisions", sample=sample)
    cols = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate(items))
    step = int(ws.scalar("SELECT epoch_us(?::INTERVAL)", [bucket]) or 86_400_000_000)
    ws.execute(f"""CREATE OR REPLACE TEMP TABLE _wb_drift AS
        SELECT make_timestamptz((epoch_us(ts) // {step}) * {step}) AS bucket, {cols} FROM {rel}""", rparams)
    parts, params = [], []
    for i, (f, kind) in enumerate(zip(names, kinds, strict=True)):
        q = f"c{i}"
        params.append(f)
        if kind == "number":
            parts.append(f"""SELECT bucket, ?::VARCHAR AS feature, 'number' AS type,
            abs(avg({q}) - first(avg({q})) OVER w) / nullif(first(stddev_samp({q})) OVER w, 0) AS drift,
            count({q}) AS n FROM _wb_drift GROUP BY bucket WINDOW w AS (ORDER BY bucket)""")
            continue
        parts.append(f"""SELECT bucket, ?::VARCHAR AS feature, 'category' AS type,
            0.5 * sum(abs(p - coalesce(p0, 0))) AS drift, sum(c) AS n FROM (
              SELECT b.bucket, b.v, b.c, b.c / sum(b.c) OVER (PARTITION BY b.bucket) AS p, z.p0 FROM
                (SELECT bucket, coalesce({q}, '∅') AS v, count(*) AS c FROM _wb_drift GROUP BY ALL) b
                LEFT JOIN (SELECT coalesce({q}, '∅') AS v, count(*) / sum(count(*)) OVER () AS p0 FROM _wb_drift
                           WHERE bucket = (SELECT min(bucket) FROM _wb_drift) GROUP BY ALL) z USING (v))
            GROUP BY bucket""")
    try:
        out = ws.df(" UNION ALL ".join(parts) + " ORDER BY feature, bucket", params) if parts else pd.DataFrame()
    finally:
        ws.execute("DROP TABLE IF EXISTS _wb_drift")
    return out
