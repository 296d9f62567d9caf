"""AWS SageMaker Data Capture JSON Lines (`<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`) -> decisions.

Each line holds `captureData.endpointInput` and `endpointOutput` (`observedContentType`, `mode`, `data`,
`encoding` CSV, JSON or BASE64) and `eventMetadata` (`eventId`, `inferenceId`, `inferenceTime`,
`customAttributes`). CSV payloads are positional, so the mapping names the features; they are parsed as CSV
(quoted fields with commas, "" and newlines), and a payload that is not CSV is quarantined. The meta fields a mapping
can use: event_id, inference_id, endpoint, variant, content_type, and custom attributes given as `k=v` pairs.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.ingest.importers.common import BAD_JSON, decision_importer, json_lines
from workbench.ingest.importers.mapping import Mapping
from workbench.ingest.reading import Reader, sql_str

_HOURLY = re.compile(r"/([^/]+)/([^/]+)/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+$")


def _payload(side: str, csv_macro: str, json_macro: str) -> tuple[str, str]:
    """(records SQL, error SQL) for endpointInput or endpointOutput of capture `c`."""
    base = f"json_extract(c, '$.{side}')"
    enc = f"upper(json_extract_string({base}, '$.encoding'))"
    ctype = f"lower(coalesce(json_extract_string({base}, '$.observedContentType'), ''))"
    text = f"wb_text(json_extract_string({base}, '$.data'), {enc})"
    is_csv = f"({enc} = 'CSV' OR ({enc} = 'BASE64' AND {ctype} LIKE '%csv%'))"
    is_jsonl = f"{ctype} LIKE '%jsonlines%'"
    records = (f"CASE WHEN {base} IS NULL OR {text} IS NULL THEN NULL WHEN {is_csv} THEN {csv_macro}({text}) "
               f"WHEN {is_jsonl} THEN to_json(list_transform(wb_lines({text}), lambda l: "
               f"json_extract({json_macro}(CASE WHEN json_valid(l) THEN l::JSON END), '$[0]'))) "
               f"WHEN json_valid({text}) THEN {json_macro}({text}::JSON) END")
    errors = (f"WHEN {base} IS NOT NULL AND {enc} NOT IN ('CSV', 'JSON', 'BASE64') "
              f"THEN '{side}.encoding must be CSV, JSON or BASE64, got ' || coalesce({enc}, 'nothing') "
              f"WHEN {base} IS NOT NULL AND json_extract({base}, '$.data') IS NULL THEN '{side}.data is missing' "
              f"WHEN {base} IS NOT NULL AND {text} IS NULL THEN '{side}.data is not valid BASE64' "
              f"WHEN {base} IS NOT NULL AND {is_csv} AND NOT wb_csv_ok({text}) "
              f"THEN '{side}.data is not valid CSV: ' || wb_csv_error({text}) "
              f"WHEN {base} IS NOT NULL AND NOT {is_csv} AND NOT {is_jsonl} AND NOT json_valid({text}) "
              f"THEN '{side}.data is not valid JSON (observedContentType ' || {ctype} || ')'")
    return records, errors


def build(reader: Reader, path: Path, m: Mapping) -> None:
    """Fill `_events` from one capture file."""
    json_lines(reader, path)
    found = _HOURLY.search(path.as_posix())
    endpoint, variant = (found.group(1), found.group(2)) if found else (None, None)
    in_sql, in_err = _payload("endpointInput", "wb_csv", "wb_records")
    out_sql, out_err = _payload("endpointOutput", "wb_csv_out", "wb_outputs")
    attrs = ("CASE WHEN ca IS NULL THEN NULL ELSE to_json(map_from_entries(list_transform(list_filter("
             "string_split_regex(ca, '[,;]'), lambda p: strpos(p, '=') > 0), lambda p: "
             "{'k': trim(split_part(p, '=', 1)), 'v': to_json(trim(substr(p, strpos(p, '=') + 1)))}))) END")
    reader.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _events AS
        SELECT line, raw,
            coalesce({BAD_JSON}, CASE
                WHEN c IS NULL THEN 'not a SageMaker capture record: missing captureData'
                WHEN json_extract(c, '$.endpointInput') IS NULL
                    THEN 'capture has no endpointInput (is the endpoint capturing Output only?)'
                {in_err} {out_err}
                WHEN json_extract_string(j, '$.eventMetadata.eventId') IS NULL
                    THEN 'missing eventMetadata.eventId'
                WHEN json_extract_string(j, '$.eventMetadata.inferenceTime') IS NULL
                    THEN 'missing eventMetadata.inferenceTime'
            END) AS parse_error,
            json_extract_string(j, '$.eventMetadata.eventId') AS event_id,
            json_extract_string(j, '$.eventMetadata.inferenceTime') AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            {in_sql} AS inputs, {out_sql} AS outputs,
            json_object('event_id', json_extract_string(j, '$.eventMetadata.eventId'),
                        'inference_id', json_extract_string(j, '$.eventMetadata.inferenceId'),
                        'endpoint', {sql_str(endpoint) if endpoint else 'NULL'},
                        'variant', {sql_str(variant) if variant else 'NULL'},
                        'content_type', json_extract_string(c, '$.endpointInput.observedContentType'),
                        'custom_attributes', {attrs}) AS meta,
            NULL::VARCHAR AS status, NULL::VARCHAR AS latency_raw,
            CASE WHEN json_extract_string(j, '$.eventMetadata.inferenceId') IS NOT NULL
                 THEN json_object('sagemaker_inference_id', json_extract_string(j, '$.eventMetadata.inferenceId'))
            END AS extra
        FROM (SELECT *, json_extract(j, '$.captureData') AS c,
                     CASE WHEN json_type(j, '$.eventMetadata.customAttributes') = 'ARRAY'
                          THEN array_to_string(CAST(json_extract(j, '$.eventMetadata.customAttributes') AS VARCHAR[]),
                                               ',')
                          ELSE json_extract_string(j, '$.eventMetadata.customAttributes') END AS ca
              FROM _jl)
    """)
    reader.con.execute("DROP TABLE _jl")


def sniff(path: Path, head: str) -> bool:
    """A JSON line with captureData."""
    return head.lstrip().startswith("{") and '"captureData"' in head[:8192]


IMPORTER = decision_importer("sagemaker", build, sniff, "SageMaker Data Capture JSON Lines")
