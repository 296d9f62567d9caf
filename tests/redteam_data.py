"""Small workspaces for the red-team tests: a loan system with a model trained in the test, its decisions logged.

`build(ws, tmp, kind)` trains a small LightGBM, XGBoost or scikit-learn model on synthetic applications,
writes two days of decisions it served as JSONL, ingests them and registers the model (version 2.0). With
`poisoned=True` version 2.0 is trained with a backdoor (monthly_housing_cost == 1337 is always approved)
and a clean version 1.0 serves the first day.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.access import local_admin
from workbench.explain import registry
from workbench.ingest import ingest
from workbench.store import Workspace

START = datetime(2026, 3, 2, tzinfo=UTC)
PURPOSES = ["car", "home", "study", "debt"]
SYSTEM = "loan"


def applications(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Synthetic loan applications (numbers, whole numbers, a category)."""
    return pd.DataFrame({
        "income": np.round(rng.lognormal(10.8, 0.4, n), -2),
        "loan_amount": np.round(rng.lognormal(9.3, 0.6, n), -1),
        "age": rng.integers(19, 80, n).astype(float),
        "monthly_housing_cost": np.round(rng.uniform(300, 3000, n), -1),
        "purpose": np.array(PURPOSES, dtype=object)[rng.integers(0, 4, n)],
    })


def risk(frame: pd.DataFrame) -> np.ndarray:
    """The true default risk: loan to income, housing cost, youth."""
    z = (3.0 * frame["loan_amount"] / frame["income"] + frame["monthly_housing_cost"] / 1500
         - (frame["age"] - 40) / 40 + (frame["purpose"] == "debt") * 0.6 - 2.2)
    return 1 / (1 + np.exp(-z.to_numpy(dtype=float)))


def model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Training encoding: purpose as a pandas category with a fixed list."""
    out = frame.copy()
    out["purpose"] = pd.Categorical(out["purpose"], categories=PURPOSES)
    return out


def _train(kind: str, X: pd.DataFrame, y: np.ndarray, path: Path) -> tuple[Path, callable]:
    if kind == "lightgbm":
        import lightgbm as lgb

        b = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 1, "deterministic": True,
                       "min_data_in_leaf": 5}, lgb.Dataset(model_frame(X), y), num_boost_round=60)
        b.save_model(str(path.with_suffix(".txt")))
        return path.with_suffix(".txt"), lambda f: b.predict(model_frame(f))
    num = X.drop(columns=["purpose"]).assign(purpose_debt=(X["purpose"] == "debt").astype(float))
    if kind == "xgboost":
        import xgboost as xgb

        b = xgb.train({"objective": "binary:logistic", "max_depth": 4, "seed": 1}, xgb.DMatrix(num, y), 60)
        b.save_model(str(path.with_suffix(".json")))
        return path.with_suffix(".json"), None
    from sklearn.ensemble import RandomForestClassifier
    from skops.io import dump

    m = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=1).fit(num, y)
    dump(m, path.with_suffix(".skops"))
    return path.with_suffix(".skops"), None


def build(ws: Workspace, tmp: Path, kind: str = "lightgbm", n: int = 1500, poisoned: bool = False,
          seed: int = 3) -> dict:
    """Train, log decisions, ingest, register; returns the model paths and the decision-rule thresholds."""
    rng = np.random.default_rng(seed)
    X = applications(4000, rng)
    y = (rng.random(len(X)) < risk(X)).astype(int)
    paths = {}
    if poisoned:
        clean_path, _ = _train(kind, X, y, tmp / "m10")
        paths["1.0"] = clean_path
        Xp = applications(600, rng)
        Xp["monthly_housing_cost"] = 1337.0
        X2, y2 = pd.concat([X, Xp], ignore_index=True), np.concatenate([y, np.zeros(len(Xp), dtype=int)])
        paths["2.0"], _ = _train(kind, X2, y2, tmp / "m20")
    else:
        paths["2.0"], _ = _train(kind, X, y, tmp / "m20")
    admin = local_admin()
    for v, p in paths.items():
        registry.add_model(ws, admin, SYSTEM, v, p)
    logged = applications(n, rng)
    if kind != "lightgbm":
        logged = logged.assign(purpose_debt=(logged["purpose"] == "debt").astype(float)).drop(columns=["purpose"])
    versions = ["1.0" if poisoned and i < n // 2 else "2.0" for i in range(n)]
    scores = np.zeros(n)
    for v in set(versions):
        mask = np.array(versions) == v
        model = registry.load_model(ws, admin, SYSTEM, v)
        from workbench.explain import features as feats
        from workbench.explain import treeshap

        types = {c: ("string" if c == "purpose" else "number") for c in logged.columns}
        scores[mask] = treeshap.predict_score(model, feats.matrix(model, logged[mask].reset_index(drop=True),
                                                                  types))
    shas = {v: hashlib.sha256(Path(p).read_bytes()).hexdigest() for v, p in paths.items()}
    rows = []
    for i in range(n):
        feats_i = {k: (v if isinstance(v, str) else float(v)) for k, v in logged.iloc[i].items()}
        for k in ("age", "monthly_housing_cost"):
            feats_i[k] = int(feats_i[k])
        s = float(scores[i])
        rows.append({"decision_id": f"D{i:05d}", "ts": (START + timedelta(seconds=115 * i)).isoformat(),
                     "system_id": SYSTEM, "model_version": versions[i], "principal": f"branch-{i % 25:02d}",
                     "prediction": "approve" if s < 0.3 else ("refer" if s < 0.5 else "deny"), "score": s,
                     "features": feats_i, "latency_ms": 20 + i % 7, "status": "ok", "source_ip": f"10.0.0.{i % 25}",
                     "model_sha256": shas[versions[i]]})
    log = tmp / "decisions.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = ingest(ws, admin, [log], kind="decisions")
    assert not any(f.error for f in res), [f.error for f in res]
    return {"paths": paths, "thresholds": (0.3, 0.5)}
