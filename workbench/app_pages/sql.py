"""SQL: read-only ad-hoc queries for analysts, time- and row-limited, no file or network access, audited."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.explore.sandbox import _table_rules, run_sql
from workbench.ui import cached, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context, require_page

ws, actor = context()
st.title("Ad-hoc SQL")
require_page(actor, "run:sql", "run ad-hoc SQL")
st.caption("Read-only DuckDB SQL over the workspace (decisions, metrics, sources, alerts, incidents …). "
           "External files and the network are off; queries are time- and row-limited and audited.")

# Each example returns rows on the demo workspace (tests/test_app.py runs them all).
EXAMPLES = {
    "Decisions per system and prediction": "SELECT system_id, prediction, count(*) AS n FROM decisions GROUP BY ALL "
                                           "ORDER BY ALL",
    "Busiest principals in the last day of data": (
        "SELECT principal, count(*) AS n FROM decisions "
        "WHERE ts >= (SELECT max(ts) FROM decisions) - INTERVAL 1 DAY GROUP BY ALL ORDER BY n DESC LIMIT 20"),
    "Model hashes seen in the logs": "SELECT system_id, model_version, model_sha256, count(*) AS n, min(ts), max(ts) "
                                     "FROM decisions GROUP BY ALL ORDER BY ALL",
    "Alerts by detector and severity": "SELECT detector, severity, count(*) AS n, min(window_start) AS first "
                                       "FROM alerts GROUP BY ALL ORDER BY n DESC",
    "Decisions per hour around the newest alert": (
        "SELECT date_trunc('hour', d.ts) AS hour, count(*) AS n FROM decisions d, "
        "(SELECT system_id, window_start, window_end FROM alerts ORDER BY window_start DESC LIMIT 1) a "
        "WHERE d.system_id = a.system_id AND d.ts BETWEEN a.window_start - INTERVAL 6 HOUR "
        "AND a.window_end + INTERVAL 6 HOUR GROUP BY ALL ORDER BY hour"),
}


def schema_browser() -> None:
    """The tables this user may query, their size and their columns."""
    rules = _table_rules(ws, actor)  # the sandbox's own rules: list only what it would run
    cols = ws.df("SELECT table_name AS table, column_name AS column, data_type AS type FROM "
                 "information_schema.columns WHERE table_schema = 'main' AND table_catalog = current_database() "
                 "ORDER BY table_name, ordinal_position")
    sizes = dict(ws.rows("SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'main' "
                         "AND database_name = current_database()"))
    cols = cols[[rules.get(str(t).lower(), "unknown") is None for t in cols["table"]]]
    if cols.empty:
        st.caption("No tables you may query.")
        return
    tables = pd.DataFrame({"table": cols["table"].unique()})
    tables["columns"] = [int((cols["table"] == t).sum()) for t in tables["table"]]
    tables["rows (approx.)"] = [sizes.get(t) for t in tables["table"]]
    left, right = st.columns([2, 3])
    left.dataframe(tables, hide_index=True, key="sql_tables", height=320)
    pick = right.selectbox("Columns of", tables["table"].tolist(), key="sql_schema_table")
    right.dataframe(cols[cols["table"] == pick][["column", "type"]], hide_index=True, height=280)


with st.expander("Schema: tables and columns you may query", icon=":material/table_chart:"), shown("Schema"):
    schema_browser()

pick = st.selectbox("Start from an example", ["(none)", *EXAMPLES], key="sql_example")
if pick != "(none)" and st.session_state.get("_sql_example_loaded") != pick:
    st.session_state["sql_text"] = EXAMPLES[pick]
    st.session_state["_sql_example_loaded"] = pick

query = st.text_area("Query", key="sql_text", height=160,
                     placeholder="SELECT system_id, prediction, count(*) FROM decisions GROUP BY ALL")
if st.button("Run", type="primary", icon=":material/play_arrow:", key="sql_run"):
    st.session_state.pop("sql_result", None)  # a failed or empty run never leaves the last result on screen
    if not query.strip():
        st.warning("Write a query first.")
    else:
        with shown("Query"), st.spinner("Running…"):
            result = cached.fresh(run_sql, actor, query)
            st.session_state["sql_result"] = (query, result.df(), result.truncated, result.seconds,
                                              list(result.notes))

stored = st.session_state.get("sql_result")
if stored and stored[0] != query:
    st.session_state.pop("sql_result", None)  # the query changed since: its old result is stale
    st.caption("The query changed: press Run to see its result.")
elif stored:
    _, df, truncated, seconds, notes = stored
    st.caption(f"{len(df):,} rows in {seconds:.2f} s" + (" (cut at the row limit)" if truncated else ""))
    for note in notes:
        st.caption(note)
    st.dataframe(df, hide_index=True, key="sql_result_table")
    widgets.csv_download(df, "query.csv")
