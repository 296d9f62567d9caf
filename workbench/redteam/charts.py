"""Plotly figures of red-team runs (no Streamlit): success vs queries, per-feature changes, fidelity curve,
probing sweeps, and the detection-coverage matrix. Text from logs goes through report_safe.plotly_text."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.cases.report_safe import plotly_text
from workbench.charts import empty


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, xaxis_title=x, yaxis_title=y,
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="v", x=1.02, y=1.0))
    return fig


def success_vs_queries(run: dict[str, Any]) -> go.Figure:
    """Evasion: share of refused profiles turned favourable within q queries, per method."""
    methods = (run.get("result") or {}).get("methods") or []
    if not methods:
        return empty("no evasion results")
    fig = go.Figure()
    for m in methods:
        fig.add_trace(go.Scatter(x=[p["queries"] for p in m["curve"]], y=[p["success_rate"] for p in m["curve"]],
                                 mode="lines+markers", name=m["method"], line_shape="hv"))
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return _layout(fig, "Evasion success vs queries per profile", "queries", "success rate")


def feature_changes(run: dict[str, Any]) -> go.Figure:
    """Evasion: median change per feature (share of its plausible range), per method."""
    methods = (run.get("result") or {}).get("methods") or []
    fig = go.Figure()
    for m in methods:
        med = m.get("median_change") or {}
        fig.add_trace(go.Bar(x=[plotly_text(f) for f in med], y=[v["median_relative_change"] for v in med.values()],
                             name=m["method"]))
    if not fig.data:
        return empty("no successful evasion to measure")
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "Median change per feature (share of plausible range)", "feature", "median change")


def fidelity_curve(run: dict[str, Any]) -> go.Figure:
    """Extraction: agreement of the extracted model with the real one against queries."""
    r = run.get("result") or {}
    curve = r.get("curve") or []
    if not curve:
        return empty("no extraction results")
    fig = go.Figure(go.Scatter(x=[p["queries"] for p in curve], y=[p["fidelity"] for p in curve],
                               mode="lines+markers", name="fidelity"))
    fig.add_hline(y=r.get("majority_baseline", 0), line_dash="dot", annotation_text="always the majority outcome")
    fig.update_xaxes(type="log")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return _layout(fig, "Extraction fidelity vs queries", "queries (log)", "agreement on held-out decisions")


def sweeps(run: dict[str, Any], top: int = 6) -> go.Figure:
    """Probing: mean score along each feature's sweep (the most sensitive features)."""
    feats = [f for f in (run.get("result") or {}).get("features") or [] if f["kind"] == "number"][:top]
    if not feats:
        return empty("no numeric sweeps")
    fig = go.Figure()
    for f in feats:
        xs = [p["value"] for p in f["curve"]]
        lo, hi = min(xs), max(xs)
        fig.add_trace(go.Scatter(x=[(x - lo) / ((hi - lo) or 1) for x in xs], y=[p["mean_score"] for p in f["curve"]],
                                 mode="lines", name=plotly_text(f["feature"])))
    threshold = ((run.get("rule") or {}).get("thresholds") or [None])[0]
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dot", annotation_text="favourable below")
    return _layout(fig, "Probing sweeps: mean score along each feature's range", "position in the logged range",
                   "mean score")


def coverage_matrix(rows: list[dict[str, Any]]) -> go.Figure:
    """Attacks x ATLAS techniques: fired (green) or missed (red), with the detectors in the hover."""
    if not rows:
        return empty("no coverage yet: run an attack with --emit and the coverage step")
    attacks = list(dict.fromkeys(f"{r['attack']} {r['run_id']}" for r in rows))
    techs = sorted({r["technique"] for r in rows})
    z = [[None] * len(techs) for _ in attacks]
    text = [[""] * len(techs) for _ in attacks]
    for r in rows:
        i, j = attacks.index(f"{r['attack']} {r['run_id']}"), techs.index(r["technique"])
        z[i][j] = 1 if r["fired"] == "yes" else 0
        text[i][j] = plotly_text(f"{r['fired']} {r['detectors']} {r['time_to_detect']}".strip())
    fig = go.Figure(go.Heatmap(z=z, x=techs, y=attacks, text=text, texttemplate="%{text}", zmin=0, zmax=1,
                               colorscale=[[0, "#fca5a5"], [1, "#86efac"]], showscale=False, hoverinfo="text"))
    return _layout(fig, "Detection coverage per ATLAS technique", "technique", "attack run",
                   height=max(220, 60 + 40 * len(attacks)))
