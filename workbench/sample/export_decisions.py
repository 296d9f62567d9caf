"""Decision exports of the sample: one day of decisions in each serving platform's capture shape, plus the
ingest mapping (``mappings/<platform>.yaml``) each one needs.

The decisions of a system are expected in the temp table ``decisions_table(system)`` of the connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from workbench.store.sqltext import quote_ident, quote_literal

LOAN, FRAUD = "loan-origination", "card-fraud"
ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def decisions_table(system: str) -> str:
    """The temp table holding the exported day of one system's decisions."""
    return "_d_" + system.replace("-", "_")


def write_decision_exports(con: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, list[str]]:
    """Write every decision export and its mapping under out_dir; return the files per platform."""
    (out_dir / "mappings").mkdir(parents=True, exist_ok=True)
    return {
        "sagemaker": _sagemaker(con, out_dir),
        "seldon": _cloudevents(con, out_dir / "seldon" / LOAN, LOAN, v2=False),
        "kserve": _cloudevents(con, out_dir / "kserve" / FRAUD, FRAUD, v2=True),
        "azureml": _azureml(con, out_dir),
        "databricks": _databricks(con, out_dir),
        "vertex": _vertex(con, out_dir),
    }


# -- helpers -------------------------------------------------------------------------------------------------
def _features(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        r[0][len("features.") :]
        for r in con.execute(f"DESCRIBE {table}").fetchall()
        if r[0].startswith("features.")
    ]


def _obj(feats: list[str], extra: str = "") -> str:
    """SQL json_object of the features (plus extra key/value SQL)."""
    parts = [f"{quote_literal(f)}, {quote_ident('features.' + f)}" for f in feats]
    return "json_object(" + ", ".join(parts + ([extra] if extra else [])) + ")"


