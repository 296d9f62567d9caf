"""Decision importers and CloudWatch against small corpora written from each platform's documented export shape.

Every value must land on its decision, time and feature; SageMaker CSV payloads are read as CSV (RFC 4180), and a
payload that is not CSV is quarantined with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import duckdb
import pytest

from workbench.access import local_admin
from workbench.ingest import ingest
from workbench.ingest.importers import payloads
from workbench.store import open_workspace

CORPUS = Path(__file__).parent / "data" / "importers"

MAPPINGS = {
    "sagemaker": {"system_id": "loan-origination", "model_version": {"field": "variant", "values": {"v1": "1.1"}},
                  "principal": {"custom_attribute": "principal"},
                  "features": {"income": "number", "address": "string", "purpose": "string"},
                  "score": {"output": 0}, "prediction": {"output": 1}, "status": {"output": 2}},
    "kserve": {"system_id": "card-fraud", "model_version": "3.2", "principal": {"header": "x-principal"},
               "score": {"output": "probability"}, "prediction": {"output": "label"}},
    "databricks": {"system_id": "card-fraud", "principal": {"field": "requester"},
                   "model_version": {"field": "served_entity_id", "values": {"fraud-3-1": "3.1"}},
                   "score": {"output": "score"}, "prediction": {"output": "label"}},
    "azureml": {"system_id": "loan-origination", "model_version": {"field": "modelversion"},
                "principal": {"input": "customer"}, "score": {"output": "score"}, "prediction": {"output": "decision"}},
    "vertex": {"system_id": "card-fraud", "model_version": {"field": "deployed_model_id", "values": {"8123": "3.1"}},
               "principal": {"input": "principal"}, "score": {"output": "score"}, "prediction": {"output": "label"}},
}
TARGETS = {"sagemaker": "sagemaker", "kserve": "kserve", "databricks": "databricks/payload.jsonl",
           "azureml": "azureml", "vertex": "vertex/request_response_logging.jsonl"}


def _sm(second: int, prediction: str, score: float, features: dict, line: int) -> tuple:
    return (f"2026-10-05T10:00:{second:02d}.000000Z", "1.1", "broker-1", prediction, score, features, "ok", line)


# decision id -> (time, model version, principal, prediction, score, features, status, line)
WANT = {
    "sagemaker": {
        "e-1": _sm(1, "approve", 0.07, {"income": 52000, "address": "12 Main St, Apt 4", "purpose": "car"}, 1),
        "e-2": _sm(2, "refer, manual review", 0.31, {"income": 61000, "address": 'The "Old" Mill', "purpose": "home"},
                   2),
        "e-3": _sm(3, "approve", 0.12, {"income": 48000, "address": "Flat 2\nHigh Road", "purpose": "car"}, 3),
        "e-4-0": _sm(4, "approve", 0.1, {"income": 70000, "address": "A, B", "purpose": "car"}, 4),
        "e-4-1": _sm(4, "approve", 0.2, {"income": 80000, "address": "C", "purpose": "home"}, 4),
        "e-5": _sm(5, "approve", 0.05, {"income": 55000, "address": "Quay 3, Dock", "purpose": "boat"}, 5),
        "e-10": _sm(10, "approve", 0.5, {"income": 52000, "address": "Dock 7, North", "purpose": "boat"}, 10),
        "e-11": _sm(11, "refer", -0.0015, {"income": None, "address": None, "purpose": None}, 11),
    },
    "kserve": {
        "r1": ("2026-10-05T10:00:00.000000Z", "3.2", "svc-a", "allow", 0.02,
               {"amount": 12.5, "merchant": 'Café, "Le Zinc"', "hour": 9}, "ok", 1),
        "r2-0": ("2026-10-05T10:00:01.000000Z", "3.2", "svc-b", "block", 0.91,
                 {"amount": 40.0, "merchant": "a", "hour": 23}, "ok", 2),
        "r2-1": ("2026-10-05T10:00:01.000000Z", "3.2", "svc-b", "allow", 0.05,
                 {"amount": 7.25, "merchant": "b", "hour": 0}, "ok", 2),
    },
    "databricks": {
        "req-1-0": ("2026-10-05T10:00:00.250000Z", "3.1", "svc-pos", "allow", 0.1,
                    {"amount": 10.0, "merchant": "x, y"}, "ok", 1),
        "req-1-1": ("2026-10-05T10:00:00.250000Z", "3.1", "svc-pos", "block", 0.9,
                    {"amount": 20.0, "merchant": "z"}, "ok", 1),
        "req-2": ("2026-10-05T10:00:02.000000Z", "3.1", "svc-web", "allow", 0.3,
                  {"amount": 5.5, "merchant": "q"}, "ok", 2),
    },
    "azureml": {"c-1": ("2026-10-05T10:00:00.500000Z", "1.1", "cust-1", "approve", 0.07,
                        {"income": 52000, "purpose": "car, used"}, None, 1)},
    "vertex": {
        "vx-1-0": ("2026-10-05T10:00:00.500000Z", "3.1", "svc-a", "allow", 0.2, {"amount": 1.5}, None, 1),
        "vx-1-1": ("2026-10-05T10:00:00.500000Z", "3.1", "svc-a", "block", 0.8, {"amount": 2.5}, None, 1),
    },
}
SAGEMAKER_REJECTS = [
    (6, "endpointInput.data is not valid CSV: a quoted field is not closed"),
    (7, "endpointInput.data is not valid CSV: a quote inside an unquoted field"),
    (8, "endpointOutput.data is not valid CSV: a quoted field is not closed"),
    (9, "payload record has 2 values but the mapping lists 3 features"),
    (12, "endpointInput.data is not valid CSV: text after a closing quote"),
]


@pytest.mark.parametrize("platform", sorted(WANT))
def test_decision_corpus_every_value_on_its_decision_and_feature(platform, tmp_path):
    ws = open_workspace(tmp_path / "w.duckdb")
    results = ingest(ws, local_admin(), [CORPUS / TARGETS[platform]], mapping=MAPPINGS[platform])
    for r in results:
        assert r.error is None and r.format == platform, r
        assert r.rows_read == r.rows_loaded + r.duplicates + r.rows_quarantined
    got = {}
    for row in ws.rows("SELECT decision_id, strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), model_version, principal, "
                       "prediction, score, features, status, source_line FROM decisions"):
        got[row[0]] = (*row[1:6], json.loads(row[6]), *row[7:])
    rejects = ws.rows("SELECT line, reason FROM quarantine ORDER BY line")
    ws.close()
    assert got == WANT[platform]
    assert rejects == (SAGEMAKER_REJECTS if platform == "sagemaker" else [])


def test_cloudwatch_corpus(tmp_path):
    ws = open_workspace(tmp_path / "w.duckdb")
    [r] = ingest(ws, local_admin(), [CORPUS / "cloudwatch"], kind="metrics", system="loan-origination")
    rows = ws.rows("SELECT source_line, system_id, metric, labels::VARCHAR, value, "
                   "strftime(ts, '%Y-%m-%dT%H:%M:%SZ') FROM metrics ORDER BY source_line")
    ws.close()
    assert r.format == "cloudwatch" and r.rows_quarantined == 0
    assert rows == [(1, "loan-origination", "error_rate", None, 0.02, "2026-10-05T10:05:00Z"),
                    (2, "loan-origination", "error_rate", None, 0.01, "2026-10-05T10:00:00Z"),
                    (3, "card-fraud", "latency_p99", '{"route":"/score"}', 123.0, "2026-10-05T10:00:00Z")]


def _random_field(rng: random.Random) -> str:
    pieces = ["a", "B7", " ", ",", '"', "\n", "é", "0.5", "", "x y", '""', "\r\n"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))


def test_csv_payloads_parse_as_the_csv_module_does():
    """Seeded random payloads written by csv.writer read back field for field, as csv.reader reads them."""
    rng = random.Random(21)
    con = duckdb.connect()
    payloads.install(con)
    cases = []
    for k in range(300):
        rows = [[_random_field(rng) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(1, 3))]
        rows = [r if len(r) > 1 or r[0].strip() or r[0] == "" else ["z"] for r in rows]  # no blank lines
        buf = io.StringIO()
        csv.writer(buf, quoting=csv.QUOTE_ALL if k % 3 == 0 else csv.QUOTE_MINIMAL,
                   lineterminator="\r\n" if k % 2 else "\n").writerows(rows)
        text = buf.getvalue()
        assert list(csv.reader(io.StringIO(text, newline=""))) == rows
        cases.append((text, rows))
    got = con.execute("SELECT wb_csv_ok(t), wb_csv(t)::VARCHAR FROM unnest(?) AS u(t)",
                      [[t for t, _ in cases]]).fetchall()
    for (text, want), (ok, parsed) in zip(cases, got, strict=True):
        assert ok, text
        assert json.loads(parsed) == want, (text, parsed, want)
