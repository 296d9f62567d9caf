"""Drill facilitator: the inject clock, releasing injects, the answers as they come, the live score, the report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench.drills import session
from workbench.drills.grading import JUDGED_KINDS
from workbench.drills.report import write_report
from workbench.drills.roles import may_see_facilitator_view
from workbench.drills.scoring import score
from workbench.drills.workspace import is_drill, scenario_of
from workbench.ui.errors import shown
from workbench.ui.state import context, require_page

ws, actor = context()
st.title("Drill: facilitator")
if not is_drill(ws):
    st.info("This page is for drill workspaces (`workbench drill start SCENARIO`); this workspace is a real one.")
    st.stop()
require_page(actor, "facilitate:drills", "facilitate a drill")
if not may_see_facilitator_view(actor):
    st.warning("This app serves participants: the facilitator's view (expected answers, live score) is not shown. "
               "Facilitators sign in with an account that may facilitate drills, or start their own app with "
               "WORKBENCH_DRILL_ROLE=facilitator.", icon="🔒")
    st.stop()
scenario = scenario_of(ws)
st.subheader(scenario.title)
st.caption(f"{scenario.summary}  ·  {scenario.difficulty}, about {scenario.duration_minutes} min  ·  "
           f"injects released {'by the clock' if scenario.release == 'timed' else 'by hand'}")
with st.expander("Story (what participants read)"):
    st.markdown(scenario.story)
with st.expander("Facilitator notes"):
    st.markdown(scenario.body or "None.")


@st.fragment(run_every=5)
def clock_and_injects() -> None:
    """The clock and the inject list, refreshed every few seconds."""
    with shown("Clock"):
        c = session.clock(ws)
        if not c["started"]:
            st.info("The drill has not started: no inject is out and no answer is taken. Start the session when "
                    "the participants are ready; T+0 is that moment.")
            if st.button("Start the session", key="drill_start", type="primary"):
                session.start_clock(ws, actor)
                st.rerun()
            return
        c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
        c1.metric("Drill time", c["elapsed"] + (" (paused)" if c["paused"] else ""),
                  help=f"clock started {c['started_at']:%Y-%m-%d %H:%M:%S} UTC")
        if c2.button("Restart clock", key="drill_restart", help="T+0 is now; answers keep their times"):
            session.start_clock(ws, actor)
            st.rerun()
        if c["paused"]:
            if c3.button("Resume", key="drill_resume", type="primary"):
                session.resume_clock(ws, actor)
                st.rerun()
        elif c3.button("Pause", key="drill_pause"):
            session.pause_clock(ws, actor)
            st.rerun()
        injects = session.injects(ws, actor)
        st.markdown("#### Injects")
        for inj in injects:
            cols = st.columns([1, 6, 2])
            cols[0].markdown(f"**{inj['at']}**")
            state = (f"released by {inj['released_by']}" if inj["released"]
                     else ("due" if inj["due"] else "waiting"))
            cols[1].markdown(f"**{inj['title'] or 'Inject ' + str(inj['n'])}** ({state})  \n{inj['text']}")
            if not inj["released"] and cols[2].button("Release now", key=f"drill_release_{inj['n']}"):
                session.release_inject(ws, actor, inj["n"])
                st.rerun()


@st.fragment(run_every=5)
def answers_and_score() -> None:
    """Answers as they come, marked, and the live score."""
    with shown("Answers"):
        sc = score(ws, actor)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Score", f"{sc.total:g} / {sc.max_points:g}", f"{sc.percent:g}%")
        t = sc.time_to_detect
        m2.metric("Time to detect", t["elapsed"] or "not yet", help=t["via"] or None)
        m3.metric("Playbook steps", sc.playbook_steps["count"], f"{sc.playbook_steps['points']:g} pts")
        m4.metric("Evidence (relevant)", sc.evidence["relevant"], f"{sc.evidence['points']:g} pts")
        st.markdown("#### Questions (latest answer per question is scored)")
        st.dataframe(pd.DataFrame(sc.questions)[["id", "text", "answer", "participant", "points", "max_points",
                                                 "verdict", "expected", "detail"]], hide_index=True)
        free = [q for q in sc.questions if q["kind"] in JUDGED_KINDS and q["answer"]]
        if free:
            st.markdown("#### Free-text answers to mark")
            for q in free:
                with st.form(f"drill_mark_{q['id']}"):
                    st.markdown(f"**{q['id']}**: {q['answer']}  \n*{q['detail']}*")
                    pts = st.number_input("Points", 0.0, float(q["max_points"]), float(q["points"]), 0.5,
                                          key=f"drill_mark_pts_{q['id']}")
                    note = st.text_input("Note", key=f"drill_mark_note_{q['id']}")
                    if st.form_submit_button("Mark"):
                        session.mark_answer(ws, actor, q["id"], pts, note)
                        st.rerun()
        rows = session.all_answers(ws, actor)
        st.markdown(f"#### All answers ({len(rows)})")
        if rows:
            st.dataframe(pd.DataFrame(rows)[["elapsed", "participant", "question_id", "answer", "recorded_by"]]
                         .iloc[::-1], hide_index=True)
        else:
            st.caption("No answers yet.")


clock_and_injects()
st.divider()
answers_and_score()
st.divider()
st.markdown("#### After-action report")
fmt = st.radio("Format", ["html", "pdf", "md"], horizontal=True, key="drill_report_fmt")
if st.button("Build the report", key="drill_report_build"):
    with shown("Report"):
        out = ws.path.with_name(f"{ws.path.stem}-after-action.{fmt}")
        r = write_report(ws, actor, fmt, out)
        st.success(f"Report written to {r['path']} (sha256 {r['sha256'][:12]}).")
        st.download_button("Download", out.read_bytes(), file_name=out.name,
                           mime={"html": "text/html", "pdf": "application/pdf"}.get(fmt, "text/markdown"),
                           key="drill_report_dl")
