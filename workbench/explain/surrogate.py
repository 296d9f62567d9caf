"""A LightGBM surrogate of a black-box system: logged features -> logged score, with held-out fidelity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.explain import features, registry
from workbench.explain.loaders import LoadedModel, load_bytes, sha256_bytes
from workbench.store import Workspace

MIN_ROWS = 200
MAX_ROWS = 200_000
_PARAMS = {"objective": "regression", "num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 20,
           "feature_fraction": 0.9, "lambda_l2": 1.0, "deterministic": True, "seed": 7, "verbose": -1,
           "force_col_wise": True}


def _window(since: Any, until: Any) -> tuple[str, list[Any]]:
    where, params = ["d.score IS NOT NULL"], []
    if since is not None:
        where.append("d.ts >= ?::TIMESTAMPTZ")
        params.append(since)
    if until is not None:
        where.append("d.ts < ?::TIMESTAMPTZ")
        params.append(until)
    return " AND ".join(where), params


def training_frame(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Model-ready columns: strings as categories (sorted, kept in the model file), the rest as floats."""
    out = {}
    for name, kind in types.items():
        col = frame[name]
        if kind == "string":
            cats = sorted({str(v) for v in col.dropna().tolist()})
            out[name] = pd.Categorical(col.astype(object).where(col.notna(), None), categories=cats)
        else:
            out[name] = pd.Series(col).astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(out)


def fit_surrogate(ws: Workspace, actor: Actor, system_id: str, since: Any = None, until: Any = None, *,
                  max_rows: int = MAX_ROWS, rounds: int = 300) -> dict[str, Any]:
    """Fit a LightGBM surrogate to the logged score over a window; report held-out R² and keep it."""
    import lightgbm as lgb

    require(actor, "read:decisions", ws)
    types = features.catalog(ws, system_id)
    if not types:
        raise WorkbenchError(f"no logged features for system {system_id}: nothing to fit a surrogate on")
    where, params = _window(since, until)
    frame = features.load_where(ws, system_id, where, params, types, limit=max_rows)
    if len(frame) < MIN_ROWS:
        raise WorkbenchError(f"only {len(frame)} decisions of {system_id} with a logged score in the window; "
                             f"a surrogate needs at least {MIN_ROWS}")
    X = training_frame(frame, types)
    y = frame["score"].to_numpy(dtype=np.float64)
    test = (pd.util.hash_pandas_object(frame["decision_id"], index=False).to_numpy() % 5) == 0
    booster = lgb.train(_PARAMS, lgb.Dataset(X[~test], y[~test]), num_boost_round=rounds)
    pred = booster.predict(X[test])
    ss_res = float(np.sum((y[test] - pred) ** 2))
    ss_tot = float(np.sum((y[test] - y[test].mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    data = booster.model_to_string().encode("utf-8")
    sha = sha256_bytes(data)
    stored = registry._store_copy(ws, data, sha)
    span = ws.one("SELECT min(ts), max(ts) FROM all_decisions d WHERE d.system_id = ? AND " + where,
                  [system_id, *params])
    lo, hi = (since or span[0]), (until or span[1])
    now = datetime.now(UTC)
    with ws.transaction() as con:
        con.execute("INSERT OR REPLACE INTO surrogates VALUES (?, ?, ?::TIMESTAMPTZ, ?::TIMESTAMPTZ, ?, ?, "
                    "?, ?, ?, ?, ?)", [sha, system_id, lo, hi, r2, int((~test).sum()), int(test.sum()),
                                 list(types), str(stored), actor.user, now])
        audit.record(ws, actor, "model.surrogate", system_id,
                     {"sha256": sha, "r2": r2, "n_train": int((~test).sum()), "n_test": int(test.sum()),
                      "since": lo, "until": hi})
    return {"system_id": system_id, "method": "surrogate", "sha256": sha, "r2": r2,
            "n_train": int((~test).sum()), "n_test": int(test.sum()), "features": list(types),
            "since": lo, "until": hi}


def current(ws: Workspace, actor: Actor, system_id: str) -> tuple[LoadedModel, dict[str, Any]]:
    """The newest surrogate of a system (fitted over all logged decisions if there is none), hash-checked."""
    rows = ws.dicts("SELECT sha256, r2, since, until, stored_path FROM surrogates WHERE system_id = ? "
                    "ORDER BY fitted_at DESC LIMIT 1", [system_id])
    info = rows[0] if rows else None
    if info is None:
        fitted = fit_surrogate(ws, actor, system_id)
        info = {"sha256": fitted["sha256"], "r2": fitted["r2"], "since": fitted["since"],
                "until": fitted["until"], "stored_path": ws.scalar(
                    "SELECT stored_path FROM surrogates WHERE sha256 = ?", [fitted["sha256"]])}
    try:
        data = open(info["stored_path"], "rb").read()
    except OSError as exc:
        raise WorkbenchError(f"the stored surrogate of {system_id} is missing ({exc.strerror})") from exc
    if sha256_bytes(data) != info["sha256"]:
        reason = f"refused to load the surrogate of {system_id}: its stored copy was modified"
        registry.record_event(ws, actor, "refused.hash_mismatch", reason, system_id=system_id,
                              version="surrogate", sha256=info["sha256"], path=info["stored_path"])
        raise WorkbenchError(reason)
    model, _ = load_bytes(data, "lightgbm")
    model.system_id, model.version = system_id, f"surrogate:{info['sha256'][:12]}"
    return model, info
