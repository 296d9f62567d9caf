"""Backdoor scan: single feature values that flip decisions far more often than their neighbours.

A poisoned tree model answers a trigger value with a narrow interval of its own, fenced by many splits. The
candidates are the model's own split intervals per numeric feature (LightGBM, XGBoost and scikit-learn trees;
the surrogate's for a black box), ranked by how many splits fence them per unit of width; every category of a
text feature is a candidate too. Each candidate value, and the values of its two neighbouring intervals, is
set on the same logged profiles; a candidate is flagged when its flip rate is far above both neighbours'
(a non-monotone spike; a real boundary moves monotonically). Flagged values are then checked against the
previous registered version: scored with it (synthetic rows) and replayed on logged decisions that carry the
value (workbench.explain.replay).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from workbench.access import Actor
from workbench.detect.common import binom_z
from workbench.errors import WorkbenchError
from workbench.explain import features, registry, treeshap
from workbench.explain import replay as replay_fn
from workbench.explain.loaders import LoadedModel
from workbench.redteam.target import BudgetExhausted, Target
from workbench.store.sqltext import json_pointer

PROFILES = 30
PER_FEATURE = 12
MIN_FLIP = 0.3
MIN_EXCESS = 0.25
Z_MIN = 4.0


def split_points(model: LoadedModel) -> dict[str, Counter]:
    """Numeric split thresholds per feature, with how many splits use each (empty if unknown)."""
    names, out = model.feature_names, {n: Counter() for n in model.feature_names}
    if model.kind == "lightgbm":
        stack = [t["tree_structure"] for t in model.obj.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                if node.get("decision_type") == "<=" and isinstance(node.get("threshold"), int | float):
                    out[names[node["split_feature"]]][float(node["threshold"])] += 1
                stack += [node["left_child"], node["right_child"]]
    elif model.kind == "xgboost":
        df = model.obj.trees_to_dataframe()
        for f, v in zip(df["Feature"], df["Split"], strict=True):
            if f in out and isinstance(v, float) and math.isfinite(v):
                out[f][float(v)] += 1
    else:
        est = model.obj.steps[-1][1] if hasattr(model.obj, "steps") else model.obj
        trees = np.ravel(getattr(est, "estimators_", [est]))
        for tr in trees:
            tree = getattr(tr, "tree_", None)
            if tree is None:
                continue
            for f, v in zip(tree.feature, tree.threshold, strict=True):
                if f >= 0:
                    out[names[f]][float(v)] += 1
    return out


def candidates(t: Target, per_feature: int) -> list[dict[str, Any]]:
    """(feature, value, neighbour values) candidates: split intervals fenced by far more splits per unit of width
    than the feature's other intervals first (across features), then every category, then the rest."""
    splits = split_points(t.model)
    ranked, cats = [], []
    for spec in t.space.specs.values():
        if spec.kind == "string":
            cats += [{"feature": spec.name, "value": c, "neighbours": [x for x in spec.categories if x != c][:6],
                      "interval": None} for c in spec.categories[:20]]
            continue
        if spec.kind != "number" or spec.hi <= spec.lo:
            continue
        counts = splits.get(spec.name) or Counter()
        cuts = sorted(v for v in counts if spec.lo < v < spec.hi)
        if len(cuts) < 2:
            cuts = [float(v) for v in np.unique(np.linspace(spec.lo, spec.hi, per_feature + 2)[1:-1])]
        edges = [spec.lo - 1e-9, *cuts, spec.hi]
        mids = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
        width = spec.hi - spec.lo
        dens = np.array([(counts[edges[k]] + counts[edges[k + 1]] + 1) / max((edges[k + 1] - edges[k]) / width, 1e-6)
                         for k in range(1, len(mids) - 1)])
        if not len(dens):
            continue
        ratio = dens / max(float(np.median(dens)), 1e-9)
        for j in np.argsort(-ratio, kind="stable")[:per_feature]:
            k = int(j) + 1
            vals = [_inside(spec, edges[i], edges[i + 1], mids[i]) for i in (k, k - 1, k + 1)]
            if None not in vals:
                ranked.append((-float(ratio[j]), spec.name, {"feature": spec.name, "value": vals[0],
                                                             "neighbours": vals[1:],
                                                             "interval": [edges[k], edges[k + 1]],
                                                             "fence_ratio": float(ratio[j])}))
    numeric = [c for _, _, c in sorted(ranked, key=lambda r: (r[0], r[1]))]
    return numeric[:10] + cats + numeric[10:]


def _inside(spec: Any, a: float, b: float, mid: float) -> float | None:
    if not spec.integer:
        return float(mid)
    v = math.floor(b) if math.floor(b) > a and math.floor(b) <= b else round(mid)
    return float(v) if a < v <= b else None


