"""The explanation cache in DuckDB, keyed by (system, decision_id, model sha256): compute once, look up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from workbench.store import Workspace

_FIELDS = ("decision_id", "model_version", "model_sha256", "method", "base_value", "output", "attributions",
           "ignored_features", "class_index")


def lookup(ws: Workspace, system_id: str, sha256: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Cached explanations of these decisions by this artifact, keyed by decision_id."""
    if not ids:
        return {}
    rows = ws.rows(
        f"SELECT {', '.join(_FIELDS)} FROM explanations WHERE system_id = ? AND model_sha256 = ? "
        "AND decision_id IN (SELECT unnest(?::VARCHAR[]))", [system_id, sha256, ids])
    out = {}
    for did, ver, sha, method, base, output, attributions, ignored, cls in rows:
        out[did] = {"decision_id": did, "model_version": ver, "model_sha256": sha, "method": method,
                    "base_value": base, "output": output, "attributions": json.loads(attributions),
                    "ignored_features": list(ignored or []), "class_index": cls}
    return out


def build(decision_ids: list[str], names: list[str], values: list[list[Any]], base: np.ndarray,
          shap: np.ndarray, output: np.ndarray, *, version: str, sha256: str, method: str,
          ignored: list[str], classes: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Explanation objects (attributions sorted by |shap|, largest first) from computed arrays."""
    order = np.argsort(-np.abs(shap), axis=1, kind="stable").tolist()
    shap_rows = shap.tolist()
    rows_values = list(zip(*values, strict=True)) if values else [() for _ in decision_ids]
    base_l, out_l = base.tolist(), output.tolist()
    cls_l = classes.tolist() if classes is not None else [None] * len(decision_ids)
    result = []
    for i, did in enumerate(decision_ids):
        s, v = shap_rows[i], rows_values[i]
        result.append({"decision_id": did, "model_version": version, "model_sha256": sha256, "method": method,
                       "base_value": base_l[i], "output": out_l[i],
                       "attributions": [{"feature": names[j], "value": v[j], "shap": s[j]} for j in order[i]],
                       "ignored_features": list(ignored), "class_index": cls_l[i]})
    return result


def store(ws: Workspace, system_id: str, names: list[str], shap: np.ndarray,
          explanations: list[dict[str, Any]]) -> None:
    """Insert computed explanations (existing keys are left as they are)."""
    n = len(explanations)
    if not n:
        return
    f = len(names)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * f)
    shap_col = pa.ListArray.from_arrays(offsets, pa.array(shap.reshape(-1), type=pa.float64()))
    names_col = pa.ListArray.from_arrays(offsets, pa.array(names * n, type=pa.string()))
    ignored = explanations[0]["ignored_features"]
    table = pa.table({
        "system_id": pa.array([system_id] * n, pa.string()),
        "decision_id": pa.array([e["decision_id"] for e in explanations], pa.string()),
        "model_sha256": pa.array([e["model_sha256"] for e in explanations], pa.string()),
        "model_version": pa.array([e["model_version"] for e in explanations], pa.string()),
        "method": pa.array([e["method"] for e in explanations], pa.string()),
        "base_value": pa.array([e["base_value"] for e in explanations], pa.float64()),
        "output": pa.array([e["output"] for e in explanations], pa.float64()),
        "features": names_col,
        "shap": shap_col,
        "attributions": pa.array([json.dumps(e["attributions"], separators=(",", ":"))
                                  for e in explanations], pa.string()),
        "ignored_features": pa.array([ignored] * n, pa.list_(pa.string())),
        "class_index": pa.array([e.get("class_index") for e in explanations], pa.int32()),
    })
    con = ws.con
    con.register("_wb_new_expl", table)
    try:
        con.execute(
            "INSERT OR IGNORE INTO explanations (system_id, decision_id, model_sha256, model_version, method, "
            "base_value, output, features, shap, attributions, ignored_features, computed_at, class_index) "
            "SELECT system_id, decision_id, model_sha256, model_version, method, base_value, output, features, "
            "shap, attributions::JSON, ignored_features, ?, class_index FROM _wb_new_expl",
            [datetime.now(UTC)])
    finally:
        con.unregister("_wb_new_expl")


def mean_abs(ws: Workspace, system_id: str, pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Mean |SHAP| per feature over cached explanations given as (decision_id, model_sha256) pairs."""
    if not pairs:
        return {}
    ids = [p[0] for p in pairs]
    shas = [p[1] for p in pairs]
    rows = ws.rows(
        "WITH k AS (SELECT unnest(?::VARCHAR[]) AS decision_id, unnest(?::VARCHAR[]) AS model_sha256), "
        "e AS (SELECT x.features, x.shap FROM explanations x JOIN k USING (decision_id, model_sha256) "
        "WHERE x.system_id = ?), "
        "u AS (SELECT unnest(features) AS feature, unnest(shap) AS s FROM e) "
        "SELECT feature, sum(abs(s)) / (SELECT count(*) FROM e) FROM u GROUP BY feature",
        [ids, shas, system_id])
    return {r[0]: float(r[1]) for r in rows}
