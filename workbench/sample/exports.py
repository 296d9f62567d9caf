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
All of it is built with DuckDB; the only Python loops are over output files.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb

LOAN, FRAUD = "loan-origination", "card-fraud"
ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _s(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _features(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        r[0][len("features.") :]
        for r in con.execute(f"DESCRIBE {table}").fetchall()
        if r[0].startswith("features.")
    ]


def _obj(feats: list[str], extra: str = "") -> str:
    """SQL json_object of the features (plus extra key/value SQL)."""
    parts = [f"{_s(f)}, {_q('features.' + f)}" for f in feats]
    return "json_object(" + ", ".join(parts + ([extra] if extra else [])) + ")"


def _pick_day(con: duckdb.DuckDBPyConnection, day: str | None) -> date:
    if day:
        return date.fromisoformat(day)
    lo, hi = con.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM _all").fetchone()
    return max(lo, hi - timedelta(days=1))


def write_exports(sample_dir: Path, out_dir: Path, day: str | None = None,
                  max_decisions: int | None = 4000) -> dict[str, list[str]]:
    """Write one UTC day (default: the last full day) in every platform shape under out_dir; return the files.

    At most max_decisions per system are kept (a deterministic spread over the day, like capture sampling).
    """
    sample_dir, out_dir = Path(sample_dir), Path(out_dir)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    dec = sample_dir / "decisions"
    con.execute(f"CREATE TEMP TABLE _all AS SELECT ts FROM read_parquet({_s(str(dec / '*.parquet'))})")
    d = _pick_day(con, day)
    window = f"ts >= TIMESTAMPTZ '{d} 00:00:00+00' AND ts < TIMESTAMPTZ '{d + timedelta(days=1)} 00:00:00+00'"
    written: dict[str, list[str]] = {}
    for system in (LOAN, FRAUD):
        path = dec / f"{system}.parquet"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_table(system)} AS SELECT * FROM read_parquet({_s(str(path))}) "
            f"WHERE {window} "
            + (f"QUALIFY row_number() OVER (ORDER BY hash(decision_id), decision_id) <= {int(max_decisions)} "
               if max_decisions else "")
            + "ORDER BY ts, decision_id"
        )
    (out_dir / "mappings").mkdir(parents=True, exist_ok=True)
    written["sagemaker"] = _sagemaker(con, out_dir)
    written["seldon"] = _cloudevents(con, out_dir / "seldon" / LOAN, LOAN, v2=False)
    written["kserve"] = _cloudevents(con, out_dir / "kserve" / FRAUD, FRAUD, v2=True)
    written["azureml"] = _azureml(con, out_dir)
    written["databricks"] = _databricks(con, out_dir)
    written["vertex"] = _vertex(con, out_dir)
    metrics = sample_dir / "metrics" / "metrics.parquet"
    if metrics.exists():
        con.execute(
            f"CREATE TEMP TABLE _m AS SELECT ts, system_id, metric, value FROM read_parquet("
            f"{_s(str(metrics))}) WHERE {window} ORDER BY system_id, metric, ts"
        )
        written.update(_metrics(con, out_dir))
    con.close()
    return written


def _table(system: str) -> str:
    return "_d_" + system.replace("-", "_")


