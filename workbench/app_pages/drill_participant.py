"""Drill participant: the story, the injects released so far, and answering the questions."""

from __future__ import annotations

import streamlit as st

from workbench.drills import session
from workbench.drills.workspace import is_drill, scenario_of
from workbench.ui.errors import shown
from workbench.ui.state import context, require_page

ws, actor = context()
st.title("Drill")
if not is_drill(ws):
    st.info("This page is for drill workspaces (`workbench drill start SCENARIO`); this workspace is a real one.")
    st.stop()
require_page(actor, "run:drills", "take part in a drill")
scenario = scenario_of(ws)
st.subheader(scenario.title)
st.markdown(scenario.story)
st.caption("Investigate with the normal pages (Triage, Decisions, Incidents, Playbooks) and answer below. "
           "Your latest answer to a question is the one that counts. Where a question asks for a principal, a "
           "technique id, a feature, a version, an address or a hash, answer with exactly that (several: separate "
           "them with commas); anything else in the answer counts as a wrong name.")
if not session.started(ws):
    st.info("The facilitator has not started the drill yet. This page fills in when the session starts.")
    st.button("Check again", key="drill_wait")
    st.stop()


@st.fragment(run_every=10)
def injects() -> None:
    """What participants have been told so far, newest first (refreshed every few seconds)."""
    with shown("Injects"):
        c = session.clock(ws)
        current = session.current_injects(ws, actor)
        st.markdown(f"#### What you know ({c['elapsed']}{', paused' if c['paused'] else ''})")
        for inj in reversed(current):
            with st.container(border=True):
                st.markdown(f"**{inj['at']} · {inj['title'] or 'Update'}**  \n{inj['text']}")


injects()
st.divider()
st.markdown("#### Questions")
participant = st.text_input("Answering as", value=actor.user, key="drill_participant",
                            help="Answering for someone else needs the facilitator's role.")
mine = {}
with shown("Your answers"):
    for a in session.my_answers(ws, actor):
        mine[a["question_id"]] = a
for q in scenario.questions:
    with st.form(f"drill_q_{q.id}"):
        st.markdown(f"**{q.id}** ({q.points:g} pts) {q.text}")
        if q.hint:
            st.caption(q.hint)
        if q.kind == "choice":
            text = st.radio("Answer", q.options, key=f"drill_a_{q.id}", index=None)
        else:
            text = st.text_area("Answer", key=f"drill_a_{q.id}", height=68,
                                placeholder={"time": "e.g. 2026-10-02 09:30 (UTC)",
                                             "atlas": "technique id(s) only, e.g. AML.T0000",
                                             "principal": "principal id(s) only, comma-separated",
                                             "feature": "feature name only", "version": "version id only",
                                             "ip": "IP address(es) only", "artifact": "SHA-256 (12+ characters)",
                                             "number": "a number"}.get(q.kind, ""))
        if q.id in mine:
            st.caption(f"Your latest answer: {mine[q.id]['answer']}")
        if st.form_submit_button("Submit"):
            with shown("Answer"):
                r = session.answer(ws, actor, q.id, text or "", participant=participant)
                st.success(f"Recorded at {r['elapsed']}.")
