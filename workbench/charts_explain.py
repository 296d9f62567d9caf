"""Plotly figures for explanations: a waterfall for one decision, alert-versus-baseline per feature."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go


def waterfall(explanation: dict[str, Any], top: int = 12) -> go.Figure:
    """Base value, the largest attributions (the rest grouped), and the model output for one decision."""
    attributions = explanation["attributions"]
    shown, rest = attributions[:top], attributions[top:]
    labels = ["base value"] + [f"{a['feature']} = {a['value']}" for a in shown]
    values = [explanation["base_value"]] + [a["shap"] for a in shown]
    measures = ["absolute"] + ["relative"] * len(shown)
    if rest:
        labels.append(f"{len(rest)} other features")
        values.append(sum(a["shap"] for a in rest))
        measures.append("relative")
    labels.append("output")
    values.append(explanation["output"])
    measures.append("total")
    method = "TreeSHAP" if explanation.get("method") == "tree" else "surrogate (approximation)"
    fig = go.Figure(go.Waterfall(orientation="h", measure=measures, y=labels, x=values,
                                 increasing={"marker": {"color": "#d62728"}},
                                 decreasing={"marker": {"color": "#1f77b4"}},
                                 totals={"marker": {"color": "#7f7f7f"}}))
    fig.update_layout(title=f"{explanation['decision_id']} · {explanation.get('model_version', '')} · {method}",
                      yaxis={"autorange": "reversed"}, xaxis_title="raw model output (margin)",
                      height=max(320, 28 * len(labels) + 120), margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig


def alert_vs_baseline(drift: pd.DataFrame, top: int = 15) -> go.Figure:
    """Share of mean |SHAP| per feature, alert decisions next to the reference sample (biggest rise on top)."""
    frame = drift.head(top)
    fig = go.Figure()
    fig.add_bar(y=frame["feature"], x=frame["reference_share"], orientation="h", name="reference (normal)",
                marker_color="#9edae5")
    fig.add_bar(y=frame["feature"], x=frame["alert_share"], orientation="h", name="alert decisions",
                marker_color="#d62728")
    n_alert, n_ref = drift.attrs.get("alert_n"), drift.attrs.get("reference_n")
    title = "Share of attribution: alert vs reference"
    if n_alert is not None:
        title += f" ({n_alert} vs {n_ref} decisions)"
    fig.update_layout(barmode="group", title=title, xaxis_title="share of mean |SHAP|", xaxis_tickformat=".0%",
                      yaxis={"autorange": "reversed"}, height=max(320, 40 * len(frame) + 120),
                      margin={"l": 10, "r": 10, "t": 50, "b": 40}, legend={"orientation": "h"})
    return fig
