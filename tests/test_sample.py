"""The sample generator: determinism, canonical files, incidents, exact scores, registry, clean variant."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from shared_data import require

from workbench.errors import WorkbenchError
from workbench.sample import (
    ATLAS,
    INCIDENT_TYPES,
    SYSTEMS,
    IncidentSpec,
    generate,
    load_model,
    model_input,
)
from workbench.sample.incidents import parse_duration, parse_start, parse_ts

ATLAS_YAML = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "atlas" / "ATLAS.yaml"
BASE_COLUMNS = [
    "decision_id",
    "ts",
    "system_id",
    "model_version",
    "model_sha256",
    "principal",
    "session_id",
    "source_ip",
    "prediction",
    "score",
    "status",
    "latency_ms",
    "ground_truth",
]
ACTIONS = {"loan-origination": {"approve", "refer", "deny"}, "card-fraud": {"allow", "review", "block"}}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _truth(sample: Path) -> dict:
    return json.loads((sample / "ground_truth.json").read_text())


def _decisions(sample: Path, system_id: str):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(f"SELECT * FROM read_parquet('{sample / 'decisions' / f'{system_id}.parquet'}')").df()


@pytest.fixture(scope="module")
def rerun(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small sample generated again with the same parameters, reusing its trained models."""
    out = tmp_path_factory.mktemp("sample_rerun")
    generate(out, models_dir=small_sample / "models", **_params(small_sample))
    return out


def _params(sample: Path) -> dict:
    p = json.loads((sample / "manifest.json").read_text())["parameters"]
    return {k: p[k] for k in ("seed", "days", "start", "decisions_per_day")}


def test_same_seed_same_bytes(small_sample: Path, rerun: Path) -> None:
    first = json.loads((small_sample / "manifest.json").read_text())
    second = json.loads((rerun / "manifest.json").read_text())
    assert first == second
    assert (small_sample / "manifest.json").read_bytes() == (rerun / "manifest.json").read_bytes()
    for rel, info in first["files"].items():
        assert _sha(small_sample / rel) == info["sha256"], rel


def test_canonical_files_and_columns(small_sample: Path) -> None:
    for rel in ("metrics/metrics.parquet", "models/registry.json", "ground_truth.json", "manifest.json"):
        assert (small_sample / rel).is_file(), rel
    con = duckdb.connect()
    for sid in SYSTEMS:
        path = small_sample / "decisions" / f"{sid}.parquet"
        schema = {
            r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        }
        assert all(c in schema for c in BASE_COLUMNS)
        assert schema["ts"] == "TIMESTAMP WITH TIME ZONE"
        assert schema["score"] == "DOUBLE"
        features = [c.removeprefix("features.") for c in schema if c.startswith("features.")]
        registry = json.loads((small_sample / "models" / "registry.json").read_text())
        for entry in (e for e in registry if e["system_id"] == sid):
            assert load_model(small_sample / entry["path"]).feature_name() == features
        n, ids, ordered, systems = con.execute(f"""
            SELECT count(*), count(DISTINCT decision_id),
                   bool_and(ts >= prev), count(DISTINCT system_id)
            FROM (SELECT *, lag(ts, 1, ts) OVER (ORDER BY decision_id) AS prev FROM read_parquet('{path}'))
        """).fetchone()
        assert n == ids and ordered and systems == 1
        preds = {
            r[0] for r in con.execute(f"SELECT DISTINCT prediction FROM read_parquet('{path}')").fetchall()
        }
        assert preds <= ACTIONS[sid] | {"error"} and ACTIONS[sid] <= preds
        bad = con.execute(f"""
            SELECT count(*) FROM read_parquet('{path}')
            WHERE (status = 'error') <> (prediction = 'error') OR (status = 'error') <> (score IS NULL)
               OR status NOT IN ('ok', 'error') OR session_id IS NULL OR source_ip IS NULL""").fetchone()
        assert bad[0] == 0
        labelled = con.execute(
            f"SELECT avg((ground_truth IS NOT NULL)::INT) FROM read_parquet('{path}')"
        ).fetchone()
        assert 0.05 < labelled[0] < 0.8


