"""Drift: per input, prediction and score, window by window, the detector's own tests against their thresholds,
and attribution (SHAP) drift."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import charts, charts_explain
from workbench.detect import drift
from workbench.detect.alerts import list_alerts
from workbench.explain import attribution_drift
from workbench.explore import search_decisions
from workbench.explore.overview import workspace_summary
from workbench.ui import cached, evidence_widgets, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context

WINDOWS = ["as the detector ran", "auto", "day", "week", "month", "500 decisions", "1000 decisions"]

ws, actor = context()
st.title("Drift")

summary = None
with shown("Workspace summary"):
    summary = cached.call(workspace_summary, actor)
systems = [s["system_id"] for s in (summary or {}).get("systems", [])]
if not systems:
    widgets.empty_workspace_hint()
    st.stop()
c1, c2 = st.columns([1, 1])
with c1:
    system = widgets.pick_system(systems, key="dr_system", allow_all=False)
choice = c2.selectbox("Windows", WINDOWS, key="dr_windows",
                      help="The detector's last run, or the same tests computed now with other windows.")
window = None if choice == WINDOWS[0] else choice.split()[0]

st.subheader("Drift tests per window")
st.caption("Each input feature, the prediction and the score, window by window, against the reference: the "
           "statistic of each test, its threshold (from the reference's own sampling noise and window-to-window "
           "variation) and the verdict, exactly as the drift detector computed them. A window is over when a test "
           "is over its threshold; drift is two windows over in a row (or a strong latest one).")
picked = None
with shown("Drift tests"):
    table = cached.call(drift.windows, actor, system, window)
    if table.empty:
        st.info("No drift judged for this system yet: it needs a reference and complete windows after it. "
                "Run the detectors (`workbench detect`) once data spans more than the reference window.")
    else:
        run = table["run_id"].dropna()
        mon = table[table["role"] == "monitored"]
        ref = table[table["role"] == "reference"]
        st.caption(f"Windows of {table['window_rule'].iloc[0]} · reference {ref['window_start'].min():%Y-%m-%d} "
                   f"to {ref['window_end'].max():%Y-%m-%d} ({ref.groupby('window_start')['n'].first().sum():,} "
                   f"decisions) · {mon['window_start'].nunique()} windows judged · "
                   + (f"detector run {run.iloc[0]}" if len(run) else "computed now (no attack claims)"))
        verdicts = drift.summary(table)
        st.dataframe(verdicts, hide_index=True, key="dr_summary",
                     column_config={"result": st.column_config.TextColumn("result", help="drift: an alert; "
                                    "watch: a window over its threshold that did not last; pass: none over"),
                                    "first_drift": st.column_config.DatetimeColumn(format="YYYY-MM-DD")})
        t1, t2 = st.columns([1, 1])
        targets = verdicts["target"].tolist()
        target = t1.selectbox("Feature or output", targets, key="dr_target")
        rows = table[table["target"] == target]
        tests = rows["test"].unique().tolist()
        peak = verdicts.loc[verdicts["target"] == target, "peak_test"].iloc[0]
        test = t2.selectbox("Test", tests, index=tests.index(peak) if peak in tests else 0, key="dr_test")
        one = rows[rows["test"] == test]
        event = st.plotly_chart(charts.drift_test(one, f"{target}: {test} per window"), key="dr_chart",
                                on_select="rerun", selection_mode=("box", "points"))
        picked = widgets.selected_time_range(event)
        wide = rows.pivot_table(index=["window_start", "n", "verdict"], columns="test",
                                values=["statistic", "threshold"]).reset_index()
        wide.columns = [" ".join(str(c) for c in col if c).strip() if isinstance(col, tuple) else col
                        for col in wide.columns]
        st.dataframe(wide.sort_values("window_start", ascending=False), hide_index=True, key="dr_windows_table",
                     column_config={"window_start": st.column_config.DatetimeColumn("window",
                                                                                    format="YYYY-MM-DD HH:mm"),
                                    "n": st.column_config.NumberColumn("decisions")})

st.subheader("Attribution drift")
st.caption("How the model reasoned on a set of decisions (an alert's, or a period's) against normal decisions of "
           "the same version: the rise in each feature's share of mean |SHAP|.")
with shown("Attribution drift"):
    if not actor.can("read:decisions"):
        st.info(f"Attribution drift reads decision rows; your role ({actor.role}) sees the feature drift above.")
        st.stop()
    alerts = pd.DataFrame(cached.call(list_alerts, actor, system=system))
    sources = ([f"alert {a}" for a in alerts["alert_id"]] if not alerts.empty else [])
    if picked:
        sources.insert(0, "the period selected above")
    if not sources:
        st.caption("Box-select a period on the chart above, or run the detectors, to choose decisions to compare.")
        st.stop()
    source = st.selectbox("Decisions to compare", sources, key="dr_attr_source")
    if st.button("Compare", key="dr_attr_go", icon=":material/compare_arrows:") or \
            st.session_state.pop("dr_attr_auto", False):  # arriving from an alert's "Its attribution drift"
        with st.spinner("Computing SHAP on the set and on a reference sample…"):
            if source.startswith("alert "):
                row = alerts[alerts["alert_id"] == source[6:]].iloc[0]
                ids = list(row.get("decision_ids") or [])[:2000]
            else:
                found = cached.call(search_decisions, actor, system_id=system, since=picked[0], until=picked[1],
                                    limit=2000)
                ids = found["decision_id"].astype(str).tolist()
            if not ids:
                st.warning("That set holds no decisions.")
                st.stop()
            ad = cached.call(attribution_drift, actor, system, ids)
        st.plotly_chart(charts_explain.alert_vs_baseline(ad), key="dr_attr")
        st.dataframe(ad, hide_index=True)
        st.caption(f"{ad.attrs.get('alert_n', len(ids))} decisions vs {ad.attrs.get('reference_n', '?')} reference "
                   f"decisions · method {', '.join(ad.attrs.get('method', []))}")
evidence_widgets.freeze_drift_page(actor, system, globals().get("one"), globals().get("target"), globals().get("ad"))
