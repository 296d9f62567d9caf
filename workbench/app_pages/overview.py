"""Overview: systems inventory, health timeline with anomalies, alerts by severity, open incidents."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import charts
from workbench.cases.incidents import list_incidents
from workbench.detect.alerts import list_alerts
from workbench.explain.registry import list_models
from workbench.explore.overview import metric_series, workspace_summary
from workbench.integrations.watch import last_run
from workbench.ui import auth, cached, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context

ws, actor = context()
st.title("Overview")
auth.single_user_banner()

summary = None
with shown("Workspace summary"):
    summary = cached.call(workspace_summary, actor)
systems = [s["system_id"] for s in (summary or {}).get("systems", [])]
if summary is not None and not systems and not summary.get("metric_points"):
    widgets.empty_workspace_hint()

if summary is not None:
    total = sum(int(s["decisions"]) for s in summary["systems"])
    cols = st.columns(5)
    cols[0].metric("Systems", len(systems))
    cols[1].metric("Decisions", f"{total:,}")
    cols[2].metric("Metric points", f"{int(summary['metric_points'] or 0):,}")
    cols[3].metric("Source files", int(summary["sources"] or 0))
    cols[4].metric("Quarantined rows", int(summary["quarantined"] or 0))

st.subheader("Systems inventory")
with shown("Systems inventory"):
    if summary is not None and systems:
        inv = pd.DataFrame(summary["systems"])
        inv["versions"] = inv["versions"].map(lambda v: ", ".join(map(str, v)) if v is not None else "")
        st.dataframe(inv, hide_index=True, column_config={
            "decisions": st.column_config.NumberColumn(format="localized"),
            "first": st.column_config.DatetimeColumn("first decision", format="YYYY-MM-DD HH:mm"),
            "last": st.column_config.DatetimeColumn("last decision", format="YYYY-MM-DD HH:mm")})
    # Derived from the same single scan as the summary (no second pass over the decisions).
    seen = pd.DataFrame((summary or {}).get("models_seen") or [],
                        columns=["system_id", "model_version", "model_sha256", "decisions", "first", "last"])
    registered = pd.DataFrame(cached.call(list_models, actor))
    st.caption("Model artifacts seen in the decision logs against the registry: an unregistered hash is a red flag.")
    if not seen.empty:
        reg_hashes = set(registered["sha256"]) if "sha256" in registered else set()
        seen["registered"] = seen["model_sha256"].map(
            lambda h: "no hash logged" if h is None or pd.isna(h) else ("yes" if h in reg_hashes else "NO"))
        st.dataframe(seen, hide_index=True, column_config={
            "decisions": st.column_config.NumberColumn(format="localized"),
            "model_sha256": st.column_config.TextColumn("sha256 (logged)", width="medium")})
    if not registered.empty:
        with st.expander(f"Registry: {len(registered)} registered model artifacts"):
            st.dataframe(registered, hide_index=True)

left, right = st.columns([3, 2])
with left:
    st.subheader("Decisions per day")
    with shown("Decisions per day"):
        per_day = pd.DataFrame((summary or {}).get("decisions_per_day") or [],
                               columns=["system_id", "day", "decisions", "error_share"])
        st.plotly_chart(charts.decisions_per_day(per_day), key="ov_per_day")
with right:
    st.subheader("Alerts by severity")
    with shown("Alerts"):
        alerts = pd.DataFrame(cached.call(list_alerts, actor))
        counts = (alerts.groupby(["severity", "detector"]).size().rename("alerts").reset_index()
                  if not alerts.empty else alerts)
        st.plotly_chart(charts.alerts_by_severity(counts), key="ov_alerts")
        if not alerts.empty:
            st.page_link("app_pages/triage.py", label=f"Triage {len(alerts)} alerts", icon=":material/arrow_forward:")

st.subheader("Health timeline")
with shown("Health timeline"):
    if systems:
        system = widgets.pick_system(systems, key="ov_system", allow_all=False)
        series = cached.call(metric_series, actor, system, "1 hour")
        marks = pd.DataFrame()
        sys_alerts = pd.DataFrame(cached.call(list_alerts, actor, system=system))
        if not sys_alerts.empty:
            marks = sys_alerts.rename(columns={"window_start": "start", "window_end": "end"})
            marks["start"] = pd.to_datetime(marks["start"], utc=True, format="ISO8601")
            marks["end"] = pd.to_datetime(marks["end"], utc=True, format="ISO8601")
        st.plotly_chart(charts.metric_timeline(series, marks, title=f"Health of {system} (hourly mean; "
                                               "shaded: alert windows)"), key="ov_health")
    else:
        st.caption("No systems yet.")

st.subheader("Watch mode and deliveries")
with shown("Watch mode"):
    run = last_run(ws)
    if run is None:
        st.caption("Watch mode has not run: `workbench watch DIR --every 10` loads new files, detects and delivers.")
    else:
        figs = run.get("figures") or {}
        cols = st.columns(5)
        cols[0].metric("Files loaded", int(run["files_loaded"]), help=f"{run['files_waiting']} waiting, "
                       f"{run['files_failed']} failed")
        cols[1].metric("New alerts (last cycle)", int(figs.get("alerts_new", 0)),
                       help=f"{figs.get('alerts_escalated', 0)} escalated")
        cols[2].metric("Delivered", int(run["delivered"]))
        cols[3].metric("Pending", int(run["pending"]))
        cols[4].metric("Failed deliveries", int(run["failed"]))
        if run.get("finished_at"):
            st.caption(f"Last cycle that did something: {run['finished_at']:%Y-%m-%d %H:%M:%S} UTC by {run['actor']}"
                       f" ({figs.get('rows_loaded', 0):,} rows, {figs.get('rows_quarantined', 0):,} quarantined).")

st.subheader("Open incidents")
with shown("Open incidents"):
    if actor.can("read:incidents"):
        incidents = cached.call(list_incidents, actor)
        open_ones = [i for i in incidents if i.get("status") != "closed"]
        if open_ones:
            df = pd.DataFrame(open_ones)
            st.dataframe(df[[c for c in ("incident_id", "title", "severity", "status", "owner", "updated_at")
                             if c in df.columns]], hide_index=True)
        else:
            st.caption("No open incidents.")
    else:
        st.caption(f"Your role ({actor.role}) does not see incidents.")
