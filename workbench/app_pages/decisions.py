"""Decisions: search and filter; one decision's SHAP waterfall beside the baseline, nearest normals, replay."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import charts, charts_explain
from workbench.cases.evidence import add_decision_set
from workbench.cases.incidents import list_incidents
from workbench.explain import explain_decisions, replay
from workbench.explain.registry import list_models
from workbench.explore import nearest_normal
from workbench.explore import sample as sampling
from workbench.explore.overview import workspace_summary
from workbench.explore.sample import sample_decisions
from workbench.ui import cached, connection, evidence_widgets, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context

SAMPLE_MODES = {"even": "Sample evenly", "newest": "Newest", "oldest": "Oldest"}
ws, actor = context()
st.title("Decisions")
incoming = st.session_state.pop("dec_preset", None)
if incoming:  # a new scope from Triage: exactly an alert's decisions (their ids, no principal, no time window)
    st.session_state["dec_scope"] = incoming
    st.session_state["dec_system"] = incoming.get("system")
    st.session_state["dec_principal"] = ""
preset = st.session_state.get("dec_scope") or {}
scoped_ids = [str(i) for i in preset.get("decision_ids") or []]

summary = None
with shown("Workspace summary"):
    summary = cached.call(workspace_summary, actor)
systems = [s["system_id"] for s in (summary or {}).get("systems", [])]
if not systems:
    widgets.empty_workspace_hint()
    st.stop()
if not actor.can("read:decisions"):
    st.info(f"Your role ({actor.role}) sees aggregates only: decision rows, explanations and replays need "
            "an analyst, lead, auditor or admin. The Overview and Drift pages show the aggregates.", icon="🔒")
    st.stop()

if preset:
    c1, c2 = st.columns([5, 1])
    named = preset.get("principals") or []
    c1.info(f"Scoped to the decisions of alert {preset.get('alert_id')}: exactly its {len(scoped_ids):,} "
            f"decisions ({preset.get('start')} → {preset.get('end')}, both ends included"
            + (f"; principals {', '.join(named)}" if named else "") + ").", icon=":material/filter_alt:")
    if c2.button("Clear scope", key="dec_clear_scope"):
        st.session_state.pop("dec_scope", None)
        st.rerun()
info = {s["system_id"]: s for s in summary["systems"]}
with st.container(border=True):
    c1, c2, c3, c4 = st.columns([2, 3, 2, 2])
    with c1:
        system = widgets.pick_system(systems, key="dec_system", allow_all=False)
    with c2:
        window = widgets.date_window(info[system]["first"], info[system]["last"], key="dec_window")
    principal = c3.text_input("Principal", key="dec_principal", placeholder="exact id")
    prediction = c4.text_input("Prediction", key="dec_prediction", placeholder="approve, deny …")
    c5, c6, c7, c8 = st.columns([2, 4, 1.2, 1.8])
    score = c5.slider("Score range", 0.0, 1.0, (0.0, 1.0), 0.01, key="dec_score")
    where = c6.text_input("Feature conditions", key="dec_where",
                          placeholder="income > 50000 and purpose = 'car'  (feature names, = != < <= > >=)")
    limit = c7.number_input("Max rows", 100, 20_000, 2000, 100, key="dec_limit")
    mode = c8.selectbox("If more match", list(SAMPLE_MODES), key="dec_sample_mode",
                        format_func=SAMPLE_MODES.get,
                        help="More matches than Max rows: show an even sample across the whole window "
                             "(every n-th decision in time order), or the newest or oldest ones.")

# an alert's scope is its decision ids; a time window on top would drop its last decision (the window's end is
# that decision's own time and the search's end is exclusive)
start = None if scoped_ids else (window[0] if window else None)
end = None if scoped_ids else (window[1] if window else None)
found = None
with shown("Search"):
    try:
        conditions = widgets.parse_conditions(where)
    except ValueError as exc:
        st.warning(str(exc))
        st.stop()
    pattern = principal.strip()
    found = cached.call(sample_decisions, actor, system_id=system, since=start,
                        until=end, principal=pattern or None, prediction=prediction.strip() or None,
                        score_min=score[0] if score[0] > 0 else None, score_max=score[1] if score[1] < 1 else None,
                        feature_filters=tuple(conditions),
                        decision_ids=tuple(scoped_ids) or None,
                        limit=int(limit), mode=mode)
if found is None:
    st.stop()
df = pd.DataFrame(found["decisions"])
if df.empty:
    st.info("No decisions match these filters.")
    st.stop()
if "ts" in df.columns:
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
sampled = found["mode"] != "all"
shown_text = sampling.describe(found)
if sampled:
    st.caption(f"{found['total'] - found['shown']:,} matching decisions are not shown: narrow the time window "
               "or filters, or raise Max rows, to see them all.")

event = st.plotly_chart(charts.score_scatter(df, shown_text + ("" if sampled else " (lasso or box to narrow "
                                                               "the table)")),
                        key="dec_chart", on_select="rerun", selection_mode=("box", "lasso", "points"))
ids = widgets.selected_values(event)
table = df[df["decision_id"].astype(str).isin([str(i) for i in ids])] if ids else df
st.caption(f"{len(table):,} shown" + (" (chart selection)" if ids else "")
           + (f" of {found['total']:,} matching" if sampled else "") + "; lasso or box on the chart to narrow "
           "the table, pick a row for its explanation.")
cols = [c for c in ("decision_id", "ts", "principal", "prediction", "score", "model_version", "source_ip")
        if c in table.columns] + [c for c in table.columns if str(c).startswith("f.")]
table = table[cols].reset_index(drop=True)
sel = st.dataframe(table, hide_index=True, key="dec_table", on_select="rerun", selection_mode="single-row")
widgets.csv_download(table, f"decisions_{system}.csv")

if actor.can("write:incidents"):
    with st.expander("Freeze these decisions as incident evidence"), shown("Evidence"):
        incs = cached.call(list_incidents, actor, open_only=True)
        if not incs:
            st.caption("No open incident; open one from Triage or the Incidents page.")
        else:
            target = st.selectbox("Incident", [i["incident_id"] for i in incs], key="dec_inc")
            # unnarrowed, an alert's scope freezes the alert's whole set, however many rows the table shows
            whole = bool(scoped_ids) and not (pattern or prediction.strip() or conditions or ids
                                              or score != (0.0, 1.0)) and found["total"] == len(set(scoped_ids))
            to_freeze = sorted(set(scoped_ids)) if whole else table["decision_id"].astype(str).tolist()
            if sampled and not whole:
                st.caption(f"These are {len(table):,} of {found['total']:,} matching decisions "
                           f"({sampling.MODE_TEXT[found['mode']]}): narrow the filters to freeze exactly the "
                           "ones you mean.")
            label = (f"Add the alert's {len(to_freeze):,} decisions" if whole
                     else f"Add {len(to_freeze):,} decisions")
            if st.button(label, key="dec_add"):
                res = cached.fresh(add_decision_set, actor, target, system, to_freeze)
                connection.data_changed()
                st.success(f"Frozen in {target}: {res.get('item_count', len(to_freeze))} decisions, "
                           f"sha256 {str(res.get('sha256', ''))[:12]}…")

rows = widgets.selected_rows(sel)
if not rows:
    st.stop()
decision_id = str(table.iloc[rows[0]]["decision_id"])
st.divider()
st.subheader(f"Decision {decision_id}")
left, right = st.columns(2)
with left, shown("Explanation"):
    with st.spinner("Computing SHAP values…"):
        expl = cached.call(explain_decisions, actor, system, [decision_id])
    st.plotly_chart(charts_explain.waterfall(expl[0]), key="dec_waterfall")
    e = expl[0]
    st.caption(f"Method {e.get('method')} · model {e.get('model_version')} · baseline (expected score) "
               f"{e.get('base_value', float('nan')):.3f} → output {e.get('output', float('nan')):.3f}"
               + (f" · multiclass: explains class {e['class_index']}, the one the model ranked first"
                  if e.get("class_index") is not None else "")
               + (" · ⚠ logged model hash differs from the registered artifact"
                  if e.get("logged_sha256_matches") is False else ""))
with right, shown("Nearest normal decisions"):
    near = cached.call(nearest_normal, actor, system, decision_id, k=5)
    st.caption("The most similar decisions that no alert points at (standardised numeric features).")
    st.dataframe(pd.DataFrame(near), hide_index=True)
with st.expander("Replay under another model version"), shown("Replay"):
    versions = [m["version"] for m in cached.call(list_models, actor)
                if m.get("system_id") == system]
    if not versions:
        st.info(f"No registered model for {system}: register one with `workbench models add`.")
    else:
        version = st.selectbox("Version", versions, key="dec_replay_version")
        if st.button("Replay", key="dec_replay"):
            with st.spinner("Re-scoring…"):
                out = cached.call(replay, actor, system, [decision_id], version)
            st.dataframe(pd.DataFrame(out) if not isinstance(out, pd.DataFrame) else out, hide_index=True)
evidence_widgets.freeze_explanation(actor, system, (globals().get("expl") or [None])[0])  # SHAP view
