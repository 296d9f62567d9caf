"""Benchmark: workbench explain vs LightGBM's own pred_contrib on 1,000 decisions of a 300-tree 31-leaf model.

Trains the model here on generated data, ingests the decisions through the real ingest path into a temporary
workspace, registers the model, then times side by side: LightGBM pred_contrib on the model-ready rows, the
workbench's first (uncached) explain of the same decisions, and the cached repeat.
Run: python benchmarks/bench_explain.py [--rows 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from workbench.access import local_admin
from workbench.explain import explain_decisions, registry
from workbench.ingest import ingest
from workbench.store import open_workspace

CATS = ["car", "debt", "home", "medical", "other", "small_business"]


def generate(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Raw feature rows: ten numbers, one category, one boolean."""
    frame = pd.DataFrame({f"x{i}": rng.normal(0, 1, n).round(4) for i in range(10)})
    frame["purpose"] = rng.choice(CATS, n)
    frame["flag"] = rng.random(n) < 0.3
    return frame


def model_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Training encoding: fixed category list, bools, floats."""
    out = raw.copy()
    out["purpose"] = pd.Categorical(raw["purpose"], categories=CATS)
    return out


def main() -> None:
    """Train, ingest, register, time, print."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    train = generate(rng, 30000)
    logit = (train.x0 * train.x1 + np.sin(3 * train.x2) + train.x3 ** 2 - 1 + 0.8 * train.flag
             + (train.purpose == "small_business") + 0.3 * train.x4 * train.x5)
    y = (rng.random(len(train)) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 31, "min_data_in_leaf": 5, "learning_rate": 0.05,
                         "verbose": -1, "seed": 1}, lgb.Dataset(model_frame(train), y), num_boost_round=300)
    leaves = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        booster.save_model(str(tmp_path / "model.txt"))
        raw = generate(rng, args.rows)
        scores = booster.predict(model_frame(raw))
        start = datetime(2025, 1, 1, tzinfo=UTC)
        with (tmp_path / "decisions.jsonl").open("w") as fh:
            for i, row in enumerate(raw.to_dict("records")):
                feats = {k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in row.items()}
                fh.write(json.dumps({"decision_id": f"d{i:06d}", "ts": (start + timedelta(seconds=i)).isoformat(),
                                     "system_id": "bench", "model_version": "1", "principal": "p",
                                     "prediction": "deny" if scores[i] > 0.5 else "approve",
                                     "score": float(scores[i]), "features": feats}) + "\n")
        ws = open_workspace(tmp_path / "ws.duckdb")
        actor = local_admin()
        ingest(ws, actor, [tmp_path / "decisions.jsonl"], kind="decisions")
        registry.add_model(ws, actor, "bench", "1", tmp_path / "model.txt")
        ids = [f"d{i:06d}" for i in range(args.rows)]
        ready = model_frame(raw)

        t = time.perf_counter()
        first = explain_decisions(ws, actor, "bench", ids)
        first_call = time.perf_counter() - t
        contrib = booster.predict(ready, pred_contrib=True)
        assert np.allclose([e["output"] for e in first], contrib.sum(axis=1), atol=1e-9)
        lib, ours, cached = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            booster.predict(ready, pred_contrib=True)
            lib.append(time.perf_counter() - t)
            ws.execute("DELETE FROM explanations")
            t = time.perf_counter()
            explain_decisions(ws, actor, "bench", ids)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            explain_decisions(ws, actor, "bench", ids)
            cached.append(time.perf_counter() - t)
        ws.close()
    lib_t, ours_t, cached_t = statistics.median(lib), statistics.median(ours), statistics.median(cached)
    print(f"model: {booster.num_trees()} trees, max {max(leaves)} leaves; {args.rows} decisions; "
          f"median of {args.repeats} runs")
    print(f"LightGBM pred_contrib          : {lib_t * 1000:8.1f} ms")
    print(f"workbench explain (uncached)   : {ours_t * 1000:8.1f} ms   ratio {ours_t / lib_t:.3f}x (target <= 1.25x)")
    print(f"workbench explain (first call) : {first_call * 1000:8.1f} ms   (incl. hash check + model parse)")
    print(f"workbench explain (cached)     : {cached_t * 1000:8.1f} ms   speed-up {ours_t / cached_t:.1f}x "
          "(target >= 20x)")


if __name__ == "__main__":
    main()
