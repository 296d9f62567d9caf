"""OTLP metrics importer against a corpus written from the OTLP specification, as JSON and as protobuf.

Every data point must land on its series (Prometheus-style names and `le` / `quantile` labels for histograms and
summaries), at its time, with its value, whatever the encoding; unreadable points are quarantined one by one.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from workbench.access import local_admin
from workbench.ingest import ingest
from workbench.store import open_workspace

SPEC = Path(__file__).parent / "data" / "importers" / "otlp" / "spec.json"
LO, CF = "loan-origination", "card-fraud"
T0 = 1_790_000_000
INF, NAN = math.inf, "nan"

# point number -> the series it gives: (system, metric, labels, value, time in seconds)
WANT = {
    1: [(LO, "model.requests", {"code": "200"}, 1027.0, T0)],
    2: [(CF, "queue_depth", {"queue": "scoring"}, 3.5, T0 + 0.25)],
    3: [(CF, "queue_depth", {"queue": "scoring"}, NAN, T0 + 60)],
    4: [(CF, "queue_depth", {"queue": "scoring"}, -INF, T0 + 120)],
    5: [(LO, "latency_bucket", {"le": "0.05", "route": "/score"}, 12.0, T0 + 60),
        (LO, "latency_bucket", {"le": "0.1", "route": "/score"}, 30.0, T0 + 60),
        (LO, "latency_bucket", {"le": "1.0", "route": "/score"}, 41.0, T0 + 60),
        (LO, "latency_bucket", {"le": "+Inf", "route": "/score"}, 42.0, T0 + 60),
        (LO, "latency_count", {"route": "/score"}, 42.0, T0 + 60),
        (LO, "latency_sum", {"route": "/score"}, 3.5, T0 + 60)],
    # scale 0: base 2; negative bucket 1 holds [-4, -2), the zero bucket 0, positive buckets (1, 2] and (2, 4]
    6: [(LO, "payload_size_bucket", {"le": "-2.0"}, 2.0, T0 + 60),
        (LO, "payload_size_bucket", {"le": "0.0"}, 3.0, T0 + 60),
        (LO, "payload_size_bucket", {"le": "2.0"}, 5.0, T0 + 60),
        (LO, "payload_size_bucket", {"le": "4.0"}, 6.0, T0 + 60),
        (LO, "payload_size_bucket", {"le": "+Inf"}, 6.0, T0 + 60),
        (LO, "payload_size_count", {}, 6.0, T0 + 60),
        (LO, "payload_size_sum", {}, 1.5, T0 + 60)],
    7: [(LO, "drift", {"feature": "income", "quantile": "0.5"}, 0.12, T0 + 120),
        (LO, "drift", {"feature": "income", "quantile": "0.99"}, 0.4, T0 + 120),
        (LO, "drift_count", {"feature": "income"}, 17.0, T0 + 120),
        (LO, "drift_sum", {"feature": "income"}, 2.5, T0 + 120)],
    8: [(CF, "up", {"canary": "true", "ratio": "0.25"}, 1.0, T0)],
}


def load(tmp_path: Path, path: Path, system: str | None = None, fmt: str | None = None):
    """Ingest one metrics file: (result, {point number: sorted series}, {point number: reason})."""
    ws = open_workspace(tmp_path / f"{path.name}.duckdb")
    [result] = ingest(ws, local_admin(), [path], kind="metrics", system=system, fmt=fmt)
    rows: dict[int, list] = {}
    for line, sys_id, metric, labels, value, us in ws.rows(
            "SELECT source_line, system_id, metric, labels::VARCHAR, value, epoch_us(ts) FROM metrics"):
        value = NAN if math.isnan(value) else value
        rows.setdefault(line, []).append((sys_id, metric, json.loads(labels) if labels else {}, value, us / 1e6))
    bad = dict(ws.rows("SELECT line, reason FROM quarantine ORDER BY line"))
    ws.close()
    if result.error is None:
        assert result.rows_read == result.rows_loaded + result.duplicates + result.rows_quarantined
    return result, {k: sorted(v, key=repr) for k, v in rows.items()}, bad


def _sorted(want: dict) -> dict:
    return {k: sorted(v, key=repr) for k, v in want.items()}


def test_otlp_json_corpus_every_point_on_its_series(tmp_path):
    result, rows, bad = load(tmp_path, SPEC)
    assert result.error is None and result.format == "otlp" and bad == {}
    assert rows == _sorted(WANT)
    assert result.rows_loaded == sum(len(v) for v in WANT.values())
    # the exemplar of point 1 (0.043, its trace and filtered attributes) is not loaded
    assert not any(r[3] == 0.043 or "trace_user" in r[2] for v in rows.values() for r in v)


def test_system_option_comes_before_service_name(tmp_path):
    _, rows, _ = load(tmp_path, SPEC, system="fallback")
    assert rows[2][0][0] == CF  # a system_id attribute of the point still wins
    assert {r[0] for k in (1, 5, 6, 7, 8) for r in rows[k]} == {"fallback"}


def _message(doc: dict) -> bytes:
    return json_format.Parse(json.dumps(doc), ExportMetricsServiceRequest()).SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _encodings() -> dict[str, bytes]:
    doc = json.loads(SPEC.read_text())
    whole = _message(doc)
    parts = [_message({"resourceMetrics": [rm]}) for rm in doc["resourceMetrics"]]
    return {
        "single.pb": whole,
        "collector-file-exporter.pb": b"".join(len(p).to_bytes(4, "big") + p for p in parts),
        "delimited.pb": b"".join(_varint(len(p)) + p for p in parts),
        "single.pb.gz": gzip.compress(whole),
        "empty-first-frame.pb": (0).to_bytes(4, "big") + b"".join(len(p).to_bytes(4, "big") + p for p in parts),
    }


@pytest.mark.parametrize("name", sorted(_encodings()))
def test_protobuf_encodings_recognised_and_equal_to_json(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(_encodings()[name])
    result, rows, bad = load(tmp_path, path)
    assert result.error is None and result.format == "otlp", result.error
    assert bad == {} and rows == _sorted(WANT)


def test_truncated_protobuf_is_refused(tmp_path):
    path = tmp_path / "cut.pb"
    path.write_bytes(_encodings()["single.pb"][:-7])
    result, rows, _ = load(tmp_path, path, fmt="otlp")
    assert result.error is not None and "not" in result.error and rows == {}


def _gauge(name: str, **point) -> dict:
    return {"name": name, "gauge": {"dataPoints": [point]}}


def test_bad_points_quarantined_one_by_one(tmp_path):
    t = str(T0 * 10**9)
    metrics = [
        {"name": "h1", "histogram": {"dataPoints": [{"timeUnixNano": t, "count": "3", "bucketCounts": ["1", "1", "1"],
                                                     "explicitBounds": [1.0]}]}},
        {"name": "h2", "histogram": {"dataPoints": [{"timeUnixNano": t, "count": "5", "bucketCounts": ["1", "1"],
                                                     "explicitBounds": [1.0]}]}},
        _gauge("g1", timeUnixNano=t, asDouble=1, flags=1),
        _gauge("g2", timeUnixNano=str(T0 * 1000), asDouble=1),
        _gauge("g3", timeUnixNano=t, asDouble=1, attributes=[{"key": "k", "value": {"stringValue": "a"}},
                                                             {"key": "k", "value": {"stringValue": "b"}}]),
        _gauge("g4", timeUnixNano=t, asDouble="abc"),
        {"name": "s", "summary": {"dataPoints": [{"timeUnixNano": t, "quantileValues": [{"quantile": 1.5}]}]}},
        _gauge("ok", timeUnixNano=t, asInt="7"),
        {"name": "nothing"},
    ]
    path = tmp_path / "bad.jsonl"
    doc = {"resourceMetrics": [{"resource": {}, "scopeMetrics": [{"metrics": metrics}]}]}
    path.write_text(json.dumps(doc) + "\n{not json\n" + json.dumps({"foo": 1}) + "\n")
    result, rows, bad = load(tmp_path, path, system="s1")
    assert rows == {8: [("s1", "ok", {}, 7.0, T0)]}
    assert bad == {
        1: "histogram point has 3 bucket counts for 1 bounds (expected 2)",
        2: "bucket counts add up to 2 but count is 5",
        3: "data point is flagged as having no recorded value",
        4: f"timeUnixNano {T0 * 1000} is out of range (it must be nanoseconds since 1970)",
        5: "attribute k appears twice",
        6: "asDouble is not a number: abc",
        7: "quantile 1.5 is outside 0..1",
        9: "metric has no gauge, sum, histogram, exponentialHistogram or summary data",
        10: "line 2 is not JSON",
        11: "not an OTLP metrics document (no resourceMetrics list)",
    }
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (11, 1, 10)


def test_protobuf_sniffing_on_big_files_and_no_false_positives(tmp_path):
    from workbench.ingest.importers import otlp_proto

    doc = json.loads(SPEC.read_text())
    points = [{"asDouble": float(i), "timeUnixNano": str((T0 + i) * 10**9)} for i in range(5000)]
    doc["resourceMetrics"][1]["scopeMetrics"][0]["metrics"].append({"name": "big", "gauge": {"dataPoints": points}})
    whole = _message(doc)
    assert len(whole) > 65536
    framed = b"".join(len(p).to_bytes(4, "big") + p for p in (whole, whole))
    for name, data in (("big.pb", whole), ("big-stream.pb", framed)):
        path = tmp_path / name
        path.write_bytes(data)
        result, rows, bad = load(tmp_path, path)
        assert result.error is None and result.format == "otlp" and bad == {}
        assert result.rows_loaded == sum(len(v) for v in WANT.values()) + 5000  # the second copy: duplicates
    text = (Path(__file__).parent / "data" / "importers" / "openmetrics" / "spec.om").read_bytes()
    others = [b"", text, b"\n# TYPE x gauge\nx 1 1\n", b'{"resourceMetrics": []}', b"a,b\n1,2\n",
              b"PAR1\x15\x04", b"\n\x05hello", b"\x00" * 64]
    assert not any(otlp_proto.looks_like(data, len(data)) for data in others)
