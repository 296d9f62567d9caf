"""Replay: re-score logged decisions with another registered version under the learned decision rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.explain import features, registry, treeshap
from workbench.store import Workspace

COLUMNS = ["decision_id", "served_version", "served_prediction", "served_score", "replay_version",
           "replay_score", "replay_prediction", "changed"]
_BASE = "FROM all_decisions WHERE system_id = ? AND model_version = ? AND score IS NOT NULL"


def _split(ws: Workspace, system_id: str, version: str, low: dict, high: dict) -> float:
    """Threshold between adjacent classes: the midpoint of the gap, or the least-error cut if they overlap."""
    if low["hi"] < high["lo"]:
        return (low["hi"] + high["lo"]) / 2.0
    row = ws.one(
        f"WITH c AS (SELECT score, prediction = ? AS is_low {_BASE} AND prediction IN (?, ?) "
        "AND score BETWEEN ? AND ?), g AS (SELECT score, count(*) FILTER (is_low) AS nl, "
        "count(*) FILTER (NOT is_low) AS nh FROM c GROUP BY score), "
        "e AS (SELECT score, coalesce(sum(nh) OVER (ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING AND "
        "1 PRECEDING), 0) + sum(nl) OVER (ORDER BY score ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) "
        "AS err FROM g) SELECT score, err FROM e ORDER BY err, score LIMIT 1",
        [low["prediction"], system_id, version, low["prediction"], high["prediction"], high["lo"], low["hi"]])
    # cutting just above the low class's maximum misplaces only the high rows at or below it
    above = ws.scalar(f"SELECT count(*) {_BASE} AND prediction = ? AND score <= ?",
                      [system_id, version, high["prediction"], low["hi"]])
    if row is None or above <= row[1]:
        return float(np.nextafter(low["hi"], np.inf))
    return float(row[0])


def decision_rule(ws: Workspace, system_id: str, version: str) -> dict[str, Any]:
    """The score -> prediction rule of a version learned from its logged decisions (class score intervals)."""
    classes = ws.dicts(f"SELECT prediction, min(score) AS lo, max(score) AS hi, median(score) AS med, "
                       f"count(*) AS n {_BASE} GROUP BY prediction ORDER BY med, prediction",
                       [system_id, version])
    if not classes:
        raise WorkbenchError(f"no logged decisions with a score for {system_id} version {version}: "
                             "cannot learn its decision rule")
    thresholds = [_split(ws, system_id, version, a, b) for a, b in zip(classes, classes[1:], strict=False)]
    labels = [c["prediction"] for c in classes]
    case = _case_sql(labels, thresholds)
    agreement = ws.scalar(f"SELECT avg(({case} = prediction)::INTEGER) {_BASE}",
                          [*_case_params(labels, thresholds), system_id, version])
    return {"version": version, "labels": labels, "thresholds": thresholds, "agreement": float(agreement),
            "classes": [{k: c[k] for k in ("prediction", "lo", "hi", "n")} for c in classes]}


def _case_sql(labels: list[str], thresholds: list[float]) -> str:
    if not thresholds:
        return "?"
    return "CASE " + " ".join("WHEN score < ? THEN ?" for _ in thresholds) + " ELSE ? END"


def _case_params(labels: list[str], thresholds: list[float]) -> list[Any]:
    out: list[Any] = []
    for t, lab in zip(thresholds, labels, strict=False):
        out += [t, lab]
    return [*out, labels[-1]]


def apply_rule(rule: dict[str, Any], scores: np.ndarray) -> np.ndarray:
    """Predictions the learned rule gives these scores (score < threshold: the lower class)."""
    idx = np.searchsorted(np.asarray(rule["thresholds"], dtype=np.float64), scores, side="right")
    out = np.asarray(rule["labels"], dtype=object)[idx]
    out[np.isnan(scores)] = None
    return out


def ids_between(ws: Workspace, system_id: str, since: Any = None, until: Any = None,
                limit: int = 100_000) -> list[str]:
    """Decision ids of a system in a time window, oldest first (capped)."""
    where, params = ["system_id = ?"], [system_id]
    if since is not None:
        where.append("ts >= ?::TIMESTAMPTZ")
        params.append(since)
    if until is not None:
        where.append("ts < ?::TIMESTAMPTZ")
        params.append(until)
    return [r[0] for r in ws.rows(f"SELECT decision_id FROM all_decisions WHERE {' AND '.join(where)} "
                                  "ORDER BY ts, decision_id LIMIT ?", [*params, limit])]


def replay(ws: Workspace, actor: Actor, system_id: str, decision_ids: list[str],
           to_version: str) -> pd.DataFrame:
    """Re-score decisions with another registered version; `changed` marks predictions that would differ."""
    require(actor, "read:decisions", ws)
    ids = features.unique(decision_ids)
    if not ids:
        raise WorkbenchError("no decisions given to replay")
    model = registry.load_model(ws, actor, system_id, to_version)
    if treeshap.n_outputs(model) > 1:
        raise WorkbenchError(f"{system_id} {to_version} is a multiclass model: replay maps one score to a "
                             "decision by thresholds learned from the log, which a multiclass model does not have")
    types = features.catalog(ws, system_id)
    features.check_features(model, types, system_id)
    needed = {f: types[f] for f in model.feature_names}
    frame = features.load_by_ids(ws, system_id, ids, needed)
    scores = treeshap.predict_score(model, features.matrix(model, frame, needed))
    predicted = np.empty(len(frame), dtype=object)
    rules = {}
    for version in frame["model_version"].unique():
        rules[version] = decision_rule(ws, system_id, version)
        mask = (frame["model_version"] == version).to_numpy()
        predicted[mask] = apply_rule(rules[version], scores[mask])
    out = pd.DataFrame({"decision_id": frame["decision_id"], "served_version": frame["model_version"],
                        "served_prediction": frame["prediction"], "served_score": frame["score"],
                        "replay_version": to_version, "replay_score": scores, "replay_prediction": predicted})
    out["changed"] = out["served_prediction"] != out["replay_prediction"]
    out = out[COLUMNS]
    out.attrs.update({"system_id": system_id, "rules": rules, "changed": int(out["changed"].sum()),
                      "replay_sha256": model.sha256})
    audit.record(ws, actor, "read.replay", system_id,
                 {"decisions": len(ids), "decision_ids": ids[:100], "to_version": to_version,
                  "sha256": model.sha256, "changed": int(out["changed"].sum())})
    return out
