"""Azure Machine Learning data collector JSON Lines (`model_inputs` / `model_outputs`) -> decisions.

Each line is a CloudEvent (`type` azureml.inference.model_inputs or .model_outputs) whose `data` is the
collected DataFrame as a list of row objects; inputs and outputs are joined by `correlationid`. The collector
writes the two collections under sibling folders (`<endpoint>/<deployment>/model_inputs/yyyy/MM/dd/HH/` and
`.../model_outputs/...`): an inputs file looks its outputs up in the same and neighbouring hour folders of
model_outputs; an outputs file only reports the outputs no input claims ("response without request").
Meta fields for the mapping:
correlationid, xrequestid, modelversion, endpoint, deployment; columns of the inputs are {input: name}.
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
from workbench.ingest.reading import Reader, sql_str

_KIND = ("CASE json_extract_string(j, '$.type') WHEN 'azureml.inference.model_inputs' THEN 'request' "
         "WHEN 'azureml.inference.model_outputs' THEN 'response' END")
_KEY = "coalesce(json_extract_string(j, '$.correlationid'), json_extract_string(j, '$.xrequestid'))"
_DATA = ("CASE WHEN json_type(j, '$.data') = 'VARCHAR' AND json_valid(json_extract_string(j, '$.data')) "
         "THEN json_extract_string(j, '$.data')::JSON ELSE json_extract(j, '$.data') END")


def partners(path: Path) -> tuple[list[Path], str | None, str | None]:
    """Collector files of the same deployment in this file's hour folder and the hours either side (both
    collections), plus the endpoint and deployment names."""
    for parent in path.parents:
        if parent.name in ("model_inputs", "model_outputs"):
            root = parent.parent
            files = siblings(path, root / "model_inputs", True) + siblings(path, root / "model_outputs", True)
            hour = {f: f.parent.relative_to(root / f.relative_to(root).parts[0]) for f in files}
            hours = sorted(set(hour.values()))
            at = hours.index(hour[path]) if path in hour else 0
            near = set(hours[max(at - 1, 0):at + 2])
            return sorted(f for f in files if hour[f] in near), root.parent.name or None, root.name or None
    return siblings(path), None, None


def build(reader: Reader, path: Path, m: Mapping) -> None:
    """Fill `_events` from one collector file, joined with the other collection."""
    con = reader.con
    json_lines(reader, path)
    files, endpoint, deployment = partners(path)
    others = [f for f in files if f.resolve() != path.resolve()]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _aev AS
        SELECT line, raw, j, {BAD_JSON} AS bad, {_KIND} AS kind, {_KEY} AS key, TRY({_DATA}) AS body, true AS here
        FROM _jl
    """)
    con.execute(f"INSERT INTO _aev SELECT NULL, NULL, j, NULL, {_KIND}, {_KEY}, TRY({_DATA}), false "
                f"FROM ({many_lines_sql(others)})")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _aout AS
        SELECT key, arg_min(body, NOT here) AS body FROM _aev WHERE kind = 'response' AND key IS NOT NULL
        GROUP BY key
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _events AS
        SELECT q.line, q.raw,
            coalesce(q.bad, CASE
                WHEN q.kind IS NULL THEN 'not a data collector event: type is '
                    || coalesce(json_extract_string(q.j, '$.type'), 'missing')
                    || ' (expected azureml.inference.model_inputs or model_outputs)'
                WHEN q.key IS NULL THEN 'missing correlationid'
                WHEN q.kind = 'response' THEN 'response without request (no model_inputs event with correlationid '
                    || q.key || ')'
                WHEN q.body IS NULL THEN 'model_inputs event has no data'
                WHEN json_extract_string(q.j, '$.time') IS NULL THEN 'missing time'
            END) AS parse_error,
            q.key AS event_id, json_extract_string(q.j, '$.time') AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            wb_records(q.body) AS inputs, CASE WHEN r.key IS NOT NULL THEN wb_outputs(r.body) END AS outputs,
            json_object('correlationid', q.key, 'xrequestid', json_extract_string(q.j, '$.xrequestid'),
                'modelversion', json_extract_string(q.j, '$.modelversion'),
                'endpoint', {sql_str(endpoint) if endpoint else 'NULL'},
                'deployment', {sql_str(deployment) if deployment else 'NULL'},
                'headers', json_extract(q.j, '$.headers')) AS meta,
            NULL::VARCHAR AS status, NULL::VARCHAR AS latency_raw, NULL::JSON AS extra
        FROM (SELECT * FROM _aev WHERE here) q
        LEFT JOIN _aout r ON q.kind = 'request' AND r.key = q.key
        WHERE q.kind IS DISTINCT FROM 'response'
           OR NOT EXISTS (SELECT 1 FROM _aev o WHERE o.kind = 'request' AND o.key = q.key)
    """)
    for t in ("_jl", "_aev", "_aout"):
        con.execute(f"DROP TABLE {t}")


def sniff(path: Path, head: str) -> bool:
    """A JSON line typed azureml.inference.model_inputs / model_outputs."""
    return head.lstrip().startswith("{") and '"azureml.inference.model_' in head[:8192]


IMPORTER = decision_importer("azureml", build, sniff, "Azure ML data collector JSON Lines (model_inputs/outputs)")
