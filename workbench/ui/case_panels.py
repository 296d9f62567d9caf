"""The Incidents page's case-work panels: observables with their sightings (linked), tasks with people and due
times, merging another incident in, and the report's analyst write-up."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pandas as pd
import streamlit as st

from workbench.access import Actor
from workbench.cases.incidents import assignable_users
from workbench.cases.merge import merge_incidents
from workbench.cases.observables import add_observable, list_observables, mark_observable
from workbench.cases.report_writeup import get as get_writeup
from workbench.cases.report_writeup import write as write_writeup
from workbench.cases.tasks import add_task, list_tasks, tasks_from_playbook, update_task
from workbench.ui import cached, connection

TYPES = ["principal", "ip", "api_key", "model_sha256", "decision_id", "feature_value", "url", "email", "other"]
TLP = ["clear", "green", "amber", "amber+strict", "red"]
TASK_STATUSES = ["todo", "in_progress", "done", "cancelled"]
NOBODY = "(nobody)"
_MAX_LINKS = 20


def _refresh() -> None:
    connection.data_changed()
    st.rerun()


def _go_incident(incident_id: str) -> None:
    st.session_state["inc_selected"] = incident_id
    st.rerun()


def _go_alert(alert_id: str) -> None:
    st.session_state["tr_alert"] = alert_id
    st.switch_page("app_pages/triage.py")


def _sightings_text(seen: list[dict[str, Any]]) -> str:
    parts = []
    for s in seen:
        if s["kind"] == "decisions":
            parts.append(f"{s.get('n', 0):,} decisions of {s.get('system_id')}")
    n_inc = sum(1 for s in seen if s["kind"] == "incident")
    n_al = sum(1 for s in seen if s["kind"] == "alert")
    parts += [f"{n_inc} other incident(s)"] if n_inc else []
    parts += [f"{n_al} other alert(s)"] if n_al else []
    return "; ".join(parts)


def observables(actor: Actor, inc: dict[str, Any]) -> None:
    """Observables table, the incidents and alerts they are also seen in (as links), add and mark forms."""
    iid = inc["incident_id"]
    obs = cached.call(list_observables, actor, iid)
    can = actor.can("write:incidents") and inc["status"] != "closed"
    if not obs:
        st.caption("No observables yet: they come from the alerts and decisions in the evidence, or add one below.")
    else:
        table = pd.DataFrame([{"type": o["type"], "value": o["value"], "tlp": o["tlp"], "source": o["source"],
                               "first_seen": o["first_seen"], "last_seen": o["last_seen"],
                               "sightings": _sightings_text(o["sightings"]), "note": o["note"]} for o in obs])
        st.dataframe(table, hide_index=True, key="inc_obs_table")
        links: dict[tuple[str, str], dict[str, Any]] = {}
        for o in obs:
            for s in o["sightings"]:
                if s["kind"] in ("incident", "alert"):
                    entry = links.setdefault((s["kind"], s["id"]), {**s, "shared": []})
                    entry["shared"].append(f"{o['type']} {o['value']}")
        if links:
            st.markdown("**Also seen in**")
            for (kind, ident), s in sorted(links.items(), key=lambda kv: (kv[0][0] != "incident", -len(
                    kv[1]["shared"]), kv[0][1]))[:_MAX_LINKS]:
                shared = ", ".join(s["shared"][:3]) + (f" and {len(s['shared']) - 3} more" if len(s["shared"]) > 3
                                                       else "")
                c1, c2 = st.columns([1.3, 4])
                what = f"{kind} {ident}"
                if c1.button(what, key=f"inc_obs_link_{kind}_{ident}", type="tertiary", icon=":material/link:"):
                    (_go_incident if kind == "incident" else _go_alert)(ident)
                when = s.get("first")
                c2.caption(f"{s.get('detail') or ''} · {when:%Y-%m-%d %H:%M} UTC · shares {shared}"
                           if isinstance(when, datetime) else f"shares {shared}")
        if can:
            with st.form("inc_obs_mark"):
                labels = [f"{o['type']}: {o['value']}" for o in obs]
                c1, c2, c3 = st.columns([3, 1, 3])
                pick = c1.selectbox("Observable", range(len(obs)), format_func=lambda i: labels[i],
                                    key="inc_obs_pick")
                level = c2.selectbox("TLP", TLP, index=TLP.index(obs[0]["tlp"]), key="inc_obs_tlp")
                note = c3.text_input("Note", key="inc_obs_note")
                if st.form_submit_button("Mark", key="inc_obs_mark_go"):
                    o = obs[pick]
                    cached.fresh(mark_observable, actor, iid, o["type"], o["value"], tlp=level,
                                 note=note or None)
                    _refresh()
    if can:
        with st.form("inc_obs_add", clear_on_submit=True):
            c1, c2, c3 = st.columns([1.3, 3, 1])
            kind = c1.selectbox("Type", TYPES, key="inc_obs_new_type")
            value = c2.text_input("Value (a feature_value as feature=value)", key="inc_obs_new_value")
            level = c3.selectbox("TLP", TLP, index=TLP.index(inc.get("tlp") or "amber"), key="inc_obs_new_tlp")
            note = st.text_input("Note", key="inc_obs_new_note")
            if st.form_submit_button("Add observable", key="inc_obs_add_go"):
                cached.fresh(add_observable, actor, iid, kind, value, tlp=level, note=note)
                _refresh()


def _due(day: Any, at: time | None) -> str | None:
    if not day:
        return None
    return datetime.combine(day, at or time(17, 0), tzinfo=UTC).isoformat()


def tasks(actor: Actor, inc: dict[str, Any]) -> None:
    """Tasks table with assignee, status and due; add, update, and tasks from the attached playbooks."""
    iid = inc["incident_id"]
    rows = cached.call(list_tasks, actor, iid)
    can = actor.can("write:incidents") and inc["status"] != "closed"
    if rows:
        st.dataframe(pd.DataFrame(rows)[["task_id", "status", "title", "assignee", "due", "overdue", "source",
                                         "updated_by", "updated_at"]], hide_index=True, key="inc_task_table")
        late = sum(1 for r in rows if r["overdue"])
        if late:
            st.warning(f"{late} task(s) past due.", icon=":material/schedule:")
    else:
        st.caption("No tasks yet.")
    if not can:
        return
    people = [NOBODY, *cached.call(assignable_users, actor)]
    with st.form("inc_task_add", clear_on_submit=True):
        title = st.text_input("New task", key="inc_task_title")
        c1, c2, c3 = st.columns(3)
        who = c1.selectbox("Assignee", people, key="inc_task_assignee")
        day = c2.date_input("Due date", value=None, key="inc_task_due_day")
        at = c3.time_input("Due time (UTC)", value=None, key="inc_task_due_time")
        if st.form_submit_button("Add task", key="inc_task_add_go"):
            cached.fresh(add_task, actor, iid, title, assignee=None if who == NOBODY else who,
                         due=_due(day, at))
            _refresh()
    if rows:
        with st.form("inc_task_update"):
            by_id = {r["task_id"]: r for r in rows}
            c0, c1, c2, c3 = st.columns([3, 1.4, 1.4, 1.4])
            tid = c0.selectbox("Task", list(by_id), key="inc_task_pick",
                               format_func=lambda t: f"#{t} {str(by_id[t]['title'])[:60]}")
            status = c1.selectbox("Status", TASK_STATUSES, key="inc_task_status")
            who = c2.selectbox("Assignee", ["(unchanged)", *people], key="inc_task_new_assignee")
            day = c3.date_input("Due date", value=None, key="inc_task_new_due")
            if st.form_submit_button("Update task", key="inc_task_update_go"):
                cached.fresh(update_task, actor, tid, status=status,
                             assignee=None if who == "(unchanged)" else ("-" if who == NOBODY else who),
                             due=_due(day, None))
                _refresh()
    if st.button("Tasks from the attached playbooks", key="inc_task_from_pb", icon=":material/checklist:"):
        made = cached.fresh(tasks_from_playbook, actor, iid)
        st.success(f"{len(made)} task(s) added from the playbook steps.")
        connection.data_changed()


def merge(actor: Actor, inc: dict[str, Any], listing: pd.DataFrame) -> None:
    """Pick another open incident and fold it into this one."""
    others = [i for i in listing.to_dict("records") if i["incident_id"] != inc["incident_id"]
              and i["status"] != "closed"]
    if not others:
        st.caption("No other open incident to merge.")
        return
    titles = {i["incident_id"]: str(i["title"]) for i in others}
    st.caption("Its evidence (with hashes), observables, tasks and playbook steps are copied here; it is then "
               "closed and points to this incident. Both audit chains record the merge.")
    other = st.selectbox("Incident to merge in", list(titles), key="inc_merge_pick",
                         format_func=lambda i: f"{i} · {titles[i][:50]}")
    note = st.text_input("Why they are one incident", key="inc_merge_note")
    if st.button(f"Merge into {inc['incident_id']}", key="inc_merge_go", icon=":material/call_merge:"):
        cached.fresh(merge_incidents, actor, inc["incident_id"], other, note or None)
        _refresh()


WRITEUP_TEXTS = (("exec_summary", "Executive summary",
                  "Replaces the generated summary at the top of the report (Markdown)."),
                 ("root_cause", "Root cause", "The analyst's finding, above the detectors' evidence (Markdown)."),
                 ("lessons", "Lessons", "What to change so it does not happen again (Markdown)."))


def writeup(actor: Actor, inc: dict[str, Any]) -> None:
    """The report's analyst write-up: executive summary, root cause, lessons, the money feature and its note."""
    iid = inc["incident_id"]
    current = cached.fresh(get_writeup, actor, iid)
    if not actor.can("write:incidents"):
        for field, label, _ in WRITEUP_TEXTS:
            st.markdown(f"**{label}**")
            st.text(current.get(field) or "not written yet")
        return
    with st.expander("Write-up for the report", icon=":material/edit_note:",
                     expanded=not any(current.values())), st.form(f"inc_writeup_{iid}"):
        values = {field: st.text_area(label, value=current.get(field) or "", help=help_, key=f"inc_wu_{field}")
                  for field, label, help_ in WRITEUP_TEXTS}
        c1, c2 = st.columns([1, 2])
        values["amount_feature"] = c1.text_input(
            "Money feature", value=current.get("amount_feature") or "", key="inc_wu_amount_feature",
            help="The decision feature that holds money at stake (e.g. loan_amount): the impact section sums it.")
        values["amount_note"] = c2.text_input(
            "What the figure is", value=current.get("amount_note") or "", key="inc_wu_amount_note",
            help="e.g. 'requested loan amounts, SGD; not losses'.")
        if st.form_submit_button("Save write-up", key=f"inc_wu_save_{iid}"):
            after = cached.fresh(write_writeup, actor, iid, **values)  # '' clears a field; audited
            st.session_state["inc_wu_saved"] = (iid, sum(bool(after.get(k)) for k in values))
            _refresh()
    saved = st.session_state.get("inc_wu_saved")
    if saved and saved[0] == iid:
        st.success(f"Write-up saved ({saved[1]} of 5 fields filled); the next report shows it.")
