"""Extraction: synthesise queries, train a surrogate on the answers, measure fidelity against the number of queries.

The attacker knows the input space (as an applicant or a partner would: ranges, categories) and sees only the
outcome. Queries are drawn from the features' marginals (60%) and uniformly over their ranges (40%); a
LightGBM classifier is trained on the outcomes after 1/16, 1/8, ... of the budget, and its fidelity is its
agreement with the model on logged decisions the attacker never sent (scored by the oracle, not counted).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.redteam.space import Space
from workbench.redteam.target import BudgetExhausted, Target

CHUNK = 500
EVAL_ROWS = 2000
_PARAMS = {"objective": "multiclass", "num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 5,
           "deterministic": True, "seed": 7, "verbose": -1, "force_col_wise": True, "num_threads": 1}


def encode(space: Space, frame: pd.DataFrame) -> pd.DataFrame:
    """Surrogate input: categories fixed to the space's lists, booleans and numbers as floats."""
    out = {}
    for name, s in space.specs.items():
        col = frame[name]
        if s.kind == "string":
            out[name] = pd.Categorical(col.astype(object), categories=list(s.categories))
        else:
            out[name] = pd.to_numeric(col.astype(object), errors="coerce").astype("float64")
    return pd.DataFrame(out)


def fit(space: Space, frame: pd.DataFrame, labels: np.ndarray, classes: list[str], rounds: int = 80) -> Any:
    """A LightGBM classifier of the outcomes (or the constant answer when only one outcome was seen)."""
    import lightgbm as lgb

    y = np.array([classes.index(v) for v in labels])
    if len(set(y.tolist())) < 2:
        return int(y[0]) if len(y) else 0
    params = _PARAMS | {"num_class": len(classes), "min_data_in_leaf": max(2, min(20, len(y) // 50))}
    return lgb.train(params, lgb.Dataset(encode(space, frame), y), num_boost_round=rounds)


def predict(model: Any, space: Space, frame: pd.DataFrame) -> np.ndarray:
    """Class indices the extracted model gives."""
    if isinstance(model, int):
        return np.full(len(frame), model)
    return np.asarray(model.predict(encode(space, frame))).argmax(axis=1)


def run(t: Target, seed: int) -> dict[str, Any]:
    """Query synthesis up to the budget; fidelity of a surrogate trained at each checkpoint."""
    rng = np.random.default_rng(seed)
    n = t.budget
    synth = pd.concat([t.space.sample(int(n * 0.6) + 1, rng, "marginal"), t.space.sample(int(n * 0.4) + 1, rng,
                                                                                         "uniform")])
    synth = synth.sample(frac=1.0, random_state=seed).iloc[:n].reset_index(drop=True)
    scores = []
    try:
        for i in range(0, len(synth), CHUNK):
            scores.append(t.query(synth.iloc[i:i + CHUNK], tag=f"extract-{i // CHUNK}"))
    except BudgetExhausted:
        pass
    got = np.concatenate(scores) if scores else np.zeros(0)
    synth = synth.iloc[:len(got)]
    answers = t.decide(got)
    classes = [str(c) for c in t.rule["labels"]]
    held = t.base_rows(EVAL_ROWS, seed + 1)
    truth = t.decide(t.oracle(held))
    truth_idx = np.array([classes.index(str(v)) for v in truth])
    curve = []
    points = sorted({k for k in (len(got) // d for d in (16, 8, 4, 2, 1)) if k >= 20})
    for k in points:
        model = fit(t.space, synth.iloc[:k], answers[:k], classes)
        agree = float((predict(model, t.space, held) == truth_idx).mean()) if len(held) else 0.0
        curve.append({"queries": k, "fidelity": agree})
    base_rate = float(max(np.bincount(truth_idx, minlength=len(classes)) / max(len(truth_idx), 1))) \
        if len(truth_idx) else 0.0
    return {"queries": int(len(got)), "held_out": int(len(held)), "curve": curve,
            "fidelity": curve[-1]["fidelity"] if curve else 0.0, "majority_baseline": base_rate,
            "answer_mix": {c: int((answers == c).sum()) for c in classes},
            "synthesis": {"marginal": 0.6, "uniform": 0.4}}
