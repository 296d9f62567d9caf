"""Incidents: list and detail (owner, TLP/PAP, timeline, evidence and file uploads, observables with their
sightings, tasks, playbook checklist, notes, status, merge, report download)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import charts
from workbench.cases.evidence import list_evidence, verify_evidence
from workbench.cases.evidence_size import size_text
from workbench.cases.incidents import (
    add_note,
    assign,
    assignable_users,
    create_incident,
    get_incident,
    list_incidents,
    mark,
)
from workbench.cases.incidents import set_status as set_incident_status
from workbench.cases.playbooks import attach as attach_playbook
from workbench.cases.playbooks import load_playbooks
from workbench.cases.playbooks import progress as playbook_progress
from workbench.cases.playbooks import set_step as set_playbook_step
from workbench.cases.playbooks import suggest as suggest_playbooks
from workbench.cases.reports import render_report
from workbench.cases.timeline import build_timeline
from workbench.ui import cached, case_panels, connection, evidence_widgets, widgets
from workbench.ui.errors import shown
from workbench.ui.state import context, require_page

ws, actor = context()
st.title("Incidents")
require_page(actor, "read:incidents", "see incidents")
TLP = ["clear", "green", "amber", "amber+strict", "red"]
PAP = ["clear", "green", "amber", "red"]
TLP_COLOURS = {"clear": "gray", "green": "green", "amber": "orange", "amber+strict": "orange", "red": "red"}
PHASE_TITLES = {"preparation": "Preparation", "detection": "Detection & Analysis", "containment": "Containment",
                "recovery": "Eradication & Recovery", "post-incident": "Post-Incident Activity"}
PAGE_ALIASES = {"overview": "overview", "alerts": "triage", "triage": "triage", "explain": "decisions",
                "decisions": "decisions", "drift": "drift", "incidents": "incidents", "playbooks": "playbooks",
                "sql": "sql", "data": "data", "audit": "audit"}


def _refresh() -> None:
    connection.data_changed()
    st.rerun()


if actor.can("write:incidents"):
    with st.expander("New incident by hand", icon=":material/add:"), st.form("inc_new", clear_on_submit=True):
        title = st.text_input("Title", key="inc_new_title")
        c1, c2, c3 = st.columns(3)
        severity = c1.selectbox("Severity", ["low", "medium", "high", "critical"], index=2, key="inc_new_sev")
        systems = c2.text_input("Systems (comma-separated)", key="inc_new_systems")
        atlas = c3.text_input("ATLAS technique IDs", placeholder="AML.T0024.002, AML.T0040", key="inc_new_atlas")
        description = st.text_area("Description", key="inc_new_desc")
        if st.form_submit_button("Create", type="primary"):
            with shown("New incident"):
                inc = cached.fresh(create_incident, actor, title, severity,
                                   systems=[s.strip() for s in systems.split(",") if s.strip()],
                                   atlas=[a.strip() for a in atlas.split(",") if a.strip()], description=description)
                st.session_state["inc_selected"] = inc["incident_id"]
                _refresh()

incidents = None
with shown("Incidents"):
    incidents = pd.DataFrame(cached.call(list_incidents, actor))
if incidents is None:
    st.stop()
if incidents.empty:
    st.info("No incidents yet. Open one from an alert on the Triage page, or by hand above.")
    st.stop()

f1, f2 = st.columns(2)
status_f = f1.multiselect("Status", ["open", "triage", "contained", "eradicated", "recovered", "closed"],
                          default=["open", "triage", "contained", "eradicated", "recovered"], key="inc_status_f")
sev_f = f2.multiselect("Severity", ["critical", "high", "medium", "low"], key="inc_sev_f")
view = incidents[incidents["status"].isin(status_f)] if status_f else incidents
if sev_f:
    view = view[view["severity"].isin(sev_f)]
cols = [c for c in ("incident_id", "title", "severity", "status", "tlp", "owner", "systems", "evidence",
                   "updated_at")
        if c in view.columns]
view = view[cols].reset_index(drop=True)
sel = st.dataframe(view, hide_index=True, key="inc_table", on_select="rerun", selection_mode="single-row")
rows = widgets.selected_rows(sel)
if rows:
    st.session_state["inc_selected"] = view.iloc[rows[0]]["incident_id"]
incident_id = st.session_state.get("inc_selected") or (view.iloc[0]["incident_id"] if len(view) else None)
if not incident_id:
    st.stop()

st.divider()
inc = None
with shown("Incident"):
    inc = cached.call(get_incident, actor, incident_id)
if not inc:
    st.stop()
st.subheader(f"{inc['incident_id']} · {inc['title']}")
tlp, pap = inc.get("tlp") or "amber", inc.get("pap") or "amber"
st.markdown(f":{TLP_COLOURS[tlp]}-badge[TLP:{tlp.upper()}] :{TLP_COLOURS[pap]}-badge[PAP:{pap.upper()}]")
if inc.get("merged_into"):
    st.info(f"Merged into {inc['merged_into']}: its evidence, observables and tasks were copied there.",
            icon=":material/call_merge:")
    if st.button(f"Go to {inc['merged_into']}", key="inc_go_merged", type="tertiary", icon=":material/link:"):
        st.session_state["inc_selected"] = inc["merged_into"]
        st.rerun()
if inc.get("merged_from"):
    st.caption(f"Merged from {', '.join(inc['merged_from'])}.")
st.markdown(f"{widgets.severity_badge(inc['severity'])} · status **{inc['status']}** · owner "
            f"{inc.get('owner') or '—'} · systems {', '.join(inc.get('systems') or []) or '—'} · ATLAS "
            f"{', '.join(inc.get('atlas') or []) or '—'}")
if inc.get("description"):
    st.caption(inc["description"])

if actor.can("write:incidents") and inc.get("allowed_next"):
    with st.form("inc_status"):
        c1, c2, c3 = st.columns([2, 4, 1])
        nxt = c1.selectbox("Move to", inc["allowed_next"], key="inc_next")
        note = c2.text_input("Note (needed to close or reopen)", key="inc_note_status")
        if c3.form_submit_button("Apply"):
            with shown("Status"):
                cached.fresh(set_incident_status, actor, incident_id, nxt, note or None)
                _refresh()

if actor.can("write:incidents") and inc["status"] != "closed":
    with st.expander("Owner, TLP and PAP", icon=":material/person:"), st.form("inc_case"):
        people = cached.call(assignable_users, actor)
        people = list(dict.fromkeys([*([inc["owner"]] if inc.get("owner") else []), *people]))
        c1, c2, c3 = st.columns(3)
        owner = c1.selectbox("Owner", ["(nobody)", *people], key="inc_owner",
                             index=(people.index(inc["owner"]) + 1) if inc.get("owner") in people else 0)
        new_tlp = c2.selectbox("TLP", TLP, index=TLP.index(tlp), key="inc_tlp",
                               help="Who may see it: clear (anyone) … red (named recipients only).")
        new_pap = c3.selectbox("PAP", PAP, index=PAP.index(pap), key="inc_pap",
                               help="What may be done with it: clear (anything) … red (no action that shows).")
        if st.form_submit_button("Save", key="inc_case_save"):
            with shown("Owner and marking"):
                who = None if owner == "(nobody)" else owner
                if who != inc.get("owner"):
                    cached.fresh(assign, actor, incident_id, who)
                cached.fresh(mark, actor, incident_id, tlp=new_tlp, pap=new_pap)
                _refresh()

t_time, t_evi, t_obs, t_task, t_pb, t_notes, t_rep = st.tabs(
    ["Timeline", "Evidence", "Observables", "Tasks", "Playbook", "Notes", "Report"])
with t_time, shown("Timeline"):
    tl = cached.call(build_timeline, actor, incident_id)
    st.plotly_chart(charts.incident_timeline(tl), key="inc_tl_chart")
    st.dataframe(tl, hide_index=True)

with t_evi, shown("Evidence"):
    listed = cached.call(list_evidence, actor, incident_id, with_content=True)
    if not listed:
        st.caption("No evidence yet: add alerts from Triage and decision sets from Decisions.")
    else:
        items = pd.DataFrame([{**{k: v for k, v in i.items() if k not in ("content", "item_count")},
                               "size": size_text(i)} for i in listed])
        cols = [c for c in ("evidence_id", "kind", "label", "size", "added_at", "added_by", "role", "ref",
                            "event_start", "event_end", "sha256", "store_path") if c in items.columns]
        st.dataframe(items[cols + [c for c in items.columns if c not in cols]], hide_index=True,
                     key="inc_evidence_table")
    if inc["status"] != "closed":
        evidence_widgets.upload_evidence(actor, incident_id, key="inc_upload")
    if st.button("Re-hash the frozen evidence", key="inc_verify_evi"):
        res = pd.DataFrame(cached.fresh(verify_evidence, actor, incident_id))
        bad = res[~res.get("ok", pd.Series(True, index=res.index)).astype(bool)] if not res.empty else res
        (st.success if bad.empty else st.error)(
            f"{len(res) - len(bad)} of {len(res)} items match their recorded SHA-256.")
        st.dataframe(res, hide_index=True)

with t_obs, shown("Observables"):
    case_panels.observables(actor, inc)

with t_task, shown("Tasks"):
    case_panels.tasks(actor, inc)

with t_pb, shown("Playbook"):
    books = load_playbooks()
    attached = cached.call(playbook_progress, actor, incident_id)
    can_edit = actor.can("write:incidents") and inc["status"] != "closed"
    have = {p["playbook_id"] for p in attached}
    if can_edit and books:
        ranked = [r["playbook_id"] for r in cached.call(suggest_playbooks, actor, incident_id) if r.get("score")]
        options = [i for i in [*ranked, *sorted(books)] if i not in have]
        options = list(dict.fromkeys(options))
        if options:
            c1, c2 = st.columns([4, 1])
            pick = c1.selectbox("Attach a playbook", options, key=f"inc_pb_pick_{incident_id}",
                                format_func=lambda i: books[i].title + ("  ★ suggested" if i in ranked else ""))
            if c2.button("Attach", key=f"inc_pb_attach_{incident_id}"):
                cached.fresh(attach_playbook, actor, incident_id, pick)
                _refresh()
    if not attached:
        st.caption("No playbook attached yet." + ("" if can_edit else " An analyst can attach one."))
    for pb in attached:
        st.markdown(f"#### {pb['title']} · v{pb.get('attached_version') or pb.get('version')}")
        st.progress(pb["done"] / max(1, pb["total"]), text=f"{pb['done']} of {pb['total']} steps done")
        phase = None
        for step in pb["steps"]:
            if step.get("phase") != phase:
                phase = step.get("phase")
                st.markdown(f"**{PHASE_TITLES.get(phase, phase or 'Other')}**")
            who = f"  \n:gray[done by {step['by']} ({step.get('role')}) · {step['at']:%Y-%m-%d %H:%M} UTC]" \
                if step["done"] and step.get("by") and step.get("at") is not None else ""
            key = f"inc_step_{incident_id}_{pb['playbook_id']}_{step['step_id']}"
            label = widgets.step_label(step["text"]) if step.get("action") else step["text"]  # action shown below
            ticked = st.checkbox(label + who, value=step["done"], key=key, disabled=not can_edit)
            action = step.get("action") or {}
            if action.get("verb") == "view" and action.get("args"):
                target = PAGE_ALIASES.get(action["args"][0].lower())
                if target:
                    st.page_link(f"app_pages/{target}.py", label=f"Open {target.title()}", icon=":material/link:")
            elif action:
                st.caption(f"Workbench action: `{action.get('text')}`")
            if ticked != step["done"]:
                cached.fresh(set_playbook_step, actor, incident_id, pb["playbook_id"], step["step_id"], ticked)
                _refresh()

with t_notes, shown("Notes"):
    notes = [i for i in cached.call(list_evidence, actor, incident_id, kind="note", with_content=True)]
    for n in notes:
        content = n.get("content") or {}
        st.markdown(f"**{n.get('added_by')}** · {n.get('added_at'):%Y-%m-%d %H:%M} UTC  \n"
                    f"{content.get('text') if isinstance(content, dict) else content}")
    if actor.can("write:incidents"):
        with st.form("inc_note", clear_on_submit=True):
            text = st.text_area("Add a note", key="inc_note_text")
            if st.form_submit_button("Add note"):
                cached.fresh(add_note, actor, incident_id, text)
                _refresh()

with t_rep, shown("Report"):
    case_panels.writeup(actor, inc)  # executive summary, root cause, lessons, money at stake (report_writeup)
    fmt = st.segmented_control("Format", ["html", "md", "pdf"], default="html", key="inc_rep_fmt") or "html"
    if st.button("Build the report", key="inc_rep_build", icon=":material/description:"):
        with st.spinner("Rendering the report with its manifest of hashes…"):
            out = render_report(ws, actor, incident_id, fmt)
        data = out if isinstance(out, bytes) else out.encode("utf-8") if isinstance(out, str) else out["data"]
        st.session_state["inc_report"] = (incident_id, fmt, data)
    rep = st.session_state.get("inc_report")
    if rep and rep[0] == incident_id:
        mime = {"html": "text/html", "md": "text/markdown", "pdf": "application/pdf"}[rep[1]]
        st.download_button(f"Download {incident_id}.{rep[1]}", rep[2], file_name=f"{incident_id}.{rep[1]}",
                           mime=mime, type="primary", key="inc_rep_dl", icon=":material/download:")

if actor.can("close:incidents") and inc["status"] != "closed":
    with st.expander("Merge another incident into this one", icon=":material/call_merge:"), shown("Merge"):
        case_panels.merge(actor, inc, incidents)
