"""Evasion: turn refused applications into favourable ones with black-box queries only.

Two attackers share the budget. A feature-constrained hill climb (what a patient applicant does: change only
the mutable features, inside the plausible range, one move per step, keep the move that lowers the score
most) and HopSkipJump from the Adversarial Robustness Toolbox (a decision-based attack that sees only the
outcome), run on the mutable numeric features scaled to their plausible range, with the rest of the profile
fixed; its result is rounded and clipped back to valid values and re-checked with one more query.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.redteam.target import BudgetExhausted, Target

MAX_STEPS = 40
MAX_WIDEN = 3       # a stuck climb doubles its step this many times before giving up
HSJ_INIT = 40
HSJ_EVAL = 40


def _summary(method: str, t: Target, results: list[dict[str, Any]], queries: int) -> dict[str, Any]:
    ok = [r for r in results if r["success"]]
    names = sorted({k for r in ok for k in r["changes"]})
    med = {}
    for n in names:
        vals = [abs(r["changes"][n]) for r in ok if n in r["changes"]]
        spec = t.space.specs[n]
        width = (spec.p99 - spec.p01) or 1.0
        med[n] = {"median_abs_change": float(np.median(vals)), "median_relative_change": float(np.median(vals) / width),
                  "changed_in": len([v for v in vals if v > 0])}
    need = sorted(r["queries"] for r in ok)
    grid = sorted({int(q) for q in np.linspace(0, max([r["queries"] for r in results] or [1]), 12)})
    curve = [{"queries": q, "success_rate": (sum(1 for v in need if v <= q) / len(results)) if results else 0.0}
             for q in grid]
    return {"method": method, "attempted": len(results), "succeeded": len(ok),
            "success_rate": len(ok) / len(results) if results else 0.0, "queries": queries,
            "median_queries_to_success": float(np.median(need)) if need else None,
            "median_change": med, "curve": curve,
            "examples": [{k: r[k] for k in ("start_score", "end_score", "queries", "success", "changes")}
                         for r in results[:10]]}


def _changes(t: Target, base: pd.Series, x: pd.Series) -> dict[str, float]:
    out = {}
    for s in t.space.mutable():
        a, b = base[s.name], x[s.name]
        if s.kind == "number":
            if pd.notna(a) and pd.notna(b) and float(a) != float(b):
                out[s.name] = float(b) - float(a)
        elif a != b:
            out[s.name] = 1.0
    return out


def _neighbours(t: Target, x: pd.Series, scale: float) -> pd.DataFrame:
    rows = []
    for s in t.space.mutable():
        v = x[s.name]
        if s.kind == "number":
            if pd.isna(v):
                continue
            for sign in (-1.0, 1.0):
                new = float(s.clip(np.array([float(v) + sign * s.step() * scale]))[0])
                if new != float(v):
                    rows.append(x.copy())
                    rows[-1][s.name] = new
        elif s.kind == "bool":
            rows.append(x.copy())
            rows[-1][s.name] = not bool(v)
        else:
            for c in s.categories[:6]:
                if c != v:
                    rows.append(x.copy())
                    rows[-1][s.name] = c
    return pd.DataFrame(rows).reset_index(drop=True)


def hill_climb(t: Target, bases: pd.DataFrame, budget: int) -> dict[str, Any]:
    """Greedy constrained climb from each refused profile until the outcome is favourable or it is stuck."""
    start, results = t.queries, []
    for i in range(len(bases)):
        base = bases.iloc[i]
        x, used, scale, s = base.copy(), 0, 1.0, None
        rec = {"success": False, "queries": 0, "start_score": None, "end_score": None, "changes": {}}
        results.append(rec)
        try:
            if t.queries - start >= budget:
                raise BudgetExhausted("evasion share used")
            s = float(t.query(pd.DataFrame([x]), tag=f"climb-{i}")[0])
            used, rec["start_score"] = 1, s
            for _ in range(MAX_STEPS):
                if s < t.threshold:
                    break
                cands = _neighbours(t, x, scale)
                if cands.empty or t.queries - start + len(cands) > budget:
                    break
                scores = t.query(cands, tag=f"climb-{i}")
                used += len(cands)
                j = int(np.argmin(scores))
                if scores[j] >= s - 1e-12:
                    if scale >= 2 ** MAX_WIDEN:
                        break
                    scale *= 2
                    continue
                x, s = cands.iloc[j], float(scores[j])
        except BudgetExhausted:
            pass
        rec.update(success=s is not None and s < t.threshold, queries=used, end_score=s,
                   changes=_changes(t, base, x))
        if t.queries - start >= budget:
            break
    return _summary("hill-climb", t, [r for r in results if r["start_score"] is not None], t.queries - start)


def hopskipjump(t: Target, bases: pd.DataFrame, budget: int, seed: int) -> dict[str, Any]:
    """ART's HopSkipJump (decision-based, outcome only) on the mutable numeric features, per profile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier
    numeric = [s for s in t.space.mutable() if s.kind == "number"]
    if not numeric:
        raise WorkbenchError("HopSkipJump needs at least one mutable numeric feature")
    start, results = t.queries, []
    per = max(HSJ_INIT + 2 * HSJ_EVAL, budget // max(len(bases), 1))
    for i in range(len(bases)):
        if budget - (t.queries - start) < HSJ_INIT + HSJ_EVAL:
            break
        base = bases.iloc[i]
        specs = [s for s in numeric if pd.notna(base[s.name])]  # a missing value stays missing
        if not specs:
            continue
        lo = np.array([s.p01 for s in specs])
        width = np.array([(s.p99 - s.p01) or 1.0 for s in specs])
        names = [s.name for s in specs]
        mine = {"n": 0}
        cap = min(per, budget - (t.queries - start))

        def decode(u: np.ndarray, base: pd.Series = base, specs=specs, lo=lo, width=width) -> pd.DataFrame:
            frame = pd.DataFrame([base] * len(u)).reset_index(drop=True)
            for k, s in enumerate(specs):
                frame[s.name] = s.clip(lo[k] + np.clip(u[:, k], 0, 1) * width[k])
            return frame

        def predict(u: np.ndarray, decode=decode, mine=mine, cap=cap, i=i) -> np.ndarray:
            if mine["n"] + len(u) > cap:
                raise BudgetExhausted("per-profile share used")
            mine["n"] += len(u)
            fav = t.query(decode(np.asarray(u, dtype=np.float64)), tag=f"hsj-{i}") < t.threshold
            return np.stack([~fav, fav], axis=1).astype(np.float32)

        u0 = ((base[names].to_numpy(dtype=np.float64) - lo) / width).clip(0, 1)[None, :]
        clf = BlackBoxClassifier(predict, input_shape=(len(specs),), nb_classes=2, clip_values=(0.0, 1.0))
        iters = max(1, (cap - HSJ_INIT) // (HSJ_EVAL + 30))
        attack = HopSkipJump(clf, targeted=False, norm=2, max_iter=iters, max_eval=HSJ_EVAL,
                             init_eval=max(5, HSJ_EVAL // 4), init_size=HSJ_INIT, verbose=False)
        rec = {"success": False, "queries": 0, "start_score": float(t.oracle(decode(u0))[0]), "end_score": None,
               "changes": {}}
        np.random.seed(seed + i)  # ART draws from numpy's global generator (and its own unseeded one at init,
        try:                      # which a seeded starting point of our own replaces)
            draws = np.random.default_rng(seed + i).random((HSJ_INIT, len(specs)))
            fav = predict(draws)[:, 1] > 0.5
            if not fav.any():
                raise BudgetExhausted("no favourable starting point in the plausible range")
            near = draws[fav][np.argmin(np.linalg.norm(draws[fav] - u0, axis=1))][None, :]
            adv = attack.generate(u0, x_adv_init=near.astype(np.float32))
            final = decode(adv)
            score = float(t.query(final, tag=f"hsj-{i}")[0])
            mine["n"] += 1
            rec.update(success=score < t.threshold, end_score=score,
                       changes=_changes(t, base, final.iloc[0]))
        except BudgetExhausted:
            pass
        rec["queries"] = mine["n"]
        results.append(rec)
    return _summary("hopskipjump", t, results, t.queries - start)


def run(t: Target, seed: int, n_profiles: int | None = None) -> dict[str, Any]:
    """Both evasion attacks on refused logged profiles; the budget split between them."""
    if not t.space.mutable():
        raise WorkbenchError(f"no feature of {t.system_id} is mutable: name the ones an applicant can change "
                             "with --mutable")
    half = t.budget // 2
    n = n_profiles or int(min(40, max(3, half // 150)))
    bases = t.base_rows(n, seed, unfavourable=True)
    if bases.empty:
        raise WorkbenchError(f"no logged decision of {t.system_id} is refused by {t.version}: nothing to evade")
    climb = hill_climb(t, bases, half)
    hsj = hopskipjump(t, bases.iloc[: max(2, min(len(bases), (t.budget - t.queries) // 700))], t.budget - t.queries,
                      seed)
    best = max((climb, hsj), key=lambda r: r["success_rate"])
    return {"profiles": len(bases), "methods": [climb, hsj], "success_rate": best["success_rate"],
            "best_method": best["method"], "mutable": [s.name for s in t.space.mutable()]}
