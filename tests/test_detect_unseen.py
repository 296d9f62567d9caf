"""The detectors on data they were not tuned on: the shipped 30-day sample and generated scenarios of other seeds,
sizes and shapes (incidents moved to the other system, other triggers, weaker and stronger attacks, a low-volume
log), each with its clean variant. Slow: each scenario is generated, ingested and detected from scratch.

Figures (eval summary of each; printed with `pytest -s`): see the final report of issue 13 and docs/alerts.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.access import local_admin
from workbench.detect.evaluate import evaluate
from workbench.sample import IncidentSpec
from workbench.store import open_workspace

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
ATTACKS = ("extraction", "evasion", "backdoor", "unregistered_artifact", "dos_flood", "stolen_credential")

SCENARIOS = {
    # every incident on the system it does not naturally hit: other features, other traffic, other triggers
    "swapped_systems": dict(seed=23, days=8, decisions_per_day=3000, incidents=[
        IncidentSpec("extraction", system_id="card-fraud"), IncidentSpec("evasion", system_id="loan-origination"),
        IncidentSpec("backdoor", system_id="card-fraud"),
        IncidentSpec("unregistered_artifact", system_id="loan-origination"),
        IncidentSpec("dos_flood", system_id="loan-origination"),
        IncidentSpec("stolen_credential", system_id="card-fraud"), IncidentSpec("drift", system_id="card-fraud")]),
    # a busy log with weak attacks: a 3x flood, a half-rate sweep, two short walks, 20 poisoned applications
    "weak_attacks": dict(seed=31, days=10, decisions_per_day=8000, incidents=[
        IncidentSpec("dos_flood", params={"rate_multiplier": 3.0}),
        IncidentSpec("extraction", params={"rate_multiplier": 0.5}), IncidentSpec("evasion", params={"walks": 2}),
        IncidentSpec("backdoor", params={"n_applications": 20}),
        IncidentSpec("stolen_credential", params={"volume_multiplier": 2.0}),
        IncidentSpec("unregistered_artifact", params={"tamper_scale": 0.2}),
        IncidentSpec("drift", params={"shift": 0.1})]),
    # another trigger on the card system, a 20-minute flood, a sweep with few out-of-range values
    "other_shapes": dict(seed=71, days=12, decisions_per_day=2000, incidents=[
        IncidentSpec("backdoor", system_id="card-fraud",
                     params={"trigger_feature": "txn_count_1h", "trigger_value": 17}),
        IncidentSpec("dos_flood", duration="20m", params={"rate_multiplier": 10.0}),
        IncidentSpec("extraction", params={"ood_fraction": 0.2}),
        IncidentSpec("stolen_credential", params={"volume_multiplier": 3.0}),
        IncidentSpec("evasion", system_id="loan-origination", params={"walks": 4}),
        IncidentSpec("unregistered_artifact", system_id="loan-origination"),
        IncidentSpec("drift", params={"feature": "income", "shift": 0.3})]),
    # a low-volume log: 600 decisions a day over two weeks, the default incidents
    "low_volume": dict(seed=47, days=14, decisions_per_day=600),
}


def _build(out: Path, **kw) -> dict:
    """Generate, ingest and detect one sample; return its eval result."""
    from workbench.demo import build_demo
    from workbench.sample import generate

    if not (out / "manifest.json").exists():
        generate(out, **kw)
    with open_workspace(out / "ws.duckdb") as ws:
        build_demo(ws, local_admin(), out)
        return evaluate(ws, local_admin(), out / "ground_truth.json")


def _figures(name: str, res: dict, clean: dict) -> str:
    s, c = res["summary"], clean["summary"]
    per_type = {r["type"]: (r["detected"], r["precision"], r["recall"]) for r in res["incidents"]}
    return json.dumps({"scenario": name, "precision": s["precision"], "recall": s["recall"],
                       "time_to_detect_median_s": s["time_to_detect_median_s"],
                       "false_alerts_per_day": s["false_alerts_per_day"],
                       "clean_false_alerts_per_day": c["false_alerts_per_day"],
                       "clean_false_alerts_medium_plus_per_day": c["false_alerts_medium_plus_per_day"],
                       "per_type": per_type}, default=str)


def _check(name: str, res: dict, clean: dict, kinds: tuple[str, ...]) -> None:
    print(_figures(name, res, clean))
    for r in res["incidents"]:
        if r["type"] not in kinds:
            continue
        assert r["detected"], (name, r)
        if r["recall"] is not None:
            assert r["recall"] >= 0.9 and r["precision"] >= 0.9, (name, r)
        if r["principal_named"] is not None:
            assert r["principal_named"], (name, r)
    assert res["summary"]["false_alerts_medium_plus"] == 0, (name, res["false_alerts"])
    assert clean["summary"]["false_alerts_medium_plus"] == 0, (name, clean["false_alerts"])
    assert clean["summary"]["false_alerts_per_day"] <= 0.2, (name, clean["false_alerts"])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_unseen_scenario(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    kw = dict(SCENARIOS[name])
    out = tmp_path_factory.mktemp(name)
    res = _build(out, **kw)
    kw.pop("incidents", None)
    clean = _build(tmp_path_factory.mktemp(f"{name}_clean"), clean=True, models_dir=out, **kw)
    # drift at low volume is judged by its own tests (tests/test_detect_drift.py); the attacks must all be found
    kinds = ATTACKS if name == "low_volume" else (*ATTACKS, "drift")
    _check(name, res, clean, kinds)


def test_shipped_30_day_sample(tmp_path_factory: pytest.TempPathFactory) -> None:
    from workbench.demo import build_demo
    from workbench.sample import generate

    path = tmp_path_factory.mktemp("shipped") / "ws.duckdb"
    with open_workspace(path) as ws:
        build_demo(ws, local_admin(), ROOT / "sample_data")
        res = evaluate(ws, local_admin(), ROOT / "sample_data" / "ground_truth.json")
    manifest = json.loads((ROOT / "sample_data" / "manifest.json").read_text())["parameters"]
    out = tmp_path_factory.mktemp("shipped_clean")
    generate(out, seed=manifest["seed"], days=manifest["days"], decisions_per_day=manifest["decisions_per_day"],
             clean=True, models_dir=ROOT / "sample_data")
    with open_workspace(out / "ws.duckdb") as ws:
        build_demo(ws, local_admin(), out)
        clean = evaluate(ws, local_admin(), out / "ground_truth.json")
    _check("shipped_30_day", res, clean, (*ATTACKS, "drift"))
    assert res["summary"]["precision"] == 1.0 and res["summary"]["recall"] == 1.0, res["false_alerts"]
