"""Hostile model artifacts: no code runs, no file is written, no library aborts, every refusal is on record."""

from __future__ import annotations

import io
import json
import pickle
import re
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench import audit
from workbench.access import Actor
from workbench.errors import WorkbenchError
from workbench.explain import registry
from workbench.store import open_workspace

ROOT = Path(__file__).resolve().parent.parent
ANALYST = Actor("ana", "analyst")


# -- builders ------------------------------------------------------------------------------------
def _node(loader: str, module: str, cls: str, **rest) -> dict:
    return {"__class__": cls, "__module__": module, "__loader__": loader, **rest}


def _json(value) -> dict:
    return _node("JsonNode", "builtins", "str", content=json.dumps(value), is_json=True)


def _tuple(*items) -> dict:
    return _node("TupleNode", "builtins", "tuple", content=list(items))


def _dict(**items) -> dict:
    keys = _node("ListNode", "builtins", "list", content=[_node("TypeNode", "builtins", "str") for _ in items])
    return _node("DictNode", "builtins", "dict", content=items, key_types=keys)


def skops_file(path: Path, schema: dict, extra: dict[str, bytes] | None = None) -> Path:
    """A skops zip with a hand-written schema (what an attacker ships)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("schema.json", json.dumps({**schema, "protocol": 2, "_skops_version": "0.16.0"}))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def runstring(marker: Path) -> dict:
    code = f"open({str(marker)!r}, 'w').write('code ran')"
    return _node("ConstructorFromReduceNode", "numpy.testing._private.utils", "runstring",
                 content=_tuple(_json(code), _dict()))


def savetxt(marker: Path) -> dict:
    return _node("ConstructorFromReduceNode", "numpy", "savetxt", content=_tuple(_json(str(marker)),
                                                                                 _json([[1.0, 2.0]])))


def _small_frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, (X.a + 0.3 * X.b > 0).astype(int)


def gb_skops_schema() -> tuple[dict, zipfile.ZipFile]:
    """A real GradientBoostingClassifier's skops schema and archive, to tamper with."""
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _small_frame()
    data = sio.dumps(GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y))
    zf = zipfile.ZipFile(io.BytesIO(data))
    return json.loads(zf.read("schema.json")), zf