def _mapping(out_dir: Path, name: str, doc: dict) -> None:
    import yaml

    (out_dir / "mappings" / f"{name}.yaml").write_text(
        f"# workbench ingest --from {doc.pop('_from', name)} --mapping mappings/{name}.yaml <export path>\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )


def _copy_json(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({sql}) TO {_s(str(path))} (FORMAT json)")
    return str(path)


def _versions(con: duckdb.DuckDBPyConnection, system: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(f"SELECT DISTINCT model_version FROM {_table(system)} ORDER BY 1").fetchall()
    ]


def _sagemaker(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = _table(LOAN), _features(con, _table(LOAN))
    csv_in = " || ',' || ".join(f"coalesce(CAST({_q('features.' + f)} AS VARCHAR), '')" for f in feats)
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
    _mapping(
        out_dir,
        "sagemaker",
        {
            "system_id": LOAN,
            "model_version": {
                "field": "variant",
                "values": {"v" + v.replace(".", "-"): v for v in _versions(con, LOAN)},
            },
            "principal": {"custom_attribute": "principal"},
            "session_id": {"custom_attribute": "session"},
            "source_ip": {"custom_attribute": "source_ip"},
            "features": feats,
            "score": {"output": 0},
            "prediction": {"output": 1},
            "status": {"output": 2},
        },
    )
    return files


def _copy_param(con: duckdb.DuckDBPyConnection, sql: str, params: list, path: Path) -> str:
    """COPY a parameterised query (DuckDB COPY takes no parameters: materialise it first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS {sql}", params)
    con.execute(f"COPY _out TO {_s(str(path))} (FORMAT json)")
    return str(path)


def _cloudevents(con: duckdb.DuckDBPyConnection, folder: Path, system: str, *, v2: bool) -> list[str]:
    t, feats = _table(system), _features(con, _table(system))
    prefix = "org.kubeflow.serving.inference." if v2 else "io.seldon.serving.inference."
    if v2:
        tensors = ", ".join(
            f"{{'name': {_s(f)}, 'shape': [1], 'datatype': "
            f"CASE typeof({_q('features.' + f)}) WHEN 'VARCHAR' THEN 'BYTES' WHEN 'BOOLEAN' THEN 'BOOL' "
            f"WHEN 'BIGINT' THEN 'INT64' ELSE 'FP64' END, 'data': to_json([{_q('features.' + f)}])}}"
            for f in feats
        )
        req = f"to_json({{'id': decision_id, 'inputs': [{tensors}]}})"
        resp = (
            "to_json({'model_name': " + _s(system) + ", 'model_version': model_version, 'id': decision_id, "
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
        f"strftime({{t}}, {ISO}) AS time, 'application/json' AS datacontenttype, {_s(system)} AS "
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
        "score": {"output": "probability"},
        "prediction": {"output": "label"},
        "status": {"output": "status"},
    }
    _mapping(folder.parent.parent, name, doc)
    return files


def _azureml(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = _table(LOAN), _features(con, _table(LOAN))
    root = out_dir / "azureml" / "modelDataCollector" / f"{LOAN}-endpoint" / "blue"
    event = (
        "'1.0' AS specversion, md5(decision_id || '{kind}') AS id, "
        f"'/subscriptions/0000/resourceGroups/ml/providers/Microsoft.MachineLearningServices/workspaces/ws/"
        f"onlineEndpoints/{LOAN}-endpoint/deployments/blue' AS source, "
        "'azureml.inference.{kind}' AS type, 'application/json' AS datacontenttype, "
        f"strftime(ts, {ISO}) AS time"
    )
    inputs = (
        f"SELECT {event.format(kind='model_inputs')}, [{_obj(feats, chr(39) + 'principal' + chr(39) + ', principal')}]"
        " AS data, '/score' AS path, 'POST' AS method, decision_id AS correlationid, decision_id AS xrequestid, "
        "model_version AS modelversion, 'pandas.core.frame.DataFrame' AS collectdatatype, "
        f"'azureml-ai-monitoring/0.1.0b4' AS agent FROM {t} WHERE date_trunc('hour', ts) = ? ORDER BY ts"
    )
    outputs = (
        f"SELECT {event.format(kind='model_outputs')}, [json_object('decision', prediction, 'score', score, "
        "'status', status)] AS data, '/score' AS path, 'POST' AS method, decision_id AS correlationid, "
        "decision_id AS xrequestid, model_version AS modelversion, 'pandas.core.frame.DataFrame' AS "
        f"collectdatatype, 'azureml-ai-monitoring/0.1.0b4' AS agent FROM {t} "
        "WHERE date_trunc('hour', ts) = ? ORDER BY ts"
    )
    files = []
    for (hour,) in con.execute(f"SELECT DISTINCT date_trunc('hour', ts) FROM {t} ORDER BY 1").fetchall():
        sub = hour.strftime("%Y/%m/%d/%H")
        files.append(
            _copy_param(
                con,
                inputs.replace("{kind}", "'model_inputs'"),
                [hour],
                root / "model_inputs" / sub / f"{hour:%H}-inputs.jsonl",
            )
        )
        files.append(
            _copy_param(
                con,
                outputs.replace("{kind}", "'model_outputs'"),
                [hour],
                root / "model_outputs" / sub / f"{hour:%H}-outputs.jsonl",
            )
        )
    _mapping(
        out_dir,
        "azureml",
        {
            "system_id": LOAN,
            "model_version": {"field": "modelversion"},
            "principal": {"input": "principal"},
            "score": {"output": "score"},
            "prediction": {"output": "decision"},
            "status": {"output": "status"},
        },
    )
    return files


def _databricks(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = _table(FRAUD), _features(con, _table(FRAUD))
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
    con.execute(f"COPY ({sql}) TO {_s(str(path))} (FORMAT parquet)")
    _mapping(
        out_dir,
        "databricks",
        {
            "system_id": FRAUD,
            "model_version": {
                "field": "served_entity_id",
                "values": {"fraud-model-" + v.replace(".", "-"): v for v in _versions(con, FRAUD)},
            },
            "principal": {"field": "requester"},
            "score": {"output": "score"},
            "prediction": {"output": "label"},
            "status": {"output": "status"},
        },
    )
    return [str(path)]


def _vertex(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    t, feats = _table(FRAUD), _features(con, _table(FRAUD))
    ids = {v: str(7100 + i) for i, v in enumerate(_versions(con, FRAUD))}
    cases = " ".join(f"WHEN {_s(v)} THEN {_s(i)}" for v, i in ids.items())
    sql = f"""
        SELECT 'projects/123/locations/europe-west4/endpoints/4242' AS endpoint,
               CASE model_version {cases} END AS deployed_model_id,
               strftime(ts, '%Y-%m-%d %H:%M:%S.%f UTC') AS logging_time, decision_id AS request_id,
               [{_obj(feats, "'principal', principal")}::VARCHAR] AS request_payload,
               [json_object('label', prediction, 'score', score, 'status', status)::VARCHAR] AS response_payload
        FROM {t} ORDER BY ts"""
    path = _copy_json(con, sql, out_dir / "vertex" / "request_response_logging.jsonl")
    _mapping(
        out_dir,
        "vertex",
        {
            "system_id": FRAUD,
            "model_version": {"field": "deployed_model_id", "values": {i: v for v, i in ids.items()}},
            "principal": {"input": "principal"},
            "score": {"output": "score"},
            "prediction": {"output": "label"},
            "status": {"output": "status"},
        },
    )
    return [path]


def _metrics(con: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    prom = out_dir / "prometheus" / "query_range.json"
    prom.parent.mkdir(parents=True, exist_ok=True)
    result = con.execute("""
        SELECT to_json({'status': 'success', 'data': {'resultType': 'matrix', 'result': list(s ORDER BY k)}})
        FROM (SELECT system_id || metric AS k, {'metric': {'__name__': metric, 'system_id': system_id},
                     'values': list([epoch(ts), CAST(value AS VARCHAR)::JSON] ORDER BY ts)} AS s
              FROM _m GROUP BY system_id, metric)
    """).fetchone()[0]
    prom.write_text(result + "\n")
    out["prometheus"] = [str(prom)]
    text = con.execute("""
        SELECT string_agg(block, '' ORDER BY metric) || '# EOF' || chr(10)
        FROM (SELECT metric, '# TYPE ' || metric || ' gauge' || chr(10) || string_agg(
                  metric || '{system_id="' || system_id || '"} ' || CAST(value AS VARCHAR) || ' '
                  || CAST(epoch(ts) AS VARCHAR) || chr(10), '' ORDER BY system_id, ts) AS block
              FROM _m GROUP BY metric)
    """).fetchone()[0]
    om = out_dir / "openmetrics" / "metrics.prom"
    om.parent.mkdir(parents=True, exist_ok=True)
    om.write_text(text)
    out["openmetrics"] = [str(om)]
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
        path = out_dir / "cloudwatch" / f"{system}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(json.loads(doc), indent=1) + "\n")
        out["cloudwatch"].append(str(path))
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
    path = out_dir / "otlp" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(otlp + "\n")
    out["otlp"] = [str(path)]
    return out
