"""AWS CloudWatch GetMetricData JSON output (`aws cloudwatch get-metric-data`) -> metrics.

`MetricDataResults[]` with `Id`, `Label`, `Timestamps`, `Values`, `StatusCode`; one document, or one page per
line. The label names the metric; a label written as `name{system_id="s",k="v"}` also carries the system and
labels. Otherwise --system names the system. Every (timestamp, value) pair is one data point; a series whose
Timestamps and Values differ in length sends the unmatched points to quarantine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.importers.common import metrics_importer
from workbench.ingest.importers.metric_rows import labels_sql
from workbench.ingest.importers.openmetrics import LABEL_RE
from workbench.ingest.reading import Reader, sql_str


def read_docs(reader: Reader, path: Path, table: str, what: str) -> None:
    """Temp table (doc_no, doc JSON) with each JSON document of the file (one pretty document or JSON Lines)."""
    try:
        reader.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT row_number() OVER () AS doc_no, json AS doc "
            f"FROM read_json_objects({sql_str(str(path))}, format='auto', maximum_object_size=1073741824, "
            f"compression='{reader.compression}')")
    except Exception as exc:  # noqa: BLE001 - any reader failure means: not this format
        raise WorkbenchError(f"{path}: not {what} ({str(exc).splitlines()[0]})") from exc


def stage(reader: Reader, path: Path, system: str | None, _mapping: dict[str, Any] | None) -> None:
    """Fill `_mstage` from one GetMetricData output file."""
    con = reader.con
    read_docs(reader, path, "_cwdoc", "CloudWatch GetMetricData JSON")
    if not con.execute("SELECT count(*) FROM _cwdoc WHERE json_type(doc, '$.MetricDataResults') = 'ARRAY'"
                       ).fetchone()[0]:
        raise WorkbenchError(f"{path}: not CloudWatch GetMetricData output (no MetricDataResults list)")
    label_re = sql_str(LABEL_RE)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mstage AS
        WITH series AS (
            SELECT doc_no, generate_subscripts(CAST(json_extract(doc, '$.MetricDataResults') AS JSON[]), 1) AS s,
                   unnest(CAST(json_extract(doc, '$.MetricDataResults') AS JSON[])) AS r
            FROM _cwdoc WHERE json_type(doc, '$.MetricDataResults') = 'ARRAY'
        ), sized AS (
            SELECT *, coalesce(json_array_length(r, '$.Timestamps'), 0) AS nt,
                   coalesce(json_array_length(r, '$.Values'), 0) AS nv,
                   coalesce(json_extract_string(r, '$.Label'), json_extract_string(r, '$.Id')) AS label
            FROM series
        ), points AS (
            SELECT doc_no, s, r, label, nt, nv, i,
                   json_extract(r, '$.Timestamps[' || i || ']') AS t, json_extract(r, '$.Values[' || i || ']') AS v,
                   regexp_extract(label, '^([^{{]+)\\{{(.*)\\}}$', 1) AS lname,
                   regexp_extract(label, '^([^{{]+)\\{{(.*)\\}}$', 2) AS lbl
            FROM sized, unnest(range(CAST(greatest(nt, nv) AS BIGINT))) AS u(i)
        ), parsed AS (
            SELECT *, regexp_extract_all(lbl, {label_re}, 1) AS names,
                   regexp_extract_all(lbl, {label_re}, 2) AS vals
            FROM points
        )
        SELECT row_number() OVER (ORDER BY doc_no, s, i) AS line,
            to_json(struct_pack(Id := json_extract_string(r, '$.Id'), Label := label, Timestamp := t,
                                Value := v, StatusCode := json_extract_string(r, '$.StatusCode')))::VARCHAR AS raw,
            CASE WHEN nt <> nv THEN 'Timestamps and Values differ in length (' || nt || ' vs ' || nv || ')'
                 WHEN label IS NULL THEN 'series has no Label or Id to name the metric'
            END AS parse_error,
            CASE WHEN json_type(t) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
                 THEN strftime(make_timestamp(CAST(round(CAST(t AS DOUBLE) * 1e6) AS BIGINT)), '%Y-%m-%dT%H:%M:%S.%fZ')
                 ELSE json_extract_string(t, '$') END AS ts_raw,
            NULL::TIMESTAMPTZ AS ts_typed,
            coalesce(vals[list_position(names, 'system_id')], {sql_str(system) if system else 'NULL'}) AS system_id,
            trim(CASE WHEN lname <> '' THEN lname ELSE label END) AS metric,
            json_extract_string(v, '$') AS value_raw,
            {labels_sql('names', 'vals')} AS labels
        FROM parsed
    """)
    con.execute("DROP TABLE _cwdoc")


def sniff(path: Path, head: str) -> bool:
    """JSON with MetricDataResults."""
    return head.lstrip().startswith("{") and '"MetricDataResults"' in head[:8192]


IMPORTER = metrics_importer("cloudwatch", stage, sniff, "AWS CloudWatch GetMetricData JSON output")
