"""Attribution drift: how an alert's decisions were made, against normal decisions of the same version."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.explain import cache, features
from workbench.explain.explaining import explain_batch
from workbench.store import Workspace

COLUMNS = ["feature", "alert_mean_abs_shap", "reference_mean_abs_shap", "alert_share", "reference_share",
           "share_rise", "alert_top_value", "alert_top_value_share", "reference_top_value_share"]


def _reference_ids(ws: Workspace, system_id: str, alert: list[str], per_version: dict[str, int],
                   reference_size: int) -> list[str]:
    total = sum(per_version.values())
    out: list[str] = []
    for version, n in per_version.items():
        k = max(50, round(reference_size * n / total))
        out += [r[0] for r in ws.rows(
            "SELECT decision_id FROM all_decisions WHERE system_id = ? AND model_version = ? "
            "AND decision_id NOT IN (SELECT unnest(?::VARCHAR[])) ORDER BY hash(decision_id) LIMIT ?",
            [system_id, version, alert, k])]
    return out


def _value_shares(records: list[dict[str, Any]]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for rec in records:
        for a in rec["attributions"]:
            counts.setdefault(a["feature"], Counter())[json.dumps(a["value"])] += 1
    return counts


def attribution_drift(ws: Workspace, actor: Actor, system_id: str, decision_ids: list[str], *,
                      reference_size: int = 2000) -> pd.DataFrame:
    """Mean |SHAP| share per feature, alert vs a reference sample of the same versions; biggest rise first.

    Top values come from explain_batch, so a personal feature's are tokens for roles without read:personal."""
    require(actor, "read:decisions", ws)
    ids = features.unique(decision_ids)
    if not ids:
        raise WorkbenchError("no decisions given to compare")
    alert, _ = explain_batch(ws, actor, system_id, ids)
    per_version = Counter(r["served_version"] for r in alert)
    ref_ids = _reference_ids(ws, system_id, ids, dict(per_version), reference_size)
    if not ref_ids:
        raise WorkbenchError(f"no other decisions of {system_id} version(s) {', '.join(per_version)} "
                             "to use as the reference")
    reference, _ = explain_batch(ws, actor, system_id, ref_ids)
    a = cache.mean_abs(ws, system_id, [(r["decision_id"], r["model_sha256"]) for r in alert])
    b = cache.mean_abs(ws, system_id, [(r["decision_id"], r["model_sha256"]) for r in reference])
    names = sorted(set(a) | set(b))
    frame = pd.DataFrame({"feature": names, "alert_mean_abs_shap": [a.get(n, 0.0) for n in names],
                          "reference_mean_abs_shap": [b.get(n, 0.0) for n in names]})
    for side in ("alert", "reference"):
        total = frame[f"{side}_mean_abs_shap"].sum()
        frame[f"{side}_share"] = frame[f"{side}_mean_abs_shap"] / total if total > 0 else 0.0
    frame["share_rise"] = frame["alert_share"] - frame["reference_share"]
    va, vb = _value_shares(alert), _value_shares(reference)
    tops, top_share, ref_share = [], [], []
    for n in names:
        ca = va.get(n, Counter())
        value, count = ca.most_common(1)[0] if ca else ("null", 0)
        tops.append(json.loads(value))
        top_share.append(count / len(alert))
        ref_share.append(vb.get(n, Counter()).get(value, 0) / len(reference))
    frame["alert_top_value"] = tops
    frame["alert_top_value_share"] = top_share
    frame["reference_top_value_share"] = ref_share
    frame = frame.sort_values(["share_rise", "feature"], ascending=[False, True]).reset_index(drop=True)
    frame = frame[COLUMNS]
    frame.attrs.update({"system_id": system_id, "alert_n": len(alert), "reference_n": len(reference),
                        "versions": dict(per_version),
                        "method": sorted({r["method"] for r in alert})})
    top = frame.iloc[0] if len(frame) else None
    audit.record(ws, actor, "read.attribution_drift", system_id,
                 {"decisions": len(ids), "decision_ids": ids[:100], "reference": len(reference),
                  "top_feature": None if top is None else top["feature"]})
    return frame


def alert_decision_ids(ws: Workspace, actor: Actor, alert_id: str) -> tuple[str, list[str]]:
    """The system and decision ids an alert names (read from the detect area's tables)."""
    require(actor, "read:incidents", ws)
    if not ws.table_exists("alerts"):
        raise WorkbenchError("this workspace has no alerts yet: run `workbench detect` first")
    cols = {r[0] for r in ws.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'alerts'")}
    row = ws.one("SELECT system_id FROM alerts WHERE alert_id::VARCHAR = ?", [str(alert_id)])
    if row is None:
        raise WorkbenchError(f"no alert {alert_id}")
    if ws.table_exists("alert_decisions"):
        ids = [r[0] for r in ws.rows("SELECT decision_id FROM alert_decisions WHERE alert_id::VARCHAR = ? "
                                     "ORDER BY decision_id", [str(alert_id)])]
    elif "decision_ids" in cols:
        raw = ws.scalar("SELECT decision_ids FROM alerts WHERE alert_id::VARCHAR = ?", [str(alert_id)])
        ids = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    else:
        raise WorkbenchError("alerts in this workspace do not list their decisions")
    if not ids:
        raise WorkbenchError(f"alert {alert_id} names no decisions (it is an aggregate alert)")
    return row[0], [str(i) for i in ids]
