"""The sample's operational metrics: per-minute request rate, latency p50/p95 and error rate per system,
computed by DuckDB from the decision files."""

from __future__ import annotations

from pathlib import Path

from workbench.sample.decision_files import connect
from workbench.sample.systems import SYSTEMS
from workbench.store.sqltext import quote_literal
from workbench.timestamps import iso_from_us as iso

METRICS = ("request_rate", "latency_p50_ms", "latency_p95_ms", "error_rate")


def write_metrics(out_dir: Path, start_us: int, end_us: int) -> int:
    """Per-minute request_rate, latency p50/p95 and error_rate per system, computed from the decisions."""
    files = ", ".join(quote_literal(str(out_dir / "decisions" / f"{sid}.parquet")) for sid in SYSTEMS)
    systems = ", ".join(f"({quote_literal(s)})" for s in SYSTEMS)
    target = out_dir / "metrics" / "metrics.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    con = connect()
    con.execute(f"""
        COPY (
          WITH d AS (
            SELECT system_id, date_trunc('minute', ts) AS minute, latency_ms, status
            FROM read_parquet([{files}])),
          m AS (
            SELECT system_id, minute, count(*) AS n, quantile_cont(latency_ms, 0.5) AS p50,
                   quantile_cont(latency_ms, 0.95) AS p95, count_if(status = 'error') / count(*) AS err
            FROM d GROUP BY system_id, minute),
          grid AS (
            SELECT s.system_id, g.range AS minute
            FROM (VALUES {systems}) s(system_id)
            CROSS JOIN range(date_trunc('minute', TIMESTAMPTZ '{iso(start_us)}'), TIMESTAMPTZ '{iso(end_us)}',
                             INTERVAL 1 MINUTE) g)
          SELECT ts, system_id, metric, value FROM (
            SELECT g.minute AS ts, g.system_id, 'request_rate' AS metric, coalesce(m.n, 0)::DOUBLE AS value
            FROM grid g LEFT JOIN m USING (system_id, minute)
            UNION ALL SELECT minute, system_id, 'latency_p50_ms', round(p50, 2) FROM m
            UNION ALL SELECT minute, system_id, 'latency_p95_ms', round(p95, 2) FROM m
            UNION ALL SELECT minute, system_id, 'error_rate', err FROM m)
          ORDER BY ts, system_id, metric
        ) TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)
    """)
    rows = con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(str(target))})").fetchone()[0]
    con.close()
    return int(rows)
