"""Audit (auditor and admin): the hash-chained log, filters, and a verify button."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.audit import entries, verify
from workbench.ui import cached, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context, require_page

ws, actor = context()
st.title("Audit trail")
require_page(actor, "read:audit", "read the audit log")

c1, c2, c3 = st.columns([2, 2, 1])
prefix = c1.text_input("Action starts with", placeholder="read., incident., ingest.", key="audit_prefix")
obj = c2.text_input("Object", placeholder="INC-0001 or a file path", key="audit_object")
limit = c3.number_input("Rows", min_value=50, max_value=100_000, value=1000, step=50, key="audit_limit")

if st.button("Verify the chain", type="primary", icon=":material/verified:", key="audit_verify"):
    with shown("Verify"), st.spinner("Re-computing every row's hash…"):
        check = cached.fresh(verify, actor)
        if check.ok:
            st.success(f"The chain is intact: {check.rows:,} rows, every hash re-computed and linked.")
        else:
            st.error(f"The chain is broken at row {check.first_bad_seq}: {check.reason}. Export the log and "
                     "compare it with the last verified export to see what changed.")

with shown("Audit log"):
    rows = pd.DataFrame(cached.fresh(entries, actor, limit=int(limit),
                                     action_prefix=prefix.strip() or None, obj=obj.strip() or None))
    if rows.empty:
        st.info("No audit rows match.")
    else:
        counts = rows.groupby("action").size().rename("rows").reset_index().sort_values("rows", ascending=False)
        left, right = st.columns([1, 3])
        left.dataframe(counts, hide_index=True)
        right.dataframe(rows, hide_index=True, column_config={
            "ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "hash": st.column_config.TextColumn(width="small"),
            "prev_hash": st.column_config.TextColumn(width="small")})
        widgets.csv_download(rows, "audit_excerpt.csv")
