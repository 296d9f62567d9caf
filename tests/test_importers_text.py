"""OpenMetrics / Prometheus text importer against corpora written from the two specifications.

Every sample must land on its series (metric, labels, system), at its time, with its value; exemplars never do;
every line that breaks the format is quarantined with its line number and reason while the rest loads.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from workbench.access import local_admin
from workbench.ingest import ingest
from workbench.ingest.importers.exposition import go_float
from workbench.store import open_workspace

CORPUS = Path(__file__).parent / "data" / "importers" / "openmetrics"
LO = "loan-origination"
T0 = 1_790_000_000


def load(tmp_path: Path, path: Path, fmt: str | None = None):
    """Ingest one file as metrics (system `fallback` where the export names none): result, rows, quarantine."""
    ws = open_workspace(tmp_path / "w.duckdb")
    [result] = ingest(ws, local_admin(), [path], kind="metrics", system="fallback", fmt=fmt)
    rows = {}
    for line, system, metric, labels, value, us in ws.rows(
            "SELECT source_line, system_id, metric, labels::VARCHAR, value, epoch_us(ts) FROM metrics"):
        rows.setdefault(line, []).append((system, metric, json.loads(labels) if labels else {}, value, us / 1e6))
    bad = dict(ws.rows("SELECT line, reason FROM quarantine ORDER BY line"))
    ws.close()
    assert result.error is None, result.error
    assert result.rows_read == result.rows_loaded + result.duplicates + result.rows_quarantined
    return result, {k: v[0] if len(v) == 1 else v for k, v in rows.items()}, bad


def same(got, want) -> bool:
    """Row equality where NaN equals NaN."""
    return len(got) == len(want) and all(
        (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b
        for a, b in zip(got, want, strict=True))


OPENMETRICS_WANT = {  # line -> (system, metric, labels, value, time in seconds)
    3: (LO, "model_requests_total", {"code": "200"}, 1027.0, T0),
    4: (LO, "model_requests_created", {"code": "200"}, 1789990000.25, T0),
    5: (LO, "model_requests_total", {"code": "500"}, 3.0, T0),
    9: (LO, "model_latency_seconds_bucket", {"le": "0.05"}, 12.0, T0 + 0.25),
    10: (LO, "model_latency_seconds_bucket", {"le": "0.1"}, 30.0, T0 + 0.25),
    11: (LO, "model_latency_seconds_bucket", {"le": "1.0"}, 41.0, T0 + 0.25),
    12: (LO, "model_latency_seconds_bucket", {"le": "+Inf"}, 42.0, T0 + 0.25),
    13: (LO, "model_latency_seconds_count", {}, 42.0, T0 + 0.25),
    14: (LO, "model_latency_seconds_sum", {}, 3.5, T0 + 0.25),
    15: (LO, "model_latency_seconds_created", {}, 1789990000.0, T0 + 0.25),
    17: (LO, "feature_drift", {"feature": "income", "quantile": "0.5"}, 0.12, T0 + 60),
    18: (LO, "feature_drift", {"feature": "income", "quantile": "0.99"}, math.nan, T0 + 60),
    19: (LO, "feature_drift_count", {"feature": "income"}, 17.0, T0 + 60),
    20: (LO, "feature_drift_sum", {"feature": "income"}, 2.5, T0 + 60),
    22: ("fallback", "queue_depth", {"queue": 'a "quoted" \\ name\nline 2, {braces} # hash'}, math.inf,
         T0 + 120.000001),
    23: ("fallback", "queue_depth", {"queue": "plain"}, -math.inf, T0 + 120),
    25: (LO, "build_info", {"version": "1.2.3"}, 1.0, T0),
    27: ("fallback", "breaker", {"breaker": "open"}, 1.0, T0),
    28: ("fallback", "breaker", {"breaker": "closed"}, 0.0, T0),
    30: ("fallback", "mystery", {}, 42.0, T0),
}


def test_openmetrics_corpus_every_sample_on_its_series(tmp_path):
    result, rows, bad = load(tmp_path, CORPUS / "spec.om")
    assert result.format == "openmetrics" and bad == {}
    assert (result.rows_read, result.rows_loaded) == (20, 20)
    assert sorted(rows) == sorted(OPENMETRICS_WANT)
    for line, want in OPENMETRICS_WANT.items():
        assert same(rows[line], want), (line, rows[line], want)
    # exemplars (trace ids, their values 0.043 and 0.067, their timestamps) are nowhere in the metrics
    assert not any("trace_id" in r[2] or "span_id" in r[2] or r[3] in (0.043, 0.067) for r in rows.values())


def _client_samples(families) -> list[tuple]:
    out = []
    for family in families:
        for s in family.samples:
            labels = dict(s.labels)
            system = labels.pop("system_id", "fallback")
            for key in ("le", "quantile"):
                if key in labels and family.type in ("histogram", "summary"):
                    labels[key] = go_float(float(labels[key]))
            if s.timestamp is not None:
                out.append((system, s.name, labels, float(s.value), round(float(s.timestamp), 6)))
    return out


@pytest.mark.parametrize(("name", "parse"), [("spec.om", om_families), ("text-0.0.4.prom", text_families)])
def test_loaded_samples_match_prometheus_client(tmp_path, name, parse):
    """The same samples as prometheus_client's own parsers read (le/quantile in Prometheus' float text)."""
    _, rows, _ = load(tmp_path, CORPUS / name)
    theirs = [s for s in _client_samples(parse((CORPUS / name).read_text()))
              if s[4] >= 31_536_000]  # the client keeps a 1969 time that the workbench refuses (see below)
    ours = [(s, m, lab, v, round(t, 6)) for s, m, lab, v, t in (rows[k] for k in sorted(rows))]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert same(a, b), (a, b)


def test_prometheus_text_format_timestamps_are_milliseconds(tmp_path):
    result, rows, bad = load(tmp_path, CORPUS / "text-0.0.4.prom")
    assert result.format == "openmetrics"
    assert rows[4] == ("fallback", "http_requests_total", {"code": "200", "method": "post"}, 1027.0, T0)
    assert rows[5] == ("fallback", "http_requests_total", {"code": "400", "method": "post"}, 3.0, T0)
    assert rows[8] == ("fallback", "file_age_seconds", {"error": 'Cannot find file:\n"FILE.TXT"',
                                                        "path": "C:\\DIR\\FILE.TXT"}, 1458255915.0, T0 + 0.123)
    assert rows[12][1:4] == ("rpc_duration_seconds", {"quantile": "0.01"}, 3102.0)
    assert rows[14][1:4] == ("rpc_duration_seconds_sum", {}, 17560473.0)
    assert [rows[k][2]["le"] for k in (17, 18, 19)] == ["100.0", "1000.0", "+Inf"]
    assert bad[9].startswith("sample has no timestamp")
    assert bad[10].startswith("timestamp -3982045 as milliseconds") and "# EOF" in bad[10]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (14, 12, 2)


@pytest.mark.parametrize(("eof", "fmt"), [(True, None), (False, None), (True, "openmetrics"), (False, "openmetrics")])
def test_exemplar_is_never_the_sample(tmp_path, eof, fmt):
    """The issue's line: the counter loads 1027 at its own time, with {code} only (no # EOF needed either)."""
    path = tmp_path / "scrape.om"
    text = ('model_requests_total{code="200"} 1027 1790000000 # {trace_id="abc"} 0.043 1790000000.5\n'
            + ("# EOF\n" if eof else ""))
    path.write_text(text)
    result, rows, bad = load(tmp_path, path, fmt=fmt)
    assert bad == {} and result.rows_loaded == 1
    assert rows == {1: ("fallback", "model_requests_total", {"code": "200"}, 1027.0, 1790000000.0)}


