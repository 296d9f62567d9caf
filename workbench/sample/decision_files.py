"""The sample's decision files: one zstd parquet per system, sorted by time, with decision and session ids."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from workbench.sample.systems import CONFIGS
from workbench.store.sqltext import quote_literal

SESSION_GAP_MINUTES = 30


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for writing sample files: one thread (byte-identical output), UTC."""
    con = duckdb.connect()
    con.execute("SET threads = 1")  # byte-identical output run after run
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # in a Jupyter kernel without ipywidgets DuckDB refuses to touch the bar at all
        pass
    return con


def _arrow(table: dict) -> pa.Table:
    system_id = table["system_id"]
    cfg = CONFIGS[system_id]
    n = len(table["ts"])
    cols: dict[str, pa.Array] = {
        "ts": pa.array(np.asarray(table["ts"], dtype=np.int64), type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "system_id": pa.array([system_id] * n, type=pa.string()),
    }
    for name in (
        "model_version",
        "model_sha256",
        "principal",
        "source_ip",
        "prediction",
        "status",
        "ground_truth",
    ):
        cols[name] = pa.array(list(table[name]), type=pa.string())
    cols["score"] = pa.array(table["score"], type=pa.float64(), from_pandas=True)
    cols["latency_ms"] = pa.array(table["latency_ms"], type=pa.float64())
    for name in cfg.features:
        values = table["features"][name]
        if name in cfg.categorical:
            arr = pa.array(list(values), type=pa.string())
        elif name in cfg.booleans:
            arr = pa.array(np.asarray(values, dtype=bool), type=pa.bool_())
        elif name in cfg.integers:
            arr = pa.array(np.asarray(values, dtype=np.int64), type=pa.int64())
        else:
            arr = pa.array(np.asarray(values, dtype=np.float64), type=pa.float64(), from_pandas=True)
        cols[f"features.{name}"] = arr
    cols["_ord"] = pa.array(np.arange(n, dtype=np.int64))
    return pa.table(cols)


def write_decisions(path: Path, table: dict, prefix: str) -> tuple[int, dict[int, list[str]]]:
    """Write one system's decisions (sorted by ts, with ids and sessions) to zstd parquet.

    Returns the row count and, per incident order, the decision ids that belong to it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    features = ", ".join(f'"features.{n}"' for n in CONFIGS[table["system_id"]].features)
    con = connect()
    con.register("src", _arrow(table))
    con.execute("""
        CREATE TEMP TABLE d AS
        SELECT *, lag(ts) OVER (PARTITION BY principal ORDER BY _ord) AS _prev FROM src
    """)
    con.execute(f"""
        COPY (
          SELECT printf('{prefix}-%08d', _ord + 1) AS decision_id, ts, system_id, model_version, model_sha256,
                 principal,
                 'S' || substr(md5(system_id || '|' || principal || '|' || _sess::VARCHAR), 1, 15)
                   AS session_id,
                 source_ip, prediction, score, status, latency_ms, ground_truth, {features}
          FROM (
            SELECT *, sum(CASE WHEN _prev IS NULL OR ts - _prev > INTERVAL {SESSION_GAP_MINUTES} MINUTE
                                    OR date_trunc('day', ts) <> date_trunc('day', _prev) THEN 1 ELSE 0 END)
                      OVER (PARTITION BY principal ORDER BY _ord ROWS UNBOUNDED PRECEDING) AS _sess
            FROM d)
          ORDER BY _ord
        ) TO {quote_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)
    """)
    con.close()
    ids: dict[int, list[str]] = {}
    for column in ("_inc", "_ovr"):
        marks = np.asarray(table[column])
        for key in np.unique(marks[marks >= 0]):
            ids.setdefault(int(key), []).extend(f"{prefix}-{i + 1:08d}" for i in np.nonzero(marks == key)[0])
    return len(table["ts"]), ids
