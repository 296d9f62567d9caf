"""Score stored alerts against a ground-truth file (the sample's format): per incident and false alerts.

Attribution: an alert belongs to the incident (same system) whose labelled decisions it shares most;
an alert sharing none belongs to an incident of its own type whose time window it overlaps; otherwise it
is a false alert. Per incident, the decisions of all alerts attributed to it are compared with the labelled
decisions (precision and recall); `detected` means an alert of the incident's own detector was attributed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.detect.alerts import fetch, severity_at_least
from workbench.errors import WorkbenchError
from workbench.store import Workspace

TYPE_DETECTOR = {"extraction": "extraction", "evasion": "evasion", "backdoor": "backdoor",
                 "unregistered_artifact": "artifact", "dos_flood": "flood", "stolen_credential": "credential",
                 "drift": "drift"}


def _ts(text: str | None) -> datetime | None:
    if not text:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def load_truth(path: str | Path) -> dict[str, Any]:
    """Read a ground-truth JSON file; raise a one-line error if it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"cannot read ground truth {p}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("incidents"), list):
        raise WorkbenchError(f"{p} is not a ground-truth file: it needs an 'incidents' list")
    return data


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def evaluate(ws: Workspace, actor: Actor, truth: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Per-incident precision/recall, principal/feature/window found, time to detect; false alerts."""
    require(actor, "read:decisions")
    data = truth if isinstance(truth, dict) else load_truth(truth)
    alerts = fetch(ws, with_decisions=True, actor=actor)
    for a in alerts:
        a["_ids"] = set(a["decision_ids"])
        a["_t0"], a["_t1"] = _ts(a["window_start"]), _ts(a["window_end"])
    incidents = []
    for inc in data["incidents"]:
        inc = dict(inc)
        inc["_ids"] = set(inc.get("decision_ids") or [])
        inc["_t0"], inc["_t1"] = _ts(inc["start"]), _ts(inc["end"])
        incidents.append(inc)
    owner: dict[str, int | None] = {}
    for a in alerts:
        best, best_n = None, 0
        for i, inc in enumerate(incidents):
            if inc["system_id"] == a["system_id"]:
                n = len(a["_ids"] & inc["_ids"])
                if n > best_n:
                    best, best_n = i, n
        if best is None:
            best_t = 0.0
            for i, inc in enumerate(incidents):
                if inc["system_id"] == a["system_id"] and TYPE_DETECTOR.get(inc["type"]) == a["detector"]:
                    t = _overlap(a["_t0"], a["_t1"], inc["_t0"], inc["_t1"]) or (1e-6 if a["_t0"] <= inc["_t1"]
                                                                              and a["_t1"] >= inc["_t0"] else 0)
                    if t > best_t:
                        best, best_t = i, t
        owner[a["alert_id"]] = best
    rows = []
    for i, inc in enumerate(incidents):
        mine = [a for a in alerts if owner[a["alert_id"]] == i]
        own = [a for a in mine if a["detector"] == TYPE_DETECTOR.get(inc["type"])]
        pred = set().union(*[a["_ids"] for a in mine]) if mine else set()
        tp = len(pred & inc["_ids"])
        has_ids = bool(inc["_ids"])
        principals = set(inc.get("principals") or [])
        named = {a["principal"] for a in mine if a["principal"]}
        for a in mine:
            listed = (a.get("evidence") or {}).get("principals")
            if isinstance(listed, list):
                named |= {str(p) for p in listed}
        first = min((a["_t0"] for a in own), default=None)
        row = {
            "id": inc.get("id"), "type": inc["type"], "system_id": inc["system_id"], "start": inc["start"],
            "end": inc["end"], "detected": bool(own), "alerts": len(mine),
            "detectors": sorted({a["detector"] for a in mine}),
            "truth_decisions": len(inc["_ids"]), "alert_decisions": len(pred),
            "precision": (tp / len(pred) if pred else None) if has_ids else None,
            "recall": (tp / len(inc["_ids"])) if has_ids else None,
            "principal_named": (bool(principals & named) if principals else None),
            "feature_named": (any(a["feature"] == inc.get("feature") for a in own) if inc.get("feature") else None),
            "window_found": (any(_overlap(a["_t0"], a["_t1"], inc["_t0"], inc["_t1"]) > 0 for a in own)
                             if inc["type"] == "dos_flood" else None),
            "time_to_detect_s": (max(0.0, (first - inc["_t0"]).total_seconds()) if first else None),
            "severity": max((a["severity"] for a in own), default=None,
                            key=lambda s: ["low", "medium", "high", "critical"].index(s)),
        }
        rows.append(row)
    false = [a for a in alerts if owner[a["alert_id"]] is None]
    systems = sorted({a["system_id"] for a in alerts} | set(data.get("systems") or []))
    by_type: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = by_type.setdefault(r["type"], {"incidents": 0, "detected": 0, "precision": [], "recall": []})
        t["incidents"] += 1
        t["detected"] += int(r["detected"])
        if r["precision"] is not None or r["recall"] is not None:
            t["precision"].append(r["precision"] or 0.0)
            t["recall"].append(r["recall"] or 0.0)
    for t in by_type.values():
        t["precision"] = sum(t["precision"]) / len(t["precision"]) if t["precision"] else None
        t["recall"] = sum(t["recall"]) / len(t["recall"]) if t["recall"] else None
    result = {
        "truth_clean": bool(data.get("clean")), "incidents": rows, "by_type": by_type,
        "false_alerts": [{k: a[k] for k in ("alert_id", "detector", "system_id", "severity", "window_start",
                                            "window_end", "principal", "feature", "metric", "summary")}
                         | {"decisions": len(a["_ids"])} for a in false],
        "false_alerts_medium_plus_by_system": {s: sum(1 for a in false if a["system_id"] == s
                                                      and severity_at_least(a["severity"], "medium"))
                                               for s in systems},
        "alerts_total": len(alerts),
    }
    audit.record(ws, actor, "detect.eval", None, {"incidents": len(rows), "false_alerts": len(false)})
    return result
