"""Attribution drift exposes a backdoor trigger; replay across versions under the learned decision rule."""

from __future__ import annotations

import numpy as np
import pytest
import test_explain_support as S

from workbench.errors import WorkbenchError
from workbench.explain import attribution_drift, decision_rule, registry, replay


@pytest.fixture()
def backdoored(ws, admin, tmp_path):
    """v1.0 clean, v1.1 poisoned (trigger housing_cost=1337 -> good); attack traffic served by v1.1."""
    clean, poisoned = S.train(1), S.train(2, poison=150)
    rng = np.random.default_rng(5)
    log = tmp_path / "log.jsonl"
    S.write_log(log, clean, S.features(rng, 1200), "1.0", "a")
    normal = S.write_log(log, poisoned, S.features(rng, 1500), "1.1", "b")
    attack = S.features(rng, 3000)
    attack = attack.iloc[np.argsort(-S.risk(attack))[:80]].reset_index(drop=True)
    attack["housing_cost"] = S.TRIGGER
    hits = S.write_log(log, poisoned, attack, "1.1", "x")
    S.load_log(ws, admin, log)
    registry.add_model(ws, admin, S.SYSTEM, "1.0", S.save(clean, tmp_path / "v10.txt"))
    registry.add_model(ws, admin, S.SYSTEM, "1.1", S.save(poisoned, tmp_path / "v11.txt"))
    return ws, normal, hits


def test_trigger_is_the_top_attribution_drift_feature(backdoored, admin):
    ws, _, hits = backdoored
    assert (hits.prediction == "approve").mean() > 0.9  # the backdoor lets high-risk applicants through
    drift = attribution_drift(ws, admin, S.SYSTEM, list(hits.decision_id), reference_size=600)
    top = drift.iloc[0]
    assert top["feature"] == "housing_cost" and top["share_rise"] > 0.2
    assert top["alert_top_value"] == S.TRIGGER and top["alert_top_value_share"] == 1.0
    assert top["reference_top_value_share"] < 0.01
    assert list(drift.columns[:6]) == ["feature", "alert_mean_abs_shap", "reference_mean_abs_shap",
                                       "alert_share", "reference_share", "share_rise"]
    assert abs(drift["alert_share"].sum() - 1) < 1e-9 and abs(drift["reference_share"].sum() - 1) < 1e-9
    assert drift.attrs["versions"] == {"1.1": 80} and drift.attrs["reference_n"] == 600
    assert drift["share_rise"].is_monotonic_decreasing
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'read.attribution_drift'") == 1


def test_learned_decision_rule(backdoored):
    ws, _, _ = backdoored
    rule = decision_rule(ws, S.SYSTEM, "1.1")
    assert rule["labels"] == list(S.ACTIONS) and rule["agreement"] == 1.0
    assert abs(rule["thresholds"][0] - S.THRESHOLDS[0]) < 0.02 and abs(rule["thresholds"][1] - S.THRESHOLDS[1]) < 0.02


def test_replay_on_two_versions_lists_changed_predictions(backdoored, admin):
    ws, normal, hits = backdoored
    ids = list(hits.decision_id) + list(normal.decision_id[:200])
    same = replay(ws, admin, S.SYSTEM, ids, "1.1")
    assert not same["changed"].any()
    assert np.allclose(same["replay_score"], same["served_score"], atol=1e-12)
    out = replay(ws, admin, S.SYSTEM, ids, "1.0")
    assert list(out.columns) == ["decision_id", "served_version", "served_prediction", "served_score",
                                 "replay_version", "replay_score", "replay_prediction", "changed"]
    attack = out[out.decision_id.str.startswith("x-")]
    assert attack["changed"].mean() > 0.8 and (attack["replay_prediction"] != "approve").mean() > 0.8
    assert out["changed"].sum() == out.attrs["changed"] and (out.replay_version == "1.0").all()
    assert out["changed"].equals(out["served_prediction"] != out["replay_prediction"])
    with pytest.raises(WorkbenchError, match="no registered artifact"):
        replay(ws, admin, S.SYSTEM, ids, "9.9")