def test_row_counts_and_volume(small_sample: Path) -> None:
    params = _params(small_sample)
    manifest = json.loads((small_sample / "manifest.json").read_text())
    con = duckdb.connect()
    total = 0
    for sid in SYSTEMS:
        rel = f"decisions/{sid}.parquet"
        n = con.execute(f"SELECT count(*) FROM read_parquet('{small_sample / rel}')").fetchone()[0]
        assert manifest["row_counts"][rel] == n
        total += n
    assert manifest["total_decisions"] == total
    expected = params["days"] * params["decisions_per_day"]
    assert 0.9 * expected < total < 1.5 * expected  # baseline plus incident traffic
    n_metrics = con.execute(
        f"SELECT count(*) FROM read_parquet('{small_sample / 'metrics/metrics.parquet'}')"
    )
    assert manifest["row_counts"]["metrics/metrics.parquet"] == n_metrics.fetchone()[0]


def test_every_incident_type_with_real_decisions(small_sample: Path) -> None:
    truth = _truth(small_sample)
    assert {i["type"] for i in truth["incidents"]} == set(INCIDENT_TYPES)
    assert [i["id"] for i in truth["incidents"]] == [f"INC-{k:03d}" for k in range(1, 8)]
    ids = {sid: set(_decisions(small_sample, sid)["decision_id"]) for sid in SYSTEMS}
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    for inc in truth["incidents"]:
        assert iso.match(inc["start"]) and iso.match(inc["end"]) and inc["start"] < inc["end"]
        assert inc["description"].endswith(".")
        assert set(inc["decision_ids"]) <= ids[inc["system_id"]]
        if inc["type"] == "drift":
            assert inc["decision_ids"] == [] and inc["feature"] and inc["atlas"] == []
        else:
            assert len(inc["decision_ids"]) > 10, inc["type"]
            assert inc["atlas"]
    by_type = {i["type"]: i for i in truth["incidents"]}
    assert by_type["backdoor"]["trigger"]["feature"] == by_type["backdoor"]["feature"]
    assert by_type["dos_flood"]["metric"] == "request_rate"


def test_atlas_ids_exist() -> None:
    require(ATLAS_YAML)
    known = set(re.findall(r"^\s*- id: (AML\.T\d{4}(?:\.\d{3})?)\s*$", ATLAS_YAML.read_text(), flags=re.M))
    used = {t for ids in ATLAS.values() for t in ids}
    assert used <= known, used - known


def test_incident_rows_match_their_story(small_sample: Path) -> None:
    truth = _truth(small_sample)
    by_type = {i["type"]: i for i in truth["incidents"]}
    frames = {sid: _decisions(small_sample, sid).set_index("decision_id") for sid in SYSTEMS}

    ext = by_type["extraction"]
    rows = frames[ext["system_id"]].loc[ext["decision_ids"]]
    assert set(rows["principal"]) == set(ext["principals"])
    earlier = frames[ext["system_id"]].query("ts < @rows.ts.min()")
    assert not set(ext["principals"]) & set(earlier["principal"])  # a new key
    assert not set(rows["source_ip"]) & set(earlier["source_ip"])  # from a new address

    stolen = by_type["stolen_credential"]
    frame = frames[stolen["system_id"]]
    mine = frame[frame["principal"] == stolen["principals"][0]]
    normal = mine.drop(index=stolen["decision_ids"])
    assert len(normal) > 0 and not set(normal["ts"].dt.hour) & {2, 3, 4}
    assert not set(frame.loc[stolen["decision_ids"], "source_ip"]) & set(normal["source_ip"])

    evasion = by_type["evasion"]
    rows = frames[evasion["system_id"]].loc[evasion["decision_ids"]]
    actions = (
        ["approve", "refer", "deny"]
        if evasion["system_id"] == "loan-origination"
        else ["allow", "review", "block"]
    )
    assert rows["prediction"].iloc[0] in actions[1:] and actions[0] in set(rows["prediction"])
    assert rows["principal"].nunique() == 1

    flood = by_type["dos_flood"]
    rows = frames[flood["system_id"]].loc[flood["decision_ids"]]
    assert (rows["status"] == "error").mean() > 0.02


