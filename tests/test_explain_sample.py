"""Explain on the generated sample: the planted backdoor trigger tops attribution drift; tree SHAP is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.explain import attribution_drift, explain_decisions, registry, replay


def _incident(sample, kind):
    truth = json.loads((sample / "ground_truth.json").read_text())
    incidents = truth["incidents"] if isinstance(truth, dict) else truth
    found = [i for i in incidents if i["type"] == kind and i.get("decision_ids")]
    if not found:
        pytest.skip(f"the sample has no {kind} incident with decisions")
    return found[0]


def test_backdoor_trigger_tops_attribution_drift(small_sample, demo_ws, admin):
    inc = _incident(small_sample, "backdoor")
    ids = inc["decision_ids"][:300]
    drift = attribution_drift(demo_ws, admin, inc["system_id"], ids, reference_size=1500)
    assert drift.iloc[0]["feature"] == inc["feature"]
    assert drift.iloc[0]["alert_top_value_share"] > 0.9


def test_sample_explanations_match_the_serving_model(small_sample, demo_ws, admin):
    from workbench.sample import load_model, model_input

    inc = _incident(small_sample, "backdoor")
    system = inc["system_id"]
    ids = inc["decision_ids"][:40]
    out = explain_decisions(demo_ws, admin, system, ids)
    version = out[0]["model_version"]
    entry = next(m for m in registry.list_models(demo_ws, admin)
                 if m["system_id"] == system and m["version"] == version)
    booster = load_model(entry["stored_path"])
    frame = demo_ws.df("SELECT decision_id, features FROM decisions WHERE system_id = ? AND decision_id IN "
                       "(SELECT unnest(?::VARCHAR[]))", [system, ids]).set_index("decision_id").loc[ids]
    import pandas as pd

    rows = pd.DataFrame([json.loads(f) for f in frame["features"]])
    raw = booster.predict(model_input(rows, booster), raw_score=True)
    assert np.allclose([e["output"] for e in out], raw, atol=1e-6)
    other = [m["version"] for m in registry.list_models(demo_ws, admin)
             if m["system_id"] == system and m["version"] != version and m["stored_path"]]
    if other:
        replayed = replay(demo_ws, admin, system, ids, other[0])
        assert replayed["changed"].any()
