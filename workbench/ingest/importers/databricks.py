"""Databricks Model Serving inference tables exported to Parquet or JSON Lines -> decisions.

Columns used: databricks_request_id, client_request_id, request_time (or the legacy timestamp_ms), status_code,
execution_duration_ms (legacy execution_time_ms), request, response, requester, served_entity_id,
request_metadata. Request bodies may be dataframe_records, dataframe_split, instances or inputs; responses
`predictions`. A batch request gives one decision per record (`<request id>-<k>`). Meta fields for the mapping:
every column above, e.g. {field: requester}, {field: served_entity_id}, {field: request_metadata.model_version}.
"""

from __future__ import annotations

from pathlib import Path

from workbench.ingest.importers.common import decision_importer, parquet_or_json, parquet_schema
from workbench.ingest.importers.mapping import Mapping
from workbench.ingest.reading import Reader

COLUMNS = {c: "VARCHAR" for c in (
    "databricks_request_id", "client_request_id", "request_time", "timestamp_ms", "status_code",
    "execution_duration_ms", "execution_time_ms", "request", "response", "requester", "served_entity_id",
    "request_metadata", "sampling_fraction", "logging_error_codes", "date")}


def build(reader: Reader, path: Path, m: Mapping) -> None:
    """Fill `_events` from one inference-table export."""
    con = reader.con
    parquet_or_json(reader, path, "_db", COLUMNS)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _events AS
        SELECT line, raw,
            coalesce(_bad, CASE
                WHEN databricks_request_id IS NULL THEN 'missing databricks_request_id'
                WHEN request_time IS NULL AND timestamp_ms IS NULL THEN 'missing request_time (and timestamp_ms)'
                WHEN request IS NULL THEN 'missing request'
                WHEN NOT json_valid(request) THEN 'request is not valid JSON'
                WHEN TRY_CAST(status_code AS INTEGER) >= 400 AND json_extract(response, '$.predictions') IS NULL
                    THEN 'request failed (status_code ' || status_code || '): no prediction to load'
                WHEN response IS NOT NULL AND NOT json_valid(response) THEN 'response is not valid JSON'
            END) AS parse_error,
            databricks_request_id AS event_id,
            coalesce(CASE WHEN regexp_matches(request_time, '^\\d{4}-\\d\\d-\\d\\d[ T][0-9:.]+$')
                          THEN request_time || 'Z' ELSE request_time END, timestamp_ms) AS ts_raw,
            NULL::TIMESTAMPTZ AS ts_typed,
            CASE WHEN json_valid(request) THEN wb_records(request::JSON) END AS inputs,
            CASE WHEN json_valid(response) THEN wb_outputs(response::JSON) END AS outputs,
            json_object('databricks_request_id', databricks_request_id, 'client_request_id', client_request_id,
                'requester', requester, 'served_entity_id', served_entity_id, 'status_code', status_code,
                'request_metadata', CASE WHEN json_valid(request_metadata) THEN request_metadata::JSON END,
                'sampling_fraction', sampling_fraction) AS meta,
            CASE WHEN status_code IS NULL THEN NULL WHEN TRY_CAST(status_code AS INTEGER) BETWEEN 200 AND 299
                 THEN 'ok' ELSE 'error' END AS status,
            coalesce(execution_duration_ms, execution_time_ms) AS latency_raw,
            CASE WHEN client_request_id IS NOT NULL THEN json_object('client_request_id', client_request_id)
            END AS extra
        FROM _db
    """)
    con.execute("DROP TABLE _db")


def sniff(path: Path, head: str) -> bool:
    """A Parquet file or JSON line with databricks_request_id."""
    if head.startswith("PAR1"):
        return "databricks_request_id" in parquet_schema(path)
    return head.lstrip().startswith("{") and '"databricks_request_id"' in head[:8192]


IMPORTER = decision_importer("databricks", build, sniff, "Databricks inference table (Parquet or JSON Lines)")