def _sstr(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw


def stack_global_pickle(marker: Path) -> bytes:
    """Protocol 4: STACK_GLOBAL('xgboost.testing.federated', 'subprocess.Popen'), then REDUCE(['touch', marker])."""
    return (b"\x80\x04" + _sstr("xgboost.testing.federated") + _sstr("subprocess.Popen") + b"\x93"
            + b"(" + _sstr("touch") + _sstr(str(marker)) + b"l" + b"\x85" + b"R" + b".")


def global_dotted_pickle(marker: Path) -> bytes:
    """The same with the text GLOBAL opcode under a protocol-4 header."""
    return (b"\x80\x04" + b"cxgboost.testing.federated\nsubprocess.Popen\n"
            + b"(" + _sstr("touch") + _sstr(str(marker)) + b"l" + b"\x85" + b"R" + b".")


def _wait_absent(marker: Path, seconds: float = 1.5) -> bool:
    """True if the marker never appears (a spawned process would create it within this time)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if marker.exists():
            return False
        time.sleep(0.05)
    return not marker.exists()


def _refusals(ws, system_id: str = "s") -> list[tuple]:
    return ws.rows("SELECT event, reason FROM model_events WHERE system_id = ? ORDER BY event_id", [system_id])


def _audited(ws, system_id: str = "s", version: str = "1") -> list[dict]:
    rows = ws.rows("SELECT action, details FROM audit_log WHERE object = ? ORDER BY seq", [f"{system_id}/{version}"])
    return [{"action": a, **(json.loads(d) if isinstance(d, str) else (d or {}))} for a, d in rows]


def _assert_refused_on_record(ws, exc: WorkbenchError, system_id: str = "s", version: str = "1") -> None:
    assert "\n" not in str(exc)
    events = _refusals(ws, system_id)
    assert events, "the refusal is not in model_events"
    assert any(a["action"] in ("model.refused", "model.load_failed") for a in _audited(ws, system_id, version))
    assert not ws.scalar("SELECT count(*) FROM models WHERE system_id = ?", [system_id])
    assert audit.verify(ws, Actor("root", "admin")).ok


# -- skops ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["runstring", "savetxt", "runstring_nested", "savetxt_as_object"])
def test_hostile_skops_is_refused_before_any_code_runs(ws, tmp_path, payload):
    marker = tmp_path / "pwned"
    extra = {}
    if payload == "runstring":
        schema = runstring(marker)
    elif payload == "savetxt":
        schema = savetxt(marker)
    elif payload == "runstring_nested":  # inside a real model: the estimator's own attributes carry it
        schema, zf = gb_skops_schema()
        schema["content"]["content"]["verbose"] = runstring(marker)
        extra = {n: zf.read(n) for n in zf.namelist() if n != "schema.json"}
    else:
        schema = _node("ObjectNode", "numpy", "savetxt", content=_dict())
    path = skops_file(tmp_path / "model.skops", schema, extra)
    with pytest.raises(WorkbenchError, match="skops file refused") as info:
        registry.add_model(ws, ANALYST, "s", "1", path)
    assert not marker.exists(), "code from the skops file ran"
    _assert_refused_on_record(ws, info.value)
    assert _refusals(ws)[0][0] == "refused.skops_types"


def test_skops_tree_with_out_of_range_child_is_refused(ws, tmp_path):
    schema, zf = gb_skops_schema()
    extra = {n: zf.read(n) for n in zf.namelist() if n != "schema.json"}
    name = next(n for n in extra if np.load(io.BytesIO(extra[n])).dtype.names and
                "left_child" in np.load(io.BytesIO(extra[n])).dtype.names)
    nodes = np.load(io.BytesIO(extra[name]))
    nodes["left_child"][0] = 10**9  # sklearn indexes with it, unchecked: a crash at predict time
    buf = io.BytesIO()
    np.save(buf, nodes, allow_pickle=False)
    extra[name] = buf.getvalue()
    path = skops_file(tmp_path / "gb.skops", schema, extra)
    with pytest.raises(WorkbenchError, match="tree") as info:
        registry.add_model(ws, ANALYST, "s", "1", path)
    _assert_refused_on_record(ws, info.value)


@pytest.mark.parametrize("fmt", ["skops", "pickle"])
def test_gradient_boosting_with_more_stages_than_outputs_is_refused(ws, tmp_path, fmt):
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _small_frame()
    model = GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    model.estimators_ = np.repeat(model.estimators_, 64, axis=1)  # predict writes 64 columns into a buffer of 1
    model.n_trees_per_iteration_ = 64
    path = tmp_path / f"gb.{fmt}"
    path.write_bytes(sio.dumps(model) if fmt == "skops" else pickle.dumps(model, protocol=4))
    with pytest.raises(WorkbenchError, match="trees per iteration") as info:
        registry.add_model(ws, ANALYST, "s", "1", path, allow_pickle=True)
    _assert_refused_on_record(ws, info.value)


def test_skops_type_outside_the_exact_list_is_refused_even_under_a_trusted_module(ws, tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X, y = _small_frame()
    path = tmp_path / "lr.skops"
    sio.dump(LogisticRegression().fit(X, y), path)
    with pytest.raises(WorkbenchError, match="sklearn.linear_model._logistic.LogisticRegression") as info:
        registry.add_model(ws, ANALYST, "s", "1", path)
    _assert_refused_on_record(ws, info.value)


# -- pickle --------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [stack_global_pickle, global_dotted_pickle])
def test_dotted_global_pickle_is_refused_with_allow_pickle(ws, tmp_path, build):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(build(marker))
    with pytest.raises(WorkbenchError) as info:
        registry.add_model(ws, ANALYST, "s", "1", path, allow_pickle=True)
    assert _wait_absent(marker), "the pickle started a process"
    assert "subprocess.Popen" in str(info.value)
    _assert_refused_on_record(ws, info.value)
    (event, _), = _refusals(ws)
    assert event == "refused.unsafe_pickle"
    details = json.loads(ws.scalar("SELECT details FROM model_events WHERE system_id = 's'"))
    assert "fickling" in details and "picklescan" in details


def test_restricted_unpickler_alone_refuses_dotted_names(tmp_path):
    from workbench.explain.loaders import load_pickle

    marker = tmp_path / "pwned"
    for build in (stack_global_pickle, global_dotted_pickle):
        with pytest.raises(WorkbenchError, match="not on the allow-list"):
            load_pickle(build(marker))
    with pytest.raises(WorkbenchError, match="not on the allow-list"):
        load_pickle(b"\x80\x04" + _sstr("sklearn.utils") + _sstr("Bunch") + b"\x93" + b")R.")
    with pytest.raises(WorkbenchError, match="not from data"):  # bytearray(n): an n-byte allocation
        load_pickle(b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x10\x85R.")
    assert _wait_absent(marker, 0.5)


def test_pickle_of_a_class_outside_the_exact_list_is_refused(ws, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = _small_frame()
    path = tmp_path / "lr.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression().fit(X, y)))
    with pytest.raises(WorkbenchError, match="LogisticRegression") as info:
        registry.add_model(ws, ANALYST, "s", "1", path, allow_pickle=True)
    _assert_refused_on_record(ws, info.value)


# -- LightGBM / XGBoost headers: in a subprocess, so an abort on old code fails the test, not pytest ------
_RUNNER = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    from workbench.access import Actor
    from workbench.errors import WorkbenchError
    from workbench.explain import registry
    from workbench.store import open_workspace
    ws = open_workspace(sys.argv[1])
    for case in json.loads(sys.argv[2]):
        print("START", case["name"], flush=True)
        try:
            registry.add_model(ws, Actor("ana", "analyst"), case["name"], "1", case["path"],
                               allow_pickle=case["path"].endswith(".pkl"))
            out = {"name": case["name"], "refused": False}
        except WorkbenchError as exc:
            out = {"name": case["name"], "refused": True, "error": str(exc)}
        print("RESULT", json.dumps(out), flush=True)
    ws.close()
""")


