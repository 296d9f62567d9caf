"""Attribution rows from an explanation payload (for a report's explanations section and its charts)."""

from __future__ import annotations

import json
from typing import Any

_NUMERIC_KEYS = ("shap", "mean_abs_shap", "mean_abs", "share", "delta", "attribution", "importance", "value")


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _common_value(values: list[Any]) -> Any:
    """The one value every decision has for a feature, or a note that they differ."""
    distinct = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return values[0] if len(distinct) == 1 else f"{len(distinct)} different values"


def attribution_rows(content: dict[str, Any], top: int = 15) -> tuple[str, list[dict[str, Any]]]:
    """(measure, rows of feature, feature_value, attribution) from an explanation payload, largest first.

    A single decision gives signed SHAP values with the decision's feature values; several decisions give
    mean |SHAP| with the value they share (e.g. a backdoor trigger) or how many values they differ in.
    Payloads of other shapes give what they hold (feature_value None when they carry no feature values)."""
    decisions = content.get("decisions")
    if (
        isinstance(decisions, list)
        and decisions
        and all(isinstance(d, dict) and isinstance(d.get("attributions"), list) for d in decisions)
    ):
        if len(decisions) == 1:
            return attribution_rows({**decisions[0], "decisions": None}, top)
        totals: dict[str, float] = {}
        values: dict[str, list[Any]] = {}
        for d in decisions:
            for a in d.get("attributions") or []:
                totals[a["feature"]] = totals.get(a["feature"], 0.0) + abs(float(a.get("shap") or 0.0))
                values.setdefault(a["feature"], []).append(a.get("value"))
        rows = [
            {"feature": f, "feature_value": _common_value(values[f]), "attribution": v / len(decisions)}
            for f, v in totals.items()
        ]
        return f"mean |SHAP| over {len(decisions)} decisions", sorted(rows, key=lambda r: -r["attribution"])[:top]
    candidates = [content.get("attributions")] + [v for k, v in content.items() if k != "attributions"]
    for value in candidates:
        if isinstance(value, dict) and value and all(_numeric(v) for v in value.values()):
            rows = [{"feature": str(k), "feature_value": None, "attribution": float(v)} for k, v in value.items()]
            return "attribution", sorted(rows, key=lambda r: -abs(r["attribution"]))[:top]
        if isinstance(value, list) and value and isinstance(value[0], dict) and "feature" in value[0]:
            key = next((k for k in _NUMERIC_KEYS if _numeric(value[0].get(k))), None)
            if key:
                rows = [
                    {
                        "feature": str(r["feature"]),
                        "feature_value": r.get("value") if key != "value" else None,
                        "attribution": float(r.get(key) or 0.0),
                    }
                    for r in value
                ]
                measure = "SHAP" if key == "shap" else key
                return measure, sorted(rows, key=lambda r: -abs(r["attribution"]))[:top]
    return "attribution", []


def attributions(content: dict[str, Any], top: int = 15) -> list[tuple[str, float]]:
    """(feature, attribution) pairs to plot from an explanation payload, largest magnitude first."""
    return [(r["feature"], r["attribution"]) for r in attribution_rows(content, top)[1]]
