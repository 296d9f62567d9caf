"""Conversations: LLM and agent traces as trees (user turn -> model call -> tool call -> model call), flagged
parts marked, freezing a conversation as evidence. Trace text is attacker text: shown as plain text only."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.traces import conversations
from workbench.ui.errors import shown
from workbench.ui.state import context

ws, actor = context()
st.title("Conversations")
st.caption("Traces of LLM assistants and agents. Flagged spans are named by an LLM detector's alert; personal "
           "values are shown as tokens unless your role may read personal data.")
if not actor.can("read:decisions"):
    st.info("Your role may not read conversations.")
    st.stop()

rows: list[dict] = []
with shown("Conversations"):
    systems = [r[0] for r in ws.rows("SELECT DISTINCT system_id FROM trace_spans ORDER BY 1")]
    if not systems:
        st.info("No traces yet: ingest OTLP JSON or Langfuse exports (`workbench ingest sample_data/traces/spans`).")
        st.stop()
    cols = st.columns([2, 1])
    system = cols[0].selectbox("System", systems, key="cv_system")
    flagged = cols[1].toggle("Flagged only", value=True, key="cv_flagged")
    rows = conversations.list_conversations(ws, actor, system=system, flagged_only=flagged)
if not rows:
    st.info("No conversations match.")
    st.stop()
table = pd.DataFrame(rows)
table["flags"] = table["flags"].map(lambda f: ", ".join(f or []))
picked = st.dataframe(table, hide_index=True, use_container_width=True, on_select="rerun",
                      selection_mode="single-row", key="cv_table")
sel = picked.selection.rows if picked and picked.selection else []
if not sel:
    st.caption("Pick a conversation to open it.")
    st.stop()
conv_id = str(table.iloc[sel[0]]["conversation_id"])

with shown("The conversation"):
    conv = conversations.conversation(ws, actor, system, conv_id)
    st.subheader(f"{conv_id}: {len(conv['spans'])} spans, {conv['flagged_spans']} flagged")
    for s in conv["spans"]:
        mark = "🚩 " if s["flags"] else ""
        what = s["tool_name"] or s["model"] or s["name"] or s["kind"]
        title = f"{'— ' * s['depth']}{mark}{s['kind']}: {what} · {s['ts']:%Y-%m-%d %H:%M:%S}"
        with st.expander(title, expanded=bool(s["flags"])):
            for f in s["flags"]:
                st.text(f"flagged by {f['detector']} ({f['severity']}), alert {f['alert_id']}")
            for label, key in (("user", "input_text"), ("answer", "output_text"), ("tool arguments", "tool_args"),
                               ("tool result", "tool_result")):
                if s.get(key):
                    st.text(f"{label}:")
                    st.code(str(s[key])[:4000], language=None)
            st.caption(f"span {s['span_id']} · trace {s['trace_id']} · principal {s['principal']} · tokens "
                       f"{s['input_tokens']}/{s['output_tokens']} · status {s['status']} · policy "
                       f"{s['content_policy']}")

if actor.can("write:incidents"):
    with st.form("cv_freeze"):
        incident = st.text_input("Incident id to freeze this conversation into", key="cv_incident")
        if st.form_submit_button("Freeze as evidence", icon=":material/lock:") and incident.strip():
            with shown("Freezing the conversation"):
                ev = conversations.freeze(ws, actor, incident.strip(), system, conv_id)
                st.success(f"Frozen as evidence {ev['evidence_id']} (sha256 {ev['sha256'][:16]}…)")
