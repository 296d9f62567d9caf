"""Triage: the alert queue, an alert's why and evidence, its decisions, the principal's activity, the metrics."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import charts
from workbench.cases.evidence import add_alert
from workbench.cases.incidents import list_incidents
from workbench.detect import LAST_RUN, run_all
from workbench.detect.alerts import get_alert, list_alerts
from workbench.detect.alerts import set_status as set_alert_status
from workbench.explore import metric_window, principal_activity, search_decisions
from workbench.ui import cached, connection, evidence_widgets, incident_widgets, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context


def alert_principals(a: dict) -> list[str]:
    """Every principal an alert names: its principal first, then those listed in its evidence."""
    listed = (a.get("evidence") or {}).get("principals") if isinstance(a.get("evidence"), dict) else None
    names = [a["principal"]] if isinstance(a.get("principal"), str) and a["principal"] else []
    return list(dict.fromkeys(names + [str(x) for x in (listed or []) if x]))


ws, actor = context()
st.title("Triage")

top = st.columns([4, 1])
top[0].caption("What fired, why, and who is behind it. Box-select on the chart to narrow the queue; "
               "pick a row to open the alert.")
if actor.can("write:detect") and top[1].button("Run detectors", icon=":material/radar:", key="tr_run"):
    with shown("Detection"), st.status("Running the detectors…", expanded=True) as box:
        found = cached.fresh(run_all, actor)
        failed = dict(LAST_RUN.get("errors") or {})
        for name, error in failed.items():  # one line per failed detector; the others' alerts are stored
            st.error(f"Detector {name} failed: {error}", icon="⚠️")
        box.update(label=f"Detection finished: {len(found)} alerts"
                         + (f"; {len(failed)} detector(s) failed" if failed else ""),
                   state="error" if failed else "complete", expanded=bool(failed))
        connection.data_changed()

alerts = None
with shown("Alert queue"):
    alerts = pd.DataFrame(cached.call(list_alerts, actor))
if alerts is None:
    st.stop()
if alerts.empty:
    st.info("No alerts. Load data on the Data page and run the detectors (button above or `workbench detect`).")
    st.stop()

alerts = alerts.drop(columns=["decision_ids"], errors="ignore")
alerts["principals"] = [", ".join(alert_principals(r)) for r in alerts.to_dict("records")]
for col in ("window_start", "window_end", "first_seen", "last_seen"):
    if col in alerts.columns:
        alerts[col] = pd.to_datetime(alerts[col], utc=True, format="ISO8601")
alerts["start"] = alerts["window_start"]

f1, f2, f3, f4 = st.columns(4)
systems = sorted(alerts["system_id"].dropna().unique()) if "system_id" in alerts else []
with f1:
    system = widgets.pick_system(systems, key="tr_system") if systems else None
severities = [s for s in widgets.SEVERITIES if s in set(alerts["severity"].astype(str).str.lower())]
with f2:
    sev = st.multiselect("Severity", severities, key="tr_sev")
with f3:
    det = st.multiselect("Detector", sorted(alerts["detector"].dropna().unique()), key="tr_det")
with f4:
    window = widgets.date_window(alerts["start"].min(), alerts["start"].max(), key="tr_window")

view = alerts
if system:
    view = view[view["system_id"] == system]
if sev:
    view = view[view["severity"].astype(str).str.lower().isin(sev)]
if det:
    view = view[view["detector"].isin(det)]
if window:
    view = view[(view["start"] >= window[0]) & (view["start"] < window[1])]

event = st.plotly_chart(charts.alert_timeline(view), key="tr_chart", on_select="rerun",
                        selection_mode=("box", "points"))
picked_range = widgets.selected_time_range(event)
picked_ids = widgets.selected_values(event)
if picked_ids:
    view = view[view["alert_id"].astype(str).isin([str(i) for i in picked_ids])]
elif picked_range:
    view = view[(view["start"] >= picked_range[0]) & (view["start"] <= picked_range[1])]
widgets.narrowed_note(picked_range, "queue")

shown_cols = [c for c in ("alert_id", "severity", "detector", "system_id", "summary", "principals", "feature",
                          "metric", "start", "window_end", "n_decisions", "status") if c in view.columns]
queue = widgets.by_severity_then_time(view)[shown_cols].reset_index(drop=True)  # most severe, then newest
st.caption(f"{len(queue):,} of {len(alerts):,} alerts")
sel = st.dataframe(queue, hide_index=True, key="tr_queue", on_select="rerun", selection_mode="single-row",
                   column_config={"start": st.column_config.DatetimeColumn("from", format="YYYY-MM-DD HH:mm"),
                                  "window_end": st.column_config.DatetimeColumn("to", format="YYYY-MM-DD HH:mm")})
rows = widgets.selected_rows(sel)
if rows:
    st.session_state["tr_alert"] = str(queue.iloc[rows[0]]["alert_id"])
alert_id = st.session_state.get("tr_alert")
if not alert_id and len(queue):
    alert_id = str(queue.iloc[0]["alert_id"])
if not alert_id:
    st.stop()

st.divider()
alert = None
with shown("Alert"):
    alert = cached.call(get_alert, actor, alert_id)
if not alert:
    st.warning(f"Alert {alert_id} is gone (detectors re-ran?). Pick another from the queue.")
    st.stop()

principals = alert_principals(alert)
head = st.columns([3, 2])
with head[0]:
    st.subheader(f"{alert_id} · {alert.get('detector', '')}")
    who = ", ".join(f"`{p}`" for p in principals)
    st.markdown(f"{widgets.severity_badge(alert.get('severity'))} · system `{alert.get('system_id')}`"
                + (f" · {'principals' if len(principals) > 1 else 'principal'} {who}" if principals else ""))
    st.markdown(f"**{alert.get('summary', '')}**")
    st.caption(f"Window {alert.get('window_start')} → {alert.get('window_end')} · status {alert.get('status')}"
               + (f" · {len(alert.get('decision_ids') or [])} decisions" if alert.get("decision_ids") else ""))
    if alert.get("atlas"):
        st.caption("MITRE ATLAS: " + ", ".join(alert["atlas"]))
with head[1]:
    numbers = alert.get("evidence") or {}
    if isinstance(numbers, dict) and numbers:
        st.caption("Evidence numbers")
        st.dataframe(widgets.numbers_table(numbers), hide_index=True, key="tr_numbers")  # whole, not cut
    if actor.can("write:detect"):
        with st.popover("Alert status", icon=":material/flag:"):
            new_status = st.radio("Status", ["open", "acknowledged", "resolved", "false_positive"],
                                  index=["open", "acknowledged", "resolved", "false_positive"].index(
                                      alert.get("status") or "open"), key="tr_status")
            status_note = st.text_input("Note", key="tr_status_note")
            if st.button("Save status", key="tr_status_save"):
                cached.fresh(set_alert_status, actor, alert_id, new_status, status_note or None)
                connection.data_changed()
                st.rerun()

acts = st.columns(3)
if actor.can("write:incidents"):
    with acts[0]:
        incident_widgets.open_from_alert(actor, alert)  # title asked for; warns when already in an open incident
    with acts[1], shown("Add to incident"):
        open_incs = cached.call(list_incidents, actor, open_only=True)
        titles = {i["incident_id"]: i["title"] for i in open_incs}
        if titles:
            target = st.selectbox("Incident", list(titles), key="tr_add_target", label_visibility="collapsed",
                                  format_func=lambda i: f"{i} · {titles[i][:40]}")
            if st.button("Add to incident", key="tr_add"):
                cached.fresh(add_alert, actor, target, alert_id)
                connection.data_changed()
                st.success(f"Alert {alert_id} frozen as evidence in {target}.")
else:
    acts[0].caption(f"Your role ({actor.role}) cannot open incidents.")
if actor.can("read:decisions") and acts[2].button("Explain its decisions", icon=":material/psychology:",
                                                  key="tr_explain"):
    # exactly the alert's decisions: no principal filter (an alert may name several) and no time window (its
    # end is the last decision's own time, which an end-exclusive window would drop)
    st.session_state["dec_preset"] = {"alert_id": alert_id, "system": alert.get("system_id"),
                                      "start": alert.get("window_start"), "end": alert.get("window_end"),
                                      "principals": principals,
                                      "decision_ids": list(alert.get("decision_ids") or [])}
    st.switch_page("app_pages/decisions.py")
if actor.can("read:decisions") and alert.get("decision_ids") and acts[2].button(
        "Its attribution drift", icon=":material/compare_arrows:", key="tr_attr_drift"):
    widgets.open_attribution_drift(alert)  # the Drift page computes it for exactly this alert's decisions

t_dec, t_act, t_met = st.tabs(["Decisions", "Principal activity", "Metrics around it"])
with t_dec:
    if not actor.can("read:decisions"):
        st.info(f"Your role ({actor.role}) sees aggregates only, not decision rows.")
    else:
        with shown("Decisions"):
            ids = tuple(alert.get("decision_ids") or ())
            if ids:
                dec = cached.call(search_decisions, actor, system_id=alert.get("system_id"), decision_ids=ids[:2000],
                                  limit=2000)
            else:
                dec = cached.call(search_decisions, actor, system_id=alert.get("system_id"),
                                  principal=alert.get("principal"), since=alert.get("window_start"),
                                  until=alert.get("window_end"), limit=500)
            st.caption(f"{len(dec):,} decisions" + (f" of {len(ids):,} (first 2,000)" if len(ids) > 2000 else ""))
            part = (widgets.part_title(len(dec), len(ids), "the first 2,000") if ids
                    else widgets.part_title(len(dec), None if len(dec) >= 500 else len(dec), "the first 500"))
            st.plotly_chart(charts.score_scatter(dec, title=part), key="tr_dec_chart")
            st.dataframe(dec, hide_index=True)
with t_act:
    with shown("Principal activity"):
        if principals:
            one = principals[0] if len(principals) == 1 else st.selectbox(
                "Principal", principals, key="tr_act_principal")
            act = cached.call(principal_activity, actor, alert.get("system_id"), one, bucket="1 hour")
            st.plotly_chart(charts.activity(act.rename(columns={"decisions": "n"}),
                                            (alert.get("window_start"), alert.get("window_end")),
                                            title=f"Decisions per hour by {one}"), key="tr_act_chart")
            st.dataframe(act, hide_index=True)
        else:
            st.caption("This alert names no principal.")
with t_met:
    with shown("Metrics"):
        start, end = pd.Timestamp(alert.get("window_start")), pd.Timestamp(alert.get("window_end"))
        pad = max(pd.Timedelta(hours=2), (end - start) * 2)
        met = cached.call(metric_window, actor, alert.get("system_id"), None, since=start - pad, until=end + pad)
        st.plotly_chart(charts.metric_timeline(met, pd.DataFrame(
            [{"start": start, "end": end, "severity": alert.get("severity")}])), key="tr_met_chart")
evidence_widgets.freeze_alert_metrics(actor, alert)  # the metrics view, frozen as incident evidence
