"""Plotly figures for explanations: a waterfall for one decision, alert-versus-baseline per feature."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

RAISES, LOWERS, ENDS = "#d62728", "#1f77b4", "#7f7f7f"


def output_space(explanation: dict[str, Any]) -> str:
    """What the explained output is measured in: the axis label of a waterfall."""
    if explanation.get("output_space"):
        return str(explanation["output_space"])
    if explanation.get("method") != "tree":
        return "score (as the model logged it; the surrogate predicts the score itself)"
    if explanation.get("class_index") is not None:
        return "raw class score (log-odds scale, before softmax)"
    return "log-odds (raw margin, before the sigmoid; probability = 1 / (1 + e^-x))"


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
    space = output_space(explanation)
    fig = go.Figure(go.Waterfall(orientation="h", measure=measures, y=labels, x=values, showlegend=False,
                                 increasing={"marker": {"color": RAISES}},
                                 decreasing={"marker": {"color": LOWERS}},
                                 totals={"marker": {"color": ENDS}}))
    # the waterfall trace has no per-colour legend: one empty marker trace per colour says what it means
    for name, color in ((f"raises the output ({space.split(' (')[0]})", RAISES), ("lowers the output", LOWERS),
                        ("base value and output", ENDS)):
        fig.add_scatter(x=[None], y=[None], mode="markers", name=name,
                        marker={"color": color, "symbol": "square", "size": 12})
    title = f"{explanation['decision_id']} · {explanation.get('model_version', '')} · {method}"
    if rest:
        title += f" · top {len(shown)} of {len(attributions)} features shown"
    if space.startswith("log-odds"):
        out = float(explanation["output"])
        title += f" · output {out:.3f} log-odds = probability {1 / (1 + math.exp(-max(min(out, 700), -700))):.3f}"
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, xaxis_title=f"model output: {space}",
                      showlegend=True, legend={"orientation": "h", "y": -0.18, "x": 0},
                      height=max(360, 28 * len(labels) + 170), margin={"l": 10, "r": 10, "t": 50, "b": 80})
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
