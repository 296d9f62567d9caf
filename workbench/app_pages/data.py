"""Data: upload decision logs or metrics (the CLI's ingest path and quarantine), sources, quarantine."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.errors import WorkbenchError
from workbench.explore.overview import sources_table
from workbench.ingest import ingest_file, rejects, verify_sources
from workbench.ui import cached, connection, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context
from workbench.ui.uploads import save_upload

ws, actor = context()
st.title("Data")

tab_upload, tab_sources, tab_quarantine = st.tabs(["Upload", "Sources (custody)", "Quarantine"])

with tab_upload:
    if not actor.can("write:ingest"):
        st.info(f"Your role ({actor.role}) cannot load data; an analyst, lead or admin can.", icon="🔒")
    else:
        st.caption("Decision logs or metrics as JSON Lines, CSV (optionally gzipped) or Parquet, or a Prometheus "
                   "query_range JSON. The same ingest as `workbench ingest`: hashed, deduplicated, bad rows "
                   "quarantined, audited.")
        with st.form("upload", clear_on_submit=True):
            files = st.file_uploader("Files", accept_multiple_files=True, key="up_files")
            c1, c2 = st.columns(2)
            kind = c1.selectbox("Kind", ["auto", "decisions", "metrics"], key="up_kind",
                                help="auto: decided from the file's columns (decision log or metrics)")
            system = c2.text_input("System id (for rows or series that name none)", key="up_system")
            go = st.form_submit_button("Ingest", type="primary", icon=":material/upload:")
        if go and not files:
            st.warning("Choose one or more files first.")
        if go and files:
            results = []
            with st.status(f"Ingesting {len(files)} file(s)…", expanded=True) as box:
                bar = st.progress(0.0)
                for n, up in enumerate(files, 1):
                    box.write(f"{up.name} ({up.size:,} bytes)")
                    with shown(up.name):
                        path = save_upload(ws, up.name, up.getvalue())
                        try:
                            res = ingest_file(ws, actor, path, kind=None if kind == "auto" else kind,
                                              system=system.strip() or None)
                        except WorkbenchError as exc:  # name the user's file, not the copy we keep
                            raise WorkbenchError(widgets.user_named(str(exc), path, up.name)) from exc
                        res.path = up.name
                        if res.error:
                            res.error = widgets.user_named(res.error, path, up.name)
                        results.append(res)
                    bar.progress(n / len(files))
                bad = [r for r in results if r.error]
                box.update(label=f"Ingested {len(results) - len(bad)} of {len(files)} file(s)",
                           state="error" if bad else "complete", expanded=bool(bad))
            for r in results:
                if r.error:
                    st.error(f"{r.error.replace(str(ws.path.parent), '…')} — fix the file and upload it again; "
                             "nothing from it was loaded.", icon="⚠️")
                elif r.skipped:
                    st.info(f"{r.path}: already ingested (sha256 {r.sha256[:12]}…, source {r.source_id}); skipped.")
                else:
                    msg = (f"{r.path}: {r.kind}/{r.format}: read {r.rows_read:,}, loaded {r.rows_loaded:,}, "
                           f"duplicates {r.duplicates:,}, quarantined {r.rows_quarantined:,}")
                    (st.warning if r.rows_quarantined else st.success)(
                        msg + (" — see the Quarantine tab." if r.rows_quarantined else ""))
            if any(not r.error and not r.skipped for r in results):
                connection.data_changed()

with tab_sources:
    with shown("Sources"):
        src = cached.call(sources_table, actor)
        if src.empty:
            widgets.empty_workspace_hint()
        else:
            st.dataframe(src, hide_index=True, column_config={
                "sha256": st.column_config.TextColumn("sha256", width="medium"),
                "size_bytes": st.column_config.NumberColumn("bytes", format="localized")})
            widgets.csv_download(src, "sources.csv")
    if st.button("Re-hash the files on disk (custody check)", key="verify_sources"):
        with shown("Custody check"), st.spinner("Hashing source files…"):
            check = pd.DataFrame(cached.fresh(verify_sources, actor))
            bad = check[check["status"] != "ok"] if not check.empty else check
            if check.empty:
                st.info("No source files recorded yet.")
            elif bad.empty:
                st.success(f"All {len(check)} source files are on disk and unchanged.")
            else:
                st.error(f"{len(bad)} of {len(check)} source files changed or vanished since ingest.")
                st.dataframe(bad, hide_index=True)

with tab_quarantine:
    if not actor.can("read:decisions"):
        st.info(f"Quarantined rows hold raw decision data; your role ({actor.role}) sees only the counts.")
    else:
        with shown("Quarantine"):
            rows = pd.DataFrame(cached.call(rejects, actor, limit=2000))
            if rows.empty:
                st.success("Nothing in quarantine.")
            else:
                reasons = rows.groupby("reason").size().rename("rows").reset_index()
                st.dataframe(reasons, hide_index=True)
                st.dataframe(rows, hide_index=True)
                widgets.csv_download(rows, "quarantine.csv")