def _run_cases(tmp_path: Path, cases: dict[str, Path]) -> dict[str, dict]:
    db = tmp_path / "sub.duckdb"
    arg = json.dumps([{"name": k, "path": str(v)} for k, v in cases.items()])
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(db), arg], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    results = {json.loads(line[7:])["name"]: json.loads(line[7:])
               for line in proc.stdout.splitlines() if line.startswith("RESULT ")}
    started = [line[6:] for line in proc.stdout.splitlines() if line.startswith("START ")]
    assert proc.returncode == 0, (f"the load killed the process (exit {proc.returncode}) at case "
                                  f"{started[-1] if started else '?'}: {proc.stderr[-500:]}")
    return results


def _lightgbm_text(num_class: int = 1) -> str:
    import lightgbm as lgb

    X, y = _small_frame(300)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 4, "num_threads": 1}
    if num_class > 1:
        y = (X.a > 0).astype(int) + (X.b > 0).astype(int)
        params.update(objective="multiclass", num_class=num_class)
    return lgb.train(params, lgb.Dataset(X, y), 3).model_to_string()


LGB_MUTATIONS = {
    "num-class": lambda t: t.replace("num_class=1\n", "num_class=2000000000\n", 1),
    "trees-per-iteration-zero": lambda t: t.replace("num_tree_per_iteration=1", "num_tree_per_iteration=0", 1),
    "trees-per-iteration-huge": lambda t: t.replace("num_tree_per_iteration=1",
                                                    "num_tree_per_iteration=2000000000", 1),
    "num-leaves": lambda t: t.replace("num_leaves=4", "num_leaves=2000000000", 1),
    "tree-sizes": lambda t: re.sub(r"tree_sizes=\d+", "tree_sizes=99999999", t, count=1),
    "left-child": lambda t: re.sub(r"left_child=-?\d+", "left_child=1000000", t, count=1),
    "split-feature": lambda t: re.sub(r"split_feature=\d+", "split_feature=1000000", t, count=1),
    "max-feature-idx": lambda t: t.replace("max_feature_idx=1", "max_feature_idx=2000000000", 1),
    "objective-classes": lambda t: t.replace("objective=binary sigmoid:1",
                                             "objective=multiclass num_class:2000000000", 1),
    "no-equals": lambda t: t[:t.index("Tree=0")] + "Tree=0\nnum_leaves",
}


def test_absurd_lightgbm_headers_get_one_line_refusals(tmp_path):
    good = _lightgbm_text()
    cases = {}
    for name, mutate in LGB_MUTATIONS.items():
        text = mutate(good)
        assert text != good, name
        cases[name] = tmp_path / f"{name}.txt"
        cases[name].write_text(text)
    import lightgbm as lgb

    booster = lgb.Booster(model_str=good)  # pickled with --allow-pickle: the text inside is checked too
    pickled = pickle.dumps(booster, protocol=4)
    assert pickled.count(b"num_tree_per_iteration=1") == 1
    cases["pickled-trees-per-iteration-zero"] = tmp_path / "booster.pkl"
    cases["pickled-trees-per-iteration-zero"].write_bytes(
        pickled.replace(b"num_tree_per_iteration=1", b"num_tree_per_iteration=0"))
    results = _run_cases(tmp_path, cases)
    for name in cases:
        assert results[name]["refused"], f"{name}: registered an absurd model"
        assert "\n" not in results[name]["error"]
    ws = open_workspace(tmp_path / "sub.duckdb")
    try:
        for name in cases:
            assert _refusals(ws, name), f"{name}: refusal not in model_events"
            assert any(a["action"] == "model.refused" for a in _audited(ws, name)), name
        assert not ws.scalar("SELECT count(*) FROM models")
    finally:
        ws.close()