def _mapping(out_dir: Path, name: str, doc: dict) -> None:
    import yaml

    (out_dir / "mappings" / f"{name}.yaml").write_text(
        f"# workbench ingest --from {doc.pop('_from', name)} --mapping mappings/{name}.yaml <export path>\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )


def _outputs(score: Any, prediction: Any, status: Any) -> dict[str, dict[str, Any]]:
    """The mapping entries naming the model outputs that hold score, prediction and status."""
    return {"score": {"output": score}, "prediction": {"output": prediction}, "status": {"output": status}}


def _versions(con: duckdb.DuckDBPyConnection, system: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(f"SELECT DISTINCT model_version FROM {decisions_table(system)} ORDER BY 1").fetchall()
    ]


def _version_names(con: duckdb.DuckDBPyConnection, system: str, prefix: str) -> dict[str, str]:
    """Platform name (prefix + version with '-' for '.') -> model version, for a mapping's `values`."""
    return {prefix + v.replace(".", "-"): v for v in _versions(con, system)}


def _copy_json(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({sql}) TO {quote_literal(str(path))} (FORMAT json)")
    return str(path)


def _copy_param(con: duckdb.DuckDBPyConnection, sql: str, params: list, path: Path) -> str:
    """COPY a parameterised query (DuckDB COPY takes no parameters: materialise it first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS {sql}", params)
    con.execute(f"COPY _out TO {quote_literal(str(path))} (FORMAT json)")
    return str(path)


# -- the platforms -------------------------------------------------------------------------------------------
def _sagemaker(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = decisions_table(LOAN), _features(con, decisions_table(LOAN))
    csv_in = " || ',' || ".join(f"coalesce(CAST({quote_ident('features.' + f)} AS VARCHAR), '')" for f in feats)
    sql = f"""
        SELECT {{'endpointInput': {{'observedContentType': 'text/csv', 'mode': 'INPUT', 'data': {csv_in},
                                    'encoding': 'CSV'}},
                 'endpointOutput': {{'observedContentType': 'text/csv; charset=utf-8', 'mode': 'OUTPUT',
                    'data': coalesce(CAST(score AS VARCHAR), '') || ',' || prediction || ',' || status,
                    'encoding': 'CSV'}}}} AS captureData,
               {{'eventId': decision_id, 'inferenceTime': strftime(ts, {ISO}),
                 'customAttributes': 'principal=' || principal || ',session=' || coalesce(session_id, '')
                                     || ',source_ip=' || coalesce(source_ip, '')}} AS eventMetadata,
               '0' AS eventVersion
        FROM {t} WHERE model_version = ? AND date_trunc('hour', ts) = ? ORDER BY ts"""
    files = []
    hours = con.execute(
        f"SELECT DISTINCT model_version, date_trunc('hour', ts) FROM {t} ORDER BY 1, 2"
    ).fetchall()
    for version, hour in hours:
        variant = "v" + version.replace(".", "-")
        folder = out_dir / "sagemaker" / f"{LOAN}-endpoint" / variant / hour.strftime("%Y/%m/%d/%H")
        files.append(_copy_param(con, sql, [version, hour], folder / f"{hour:%Y%m%d%H}-capture.jsonl"))
    _mapping(out_dir, "sagemaker", {
        "system_id": LOAN,
        "model_version": {"field": "variant", "values": _version_names(con, LOAN, "v")},
        "principal": {"custom_attribute": "principal"},
        "session_id": {"custom_attribute": "session"},
        "source_ip": {"custom_attribute": "source_ip"},
        "features": feats,
        **_outputs(0, 1, 2),
    })
    return files


def _cloudevents(con: duckdb.DuckDBPyConnection, folder: Path, system: str, *, v2: bool) -> list[str]:
    t, feats = decisions_table(system), _features(con, decisions_table(system))
    prefix = "org.kubeflow.serving.inference." if v2 else "io.seldon.serving.inference."
    if v2:
        tensors = ", ".join(
            f"{{'name': {quote_literal(f)}, 'shape': [1], 'datatype': "
            f"CASE typeof({quote_ident('features.' + f)}) WHEN 'VARCHAR' THEN 'BYTES' WHEN 'BOOLEAN' THEN 'BOOL' "
            f"WHEN 'BIGINT' THEN 'INT64' ELSE 'FP64' END, 'data': to_json([{quote_ident('features.' + f)}])}}"
            for f in feats
        )
        req = f"to_json({{'id': decision_id, 'inputs': [{tensors}]}})"
        resp = (
            "to_json({'model_name': " + quote_literal(system) + ", 'model_version': model_version, 'id': decision_id, "
            "'outputs': [{'name': 'label', 'shape': [1], 'datatype': 'BYTES', 'data': to_json([prediction])}, "
            "{'name': 'probability', 'shape': [1, 1], 'datatype': 'FP64', 'data': to_json([score])}, "
            "{'name': 'status', 'shape': [1], 'datatype': 'BYTES', 'data': to_json([status])}]})"
        )
    else:
        req = f"json_object('instances', [{_obj(feats)}])"
        resp = (
            "json_object('predictions', [json_object('label', prediction, 'probability', score, "
            "'status', status)], 'model_version', model_version)"
        )
    common = (
        f"'1.0' AS specversion, decision_id AS id, '{{kind}}' AS type, 'http://{system}.prod/' AS source, "
        f"strftime({{t}}, {ISO}) AS time, 'application/json' AS datacontenttype, {quote_literal(system)} AS "
        "inferenceservicename, 'prod' AS namespace, 'predictor' AS component, 'default' AS endpoint"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ev AS
        SELECT ts AS t, {common.format(kind=prefix + "request", t="ts")},
               json_object('X-Principal', [principal], 'X-Session-Id', [session_id],
                           'X-Forwarded-For', [source_ip]) AS metadata, {req} AS data
        FROM {t}
        UNION ALL
        SELECT ts + to_microseconds(CAST(round(coalesce(latency_ms, 0) * 1000) AS BIGINT)),
               {
        common.format(
            kind=prefix + "response",
            t="ts + to_microseconds(CAST(round(coalesce(latency_ms, 0) * 1000) AS BIGINT))",
        )
    }, NULL, {resp}
        FROM {t}
    """)
    files = []
    for (hour,) in con.execute("SELECT DISTINCT date_trunc('hour', t) FROM _ev ORDER BY 1").fetchall():
        files.append(
            _copy_param(
                con,
                "SELECT * EXCLUDE (t) FROM _ev WHERE date_trunc('hour', t) = ? ORDER BY t",
                [hour],
                folder / f"events-{hour:%Y%m%d%H}.jsonl",
            )
        )
    name = "kserve" if v2 else "seldon"
    doc = {
        "_from": "kserve",
        "system_id": system,
        "model_version": {"field": "model_version"},
        "principal": {"header": "x-principal"},
        "session_id": {"header": "x-session-id"},
        "source_ip": {"header": "x-forwarded-for"},
        **_outputs("probability", "label", "status"),
    }
    _mapping(folder.parent.parent, name, doc)
    return files


def _azureml(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = decisions_table(LOAN), _features(con, decisions_table(LOAN))
    root = out_dir / "azureml" / "modelDataCollector" / f"{LOAN}-endpoint" / "blue"
    event = (
        "'1.0' AS specversion, md5(decision_id || '{kind}') AS id, "
        f"'/subscriptions/0000/resourceGroups/ml/providers/Microsoft.MachineLearningServices/workspaces/ws/"
        f"onlineEndpoints/{LOAN}-endpoint/deployments/blue' AS source, "
        "'azureml.inference.{kind}' AS type, 'application/json' AS datacontenttype, "
        f"strftime(ts, {ISO}) AS time"
    )
    envelope = (
        "'/score' AS path, 'POST' AS method, decision_id AS correlationid, decision_id AS xrequestid, "
        "model_version AS modelversion, 'pandas.core.frame.DataFrame' AS collectdatatype, "
        f"'azureml-ai-monitoring/0.1.0b4' AS agent FROM {t} WHERE date_trunc('hour', ts) = ? ORDER BY ts"
    )
    with_principal = _obj(feats, "'principal', principal")
    inputs = f"SELECT {event.format(kind='model_inputs')}, [{with_principal}] AS data, {envelope}"
    outputs = (
        f"SELECT {event.format(kind='model_outputs')}, "
        f"[json_object('decision', prediction, 'score', score, 'status', status)] AS data, {envelope}"
    )
    files = []
    for (hour,) in con.execute(f"SELECT DISTINCT date_trunc('hour', ts) FROM {t} ORDER BY 1").fetchall():
        sub = hour.strftime("%Y/%m/%d/%H")
        files.append(_copy_param(con, inputs, [hour], root / "model_inputs" / sub / f"{hour:%H}-inputs.jsonl"))
        files.append(_copy_param(con, outputs, [hour], root / "model_outputs" / sub / f"{hour:%H}-outputs.jsonl"))
    _mapping(out_dir, "azureml", {
        "system_id": LOAN,
        "model_version": {"field": "modelversion"},
        "principal": {"input": "principal"},
        **_outputs("score", "decision", "status"),
    })
    return files


def _databricks(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = decisions_table(FRAUD), _features(con, decisions_table(FRAUD))
    entity = "'fraud-model-' || replace(model_version, '.', '-')"
    sql = f"""
        SELECT decision_id AS databricks_request_id, NULL::VARCHAR AS client_request_id, ts::DATE AS date,
               epoch_ms(ts) AS timestamp_ms, ts AS request_time,
               CASE WHEN status = 'error' THEN 500 ELSE 200 END AS status_code, 1.0 AS sampling_fraction,
               CAST(round(latency_ms) AS BIGINT) AS execution_duration_ms,
               json_object('dataframe_records', [{_obj(feats)}])::VARCHAR AS request,
               json_object('predictions', [json_object('label', prediction, 'score', score, 'status', status)]
                           )::VARCHAR AS response,
               principal AS requester, {entity} AS served_entity_id,
               MAP {{'model_name': 'fraud-model', 'endpoint_name': 'fraud-endpoint',
                     'model_version': model_version}} AS request_metadata,
               NULL::VARCHAR[] AS logging_error_codes
        FROM {t} ORDER BY ts"""
    path = out_dir / "databricks" / "fraud_endpoint_payload.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({sql}) TO {quote_literal(str(path))} (FORMAT parquet)")
    _mapping(out_dir, "databricks", {
        "system_id": FRAUD,
        "model_version": {"field": "served_entity_id", "values": _version_names(con, FRAUD, "fraud-model-")},
        "principal": {"field": "requester"},
        **_outputs("score", "label", "status"),
    })
    return [str(path)]


def _vertex(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = decisions_table(FRAUD), _features(con, decisions_table(FRAUD))
    ids = {v: str(7100 + i) for i, v in enumerate(_versions(con, FRAUD))}
    cases = " ".join(f"WHEN {quote_literal(v)} THEN {quote_literal(i)}" for v, i in ids.items())
    sql = f"""
        SELECT 'projects/123/locations/europe-west4/endpoints/4242' AS endpoint,
               CASE model_version {cases} END AS deployed_model_id,
               strftime(ts, '%Y-%m-%d %H:%M:%S.%f UTC') AS logging_time, decision_id AS request_id,
               [{_obj(feats, "'principal', principal")}::VARCHAR] AS request_payload,
               [json_object('label', prediction, 'score', score, 'status', status)::VARCHAR] AS response_payload
        FROM {t} ORDER BY ts"""
    path = _copy_json(con, sql, out_dir / "vertex" / "request_response_logging.jsonl")
    _mapping(out_dir, "vertex", {
        "system_id": FRAUD,
        "model_version": {"field": "deployed_model_id", "values": {i: v for v, i in ids.items()}},
        "principal": {"input": "principal"},
        **_outputs("score", "label", "status"),
    })
    return [path]
