"""Model registry: safe formats, hash re-checks, refused pickles, skops/XGBoost round-trips, AI-BOM import."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_explain_support as S

from workbench.access import Actor
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.explain import explain_decisions, registry


@pytest.fixture()
def logged(ws, admin, tmp_path):
    """A workspace with 300 logged decisions of version 1.0 and the model file that served them."""
    booster = S.train(1)
    model = S.save(booster, tmp_path / "v1.txt")
    log = S.write_log(tmp_path / "log.jsonl", booster, S.features(np.random.default_rng(3), 300), "1.0", "d")
    S.load_log(ws, admin, tmp_path / "log.jsonl")
    return ws, model, log


def _events(ws, event):
    return ws.rows("SELECT system_id, version, reason FROM model_events WHERE event = ?", [event])


def test_add_records_hash_format_features_and_read_only_copy(logged, admin):
    ws, model, _ = logged
    row = registry.add_model(ws, admin, S.SYSTEM, "1.0", model)
    assert row["format"] == "lightgbm" and row["feature_names"] == S.FEATURES
    assert row["added_by"] == admin.user and row["size_bytes"] == model.stat().st_size
    stored = Path(row["stored_path"])
    assert stored.parent == ws.path.parent / (ws.path.name + ".evidence") / "models"
    assert stored.name == row["sha256"] and not stored.stat().st_mode & stat.S_IWUSR
    assert registry.is_registered(ws, S.SYSTEM, row["sha256"])
    assert registry.registered_hashes(ws) == {row["sha256"]}
    assert registry.add_model(ws, admin, S.SYSTEM, "1.0", model, exist_ok=True)["sha256"] == row["sha256"]
    with pytest.raises(WorkbenchError, match="already registered"):
        registry.add_model(ws, admin, S.SYSTEM, "1.0", model)
    listed = registry.list_models(ws, admin)
    assert [(m["version"], m["verified"]) for m in listed] == [("1.0", True)]
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'model.add'") == 1


def test_stored_copy_modified_is_refused_and_recorded(logged, admin):
    ws, model, log = logged
    row = registry.add_model(ws, admin, S.SYSTEM, "1.0", model)
    stored = Path(row["stored_path"])
    os.chmod(stored, stat.S_IRUSR | stat.S_IWUSR)
    stored.write_text(stored.read_text().replace("shrinkage=0.1", "shrinkage=0.2", 1))
    with pytest.raises(WorkbenchError, match="modified after registration"):
        registry.load_model(ws, admin, S.SYSTEM, "1.0")
    with pytest.raises(WorkbenchError, match="modified"):
        explain_decisions(ws, admin, S.SYSTEM, [log.decision_id[0]])
    assert len(_events(ws, "refused.hash_mismatch")) == 2
    assert ws.scalar("SELECT count(*) FROM audit_log WHERE action = 'model.refused'") == 2
    assert [m["verified"] for m in registry.list_models(ws, admin)] == [False]


def test_original_modified_then_re_added_is_refused(logged, admin):
    ws, model, _ = logged
    registry.add_model(ws, admin, S.SYSTEM, "1.0", model)
    model.write_text(model.read_text() + "\n")
    with pytest.raises(WorkbenchError, match="not the registered one"):
        registry.add_model(ws, admin, S.SYSTEM, "1.0", model, exist_ok=True)
    assert _events(ws, "refused.hash_mismatch")[0][:2] == (S.SYSTEM, "1.0")


def test_pickle_refused_by_default_with_advice(ws, admin, tmp_path):
    from sklearn.tree import DecisionTreeRegressor

    X = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) % 7})
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(DecisionTreeRegressor(max_depth=3).fit(X, X["a"] * 2)))
    with pytest.raises(WorkbenchError, match="arbitrary code.*skops"):
        registry.add_model(ws, admin, "s", "1", path)
    assert _events(ws, "refused.pickle")
    row = registry.add_model(ws, admin, "s", "1", path, allow_pickle=True)  # scanned: model classes only
    assert row["format"] == "pickle" and row["scan"]["ok"] and row["scan"]["scanner"] == "picklescan"
    assert "sklearn.tree._classes.DecisionTreeRegressor" in row["scan"]["globals"]
    assert registry.load_model(ws, admin, "s", "1").feature_names == ["a", "b"]


@pytest.mark.parametrize("obj, kind", [({"a": 1}, "builtins.dict"), ([1.0, 2.0], "builtins.list")])
def test_pickle_of_a_non_model_says_what_it_is(ws, admin, tmp_path, obj, kind):
    path = tmp_path / "thing.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(WorkbenchError) as info:
        registry.add_model(ws, admin, "s", "1", path, allow_pickle=True)
    msg = str(info.value)
    assert f"holds a {kind}" in msg and "not a supported model object" in msg
    assert "scikit-learn estimator" in msg and "LightGBM" in msg and "feature_names_in_" not in msg
    assert not ws.scalar("SELECT count(*) FROM models")


def test_pickle_of_a_transformer_is_not_a_model(ws, admin, tmp_path):
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) % 3})
    path = tmp_path / "scaler.pkl"
    path.write_bytes(pickle.dumps(StandardScaler().fit(X)))
    with pytest.raises(WorkbenchError, match="holds a sklearn.preprocessing.*StandardScaler, which is not a "
                                             "supported model object"):
        registry.add_model(ws, admin, "s", "1", path, allow_pickle=True)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_even_with_allow_pickle(ws, admin, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(WorkbenchError, match="unsafe imports found: (os|posix).system"):
        registry.add_model(ws, admin, "s", "1", path, allow_pickle=True)
    assert not marker.exists()
    reason, details = ws.one("SELECT reason, details FROM model_events WHERE event = 'refused.unsafe_pickle'")
    assert "system" in reason and json.loads(details)["dangerous"]
    assert not ws.scalar("SELECT count(*) FROM models")


def test_skops_round_trip_explains_with_exact_shap(ws, admin, tmp_path):
    import shap
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(50, 10, 400), "age": rng.integers(20, 70, 400).astype(float)})
    y = (X["income"] + rng.normal(0, 5, 400) > 50).astype(int)
    clf = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    path = tmp_path / "gb.skops"
    sio.dump(clf, path)
    row = registry.add_model(ws, admin, "gb", "1", path)
    assert row["format"] == "skops" and row["scan"]["ok"] and row["feature_names"] == ["income", "age"]
    log = tmp_path / "gb.jsonl"
    log.write_text("".join(json.dumps({"decision_id": f"g{i}", "ts": "2025-01-01T00:00:00Z", "system_id": "gb",
                                       "model_version": "1", "principal": "p", "prediction": "x",
                                       "features": {"income": float(X.income[i]), "age": float(X.age[i])}}) + "\n"
                           for i in range(20)))
    S.load_log(ws, admin, log)
    out = explain_decisions(ws, admin, "gb", [f"g{i}" for i in range(20)])
    expected = shap.TreeExplainer(clf).shap_values(X.iloc[:20])
    margin = clf.decision_function(X.iloc[:20])
    for i, e in enumerate(out):
        got = {a["feature"]: a["shap"] for a in e["attributions"]}
        assert np.allclose([got["income"], got["age"]], expected[i], atol=1e-9)
        assert abs(e["base_value"] + sum(got.values()) - e["output"]) < 1e-6
        assert abs(e["output"] - margin[i]) < 1e-6


def test_xgboost_json_explains_with_pred_contribs(ws, admin, tmp_path):
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(X, (X.a + X.b > 0).astype(int)), 15)
    path = tmp_path / "m.json"
    booster.save_model(path)
    assert registry.add_model(ws, admin, "x", "1", path)["format"] == "xgboost-json"
    log = tmp_path / "x.jsonl"
    log.write_text("".join(json.dumps({"decision_id": f"x{i}", "ts": "2025-01-01T00:00:00Z", "system_id": "x",
                                       "model_version": "1", "principal": "p", "prediction": "y",
                                       "features": {"a": X.a[i], "b": X.b[i]}}) + "\n" for i in range(10)))
    S.load_log(ws, admin, log)
    out = explain_decisions(ws, admin, "x", [f"x{i}" for i in range(10)])
    margin = booster.predict(xgb.DMatrix(X.iloc[:10]), output_margin=True)
    assert np.allclose([e["output"] for e in out], margin, atol=1e-5)
    for e in out:
        assert abs(e["base_value"] + sum(a["shap"] for a in e["attributions"]) - e["output"]) < 1e-6


def test_bom_import_approves_hashes_and_records_conflicts(logged, admin, tmp_path):
    ws, model, _ = logged
    row = registry.add_model(ws, admin, S.SYSTEM, "1.0", model)
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
        {"type": "machine-learning-model", "name": "loan-model", "group": S.SYSTEM, "version": "1.0",
         "hashes": [{"alg": "SHA-256", "content": row["sha256"]}]},
        {"type": "machine-learning-model", "name": "loan-model", "group": S.SYSTEM, "version": "1.1",
         "hashes": [{"alg": "SHA-256", "content": "ab" * 32}]},
        {"type": "library", "name": "numpy", "version": "2"},
        {"type": "application", "name": "app", "components": [
            {"type": "machine-learning-model", "name": "fraud", "version": "3.0",
             "properties": [{"name": "workbench:system_id", "value": "card"}],
             "hashes": [{"alg": "SHA-256", "content": "cd" * 32}]}]},
        {"type": "machine-learning-model", "name": "x", "group": S.SYSTEM, "version": "1.0",
         "hashes": [{"alg": "SHA-256", "content": "ef" * 32}]}]}
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(bom))
    result = registry.import_bom(ws, admin, path)
    assert result["components"] == 4 and result["approved"] == [f"{S.SYSTEM}/1.0"]
    assert sorted(result["added"]) == ["card/3.0", f"{S.SYSTEM}/1.1"] and len(result["conflicts"]) == 1
    assert _events(ws, "refused.bom_mismatch")
    assert registry.is_registered(ws, "card", "cd" * 32)
    models = {(m["system_id"], m["version"]): m for m in registry.list_models(ws, admin)}
    assert models[(S.SYSTEM, "1.0")]["approved"] and models[("card", "3.0")]["source"] == "bom"
    with pytest.raises(WorkbenchError, match="no registered artifact"):
        registry.load_model(ws, admin, "card", "3.0")


def test_permissions(logged):
    ws, model, log = logged
    viewer = Actor("vic", "viewer")
    with pytest.raises(PermissionDenied):
        registry.add_model(ws, viewer, S.SYSTEM, "1.0", model)
    with pytest.raises(PermissionDenied):
        explain_decisions(ws, viewer, S.SYSTEM, [log.decision_id[0]])
