"""Write one day of the canonical sample in each platform's export shape, with the mapping each one needs.

`write_exports(sample_dir, out_dir)` reads decisions/<system>.parquet and metrics/metrics.parquet and writes
  sagemaker/   Data Capture JSON Lines, hourly folders, CSV payloads      (loan-origination)
  seldon/      Seldon CloudEvents, V1 instances/predictions bodies        (loan-origination)
  azureml/     data collector model_inputs / model_outputs JSON Lines     (loan-origination)
  kserve/      KServe CloudEvents, V2 Open Inference Protocol tensors     (card-fraud)
  databricks/  inference table exported to Parquet                        (card-fraud)
  vertex/      request-response logging exported from BigQuery (JSONL)   (card-fraud)
  prometheus/  /api/v1/query_range JSON; openmetrics/ text exposition; otlp/ OTLP JSON;
  cloudwatch/  GetMetricData output, one file per system (ingest with --system)
  mappings/    <platform>.yaml for every decision export
All of it is built with DuckDB; the only Python loops are over output files. The decision exports are in
``export_decisions``, the metric exports in ``export_metrics``.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from workbench.sample.export_decisions import FRAUD, LOAN, decisions_table, write_decision_exports
from workbench.sample.export_metrics import write_metric_exports
from workbench.store.sqltext import quote_literal

__all__ = ["write_exports"]


def _pick_day(con: duckdb.DuckDBPyConnection, day: str | None) -> date:
    if day:
        return date.fromisoformat(day)
    lo, hi = con.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM _all").fetchone()
    return max(lo, hi - timedelta(days=1))


def write_exports(sample_dir: Path, out_dir: Path, day: str | None = None,
                  max_decisions: int | None = 1500) -> dict[str, list[str]]:
    """Write one UTC day (default: the last full day) in every platform shape under out_dir; return the files.

    At most max_decisions per system are kept (a deterministic spread over the day, like capture sampling).
    """
    sample_dir, out_dir = Path(sample_dir), Path(out_dir)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    dec = sample_dir / "decisions"
    con.execute(f"CREATE TEMP TABLE _all AS SELECT ts FROM read_parquet({quote_literal(str(dec / '*.parquet'))})")
    d = _pick_day(con, day)
    window = f"ts >= TIMESTAMPTZ '{d} 00:00:00+00' AND ts < TIMESTAMPTZ '{d + timedelta(days=1)} 00:00:00+00'"
    written: dict[str, list[str]] = {}
    for system in (LOAN, FRAUD):
        path = dec / f"{system}.parquet"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {decisions_table(system)} AS "
            f"SELECT * FROM read_parquet({quote_literal(str(path))}) WHERE {window} "
            + (f"QUALIFY row_number() OVER (ORDER BY hash(decision_id), decision_id) <= {int(max_decisions)} "
               if max_decisions else "")
            + "ORDER BY ts, decision_id"
        )
    written.update(write_decision_exports(con, out_dir))
    metrics = sample_dir / "metrics" / "metrics.parquet"
    if metrics.exists():
        con.execute(
            f"CREATE TEMP TABLE _m AS SELECT ts, system_id, metric, value FROM read_parquet("
            f"{quote_literal(str(metrics))}) WHERE {window} ORDER BY system_id, metric, ts"
        )
        written.update(write_metric_exports(con, out_dir))
    con.close()
    return written