def _xgb_doc(num_class: int = 0) -> dict:
    import xgboost as xgb

    X, y = _small_frame()
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    if num_class:
        y = (X.a > 0).astype(int) + (X.b > 0).astype(int)
        params.update(objective="multi:softprob", num_class=num_class)
    return json.loads(bytes(xgb.train(params, xgb.DMatrix(X, y), 3).save_raw("json")))


def _mutated(doc: dict, edit) -> dict:
    copy = json.loads(json.dumps(doc))
    edit(copy["learner"])
    return copy


XGB_MUTATIONS = {
    "num-class": lambda L: L["learner_model_param"].__setitem__("num_class", "2000000000"),
    "num-feature": lambda L: L["learner_model_param"].__setitem__("num_feature", "2000000000"),
    "num-trees": lambda L: L["gradient_booster"]["model"]["gbtree_model_param"].__setitem__("num_trees",
                                                                                            "2000000000"),
    "num-nodes": lambda L: L["gradient_booster"]["model"]["trees"][0]["tree_param"].__setitem__("num_nodes",
                                                                                                "2000000000"),
    "left-child": lambda L: L["gradient_booster"]["model"]["trees"][0]["left_children"].__setitem__(0, 10**6),
    "split-index": lambda L: L["gradient_booster"]["model"]["trees"][0]["split_indices"].__setitem__(0, 10**6),
}


