"""Score LLM detector alerts against a trace sample's ground truth: detection per incident, false alerts per day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from workbench.timestamps import as_datetime

TYPE_DETECTOR = {"llm_direct_injection": "llm_injection", "llm_indirect_injection": "llm_indirect",
                 "llm_prompt_leak": "llm_leak", "llm_sensitive_data": "llm_sensitive",
                 "llm_excessive_agency": "llm_agency", "llm_unbounded_consumption": "llm_consumption"}
SLACK = timedelta(hours=1)


def score(alerts: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    """Per incident: detected by its own detector, span recall/precision; overall: false alerts and per day."""
    incidents = truth.get("incidents", [])
    llm = [a for a in alerts if a["detector"] in TYPE_DETECTOR.values()]
    credited: dict[str, int | None] = {}
    for a in llm:
        ids, names = set(a.get("decision_ids") or []), {a.get("principal")} | set(
            (a.get("evidence") or {}).get("principals") or [])
        a0, a1 = as_datetime(a["window_start"]), as_datetime(a["window_end"])
        best, best_n = None, 0
        for i, inc in enumerate(incidents):
            n = len(ids & set(inc["decision_ids"]))
            near = a0 - SLACK <= as_datetime(inc["end"]) and a1 + SLACK >= as_datetime(inc["start"])
            if n > best_n or (best is None and near and names & set(inc["principals"])):
                best, best_n = i, max(n, best_n)
        credited[a["alert_id"]] = best
    per = []
    for i, inc in enumerate(incidents):
        mine = [a for a in llm if credited[a["alert_id"]] == i]
        own = [a for a in mine if a["detector"] == TYPE_DETECTOR[inc["type"]]]
        flagged = set().union(*[set(a.get("decision_ids") or []) for a in own]) if own else set()
        labelled = set(inc["decision_ids"])
        per.append({"type": inc["type"], "detected": bool(own), "alerts": len(mine),
                    "span_recall": len(flagged & labelled) / max(len(labelled), 1),
                    "span_precision": len(flagged & labelled) / len(flagged) if flagged else None,
                    "detectors": sorted({a["detector"] for a in mine})})
    false = [a for a in llm if credited[a["alert_id"]] is None]
    days = max(int(truth.get("days") or 1), 1)
    return {"incidents": per, "detected": sum(p["detected"] for p in per), "total": len(per),
            "alerts": len(llm), "false_alerts": len(false), "false_alerts_per_day": len(false) / days,
            "false_by_detector": {d: sum(a["detector"] == d for a in false) for d in sorted({a["detector"]
                                                                                               for a in false})}}