def test_seconds_without_openmetrics_marks_are_refused_not_misread(tmp_path):
    path = tmp_path / "plain.prom"
    path.write_text('up{job="scorer"} 1 1790000000\nup{job="scorer"} 1 1790000000000\n')
    result, rows, bad = load(tmp_path, path)
    assert list(rows) == [2] and rows[2][4] == T0
    assert bad[1].startswith("timestamp 1790000000 as milliseconds (Prometheus text format, no # EOF line)")


MALFORMED_REASONS = {
    3: "histogram bucket h_bucket has no le label (histogram h)",
    4: "sample h does not fit histogram h (expected h_bucket, h_count, h_sum, h_created)",
    5: "label a appears twice",
    6: "invalid escape \\q in a label value (only \\\\, \\\" and \\n)",
    7: "malformed exemplar (expected # {labels} value [timestamp])",
    8: "expected , or } at column 9 in the labels",
    9: "expected a value and an optional timestamp after the labels",
    11: "sample has no timestamp (a live scrape cannot be placed in time)",
    12: "native histogram samples are not supported",
    13: "value is not a number: 1_000",
    14: "unknown metric type flavour in # TYPE",
}


def test_malformed_lines_quarantined_with_line_and_reason(tmp_path):
    result, rows, bad = load(tmp_path, CORPUS / "malformed.om")
    assert rows == {2: ("fallback", "h_bucket", {"le": "1.0"}, 1.0, T0),
                    15: ("fallback", "x", {"a": "3"}, 7.0, T0 + 0.5)}
    assert bad[10].startswith("timestamp 1790000000000 as seconds (OpenMetrics, the file has # EOF) is out of "
                              "range (year 58692); was it written in milliseconds?")
    del bad[10]
    assert bad == MALFORMED_REASONS
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (14, 2, 12)


def test_bom_crlf_gzip_concatenated_and_bad_utf8(tmp_path):
    body = (CORPUS / "spec.om").read_bytes()
    gz = tmp_path / "two.om.gz"
    second = b'# TYPE queue_depth counter\nqueue_depth_total 5 1790000300\n\xff\xfe 1 1790000300\n# EOF\n'
    gz.write_bytes(gzip.compress(b"\xef\xbb\xbf" + body.replace(b"\n", b"\r\n") + second))  # with a BOM
    result, rows, bad = load(tmp_path, gz)
    assert result.format == "openmetrics" and result.rows_loaded == 21
    assert all(same(rows[k], v) for k, v in OPENMETRICS_WANT.items())
    assert rows[33] == ("fallback", "queue_depth_total", {}, 5.0, T0 + 300)  # a counter now: the types reset
    assert bad == {34: "line is not valid UTF-8"}
