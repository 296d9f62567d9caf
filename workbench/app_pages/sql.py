"""SQL: read-only ad-hoc queries for analysts, time- and row-limited, no file or network access, audited."""

from __future__ import annotations

import streamlit as st

from workbench.ui import cached, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context, require_page

ws, actor = context()
st.title("Ad-hoc SQL")
require_page(actor, "run:sql", "run ad-hoc SQL")
st.caption("Read-only DuckDB SQL over the workspace (decisions, metrics, sources, alerts, incidents …). "
           "External files and the network are off; queries are time- and row-limited and audited.")

EXAMPLES = {
    "Decisions per system and prediction": "SELECT system_id, prediction, count(*) AS n FROM decisions GROUP BY ALL "
                                           "ORDER BY ALL",
    "Busiest principals today": "SELECT principal, count(*) AS n FROM decisions WHERE ts >= current_date "
                                "GROUP BY ALL ORDER BY n DESC LIMIT 20",
    "Model hashes seen in the logs": "SELECT system_id, model_version, model_sha256, count(*) AS n, min(ts), max(ts) "
                                     "FROM decisions GROUP BY ALL ORDER BY ALL",
}
pick = st.selectbox("Start from an example", ["(none)", *EXAMPLES], key="sql_example")
if pick != "(none)" and st.session_state.get("_sql_example_loaded") != pick:
    st.session_state["sql_text"] = EXAMPLES[pick]
    st.session_state["_sql_example_loaded"] = pick

query = st.text_area("Query", key="sql_text", height=160,
                     placeholder="SELECT system_id, prediction, count(*) FROM decisions GROUP BY ALL")
if st.button("Run", type="primary", icon=":material/play_arrow:", key="sql_run"):
    if not query.strip():
        st.warning("Write a query first.")
    else:
        with shown("Query"), st.spinner("Running…"):
            result = cached.fresh("workbench.sql_sandbox", "run_sql", actor, query, feature="Ad-hoc SQL")
            st.session_state["sql_result"] = (result.df(), result.truncated, result.seconds, list(result.notes))

if "sql_result" in st.session_state:
    df, truncated, seconds, notes = st.session_state["sql_result"]
    st.caption(f"{len(df):,} rows in {seconds:.2f} s" + (" (cut at the row limit)" if truncated else ""))
    for note in notes:
        st.caption(note)
    st.dataframe(df, hide_index=True)
    widgets.csv_download(df, "query.csv")