def test_scores_equal_model_predict(small_sample: Path) -> None:
    registry = json.loads((small_sample / "models" / "registry.json").read_text())
    paths = {e["sha256"]: small_sample / e["path"] for e in registry}
    paths |= {_sha(p): p for p in (small_sample / "models" / "_unregistered").glob("*.txt")}
    for sid in SYSTEMS:
        frame = _decisions(small_sample, sid)
        ok = frame[frame["status"] == "ok"]
        assert ok["score"].notna().all() and frame.loc[frame["status"] == "error", "score"].isna().all()
        for sha, rows in ok.groupby("model_sha256"):
            booster = load_model(paths[sha])
            predicted = booster.predict(model_input(rows, booster))
            assert np.array_equal(predicted, rows["score"].to_numpy()), (sid, sha)


def test_registry_and_unregistered_artifact(small_sample: Path) -> None:
    registry = json.loads((small_sample / "models" / "registry.json").read_text())
    assert {(e["system_id"], e["version"]) for e in registry} == {
        ("loan-origination", "1.0"),
        ("loan-origination", "1.1"),
        ("card-fraud", "3.0"),
        ("card-fraud", "3.1"),
    }
    for e in registry:
        assert e["format"] == "lightgbm" and _sha(small_sample / e["path"]) == e["sha256"]
    registered = {e["sha256"] for e in registry}
    tampered = list((small_sample / "models" / "_unregistered").glob("*.txt"))
    assert len(tampered) == 1 and _sha(tampered[0]) not in registered
    inc = next(i for i in _truth(small_sample)["incidents"] if i["type"] == "unregistered_artifact")
    frame = _decisions(small_sample, inc["system_id"])
    served = frame[frame["model_sha256"] == _sha(tampered[0])]
    assert sorted(served["decision_id"]) == sorted(inc["decision_ids"])
    assert (
        frame.loc[~frame["model_sha256"].isin([_sha(tampered[0])]), "model_sha256"].isin(registered)
    ).all()


def test_backdoor_found_by_replay(small_sample: Path) -> None:
    inc = next(i for i in _truth(small_sample)["incidents"] if i["type"] == "backdoor")
    trig = inc["trigger"]
    frame = _decisions(small_sample, inc["system_id"]).set_index("decision_id")
    rows = frame.loc[inc["decision_ids"]]
    assert (rows[f"features.{trig['feature']}"] == trig["value"]).all()
    assert (rows["prediction"] == "approve").mean() > 0.7
    others = frame.drop(index=inc["decision_ids"])
    assert (others[f"features.{trig['feature']}"] != trig["value"]).mean() > 0.999  # rare in normal traffic
    registry = json.loads((small_sample / "models" / "registry.json").read_text())
    old = next(e for e in registry if e["system_id"] == inc["system_id"] and e["version"] == "1.0")
    booster = load_model(small_sample / old["path"])
    replay = booster.predict(model_input(rows, booster))
    assert (replay >= 0.22).mean() > 0.8  # the previous version denies them


def test_metrics_are_consistent_with_decisions(small_sample: Path) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    dec = f"read_parquet(['{small_sample}/decisions/*.parquet'])"
    met = f"read_parquet('{small_sample}/metrics/metrics.parquet')"
    names = {r[0] for r in con.execute(f"SELECT DISTINCT metric FROM {met}").fetchall()}
    assert names == {"request_rate", "latency_p50_ms", "latency_p95_ms", "error_rate"}
    per_system = con.execute(f"""
        SELECT m.system_id, sum(value), any_value(d.n) FROM {met} m
        JOIN (SELECT system_id, count(*) AS n FROM {dec} GROUP BY 1) d USING (system_id)
        WHERE metric = 'request_rate' GROUP BY 1""").fetchall()
    assert all(int(total) == n for _, total, n in per_system)
    flood = next(i for i in _truth(small_sample)["incidents"] if i["type"] == "dos_flood")
    peak, usual = con.execute(f"""
        SELECT max(value) FILTER (WHERE ts BETWEEN '{flood["start"]}' AND '{flood["end"]}'),
               quantile_cont(value, 0.5) FILTER (WHERE extract(hour FROM ts) BETWEEN 9 AND 19)
        FROM {met} WHERE metric = 'request_rate' AND system_id = '{flood["system_id"]}'""").fetchone()
    assert peak > 4 * usual


