"""Score stored alerts against a ground-truth file (the sample's format): per incident, overall, false alerts.

Credit: an alert counts for an incident (same system) only through what it names:
1. decisions: the incident whose labelled decisions it shares most;
2. else a principal: an incident whose principals include one the alert names (`principal` or
   `evidence.principals`) and whose window overlaps the alert's (within CREDIT_SLACK);
3. else, for an incident with neither decisions nor principals (drift), its feature: the alert names the
   incident's feature and its window overlaps the incident's.
A same-type alert that merely overlaps an incident's window earns nothing: it is a false alert. Per incident,
the decisions of all alerts credited to it are compared with the labelled decisions (precision and recall);
`detected` means an alert of the incident's own detector was credited. Overall: alert precision (credited /
all alerts), incident recall (detected / incidents), time to detect, and false alerts per day of data. A clean
variant (no incidents) gives false alerts per day on ordinary traffic.
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.detect.alerts import SEVERITIES, fetch, severity_at_least
from workbench.detect.llm_eval import TYPE_DETECTOR as LLM_TYPE_DETECTOR
from workbench.detect.llm_eval import score as llm_score
from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.timestamps import as_datetime, to_datetime

CREDIT_SLACK = timedelta(hours=1)

TYPE_DETECTOR = {"extraction": "extraction", "evasion": "evasion", "backdoor": "backdoor",
                 "unregistered_artifact": "artifact", "dos_flood": "flood", "stolen_credential": "credential",
                 "drift": "drift"}
# LLM and agent traces (issue 18): a trace sample's truth (traces/ground_truth.json) is scored on the llm_* alerts
# only, a decision sample's truth on the others, so one workspace holding both is measured fairly on each.
TYPE_DETECTOR.update(LLM_TYPE_DETECTOR)


def is_traces_truth(data: dict[str, Any]) -> bool:
    """Whether a ground truth labels LLM trace incidents (its types, or a trace sample's canary/kind)."""
    return (data.get("kind") == "traces" or "canary" in data
            or any(str(i.get("type")) in LLM_TYPE_DETECTOR for i in data.get("incidents") or []))


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


def _named(alert: dict[str, Any]) -> set[str]:
    """The principals an alert names: its principal and the list in its evidence."""
    names = {alert["principal"]} if alert.get("principal") else set()
    listed = (alert.get("evidence") or {}).get("principals")
    if isinstance(listed, list):
        names |= {str(p) for p in listed if p}
    return names


def _near(a: dict[str, Any], inc: dict[str, Any], slack: timedelta = CREDIT_SLACK) -> float:
    """Seconds of overlap between an alert's and an incident's windows, widened by `slack` (0: none)."""
    return _overlap(a["_t0"] - slack, a["_t1"] + slack, inc["_t0"], inc["_t1"]) or (
        1e-6 if a["_t0"] - slack <= inc["_t1"] and a["_t1"] + slack >= inc["_t0"] else 0.0)


def credit(alert: dict[str, Any], incidents: list[dict[str, Any]]) -> tuple[int | None, str | None]:
    """The incident an alert is credited to (index) and how: 'decisions', 'principal', 'feature' or none."""
    same = [(i, inc) for i, inc in enumerate(incidents) if inc["system_id"] == alert["system_id"]]
    best, best_n = None, 0
    for i, inc in same:
        n = len(alert["_ids"] & inc["_ids"])
        if n > best_n:
            best, best_n = i, n
    if best is not None:
        return best, "decisions"
    names = _named(alert)
    scored = [(_near(alert, inc), i) for i, inc in same if names & set(inc.get("principals") or [])]
    scored = [x for x in scored if x[0] > 0]
    if scored:
        return max(scored)[1], "principal"
    feats = [(_near(alert, inc, timedelta(0)), i) for i, inc in same
             if not inc["_ids"] and not inc.get("principals") and inc.get("feature")
             and alert.get("feature") == inc["feature"]]
    feats = [x for x in feats if x[0] > 0]
    if feats:
        return max(feats)[1], "feature"
    return None, None


def _detected_at(alert: dict[str, Any]) -> datetime:
    """When a run could first have raised the alert: `evidence.detected_at` when the detector says (drift: the
    end of the confirming window), else the start of its window (the first implicated decision or point)."""
    said = (alert.get("evidence") or {}).get("detected_at")
    try:
        return max(as_datetime(said), alert["_t0"]) if isinstance(said, str) and said else alert["_t0"]
    except ValueError:
        return alert["_t0"]


def _days(ws: Workspace, data: dict[str, Any]) -> float:
    """Days of data the truth file covers (else the span of the workspace's decisions)."""
    t0, t1 = to_datetime(data.get("start")), to_datetime(data.get("end"))
    if (t0 is None or t1 is None) and data.get("days"):  # a trace sample's truth gives its days
        return float(data["days"])
    if t0 is None or t1 is None:
        t0, t1 = ws.one("SELECT min(ts), max(ts) FROM decisions") or (None, None)
    if t0 is None or t1 is None:
        return 0.0
    return max((t1 - t0).total_seconds() / 86400, 1 / 24)


def evaluate(ws: Workspace, actor: Actor, truth: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Per-incident precision/recall, principal/feature/window found, time to detect; overall precision, recall,
    time to detect and false alerts per day."""
    require(actor, "read:decisions", ws)
    data = truth if isinstance(truth, dict) else load_truth(truth)
    alerts = fetch(ws, with_decisions=True, actor=actor)
    traces = is_traces_truth(data)
    alerts = [a for a in alerts if str(a["detector"]).startswith("llm_") == traces]
    for a in alerts:
        a["_ids"] = set(a["decision_ids"])
        a["_t0"], a["_t1"] = to_datetime(a["window_start"]), to_datetime(a["window_end"])
    incidents = []
    for inc in data["incidents"]:
        inc = dict(inc)
        inc["_ids"] = set(inc.get("decision_ids") or [])
        inc["_t0"], inc["_t1"] = to_datetime(inc["start"]), to_datetime(inc["end"])
        incidents.append(inc)
    owner: dict[str, int | None] = {}
    how: dict[str, str | None] = {}
    for a in alerts:
        owner[a["alert_id"]], how[a["alert_id"]] = credit(a, incidents)
    rows = []
    for i, inc in enumerate(incidents):
        mine = [a for a in alerts if owner[a["alert_id"]] == i]
        rows.append(_incident_row(inc, mine, how))
    false = [a for a in alerts if owner[a["alert_id"]] is None]
    systems = sorted({a["system_id"] for a in alerts} | set(data.get("systems") or []))
    by_type = _by_type(rows)
    days = _days(ws, data)
    loud = [a for a in false if severity_at_least(a["severity"], "medium")]
    summary = _summary(rows, alerts, false, loud, days)
    result = {
        "truth_clean": bool(data.get("clean")), "summary": summary, "incidents": rows, "by_type": by_type,
        "false_alerts": [{k: a[k] for k in ("alert_id", "detector", "system_id", "severity", "window_start",
                                            "window_end", "principal", "feature", "metric", "summary")}
                         | {"decisions": len(a["_ids"])} for a in false],
        "false_alerts_medium_plus_by_system": {s: sum(1 for a in loud if a["system_id"] == s) for s in systems},
        "alerts_total": len(alerts),
        "credit_rule": "shared decisions, else a named principal within the incident's window "
                       f"(+/- {CREDIT_SLACK}), else (drift) the named feature within its window",
    }
    if traces:  # the LLM view: per incident, span recall and precision of its own detector's alerts
        result["llm"] = llm_score(alerts, data)
    audit.record(ws, actor, "detect.eval", None, {"incidents": len(rows), "false_alerts": len(false),
                                                  "clean": bool(data.get("clean"))})
    return result


def _incident_row(inc: dict[str, Any], mine: list[dict[str, Any]], how: dict[str, str | None]) -> dict[str, Any]:
    """One incident's line: the alerts credited to it (`mine`), what they found and how soon."""
    own = [a for a in mine if a["detector"] == TYPE_DETECTOR.get(inc["type"])]
    pred = set().union(*[a["_ids"] for a in mine]) if mine else set()
    tp = len(pred & inc["_ids"])
    has_ids = bool(inc["_ids"])
    principals = set(inc.get("principals") or [])
    named = set().union(*[_named(a) for a in mine]) if mine else set()
    first = min((_detected_at(a) for a in own), default=None)
    first_any = min((_detected_at(a) for a in mine), default=None)
    return {
        "id": inc.get("id"), "type": inc["type"], "system_id": inc["system_id"], "start": inc["start"],
        "end": inc["end"], "detected": bool(own), "found": bool(mine), "alerts": len(mine),
        "detectors": sorted({a["detector"] for a in mine}),
        "credited_by": sorted({how[a["alert_id"]] for a in mine}),
        "truth_decisions": len(inc["_ids"]), "alert_decisions": len(pred), "shared_decisions": tp,
        "precision": (tp / len(pred) if pred else None) if has_ids else None,
        "recall": (tp / len(inc["_ids"])) if has_ids else None,
        "principal_named": (bool(principals & named) if principals else None),
        "feature_named": (any(a["feature"] == inc.get("feature") for a in own) if inc.get("feature") else None),
        "window_found": (any(_overlap(a["_t0"], a["_t1"], inc["_t0"], inc["_t1"]) > 0 for a in own)
                         if inc["type"] == "dos_flood" else None),
        "time_to_detect_s": (max(0.0, (first - inc["_t0"]).total_seconds()) if first else None),
        "time_to_first_alert_s": (max(0.0, (first_any - inc["_t0"]).total_seconds()) if first_any else None),
        "severity": max((a["severity"] for a in own), default=None, key=SEVERITIES.index),
    }


def _by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per incident type: incidents, detected, mean precision and recall."""
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
    return by_type


def _summary(rows: list[dict[str, Any]], alerts: list[dict[str, Any]], false: list[dict[str, Any]],
             loud: list[dict[str, Any]], days: float) -> dict[str, Any]:
    """Overall recall, precision, time to detect and false alerts (per day)."""
    ttd = [r["time_to_detect_s"] for r in rows if r["time_to_detect_s"] is not None]
    return {
        "incidents": len(rows), "detected": sum(r["detected"] for r in rows),
        "found_by_any_alert": sum(r["found"] for r in rows),
        "recall": (sum(r["detected"] for r in rows) / len(rows)) if rows else None,
        "alerts": len(alerts), "credited_alerts": len(alerts) - len(false),
        "precision": ((len(alerts) - len(false)) / len(alerts)) if alerts else None,
        "time_to_detect_median_s": statistics.median(ttd) if ttd else None,
        "time_to_detect_max_s": max(ttd) if ttd else None,
        "days": days, "false_alerts": len(false), "false_alerts_medium_plus": len(loud),
        "false_alerts_per_day": (len(false) / days) if days else None,
        "false_alerts_medium_plus_per_day": (len(loud) / days) if days else None,
    }
