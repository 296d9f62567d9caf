"""KServe and Seldon inference-logger CloudEvents (structured JSON, one event per line) -> decisions.

Request events (`type` org.kubeflow.serving.inference.request or io.seldon.serving.inference.request) are joined
to their response event by event id (Seldon: the `requestid` extension when present). Bodies may be V1
(`instances` / `predictions`), V2 Open Inference Protocol (`inputs` / `outputs` tensors) or Seldon
(`data.ndarray`); `data_base64` is decoded. A response may sit in another file of the same folder (loggers
rotate files): each request file looks its responses up in the neighbouring event files of its folder (in
name order), so a folder ingested file by file loads each pair exactly once, with the request's file and line.
Meta fields for the
mapping: event_id, inferenceservicename, namespace, component, endpoint, source, model_name, model_version,
and `headers` (the logger's `metadata` extension, e.g. {header: x-principal}).
"""

from __future__ import annotations

from pathlib import Path

from workbench.ingest.importers.common import (
    BAD_JSON,
    decision_importer,
    json_lines,
    many_lines_sql,
    siblings,
)
from workbench.ingest.importers.mapping import Mapping
from workbench.ingest.reading import Reader

TYPES = ("org.kubeflow.serving.inference.", "io.seldon.serving.inference.")

_KIND = ("CASE WHEN json_extract_string(j, '$.type') IN ('org.kubeflow.serving.inference.request', "
         "'io.seldon.serving.inference.request') THEN 'request' "
         "WHEN json_extract_string(j, '$.type') IN ('org.kubeflow.serving.inference.response', "
         "'io.seldon.serving.inference.response') THEN 'response' END")
_KEY = "coalesce(json_extract_string(j, '$.requestid'), json_extract_string(j, '$.id'))"
_BODY = ("CASE WHEN json_extract(j, '$.data') IS NOT NULL THEN CASE WHEN json_type(j, '$.data') = 'VARCHAR' "
         "AND json_valid(json_extract_string(j, '$.data')) THEN json_extract_string(j, '$.data')::JSON "
         "ELSE json_extract(j, '$.data') END "
         "WHEN json_extract_string(j, '$.data_base64') IS NOT NULL THEN "
         "TRY(decode(from_base64(json_extract_string(j, '$.data_base64'))))::JSON END")


def build(reader: Reader, path: Path, m: Mapping) -> None:
    """Fill `_events` from one event file, pairing with responses anywhere in its folder."""
    con = reader.con
    json_lines(reader, path)
    files = siblings(path)
    at = files.index(path) if path in files else 0
    # loggers rotate files in time order: a pair can only straddle neighbouring files
    others = [f for f in files[max(at - 1, 0):at + 2] if f.resolve() != path.resolve()]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _kev AS
        SELECT line, raw, j, {BAD_JSON} AS bad, {_KIND} AS kind, {_KEY} AS key,
               TRY({_BODY}) AS body, TRY_CAST(json_extract_string(j, '$.time') AS TIMESTAMPTZ) AS t,
               true AS here
        FROM _jl
    """)
    con.execute(f"""
        INSERT INTO _kev
        SELECT NULL, NULL, j, NULL, {_KIND}, {_KEY}, TRY({_BODY}),
               TRY_CAST(json_extract_string(j, '$.time') AS TIMESTAMPTZ), false
        FROM ({many_lines_sql(others)})
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _kresp AS
        SELECT key, arg_min(body, NOT here) AS body, arg_min(t, NOT here) AS t,
               arg_min(j, NOT here) AS j
        FROM _kev WHERE kind = 'response' AND key IS NOT NULL GROUP BY key
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _events AS
        SELECT q.line, q.raw,
            coalesce(q.bad, CASE
                WHEN json_extract_string(q.j, '$.type') IS NULL THEN 'not a CloudEvent: missing type'
                WHEN q.kind IS NULL THEN 'unknown event type ' || json_extract_string(q.j, '$.type')
                    || ' (expected an inference request or response)'
                WHEN q.key IS NULL THEN 'missing event id'
                WHEN q.kind = 'response' THEN 'response without request (no request event with id ' || q.key
                    || ' in this folder)'
                WHEN q.body IS NULL AND json_extract(q.j, '$.data_base64') IS NOT NULL
                    THEN 'data_base64 is not base64-encoded JSON'
                WHEN q.body IS NULL THEN 'request event has no data'
                WHEN json_extract_string(q.j, '$.time') IS NULL THEN 'missing time'
                WHEN r.key IS NOT NULL AND r.body IS NULL THEN 'response event has no data'
            END) AS parse_error,
            q.key AS event_id, json_extract_string(q.j, '$.time') AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            wb_records(q.body) AS inputs,
            CASE WHEN r.key IS NOT NULL THEN wb_outputs(r.body) END AS outputs,
            json_object('event_id', q.key, 'source', json_extract_string(q.j, '$.source'),
                'inferenceservicename', json_extract_string(q.j, '$.inferenceservicename'),
                'namespace', json_extract_string(q.j, '$.namespace'),
                'component', json_extract_string(q.j, '$.component'),
                'endpoint', json_extract_string(q.j, '$.endpoint'),
                'modelid', json_extract_string(q.j, '$.modelid'),
                'model_name', coalesce(json_extract_string(r.body, '$.model_name'),
                                       json_extract_string(q.j, '$.inferenceservicename')),
                'model_version', json_extract_string(r.body, '$.model_version'),
                'headers', CASE WHEN json_type(q.j, '$.metadata') = 'OBJECT' THEN
                    to_json(map_from_entries(list_transform(json_keys(json_extract(q.j, '$.metadata')), lambda k:
                        {'k': lower(k), 'v': CASE WHEN json_type(json_extract(q.j, '$.metadata'),
                                                    '$."' || k || '"') = 'ARRAY'
                            THEN json_extract(json_extract(q.j, '$.metadata'), '$."' || k || '"[0]')
                            ELSE json_extract(json_extract(q.j, '$.metadata'), '$."' || k || '"') END})))
                END) AS meta,
            CASE WHEN r.key IS NULL THEN NULL
                 WHEN json_extract(r.body, '$.error') IS NOT NULL THEN 'error' ELSE 'ok' END AS status,
            CASE WHEN r.t IS NOT NULL AND q.t IS NOT NULL
                 THEN CAST((epoch_us(r.t) - epoch_us(q.t)) / 1000.0 AS VARCHAR) END AS latency_raw,
            NULL::JSON AS extra
        FROM (SELECT * FROM _kev WHERE here) q
        LEFT JOIN _kresp r ON q.kind = 'request' AND r.key = q.key
        WHERE q.kind IS DISTINCT FROM 'response'
           OR NOT EXISTS (SELECT 1 FROM _kev o WHERE o.kind = 'request' AND o.key = q.key)
    """)
    for t in ("_jl", "_kev", "_kresp"):
        con.execute(f"DROP TABLE {t}")


def sniff(path: Path, head: str) -> bool:
    """A JSON line whose type is an inference-logger CloudEvent."""
    return head.lstrip().startswith("{") and any(f'"{t}' in head[:16384] for t in TYPES)


IMPORTER = decision_importer("kserve", build, sniff,
                             "KServe / Seldon inference-logger CloudEvents (JSON Lines, request + response)")