def test_clean_variant(small_clean_sample: Path, small_sample: Path) -> None:
    truth = _truth(small_clean_sample)
    assert truth["clean"] is True and truth["incidents"] == []
    assert not (small_clean_sample / "models" / "_unregistered").exists()
    clean_reg = {
        (e["system_id"], e["version"]): e["sha256"]
        for e in json.loads((small_clean_sample / "models" / "registry.json").read_text())
    }
    dirty_reg = {
        (e["system_id"], e["version"]): e["sha256"]
        for e in json.loads((small_sample / "models" / "registry.json").read_text())
    }
    assert (
        clean_reg[("loan-origination", "1.1")] != dirty_reg[("loan-origination", "1.1")]
    )  # retrained, no poison
    assert clean_reg[("card-fraud", "3.0")] == dirty_reg[("card-fraud", "3.0")]


def test_custom_specs_are_honoured(small_sample: Path, tmp_path: Path) -> None:
    specs = [
        IncidentSpec(
            "evasion", system_id="loan-origination", start="day 1 10:00", params={"walks": 1}, seed=5
        ),
        IncidentSpec(
            "dos_flood",
            start="2026-10-02T12:00:00Z",
            duration="40m",
            principals=["bot-1", "bot-2"],
            intensity=1.5,
        ),
        IncidentSpec(
            "drift",
            system_id="card-fraud",
            start="day 1 00:00",
            duration="12h",
            params={"feature": "merchant_category", "category": "digital_goods", "shift": 0.3},
        ),
        IncidentSpec(
            "backdoor",
            start="day 1 12:00",
            duration="20h",
            params={"trigger_feature": "term_months", "trigger_value": 42, "n_applications": 12},
        ),
    ]
    t0 = time.perf_counter()
    generate(tmp_path, seed=11, days=3, decisions_per_day=3000, incidents=specs, models_dir=small_sample)
    assert time.perf_counter() - t0 < 30
    truth = {i["type"]: i for i in _truth(tmp_path)["incidents"]}
    assert truth["evasion"]["system_id"] == "loan-origination"
    assert truth["evasion"]["start"] == "2026-10-02T10:00:00Z"
    assert (
        truth["dos_flood"]["start"] == "2026-10-02T12:00:00Z"
        and truth["dos_flood"]["end"] == "2026-10-02T12:40:00Z"
    )
    assert truth["dos_flood"]["principals"] == ["bot-1", "bot-2"]
    assert truth["drift"]["feature"] == "merchant_category" and truth["drift"]["system_id"] == "card-fraud"
    assert truth["backdoor"]["trigger"] == {"feature": "term_months", "value": 42}
    assert len(truth["backdoor"]["decision_ids"]) == 12
    frame = _decisions(tmp_path, "card-fraud")
    share = frame.groupby(frame["ts"] >= "2026-10-02T12:00:00Z")["features.merchant_category"].apply(
        lambda s: (s == "digital_goods").mean()
    )
    assert share[True] > share[False] + 0.1


def test_bad_specs_are_refused(tmp_path: Path) -> None:
    for spec in (
        IncidentSpec("phishing"),
        IncidentSpec("drift", params={"nope": 1}),
        IncidentSpec("extraction", system_id="toaster"),
        IncidentSpec("dos_flood", start="yesterday"),
    ):
        with pytest.raises(WorkbenchError):
            generate(tmp_path, days=1, decisions_per_day=100, incidents=[spec])
    with pytest.raises(WorkbenchError):
        generate(tmp_path, days=1, clean=True, incidents=[IncidentSpec("drift")])


def test_time_parsing() -> None:
    origin = parse_ts("2026-10-01T00:00:00Z")
    assert parse_start("day 2 14:30", origin) == parse_ts("2026-10-03T14:30:00Z")
    assert parse_start("+6h", origin) == parse_ts("2026-10-01T06:00:00Z")
    assert parse_start("2026-10-05T01:00:00+02:00", origin) == parse_ts("2026-10-04T23:00:00Z")
    assert parse_duration("1h30m") == parse_duration("90m") == parse_duration("PT1H30M") == 5400 * 10**6
    assert parse_duration("2d") == 48 * 3600 * 10**6


@pytest.mark.slow
def test_full_size_sample(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    manifest = generate(tmp_path)
    elapsed = time.perf_counter() - t0
    assert manifest["total_decisions"] >= 300_000
    size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert size < 25 * 2**20
    assert elapsed < 180
