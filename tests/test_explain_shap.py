"""Explanations: exact TreeSHAP additivity, the library's own contributions, cache, features, surrogate, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import test_explain_support as S

from workbench.errors import WorkbenchError
from workbench.explain import explain_decisions, fit_surrogate, registry


@pytest.fixture()
def served(ws, admin, tmp_path):
    """400 decisions of version 1.0, registered."""
    booster = S.train(1)
    feats = S.features(np.random.default_rng(3), 400)
    feats.loc[5, "purpose"] = "unknown_purpose"   # a category the model never saw
    feats.loc[6, "income"] = np.nan               # a null in the log
    log = S.write_log(tmp_path / "log.jsonl", booster, feats, "1.0", "d")
    S.load_log(ws, admin, tmp_path / "log.jsonl")
    registry.add_model(ws, admin, S.SYSTEM, "1.0", S.save(booster, tmp_path / "v1.txt"))
    return ws, booster, feats, log


def test_additivity_and_equal_to_lightgbm_contributions(served, admin):
    ws, booster, feats, log = served
    out = explain_decisions(ws, admin, S.SYSTEM, list(log.decision_id))
    frame = S.model_frame(feats)
    contrib = booster.predict(frame, pred_contrib=True)
    raw = booster.predict(frame, raw_score=True)
    assert [e["decision_id"] for e in out] == list(log.decision_id)
    for i, e in enumerate(out):
        shap = {a["feature"]: a["shap"] for a in e["attributions"]}
        assert e["method"] == "tree" and e["model_version"] == "1.0"
        assert abs(e["base_value"] + sum(shap.values()) - e["output"]) < 1e-6
        assert abs(e["output"] - raw[i]) < 1e-6
        assert np.allclose([shap[f] for f in S.FEATURES], contrib[i, :-1], atol=1e-9)
        assert abs(e["base_value"] - contrib[i, -1]) < 1e-9
        mags = [abs(a["shap"]) for a in e["attributions"]]
        assert mags == sorted(mags, reverse=True)
        assert e["ignored_features"] == ["channel"]
    assert np.allclose([1 / (1 + np.exp(-e["output"])) for e in out], log.score, atol=1e-9)
    assert {a["feature"]: a["value"] for a in out[5]["attributions"]}["purpose"] == "unknown_purpose"
    assert {a["feature"]: a["value"] for a in out[6]["attributions"]}["income"] is None


def test_cache_hit_is_a_lookup(served, admin):
    ws, _, _, log = served
    ids = list(log.decision_id[:50])
    first = explain_decisions(ws, admin, S.SYSTEM, ids)
    second = explain_decisions(ws, admin, S.SYSTEM, ids + ids[:3])  # repeats collapse
    assert first == second
    details = [json.loads(r[0]) for r in ws.rows(
        "SELECT details FROM audit_log WHERE action = 'read.explain' ORDER BY seq")]
    assert (details[0]["computed"], details[0]["cached"]) == (50, 0)
    assert (details[1]["computed"], details[1]["cached"]) == (0, 50)
    assert ws.scalar("SELECT count(*) FROM explanations") == 50
    mixed = explain_decisions(ws, admin, S.SYSTEM, list(log.decision_id[40:60]))
    assert len(mixed) == 20
    last = json.loads(ws.scalar("SELECT details FROM audit_log WHERE action = 'read.explain' "
                                "ORDER BY seq DESC LIMIT 1"))
    assert (last["computed"], last["cached"]) == (10, 10)


def test_missing_feature_is_a_clear_error(ws, admin, tmp_path):
    booster = S.train(1)
    feats = S.features(np.random.default_rng(3), 20).drop(columns=["housing_cost", "age"])
    path = tmp_path / "log.jsonl"
    with path.open("w") as fh:
        for i, row in enumerate(feats.to_dict("records")):
            fh.write(json.dumps({"decision_id": f"m{i}", "ts": "2025-01-01T00:00:00Z", "system_id": S.SYSTEM,
                                 "model_version": "1.0", "principal": "p", "prediction": "approve",
                                 "features": {k: (bool(v) if isinstance(v, np.bool_) else v)
                                              for k, v in row.items()}}) + "\n")
    S.load_log(ws, admin, path)
    registry.add_model(ws, admin, S.SYSTEM, "1.0", S.save(booster, tmp_path / "v1.txt"))
    with pytest.raises(WorkbenchError, match="lacks: age, housing_cost"):
        explain_decisions(ws, admin, S.SYSTEM, ["m1"])
    with pytest.raises(WorkbenchError, match="no decision nope"):
        explain_decisions(ws, admin, S.SYSTEM, ["nope"])


def test_surrogate_when_no_model_is_registered(ws, admin, tmp_path):
    booster = S.train(4)
    log = S.write_log(tmp_path / "log.jsonl", booster, S.features(np.random.default_rng(9), 2500), "vendor-7", "v")
    S.load_log(ws, admin, tmp_path / "log.jsonl")
    fit = fit_surrogate(ws, admin, S.SYSTEM, rounds=150)
    assert fit["r2"] > 0.8 and fit["n_test"] > 300 and fit["n_train"] > 1500
    assert set(fit["features"]) == set(S.FEATURES) | {"channel"}
    out = explain_decisions(ws, admin, S.SYSTEM, list(log.decision_id[:30]))
    for e in out:
        assert e["method"] == "surrogate" and e["surrogate_r2"] == fit["r2"]
        assert e["model_version"] == "vendor-7" and e["model_sha256"] == fit["sha256"]
        assert abs(e["base_value"] + sum(a["shap"] for a in e["attributions"]) - e["output"]) < 1e-6
    assert np.corrcoef([e["output"] for e in out], log.score[:30])[0, 1] > 0.9
    with pytest.raises(WorkbenchError, match="at least"):
        fit_surrogate(ws, admin, S.SYSTEM, since="2030-01-01")


def test_charts(served, admin):
    from workbench.charts_explain import alert_vs_baseline, waterfall
    from workbench.explain import attribution_drift

    ws, _, _, log = served
    e = explain_decisions(ws, admin, S.SYSTEM, [log.decision_id[0]])[0]
    fig = waterfall(e, top=3)
    assert list(fig.data[0].measure) == ["absolute", "relative", "relative", "relative", "relative", "total"]
    drift = attribution_drift(ws, admin, S.SYSTEM, list(log.decision_id[:20]), reference_size=100)
    fig2 = alert_vs_baseline(drift)
    assert len(fig2.data) == 2 and list(fig2.data[1].y) == list(drift["feature"])


def test_cli_explain_json_and_model_list(served, tmp_path):
    ws, _, _, log = served
    ws.close()
    db = str(ws.path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workbench", *args, "--db", db], capture_output=True,
                              text=True, timeout=120)

    res = run("explain", "--system", S.SYSTEM, "--decision-id", log.decision_id[0], "--decision-id",
              log.decision_id[1], "--json")
    assert res.returncode == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["decision_id"] for o in objs] == list(log.decision_id[:2])
    assert {"decision_id", "model_version", "method", "base_value", "output", "attributions"} <= set(objs[0])
    assert set(objs[0]["attributions"][0]) == {"feature", "value", "shap"}
    listed = run("model", "list", "--json")
    assert json.loads(listed.stdout.splitlines()[0])["verified"] is True
    bad = run("explain", "--system", S.SYSTEM, "--decision-id", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: no decision nope")
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(b"\x80\x04N.")
    refused = run("model", "add", "--system", "s", "--version", "1", str(pkl))
    assert refused.returncode == 2 and "skops" in refused.stderr and "Traceback" not in refused.stderr


def test_multiclass_model_explains_the_class_it_ranked_first(ws, admin, tmp_path):
    """A three-class model: each decision is explained for its top class, exactly, and kept in the cache."""
    import lightgbm as lgb

    from workbench.explain.replay import replay

    rng = np.random.default_rng(11)
    feats = S.features(rng, 3000)
    label = np.digitize(S.risk(feats), [0.25, 0.5])  # 0 approve, 1 refer, 2 deny
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 15, "learning_rate": 0.1, "verbose": -1,
              "seed": 1, "deterministic": True, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(S.model_frame(feats), label), num_boost_round=30)
    served = feats.iloc[:300].reset_index(drop=True)
    proba = booster.predict(S.model_frame(served))
    with (tmp_path / "log.jsonl").open("w") as fh:
        for i, row in enumerate(served.to_dict("records")):
            fh.write(json.dumps({
                "decision_id": f"m-{i}", "ts": f"2025-03-01T10:{i // 60:02d}:{i % 60:02d}Z", "system_id": "triage",
                "model_version": "3.0", "principal": "p", "prediction": S.ACTIONS[int(proba[i].argmax())],
                "score": float(proba[i].max()),
                "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}}) + "\n")
    S.load_log(ws, admin, tmp_path / "log.jsonl")
    registry.add_model(ws, admin, "triage", "3.0", S.save(booster, tmp_path / "m.txt"))

    ids = [f"m-{i}" for i in range(300)]
    out = explain_decisions(ws, admin, "triage", ids)
    raw = booster.predict(S.model_frame(served), raw_score=True)
    contrib = booster.predict(S.model_frame(served), pred_contrib=True).reshape(300, 3, -1)
    assert len({e["class_index"] for e in out}) == 3  # all three classes occur among the explained decisions
    for i, e in enumerate(out):
        k = int(raw[i].argmax())
        shap = {a["feature"]: a["shap"] for a in e["attributions"]}
        assert e["class_index"] == k
        assert abs(e["output"] - raw[i, k]) < 1e-6
        assert abs(e["base_value"] + sum(shap.values()) - e["output"]) < 1e-6
        assert np.allclose([shap[f] for f in S.FEATURES], contrib[i, k, :-1], atol=1e-9)
    again = explain_decisions(ws, admin, "triage", ids[:20])
    assert [e["class_index"] for e in again] == [e["class_index"] for e in out[:20]]
    with pytest.raises(WorkbenchError, match="multiclass"):
        replay(ws, admin, "triage", ids[:5], "3.0")


@pytest.mark.parametrize("kind", ["xgboost", "random_forest"])
def test_multiclass_xgboost_and_scikit_learn_forests(kind):
    """The other tree libraries' multiclass models: the top class explained, additive, matching its raw output."""
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier

    from workbench.explain import treeshap
    from workbench.explain.loaders import LoadedModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    names = ["a", "b", "c", "d"]
    if kind == "xgboost":
        obj = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3},
                        xgb.DMatrix(X, label=y, feature_names=names), 10)
        model = LoadedModel("xgboost", "json", obj, names, "x", {}, "multi:softprob")
        raw = obj.predict(xgb.DMatrix(X[:80], feature_names=names), output_margin=True)
    else:
        obj = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
        model = LoadedModel("sklearn", "skops", obj, names, "x", {}, "RandomForestClassifier")
        raw = obj.predict_proba(X[:80])
    base, shap, output, cls = treeshap.contributions_by_class(model, X[:80])
    assert treeshap.n_outputs(model) == 3
    assert (cls == raw.argmax(axis=1)).all() and len(set(cls)) == 3
    assert np.allclose(output, raw[np.arange(80), cls], atol=1e-5)
    assert np.allclose(base + shap.sum(axis=1), output, atol=1e-6)
