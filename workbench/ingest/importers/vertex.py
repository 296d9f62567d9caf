"""Google Vertex AI request-response logging, exported from BigQuery (JSON Lines or Parquet) -> decisions.

Columns: endpoint, deployed_model_id, logging_time, request_id, request_payload, response_payload. The
payloads are repeated strings, one JSON instance / prediction per element (a whole `{"instances": ...}` body is
accepted too). A request with several instances gives `<request_id>-<k>`. Meta fields for the mapping:
endpoint, deployed_model_id, request_id; instance keys are {input: name}.
"""

from __future__ import annotations

from pathlib import Path

from workbench.ingest.importers.common import decision_importer, parquet_or_json, parquet_schema
from workbench.ingest.importers.mapping import Mapping
from workbench.ingest.reading import Reader

COLUMNS = {c: "VARCHAR" for c in ("endpoint", "deployed_model_id", "logging_time", "request_id",
                                  "request_payload", "response_payload")}


def _items(col: str, macro: str) -> str:
    """A repeated-string payload -> JSON array of parsed elements (NULL when one is not JSON)."""
    return (f"CASE WHEN {col} IS NULL OR NOT json_valid({col}) THEN NULL "
            f"WHEN json_type({col}::JSON) = 'ARRAY' THEN CASE WHEN list_bool_and(list_transform("
            f"CAST({col}::JSON AS JSON[]), lambda s: json_type(s) <> 'VARCHAR' OR json_valid(s ->> '$'))) "
            f"THEN to_json(list_transform(CAST({col}::JSON AS JSON[]), lambda s: "
            f"CASE WHEN json_type(s) = 'VARCHAR' THEN (s ->> '$')::JSON ELSE s END)) END "
            f"ELSE {macro}({col}::JSON) END")


def build(reader: Reader, path: Path, m: Mapping) -> None:
    """Fill `_events` from one BigQuery export of the request-response table."""
    con = reader.con
    parquet_or_json(reader, path, "_vx", COLUMNS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _events AS
        SELECT line, raw,
            coalesce(_bad, CASE
                WHEN request_id IS NULL THEN 'missing request_id'
                WHEN logging_time IS NULL THEN 'missing logging_time'
                WHEN request_payload IS NULL THEN 'missing request_payload'
                WHEN inputs IS NULL THEN 'request_payload is not JSON (or an element of it is not)'
                WHEN response_payload IS NOT NULL AND outputs IS NULL
                    THEN 'response_payload is not JSON (or an element of it is not)'
            END) AS parse_error,
            request_id AS event_id,
            regexp_replace(logging_time, ' UTC$', 'Z') AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            inputs, outputs,
            json_object('endpoint', endpoint, 'deployed_model_id', deployed_model_id,
                        'request_id', request_id) AS meta,
            NULL::VARCHAR AS status, NULL::VARCHAR AS latency_raw, NULL::JSON AS extra
        FROM (SELECT *, {_items('request_payload', 'wb_records')} AS inputs,
                        {_items('response_payload', 'wb_outputs')} AS outputs FROM _vx)
    """)
    con.execute("DROP TABLE _vx")


def sniff(path: Path, head: str) -> bool:
    """A Parquet file or JSON line with deployed_model_id and request_payload."""
    if head.startswith("PAR1"):
        return {"deployed_model_id", "request_payload"} <= parquet_schema(path)
    return head.lstrip().startswith("{") and '"deployed_model_id"' in head[:8192] and '"request_payload"' in head


IMPORTER = decision_importer("vertex", build, sniff, "Vertex AI request-response logging (BigQuery export)")
