"""Probing: single-feature sweeps from profiles near the boundary, as an attacker maps where the decision flips.

For each base profile (logged decisions scored closest to the favourable threshold) each feature is swept
over its logged range (numbers on a grid, every logged category, both booleans) with the rest fixed. Per
feature: how far the score moves, the share of profiles whose outcome that feature alone can flip, and the
mean value at which the outcome first becomes favourable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.redteam.space import FeatureSpec
from workbench.redteam.target import BudgetExhausted, Target


def grid(spec: FeatureSpec, points: int) -> list[Any]:
    """Sweep values of a feature: an even grid over the logged range, categories, or both booleans."""
    if spec.kind == "bool":
        return [False, True]
    if spec.kind == "string":
        return list(spec.categories[:points])
    vals = np.linspace(spec.lo, spec.hi, points)
    vals = np.unique(np.round(vals)) if spec.integer else vals
    return [float(v) for v in vals]


def near_boundary(t: Target, n: int, seed: int) -> pd.DataFrame:
    """The n logged profiles scored closest to the favourable threshold (oracle scores, not attacker queries)."""
    pool = t.base_rows(n * 10, seed)
    if pool.empty:
        return pool
    dist = np.abs(t.oracle(pool) - t.threshold)
    return pool.iloc[np.argsort(dist, kind="stable")[:n]].reset_index(drop=True)


def run(t: Target, seed: int) -> dict[str, Any]:
    """Sweep every feature from each base profile; per-feature sensitivity and flip points."""
    specs = list(t.space.specs.values())
    nf = max(len(specs), 1)
    nb = int(min(20, max(3, t.budget // (nf * 25))))
    points = int(min(40, max(5, t.budget // (nb * nf))))
    bases = near_boundary(t, nb, seed)
    out: list[dict[str, Any]] = []
    try:
        base_scores = t.query(bases, tag="probe-base")
        for spec in specs:
            values = grid(spec, points)
            rows = pd.concat([bases.assign(**{spec.name: v}) for v in values], ignore_index=True)
            rows[spec.name] = rows[spec.name].astype(object) if spec.kind != "number" else rows[spec.name]
            scores = t.query(rows, tag=f"probe-{spec.name}").reshape(len(values), len(bases))
            fav = scores < t.threshold
            base_fav = base_scores < t.threshold
            flips = (fav != base_fav[None, :]).any(axis=0)
            first = [values[int(np.argmax(fav[:, j]))] for j in range(len(bases)) if fav[:, j].any()]
            out.append({
                "feature": spec.name, "kind": spec.kind, "points": len(values),
                "score_range": float(np.mean(scores.max(axis=0) - scores.min(axis=0))),
                "flip_share": float(flips.mean()),
                "first_favourable_value": (float(np.mean(first)) if first and spec.kind == "number" else
                                           (max(set(map(str, first)), key=list(map(str, first)).count)
                                            if first else None)),
                "curve": [{"value": v if spec.kind != "bool" else str(v), "mean_score": float(m)}
                          for v, m in zip(values, scores.mean(axis=1), strict=True)],
            })
    except BudgetExhausted:
        pass
    out.sort(key=lambda r: -r["score_range"])
    return {"profiles": len(bases), "grid_points": points, "features": out,
            "most_sensitive": out[0]["feature"] if out else None,
            "flippable_features": [r["feature"] for r in out if r["flip_share"] > 0]}
