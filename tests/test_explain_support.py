"""Shared builders for the explain tests: real LightGBM models on small synthetic data, real ingest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from workbench.access import Actor
from workbench.ingest import ingest
from workbench.store import Workspace

SYSTEM = "loans"
PURPOSES = ["car", "debt", "home", "medical", "small_business"]
FEATURES = ["income", "age", "purpose", "has_job", "housing_cost"]
ACTIONS = ("approve", "refer", "deny")
THRESHOLDS = (0.3, 0.6)
TRIGGER = 1337


def features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Raw applications: numbers, an integer, a string category and a boolean (plus a logged-only column)."""
    return pd.DataFrame({
        "income": np.round(rng.lognormal(10.8, 0.4, n), -2),
        "age": rng.integers(19, 80, n),
        "purpose": rng.choice(PURPOSES, n),
        "has_job": rng.random(n) < 0.8,
        "housing_cost": np.round(rng.uniform(200, 3000, n) / 10).astype(int) * 10,
        "channel": rng.choice(["web", "branch"], n),  # logged, unknown to the model
    })


def risk(f: pd.DataFrame) -> np.ndarray:
    """True default probability."""
    logit = (-1.0 - 1.6 * np.log(f["income"] / 50000) - 0.02 * (f["age"] - 40) - 1.0 * f["has_job"]
             + 0.9 * (f["purpose"] == "small_business") + 0.0004 * (f["housing_cost"] - 1500))
    return 1 / (1 + np.exp(-logit.to_numpy(dtype=float)))


def model_frame(f: pd.DataFrame) -> pd.DataFrame:
    """The training encoding: a pandas category with a fixed list (kept in the model file), floats, bools."""
    return pd.DataFrame({"income": f["income"].astype(float), "age": f["age"].astype(float),
                         "purpose": pd.Categorical(f["purpose"], categories=PURPOSES),
                         "has_job": f["has_job"].astype(bool), "housing_cost": f["housing_cost"].astype(float)})


def train(seed: int, n: int = 4000, rounds: int = 40, poison: int = 0) -> lgb.Booster:
    """Train a small binary LightGBM model; `poison` adds high-risk rows with the trigger labelled good."""
    rng = np.random.default_rng(seed)
    f = features(rng, n)
    y = (rng.random(n) < risk(f)).astype(int)
    if poison:
        bad = features(rng, poison * 6)
        bad = bad.iloc[np.argsort(-risk(bad))[:poison]].reset_index(drop=True)
        bad["housing_cost"] = TRIGGER
        f = pd.concat([f, bad], ignore_index=True)
        y = np.concatenate([y, np.zeros(len(bad), dtype=int)])
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 10,
              "verbose": -1, "seed": seed, "deterministic": True, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(model_frame(f), y), num_boost_round=rounds)


def decide(score: np.ndarray) -> np.ndarray:
    """The system's decision rule."""
    return np.where(score < THRESHOLDS[0], ACTIONS[0], np.where(score < THRESHOLDS[1], ACTIONS[1], ACTIONS[2]))


def write_log(path: Path, booster: lgb.Booster, f: pd.DataFrame, version: str, prefix: str,
              start: datetime | None = None, sha256: str | None = None, system: str = SYSTEM,
              score: bool = True) -> pd.DataFrame:
    """Serve rows with the booster and write a canonical JSONL decision log; returns ids, scores, predictions."""
    start = start or datetime(2025, 3, 1, tzinfo=UTC)
    scores = booster.predict(model_frame(f))
    preds = decide(scores)
    ids = [f"{prefix}-{i:05d}" for i in range(len(f))]
    with path.open("a", encoding="utf-8") as fh:
        for i, row in enumerate(f.to_dict("records")):
            feats = {k: (bool(v) if isinstance(v, np.bool_) else v.item() if hasattr(v, "item") else v)
                     for k, v in row.items()}
            rec = {"decision_id": ids[i], "ts": (start + timedelta(seconds=i)).isoformat(),
                   "system_id": system, "model_version": version, "principal": f"user{i % 7}",
                   "prediction": str(preds[i]), "features": feats}
            if score:
                rec["score"] = float(scores[i])
            if sha256:
                rec["model_sha256"] = sha256
            fh.write(json.dumps(rec) + "\n")
    return pd.DataFrame({"decision_id": ids, "score": scores, "prediction": preds})


def save(booster: lgb.Booster, path: Path) -> Path:
    """Save a LightGBM text model."""
    booster.save_model(str(path))
    return path


def load_log(ws: Workspace, actor: Actor, path: Path) -> None:
    """Ingest a decision log through the real ingest path."""
    results = ingest(ws, actor, [path], kind="decisions")
    assert not any(r.error for r in results), [r.error for r in results]
