"""Metric exports of the sample: one day of the metric points as Prometheus query_range JSON, OpenMetrics
text, CloudWatch GetMetricData output (one file per system) and OTLP JSON.

The points are expected in the temp table ``_m`` (ts, system_id, metric, value) of the connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def write_metric_exports(con: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, list[str]]:
    """Write every metric export under out_dir; return the files per format."""
    out: dict[str, list[str]] = {}
    result = con.execute("""
        SELECT to_json({'status': 'success', 'data': {'resultType': 'matrix', 'result': list(s ORDER BY k)}})
        FROM (SELECT system_id || metric AS k, {'metric': {'__name__': metric, 'system_id': system_id},
                     'values': list([epoch(ts), CAST(value AS VARCHAR)::JSON] ORDER BY ts)} AS s
              FROM _m GROUP BY system_id, metric)
    """).fetchone()[0]
    out["prometheus"] = [_write(out_dir / "prometheus" / "query_range.json", result + "\n")]
    text = con.execute("""
        SELECT string_agg(block, '' ORDER BY metric) || '# EOF' || chr(10)
        FROM (SELECT metric, '# TYPE ' || metric || ' gauge' || chr(10) || string_agg(
                  metric || '{system_id="' || system_id || '"} ' || CAST(value AS VARCHAR) || ' '
                  || CAST(epoch(ts) AS VARCHAR) || chr(10), '' ORDER BY system_id, ts) AS block
              FROM _m GROUP BY metric)
    """).fetchone()[0]
    out["openmetrics"] = [_write(out_dir / "openmetrics" / "metrics.prom", text)]
    out["cloudwatch"] = []
    for (system,) in con.execute("SELECT DISTINCT system_id FROM _m ORDER BY 1").fetchall():
        doc = con.execute(
            """
            SELECT to_json({'MetricDataResults': list(r ORDER BY metric), 'Messages': []::VARCHAR[]})
            FROM (SELECT metric, {'Id': 'm_' || lower(regexp_replace(metric, '[^A-Za-z0-9]', '_', 'g')),
                         'Label': metric,
                         'Timestamps': list(strftime(ts, '%Y-%m-%dT%H:%M:%S+00:00') ORDER BY ts DESC),
                         'Values': list(value ORDER BY ts DESC), 'StatusCode': 'Complete'} AS r
                  FROM _m WHERE system_id = ? GROUP BY metric)
        """,
            [system],
        ).fetchone()[0]
        out["cloudwatch"].append(
            _write(out_dir / "cloudwatch" / f"{system}.json", json.dumps(json.loads(doc), indent=1) + "\n")
        )
    otlp = con.execute("""
        SELECT to_json({'resourceMetrics': list(rm ORDER BY system_id)})
        FROM (SELECT system_id, {'resource': {'attributes': [{'key': 'service.name',
                                                             'value': {'stringValue': system_id}}]},
                                 'scopeMetrics': [{'scope': {'name': 'workbench.sample', 'version': '1'},
                                                   'metrics': list(m ORDER BY metric)}]} AS rm
              FROM (SELECT system_id, metric, {'name': metric, 'unit': CASE WHEN metric LIKE '%_ms' THEN 'ms'
                                                                          ELSE '1' END,
                           'gauge': {'dataPoints': list({'timeUnixNano': CAST(epoch_ns(ts) AS VARCHAR),
                                                         'asDouble': value} ORDER BY ts)}} AS m
                    FROM _m GROUP BY system_id, metric)
              GROUP BY system_id)
    """).fetchone()[0]
    out["otlp"] = [_write(out_dir / "otlp" / "metrics.json", otlp + "\n")]
    return out