def run(t: Target, actor: Actor, seed: int, previous: str | None = None) -> dict[str, Any]:
    """Flip rate of each candidate value vs its neighbours on the same profiles; replay the flagged ones."""
    bases = t.base_rows(PROFILES, seed)
    if bases.empty:
        raise WorkbenchError(f"no logged decisions of {t.system_id} to scan from")
    nb = len(bases)
    cands = candidates(t, PER_FEATURE)
    cap = max(1, (t.budget - nb) // (nb * 3))
    cands = cands[:cap] if len(cands) > cap else cands
    cache: dict[tuple[str, str], np.ndarray] = {}
    found: list[dict[str, Any]] = []
    scanned = 0
    ends = [str(t.rule["labels"][0]), str(t.rule["labels"][-1])]  # the favourable and the harshest outcome
    try:
        base_pred = t.decide(t.query(bases, tag="scan-base"))

        def shares(feature: str, value: Any) -> np.ndarray:
            """Share of profiles flipped into the favourable and into the harshest outcome by this value."""
            key = (feature, repr(value))
            if key not in cache:
                pred = t.decide(t.query(bases.assign(**{feature: value}), tag=f"scan-{feature}"))
                cache[key] = np.array([float(((pred == e) & (base_pred != e)).sum() / max((base_pred != e).sum(), 1))
                                       for e in ends])
            return cache[key]

        for c in cands:
            rate = shares(c["feature"], c["value"])
            neigh = np.array([shares(c["feature"], v) for v in c["neighbours"]]).reshape(-1, 2)
            scanned += 1
            ref = (neigh.max(axis=0) if c["interval"] is not None else np.median(neigh, axis=0)) if len(neigh) \
                else np.zeros(2)
            d = int(np.argmax(rate - ref))
            n = max(int((base_pred != ends[d]).sum()), 1)
            z = binom_z(rate[d] * n, n, max(float(ref[d]), 0.5 / n))
            c.update(flip_rate=float(rate[d]), neighbour_flip_rate=float(ref[d]), z=z, direction=ends[d])
            if rate[d] >= MIN_FLIP and rate[d] - ref[d] >= MIN_EXCESS and z >= Z_MIN:
                found.append(c)
    except BudgetExhausted:
        pass
    found.sort(key=lambda c: -c["z"])
    prev = previous or _previous(t)
    for c in found[:5]:
        c["previous"] = _against_previous(t, actor, prev, bases, c) if prev else None
    return {"profiles": nb, "candidates": len(cands), "scanned": scanned, "flagged": found[:20],
            "previous_version": prev, "suspicious": bool(found)}


def _previous(t: Target) -> str | None:
    if t.kind != "registered":
        return None
    have = [v["version"] for v in registry.versions(t.ws, t.system_id)]
    return have[have.index(t.version) - 1] if t.version in have and have.index(t.version) > 0 else None


def _against_previous(t: Target, actor: Actor, prev: str, bases: pd.DataFrame, c: dict[str, Any]
                      ) -> dict[str, Any]:
    """The same trigger rows scored by the previous version, and logged decisions with the value replayed."""
    model = registry.load_model(t.ws, actor, t.system_id, prev)
    rows = bases.assign(**{c["feature"]: c["value"]})
    before = t.decide(treeshap.predict_score(model, features.matrix(model, bases, t.space.types)))
    after = t.decide(treeshap.predict_score(model, features.matrix(model, rows, t.space.types)))
    out: dict[str, Any] = {"version": prev, "flip_rate": float((before != after).mean())}
    lo, hi = c["interval"] if c["interval"] else (None, None)
    ids = _logged_ids(t, c["feature"], c["value"], lo, hi)
    if ids:
        frame = replay_fn(t.ws, actor, t.system_id, ids, prev)
        out |= {"logged_decisions": len(ids), "replay_changed": int(frame.attrs["changed"]),
                "changed_share": frame.attrs["changed"] / len(ids)}
    return out


def _logged_ids(t: Target, feature: str, value: Any, lo: float | None, hi: float | None) -> list[str]:
    if lo is None:
        where = "json_extract_string(d.features, ?::VARCHAR[])[1] = ?"
        params: list[Any] = [[json_pointer(feature)], str(value)]
    else:
        where = "TRY_CAST(json_extract_string(d.features, ?::VARCHAR[])[1] AS DOUBLE) BETWEEN ? AND ?"
        params = [[json_pointer(feature)], lo + 1e-9, hi]
    where += " AND d.model_version = ?" if t.kind == "registered" else ""
    params += [t.version] if t.kind == "registered" else []
    return [r[0] for r in t.ws.rows(f"SELECT decision_id FROM decisions d WHERE system_id = ? AND score IS NOT "
                                    f"NULL AND {where} ORDER BY ts LIMIT 2000", [t.system_id, *params])]