def test_absurd_xgboost_models_get_one_line_refusals(tmp_path):
    import xgboost as xgb

    doc = _xgb_doc()
    cases = {}
    for name, edit in XGB_MUTATIONS.items():
        cases[name] = tmp_path / f"{name}.json"
        cases[name].write_text(json.dumps(_mutated(doc, edit)))
        booster = xgb.Booster()
        if name in ("left-child", "split-index"):  # the UBJ twin of the same tampered model
            booster.load_model(bytearray(cases[name].read_bytes()))
            cases[f"{name}-ubj"] = tmp_path / f"{name}.ubj"
            cases[f"{name}-ubj"].write_bytes(bytes(booster.save_raw("ubj")))
        if name == "left-child":  # and pickled: the Booster's buffer is checked before XGBoost reads it
            cases["pickled-left-child"] = tmp_path / "left-child.pkl"
            cases["pickled-left-child"].write_bytes(pickle.dumps(booster, protocol=4))
    huge = tmp_path / "huge-count.ubj"  # an array claiming 2**40 items in a tiny file
    huge.write_bytes(b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner[$d#L" + struct.pack(">q", 1 << 40) + b"\x00" * 16)
    cases["huge-count-ubj"] = huge
    results = _run_cases(tmp_path, cases)
    for name in cases:
        assert results[name]["refused"], f"{name}: registered an absurd model"
        assert "\n" not in results[name]["error"]
    ws = open_workspace(tmp_path / "sub.duckdb")
    try:
        for name in cases:
            assert _refusals(ws, name), f"{name}: refusal not in model_events"
            assert any(a["action"] in ("model.refused", "model.load_failed") for a in _audited(ws, name)), name
    finally:
        ws.close()


def test_model_file_over_the_size_limit_is_refused_before_reading(ws, tmp_path, monkeypatch):
    from workbench.explain import loaders

    path = tmp_path / "big.txt"
    path.write_text(_lightgbm_text())
    monkeypatch.setattr(loaders, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(WorkbenchError, match="larger than") as info:
        registry.add_model(ws, ANALYST, "s", "1", path)
    _assert_refused_on_record(ws, info.value)


# -- every refusal and failed load on record -----------------------------------------------------
@pytest.mark.parametrize("content, name", [
    (b"\x00\x01 not a model", "m.bin"),
    (b"PK\x03\x04" + b"\x00" * 40, "weights.pt"),
    (b'{"not": "xgboost"}', "m.json"),
    (b"tree\nversion=v4\nnum_class=1\n", "m.txt"),
])
def test_unloadable_files_are_on_record(ws, tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WorkbenchError) as info:
        registry.add_model(ws, ANALYST, "s", "1", path)
    _assert_refused_on_record(ws, info.value)


def test_sklearn_model_without_feature_names_is_on_record(ws, tmp_path):
    import skops.io as sio
    from sklearn.tree import DecisionTreeRegressor

    X, y = _small_frame()
    path = tmp_path / "dt.skops"
    sio.dump(DecisionTreeRegressor(max_depth=2).fit(X.to_numpy(), y), path)
    with pytest.raises(WorkbenchError, match="feature_names_in_") as info:
        registry.add_model(ws, ANALYST, "s", "1", path)
    _assert_refused_on_record(ws, info.value)


# -- legitimate models still register and explain ------------------------------------------------
def _sklearn_models() -> dict:
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    X, y = _small_frame()
    y3 = (X.a > 0).astype(int) + (X.b > 0).astype(int)
    return {
        "gb": GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y),
        "gb3": GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y3),
        "gbr-huber": GradientBoostingRegressor(n_estimators=5, loss="huber", random_state=0).fit(X, X.a),
        "rf": RandomForestClassifier(n_estimators=3, max_depth=3,
                                     random_state=np.random.RandomState(0)).fit(X, y),
        "et": ExtraTreesRegressor(n_estimators=3, max_depth=3, random_state=0).fit(X, X.b),
        "dt": DecisionTreeClassifier(max_depth=3).fit(X, y3),
    }


def _explains(ws, system_id: str, version: str = "1") -> None:
    from workbench.explain.treeshap import contributions

    model = registry.load_model(ws, ANALYST, system_id, version)
    X, _ = _small_frame(20, seed=5)
    known = model.feature_names == ["a", "b"]
    frame = X.to_numpy(dtype=float) if known else np.zeros((20, len(model.feature_names)))
    base, shap, output = contributions(model, frame)
    assert np.isfinite(shap).all() and np.allclose(base + shap.sum(axis=1), output, atol=1e-6)


def test_legit_models_register_and_explain(ws, tmp_path):
    import lightgbm as lgb
    import skops.io as sio
    import xgboost as xgb

    paths: dict[str, tuple[Path, bool]] = {}
    for name, model in _sklearn_models().items():
        paths[f"skops-{name}"] = (tmp_path / f"{name}.skops", False)
        sio.dump(model, paths[f"skops-{name}"][0])
        paths[f"pickle-{name}"] = (tmp_path / f"{name}.pkl", True)
        paths[f"pickle-{name}"][0].write_bytes(pickle.dumps(model, protocol=4))
    for k in (1, 3):
        paths[f"lgb-{k}"] = (tmp_path / f"lgb{k}.txt", False)
        paths[f"lgb-{k}"][0].write_text(_lightgbm_text(k))
        paths[f"xgb-json-{k}"] = (tmp_path / f"xgb{k}.json", False)
        paths[f"xgb-json-{k}"][0].write_text(json.dumps(_xgb_doc(0 if k == 1 else k)))
        booster = xgb.Booster()
        booster.load_model(bytearray(paths[f"xgb-json-{k}"][0].read_bytes()))
        paths[f"xgb-ubj-{k}"] = (tmp_path / f"xgb{k}.ubj", False)
        paths[f"xgb-ubj-{k}"][0].write_bytes(bytes(booster.save_raw("ubj")))
        paths[f"xgb-pickle-{k}"] = (tmp_path / f"xgb{k}.pkl", True)
        paths[f"xgb-pickle-{k}"][0].write_bytes(pickle.dumps(booster, protocol=4))
    X, y = _small_frame()
    paths["lgbm-classifier-pickle"] = (tmp_path / "lgbm.pkl", True)
    paths["lgbm-classifier-pickle"][0].write_bytes(pickle.dumps(
        lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(X, y), protocol=4))
    for name, (path, allow) in paths.items():
        row = registry.add_model(ws, ANALYST, name, "1", path, allow_pickle=allow)
        assert row["feature_names"] == ["a", "b"], name
        if not name.endswith("gb3"):  # shap explains GradientBoostingClassifier for two classes only
            _explains(ws, name)
    for entry in json.loads((ROOT / "sample_data" / "models" / "registry.json").read_text()):
        path = ROOT / "sample_data" / entry["path"]
        row = registry.add_model(ws, ANALYST, entry["system_id"], entry["version"], path)
        assert row["sha256"] == entry["sha256"]
        _explains(ws, entry["system_id"], entry["version"])
    assert not ws.scalar("SELECT count(*) FROM model_events")


def test_cli_model_add_refuses_hostile_skops_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    path = skops_file(tmp_path / "evil.skops", runstring(marker))
    db = tmp_path / "w.duckdb"
    proc = subprocess.run([sys.executable, "-m", "workbench", "model", "add", str(path), "--system", "s",
                           "--version", "1", "--db", str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "refused" in proc.stderr
    assert not marker.exists()
    proc = subprocess.run([sys.executable, "-m", "workbench", "model", "events", "--db", str(db), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["event"] for line in proc.stdout.splitlines()] == ["refused.skops_types"]
