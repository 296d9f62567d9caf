"""Drift: per-feature drift over time against the baseline, and attribution (SHAP) drift."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import charts
from workbench.ui import cached, lib, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context

ws, actor = context()
st.title("Drift")

summary = None
with shown("Workspace summary"):
    summary = cached.call("workbench.overview", "workspace_summary", actor)
systems = [s["system_id"] for s in (summary or {}).get("systems", [])]
if not systems:
    widgets.empty_workspace_hint()
    st.stop()
c1, c2 = st.columns([1, 1])
with c1:
    system = widgets.pick_system(systems, key="dr_system", allow_all=False)
bucket = c2.segmented_control("Period", ["1 hour", "6 hours", "1 day"], default="1 day", key="dr_bucket") or "1 day"

st.subheader("Feature drift")
st.caption("Each input against the first period: mean shift in baseline standard deviations for numbers, total "
           "variation distance of the value mix for categories. Box-select a period to rank the features in it.")
with shown("Feature drift"):
    drift = cached.call("workbench.overview", "feature_drift", actor, system, bucket, feature="Feature drift")
    event = st.plotly_chart(charts.drift_lines(drift, value="drift"),
                            key="dr_lines", on_select="rerun", selection_mode=("box", "points"))
    picked = widgets.selected_time_range(event)
    widgets.narrowed_note(picked, "ranking")
    if not drift.empty:
        col = "drift" if "drift" in drift else "psi"
        xcol = "bucket" if "bucket" in drift else "ts"
        part = drift
        if picked:
            t = pd.to_datetime(part[xcol], utc=True, format="ISO8601")
            part = part[(t >= picked[0]) & (t <= picked[1])]
        rank = part.groupby("feature")[col].max().sort_values(ascending=False).reset_index()
        st.dataframe(rank, hide_index=True)

st.subheader("Attribution drift")
st.caption("How the model reasoned on a set of decisions (an alert's, or a period's) against normal decisions of "
           "the same version: the rise in each feature's share of mean |SHAP|.")
with shown("Attribution drift"):
    if not actor.can("read:decisions"):
        st.info(f"Attribution drift reads decision rows; your role ({actor.role}) sees the feature drift above.")
        st.stop()
    alerts = pd.DataFrame(cached.call("workbench.detect.alerts", "list_alerts", actor, system=system)) \
        if cached.has("workbench.detect.alerts", "list_alerts") else pd.DataFrame()
    sources = ([f"alert {a}" for a in alerts["alert_id"]] if not alerts.empty else [])
    if picked:
        sources.insert(0, "the period selected above")
    if not sources:
        st.caption("Box-select a period on the chart above, or run the detectors, to choose decisions to compare.")
        st.stop()
    source = st.selectbox("Decisions to compare", sources, key="dr_attr_source")
    if st.button("Compare", key="dr_attr_go", icon=":material/compare_arrows:"):
        with st.spinner("Computing SHAP on the set and on a reference sample…"):
            if source.startswith("alert "):
                row = alerts[alerts["alert_id"] == source[6:]].iloc[0]
                ids = list(row.get("decision_ids") or [])[:2000]
            else:
                found = cached.call("workbench.explore", "search_decisions", actor, system_id=system,
                                    since=picked[0], until=picked[1], limit=2000)
                ids = found["decision_id"].astype(str).tolist()
            if not ids:
                st.warning("That set holds no decisions.")
                st.stop()
            ad = cached.call("workbench.explain", "attribution_drift", actor, system, ids,
                             feature="Attribution drift")
        charts_explain = lib.module("workbench.charts_explain")
        fig = (charts_explain.alert_vs_baseline(ad) if charts_explain is not None else
               charts.bar_ranking(ad.rename(columns={"share_rise": "value"})[["feature", "value"]],
                                  "Rise in share of mean |SHAP| (set vs reference)"))
        st.plotly_chart(fig, key="dr_attr")
        st.dataframe(ad, hide_index=True)
        st.caption(f"{ad.attrs.get('alert_n', len(ids))} decisions vs {ad.attrs.get('reference_n', '?')} reference "
                   f"decisions · method {', '.join(ad.attrs.get('method', []))}")
