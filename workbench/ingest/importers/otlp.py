"""OpenTelemetry OTLP JSON metrics (ExportMetricsServiceRequest; the collector's file exporter) -> metrics.

`resourceMetrics[] -> scopeMetrics[] -> metrics[]` with `gauge` or `sum` data points (`timeUnixNano`,
`asDouble` / `asInt`, `attributes`). The system is a `system_id` attribute of the point, else --system, else
the resource's `service.name`. Other point attributes become labels. Histogram, exponential-histogram and
summary points are counted and quarantined (only gauge and sum are loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.importers.cloudwatch import read_docs
from workbench.ingest.importers.common import metrics_importer
from workbench.ingest.reading import Reader, sql_str

_ATTR_VALUE = ("coalesce(json_extract_string(a, '$.value.stringValue'), json_extract_string(a, '$.value.intValue'), "
               "json_extract_string(a, '$.value.doubleValue'), json_extract_string(a, '$.value.boolValue'))")


def _attrs(expr: str) -> str:
    """SQL: OTLP attribute list -> list of {k, v} structs (values as text)."""
    return (f"list_transform(coalesce(CAST(json_extract({expr}, '$.attributes') AS JSON[]), []), lambda a: "
            f"{{'k': json_extract_string(a, '$.key'), 'v': {_ATTR_VALUE}}})")


def stage(reader: Reader, path: Path, system: str | None, _mapping: dict[str, Any] | None) -> None:
    """Fill `_mstage` from one OTLP JSON file."""
    con = reader.con
    read_docs(reader, path, "_otdoc", "OTLP JSON metrics")
    if not con.execute("SELECT count(*) FROM _otdoc WHERE json_type(doc, '$.resourceMetrics') = 'ARRAY'"
                       ).fetchone()[0]:
        raise WorkbenchError(f"{path}: not OTLP JSON metrics (no resourceMetrics list)")
    sys_sql = sql_str(system) if system else "NULL"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mstage AS
        WITH rm AS (
            SELECT doc_no, generate_subscripts(CAST(json_extract(doc, '$.resourceMetrics') AS JSON[]), 1) AS ri,
                   unnest(CAST(json_extract(doc, '$.resourceMetrics') AS JSON[])) AS rmj
            FROM _otdoc WHERE json_type(doc, '$.resourceMetrics') = 'ARRAY'
        ), sm AS (
            SELECT doc_no, ri, list_filter({_attrs("json_extract(rmj, '$.resource')")},
                                           lambda e: e.k = 'service.name')[1].v AS service,
                   generate_subscripts(coalesce(CAST(json_extract(rmj, '$.scopeMetrics') AS JSON[]), []), 1) AS si,
                   unnest(coalesce(CAST(json_extract(rmj, '$.scopeMetrics') AS JSON[]), [])) AS smj
            FROM rm
        ), mt AS (
            SELECT doc_no, ri, service, si,
                   generate_subscripts(coalesce(CAST(json_extract(smj, '$.metrics') AS JSON[]), []), 1) AS mi,
                   unnest(coalesce(CAST(json_extract(smj, '$.metrics') AS JSON[]), [])) AS m
            FROM sm
        ), typed AS (
            SELECT *, CASE WHEN json_extract(m, '$.gauge') IS NOT NULL THEN 'gauge'
                           WHEN json_extract(m, '$.sum') IS NOT NULL THEN 'sum'
                           WHEN json_extract(m, '$.histogram') IS NOT NULL THEN 'histogram'
                           WHEN json_extract(m, '$.exponentialHistogram') IS NOT NULL THEN 'exponentialHistogram'
                           WHEN json_extract(m, '$.summary') IS NOT NULL THEN 'summary' END AS mtype
            FROM mt
        ), dp AS (
            SELECT doc_no, ri, si, mi, service, m, mtype,
                   generate_subscripts(pts, 1) AS pi, unnest(pts) AS p
            FROM (SELECT *, CASE WHEN mtype IS NULL THEN [NULL::JSON] ELSE coalesce(CAST(json_extract(m,
                      '$.' || mtype || '.dataPoints') AS JSON[]), []) END AS pts FROM typed)
        ), attrs AS (
            SELECT *, {_attrs('p')} AS kv FROM dp
        )
        SELECT row_number() OVER (ORDER BY doc_no, ri, si, mi, pi) AS line,
            to_json(struct_pack(metric := json_extract_string(m, '$.name'), type := mtype, service := service,
                                point := p))::VARCHAR AS raw,
            CASE WHEN mtype IS NULL THEN 'metric has no gauge, sum, histogram or summary data'
                 WHEN mtype NOT IN ('gauge', 'sum') THEN mtype || ' data points are not supported (gauge and sum only)'
                 WHEN json_extract(p, '$.asDouble') IS NULL AND json_extract(p, '$.asInt') IS NULL
                      THEN 'data point has no asDouble or asInt value'
                 WHEN TRY_CAST(json_extract_string(p, '$.timeUnixNano') AS HUGEINT) IS NULL
                      THEN 'data point has no valid timeUnixNano'
            END AS parse_error,
            CASE WHEN TRY_CAST(json_extract_string(p, '$.timeUnixNano') AS HUGEINT) IS NOT NULL
                 THEN strftime(make_timestamp(CAST(CAST(json_extract_string(p, '$.timeUnixNano') AS HUGEINT)
                                                   // 1000 AS BIGINT)), '%Y-%m-%dT%H:%M:%S.%fZ')
                 ELSE json_extract_string(p, '$.timeUnixNano') END AS ts_raw,
            NULL::TIMESTAMPTZ AS ts_typed,
            coalesce(list_filter(kv, lambda e: e.k = 'system_id')[1].v, {sys_sql}, service) AS system_id,
            json_extract_string(m, '$.name') AS metric,
            coalesce(json_extract_string(p, '$.asDouble'), json_extract_string(p, '$.asInt')) AS value_raw,
            CASE WHEN len(list_filter(kv, lambda e: e.k <> 'system_id')) > 0 THEN to_json(map_from_entries(
                list_sort(list_filter(kv, lambda e: e.k <> 'system_id'))))::VARCHAR END AS labels
        FROM attrs
    """)
    con.execute("DROP TABLE _otdoc")


def sniff(path: Path, head: str) -> bool:
    """JSON with resourceMetrics."""
    return head.lstrip().startswith("{") and '"resourceMetrics"' in head[:8192]


IMPORTER = metrics_importer("otlp", stage, sniff, "OpenTelemetry OTLP JSON metrics (gauge and sum)")
