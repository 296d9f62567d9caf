"""Platform importers: each export shape reproduces the canonical decisions/metrics; malformed input is quarantined."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from workbench.access import local_admin
from workbench.ingest import ingest, ingest_file
from workbench.ingest.importers import load_all
from workbench.ingest.importers.mapping import parse
from workbench.store import open_workspace

DECISION_EXPORTS = {  # platform -> (export folder or file under exports/, importer)
    "sagemaker": ("sagemaker", "sagemaker"),
    "seldon": ("seldon", "kserve"),
    "kserve": ("kserve", "kserve"),
    "azureml": ("azureml", "azureml"),
    "databricks": ("databricks/fraud_endpoint_payload.parquet", "databricks"),
    "vertex": ("vertex/request_response_logging.jsonl", "vertex"),
}


@pytest.fixture(scope="module")
def exports(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sample written in every platform shape (at most 600 decisions per system)."""
    from workbench.sample.exports import write_exports

    out = tmp_path_factory.mktemp("exports")
    write_exports(small_sample, out, max_decisions=600)
    return out


@pytest.fixture(scope="module")
def canonical(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The canonical sample decisions, ingested through the ordinary reader, keyed by decision id."""
    ws = open_workspace(tmp_path_factory.mktemp("canon") / "c.duckdb")
    ingest(ws, local_admin(), [small_sample / "decisions"])
    rows = _decisions(ws)
    ws.close()
    return rows


def _decisions(ws) -> dict[str, dict]:
    out = {}
    for r in ws.dicts("SELECT decision_id, ts, system_id, model_version, principal, prediction, score, features, "
                      "status, session_id, source_ip FROM decisions"):
        r["features"] = json.loads(r["features"])
        out[r["decision_id"]] = r
    return out


def _ingest(tmp_path: Path, target: Path, importer: str | None, mapping: dict | None, **kw):
    ws = open_workspace(tmp_path / f"ws-{importer}.duckdb")
    results = ingest(ws, local_admin(), [target], fmt=importer, mapping=mapping, **kw)
    return ws, results


def _accounting_ok(results) -> None:
    for r in results:
        assert r.error is None, r.error
        assert r.rows_read == r.rows_loaded + r.duplicates + r.rows_quarantined, r


@pytest.mark.parametrize("platform", sorted(DECISION_EXPORTS))
def test_export_reproduces_canonical_decisions(platform, exports, canonical, tmp_path):
    rel, importer = DECISION_EXPORTS[platform]
    mapping = yaml.safe_load((exports / "mappings" / f"{platform}.yaml").read_text())
    ws, results = _ingest(tmp_path, exports / rel, importer, mapping)
    _accounting_ok(results)
    assert sum(r.rows_quarantined for r in results) == 0, ws.rows("SELECT line, reason FROM quarantine LIMIT 5")
    got = _decisions(ws)
    assert len(got) > 100
    assert sum(r.rows_loaded for r in results) == len(got)
    for decision_id, row in got.items():
        want = canonical[decision_id]
        for key in ("ts", "system_id", "model_version", "principal", "prediction", "features", "status"):
            assert row[key] == want[key], (platform, decision_id, key, row[key], want[key])
        assert (row["score"] is None and want["score"] is None) or row["score"] == want["score"]
    if platform in ("sagemaker", "kserve", "seldon"):  # these shapes also carry session and address
        assert all(row["source_ip"] == canonical[k]["source_ip"] for k, row in got.items())
    ws.close()


def test_reingesting_a_folder_skips_every_file(exports, tmp_path):
    mapping = yaml.safe_load((exports / "mappings" / "kserve.yaml").read_text())
    ws, first = _ingest(tmp_path, exports / "kserve", "kserve", mapping)
    again = ingest(ws, local_admin(), [exports / "kserve"], mapping=mapping)
    assert all(r.skipped for r in again) and len(again) == len(first)
    ws.close()


@pytest.mark.parametrize("platform", ["sagemaker", "kserve", "azureml", "databricks", "vertex"])
def test_formats_are_recognised_without_from(platform, exports, tmp_path):
    rel, importer = DECISION_EXPORTS[platform]
    target = exports / rel
    first = target if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())[0]
    mapping = yaml.safe_load((exports / "mappings" / f"{platform}.yaml").read_text())
    ws = open_workspace(tmp_path / "w.duckdb")
    r = ingest_file(ws, local_admin(), first, mapping=mapping)
    assert r.error is None and r.format == importer and r.rows_loaded > 0
    ws.close()


# ---- mapping errors -------------------------------------------------------------------------------------------

def test_missing_mapping_is_one_line_with_example(exports, tmp_path):
    ws = open_workspace(tmp_path / "w.duckdb")
    capture = sorted((exports / "sagemaker").rglob("*.jsonl"))[0]
    r = ingest_file(ws, local_admin(), capture)
    assert r.format == "sagemaker" and "--mapping" in r.error and "system_id:" in r.error and "\n" not in r.error
    bad = {"system_id": "loan-origination", "model_version": "1.1", "prediction": {"output": 1}}
    r = ingest_file(ws, local_admin(), capture, mapping=bad)
    assert "principal: missing" in r.error and "example mapping:" in r.error and "\n" not in r.error
    assert ws.scalar("SELECT count(*) FROM decisions") == 0
    ws.close()


@pytest.mark.parametrize(("doc", "field"), [
    ({"model_version": "1", "principal": "p", "prediction": {"output": 0}}, "system_id"),
    ({"system_id": "s", "model_version": "1", "principal": "p", "prediction": {"output": 0},
      "features": {"a": "decimal"}}, "features.a"),
    ({"system_id": "s", "model_version": "1", "principal": {"cookie": "x"}, "prediction": {"output": 0}}, "principal"),
    ({"system_id": "s", "model_version": "1", "principal": "p", "score": {"output": 0},
      "prediction": {"thresholds": [0.1, 0.2], "labels": ["a", "b"]}}, "prediction.labels"),
    ({"system_id": "s", "model_version": "1", "principal": "p", "prediction": {"output": 0}, "colour": 1}, "colour"),
])
def test_mapping_validation_names_the_field(doc, field):
    with pytest.raises(Exception) as exc:
        parse(doc, "kserve")
    assert str(exc.value).startswith(f"kserve mapping: {field}:") and "example mapping:" in str(exc.value)


def test_mapping_validation_lists_every_problem_on_one_line():
    doc = {"model_version": {"field": "v", "values": [1]}, "principal": None, "features": ["a", "a"],
           "prediction": {"thresholds": [0.5], "labels": ["lo"]}, "score": "abc", "status": {"header": "x", "y": 1},
           "colour": 1}
    with pytest.raises(Exception) as exc:
        parse(doc, "kserve")
    text = str(exc.value)
    assert "\n" not in text and text.startswith("kserve mapping: ") and "; example mapping: " in text
    fields = [p.path for p in exc.value.problems]
    assert fields == ["system_id", "model_version.values", "principal", "features", "prediction.labels", "score",
                      "status", "colour"]
    assert all(f"{f}: " in text for f in fields)
    m = parse({"model_version": {"field": "v", "values": {1: "3.1"}}, "principal": "svc", "features": ["a", "b"],
               "prediction": {"thresholds": [0.5], "labels": [0, 1]}, "score": {"output": 1}}, "kserve", "sys")
    assert (m.model_version.kind, m.model_version.values, m.principal.const) == ("field", {"1": "3.1"}, "svc")
    assert (m.features, m.thresholds, m.labels, m.score.key, m.system_id) == ([("a", "auto"), ("b", "auto")],
                                                                               [0.5], ["0", "1"], 1, None)


def test_cli_names_the_missing_mapping(exports, tmp_path, capsys):
    from workbench.cli import app
    capture = sorted((exports / "sagemaker").rglob("*.jsonl"))[0]
    with pytest.raises(SystemExit) as exc:
        app(["ingest", "--db", str(tmp_path / "w.duckdb"), str(capture)], standalone_mode=True)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --mapping FILE" in err[0]


# ---- malformed variants ---------------------------------------------------------------------------------------

def _first_lines(folder: Path, n: int = 3) -> tuple[Path, list[str]]:
    f = sorted(p for p in folder.rglob("*.jsonl"))[0]
    return f, f.read_text().splitlines()[:n]


def _reasons(ws) -> list[str]:
    return [r[0] for r in ws.rows("SELECT reason FROM quarantine ORDER BY source_id, line")]


def test_sagemaker_malformed_lines_are_quarantined(exports, tmp_path):
    src, lines = _first_lines(exports / "sagemaker")
    good = json.loads(lines[0])
    short = json.loads(lines[1])
    short["captureData"]["endpointInput"]["data"] = "1,2"
    no_out = json.loads(lines[2])
    del no_out["captureData"]["endpointOutput"]
    no_id = json.loads(lines[2])
    del no_id["eventMetadata"]["eventId"]
    b64 = json.loads(lines[2])
    b64["eventMetadata"]["eventId"] += "-b64"
    b64["captureData"]["endpointInput"].update(encoding="BASE64", data="%%%")
    folder = tmp_path / "ep" / "v1-1" / "2026" / "10" / "05" / "10"
    folder.mkdir(parents=True)
    bad = folder / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(good), "{not json", json.dumps(short), json.dumps(no_out),
                              json.dumps(no_id), json.dumps(b64), "[1, 2]"]) + "\n")
    mapping = yaml.safe_load((exports / "mappings" / "sagemaker.yaml").read_text())
    ws, results = _ingest(tmp_path, bad, "sagemaker", mapping)
    _accounting_ok(results)
    r = results[0]
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (7, 1, 6)
    reasons = _reasons(ws)
    assert reasons[0] == "unparseable JSON"
    assert "payload record has 2 values but the mapping lists 12 features" in reasons[1]
    assert reasons[2].startswith("request without response")
    assert reasons[3] == "missing eventMetadata.eventId"
    assert reasons[4] == "endpointInput.data is not valid BASE64"
    assert reasons[5] == "line is not a JSON object"
    ws.close()


def test_kserve_pairs_across_files_and_quarantines_orphans(exports, tmp_path):
    folder = tmp_path / "events"
    shutil.copytree(exports / "kserve" / "card-fraud", folder)
    files = sorted(folder.glob("*.jsonl"))
    events = [json.loads(x) for x in files[0].read_text().splitlines()]
    req = next(e for e in events if e["type"].endswith("request"))
    orphan_resp = dict(next(e for e in events if e["type"].endswith("response")), id="no-such-request")
    lonely_req = dict(req, id="lonely")
    v2_bad = dict(req, id="badshape", data={"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64",
                                                          "data": [1, 2, 3, 4]}]})
    extra = folder / "zz-extra.jsonl"
    v2_resp = dict(orphan_resp, id="badshape", data={"outputs": [{"name": "label", "shape": [2], "datatype": "BYTES",
                                                               "data": ["allow", "allow"]}]})
    extra.write_text("\n".join([json.dumps(orphan_resp), json.dumps(lonely_req), json.dumps(v2_bad),
                                json.dumps(v2_resp),
                                '{"id": "x", "type": "org.kubeflow.serving.inference.request"',
                                json.dumps(dict(req, id="t", type="com.example.other"))]) + "\n")
    mapping = yaml.safe_load((exports / "mappings" / "kserve.yaml").read_text())
    ws, results = _ingest(tmp_path, folder, "kserve", mapping)
    _accounting_ok(results)
    requests = sum(1 for f in files for x in f.read_text().splitlines() if "inference.request" in x)
    assert sum(r.rows_loaded for r in results) == requests  # every pair once, even across hour files
    reasons = [x[0] for x in ws.rows("SELECT reason FROM quarantine WHERE path LIKE '%zz-extra%' ORDER BY line")]
    assert reasons[0].startswith("response without request (no request event with id no-such-request")
    assert reasons[1].startswith("request without response")
    assert reasons[2:4] == ["payload record is a list of values without names: the mapping must name them in "
                            "order (features: [a, b, ...])"] * 2  # one V2 tensor of shape [2, 2]: two records
    assert reasons[4:] == ["unparseable JSON", "unknown event type com.example.other (expected an inference "
                                               "request or response)"]
    ws.close()


def test_azureml_output_without_input(exports, tmp_path):
    root = tmp_path / "collector"
    shutil.copytree(exports / "azureml", root)
    outputs = sorted(root.rglob("model_outputs/**/*.jsonl"))[0]
    line = json.loads(outputs.read_text().splitlines()[0])
    line["correlationid"] = "nobody-asked"
    outputs.write_text(outputs.read_text() + json.dumps(line) + "\n{oops\n")
    mapping = yaml.safe_load((exports / "mappings" / "azureml.yaml").read_text())
    ws, results = _ingest(tmp_path, root, "azureml", mapping)
    _accounting_ok(results)
    assert _reasons(ws) == ["response without request (no model_inputs event with correlationid nobody-asked)",
                            "unparseable JSON"]
    ws.close()


def test_databricks_json_export_and_bad_rows(exports, tmp_path):
    src = exports / DECISION_EXPORTS["databricks"][0]
    out = tmp_path / "payload.jsonl"
    duckdb.execute(f"COPY (SELECT * FROM read_parquet('{src}') LIMIT 5) TO '{out}' (FORMAT json)")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    missing = {k: v for k, v in rows[1].items() if k != "databricks_request_id"}
    wrong = dict(rows[2], request='{"dataframe_split": {"columns": ["a"], "data": [[1]]}}')
    failed = dict(rows[3], status_code=503, response='{"error_code": "TEMPORARILY_UNAVAILABLE"}')
    out.write_text("\n".join(json.dumps(r) for r in [rows[0], missing, wrong, failed, rows[4]]) + "\n{x\n")
    mapping = yaml.safe_load((exports / "mappings" / "databricks.yaml").read_text())
    mapping["features"] = {"amount": "number"}  # record objects keep their own names: features is ignored for them
    ws, results = _ingest(tmp_path, out, "databricks", mapping)
    _accounting_ok(results)
    assert (results[0].rows_read, results[0].rows_loaded, results[0].rows_quarantined) == (6, 3, 3)
    assert _reasons(ws) == ["missing databricks_request_id",
                            "request failed (status_code 503): no prediction to load", "unparseable JSON"]
    ws.close()


def test_vertex_bad_payload(exports, tmp_path):
    src = exports / DECISION_EXPORTS["vertex"][0]
    lines = src.read_text().splitlines()[:3]
    row = json.loads(lines[1])
    row["request_payload"] = ["{not json"]
    row2 = json.loads(lines[2])
    row2["response_payload"] = ['{"label": "allow"}', '{"label": "block"}']
    bad = tmp_path / "vx.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(row), json.dumps(row2)]) + "\n")
    mapping = yaml.safe_load((exports / "mappings" / "vertex.yaml").read_text())
    ws, results = _ingest(tmp_path, bad, "vertex", mapping)
    _accounting_ok(results)
    assert _reasons(ws) == ["request_payload is not JSON (or an element of it is not)",
                            "request has 1 records but the response has 2 outputs"]
    ws.close()


# ---- metrics --------------------------------------------------------------------------------------------------

METRIC_FILES = {"prometheus": ["prometheus/query_range.json"], "openmetrics": ["openmetrics/metrics.prom"],
                "otlp": ["otlp/metrics.json"], "cloudwatch": ["cloudwatch/card-fraud.json",
                                                             "cloudwatch/loan-origination.json"]}


def _canonical_metrics(small_sample: Path, exports: Path) -> dict[tuple, float]:
    day = json.loads((exports / "prometheus" / "query_range.json").read_text())["data"]["result"][0]["values"]
    lo, hi = day[0][0], day[-1][0]
    rows = duckdb.execute(f"SELECT system_id, metric, epoch(ts), value FROM read_parquet("
                          f"'{small_sample / 'metrics' / 'metrics.parquet'}') WHERE epoch(ts) BETWEEN ? AND ?",
                          [lo - 86400, hi + 86400]).fetchall()
    return {(s, m, round(t)): v for s, m, t, v in rows}


@pytest.mark.parametrize("fmt", sorted(METRIC_FILES))
def test_metric_exports_recognised_and_loaded_once(fmt, exports, small_sample, tmp_path, capsys):
    from workbench.cli import app
    db = tmp_path / "m.duckdb"
    loaded = 0
    for rel in METRIC_FILES[fmt]:
        args = ["ingest", "--db", str(db), "--kind", "metrics", "--json", str(exports / rel)]
        if fmt == "cloudwatch":
            args[1:1] = ["--system", Path(rel).stem]
        try:
            app(args, standalone_mode=False)
        except SystemExit as exc:  # pragma: no cover - only on failure
            assert exc.code == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["format"] == fmt and summary["error"] is None, summary
        assert summary["rows_read"] == summary["rows_loaded"] and summary["rows_quarantined"] == 0
        loaded += summary["rows_loaded"]
    ws = open_workspace(db)
    got = {(s, m, round(t)): v for s, m, t, v in ws.rows("SELECT system_id, metric, epoch(ts), value FROM metrics")}
    ws.close()
    want = _canonical_metrics(small_sample, exports)
    assert len(got) == loaded
    for key, value in got.items():
        assert math.isclose(want[key], value, rel_tol=0, abs_tol=0), key
    lo, hi = min(t for *_, t in got), max(t for *_, t in got)
    span = {k for k in want if lo <= k[2] <= hi}
    assert set(got) == span


def test_the_same_points_in_two_formats_load_once(exports, tmp_path):
    ws = open_workspace(tmp_path / "w.duckdb")
    first = ingest(ws, local_admin(), [exports / "prometheus" / "query_range.json"])
    second = ingest(ws, local_admin(), [exports / "openmetrics" / "metrics.prom", exports / "otlp" / "metrics.json"])
    assert first[0].rows_loaded > 0
    for r in second:
        assert r.error is None and r.rows_loaded == 0 and r.duplicates == r.rows_read == first[0].rows_read
    ws.close()


def test_malformed_metrics_are_quarantined(tmp_path):
    load_all()
    prom = tmp_path / "m.prom"
    prom.write_text('# TYPE x gauge\nx{system_id="s",k="a\\"b"} 1.5 1714557600\nx{system_id="s"} 2\n'
                    "garbage here\nx 3 1714557600000\n# EOF\n")
    cw = tmp_path / "cw.json"
    cw.write_text(json.dumps({"MetricDataResults": [
        {"Id": "a", "Label": "lat", "Timestamps": ["2024-05-01T10:00:00Z"], "Values": [1, 2], "StatusCode": "Complete"},
        {"Id": "b", "Label": 'err{k="v"}', "Timestamps": ["2024-05-01T10:00:00+00:00"], "Values": [0.5],
         "StatusCode": "PartialData"}]}))
    ot = tmp_path / "ot.json"
    ot.write_text(json.dumps({"resourceMetrics": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeMetrics": [{"metrics": [
            {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "1714557600000000000", "asDouble": 1.25},
                                                   {"timeUnixNano": "1714557600000000000"}]}},
            {"name": "c", "sum": {"dataPoints": [{"timeUnixNano": "1714557600000000000", "asInt": "7",
                                                  "attributes": [{"key": "code", "value": {"intValue": "200"}}]}]}},
            {"name": "h", "histogram": {"dataPoints": [{"timeUnixNano": "1714557600000000000"}]}}]}]}]}))
    ws = open_workspace(tmp_path / "w.duckdb")
    results = ingest(ws, local_admin(), [prom, cw, ot], kind="metrics", system="fallback")
    _accounting_ok(results)
    # The text file ends with # EOF: OpenMetrics, timestamps in seconds, so the millisecond one is refused.
    # The OTLP histogram point without buckets loads as its +Inf bucket and count (2 rows).
    assert [(r.format, r.rows_read, r.rows_loaded, r.rows_quarantined) for r in results] == [
        ("openmetrics", 4, 1, 3), ("cloudwatch", 3, 1, 2), ("otlp", 5, 4, 1)]
    labels = dict(ws.rows("SELECT metric || system_id, labels::VARCHAR FROM metrics"))
    assert labels["xs"] == '{"k":"a\\"b"}' and labels["errfallback"] == '{"k":"v"}'
    assert labels["cfallback"] == '{"code":"200"}'
    reasons = _reasons(ws)
    assert "sample has no timestamp" in reasons[0] and reasons[1] == "value is not a number: here"
    assert "as seconds (OpenMetrics" in reasons[2] and "milliseconds" in reasons[2]
    assert any("no asDouble or asInt" in x for x in reasons)
    ws.close()
