"""Red team: attack a registered model offline with a budget, see the result charts, and whether the detectors
saw the attack's traffic (the coverage matrix per ATLAS technique)."""

from __future__ import annotations

import tempfile

import pandas as pd
import streamlit as st

from workbench.explain.registry import list_models
from workbench.redteam import charts, list_runs, report, run_attack
from workbench.redteam.coverage import coverage
from workbench.ui import cached
from workbench.ui.errors import shown
from workbench.ui.state import context

ATTACKS = ["evasion", "extraction", "probing", "backdoor-scan"]

ws, actor = context()
st.title("Red team")
st.caption("Attack your own registered model (never a live endpoint): evasion, extraction, probing and a "
           "backdoor scan within a query budget, deterministic with a seed. With the coverage step the attack's "
           "queries are replayed as decision logs into a scratch copy of the workspace and the detectors run on "
           "them: a technique nobody flagged is a finding.")

models = []
with shown("Registered models"):
    models = cached.call(list_models, actor)
systems = sorted({m["system_id"] for m in models if m.get("stored_path")})
if not systems:
    st.info("No registered model to attack yet: add one with `workbench model add PATH --system S --version V`.")
    st.stop()

c1, c2, c3 = st.columns([2, 1, 2])
system = c1.selectbox("System", systems, key="rt_system")
versions = [m["version"] for m in models if m["system_id"] == system and m.get("stored_path")]
version = c2.selectbox("Version", versions, index=len(versions) - 1, key="rt_version")
attack = c3.selectbox("Attack", ATTACKS, key="rt_attack")
c4, c5, c6 = st.columns([1, 1, 2])
budget = c4.number_input("Budget (queries)", min_value=50, max_value=50_000, value=2000, step=500, key="rt_budget")
seed = c5.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, key="rt_seed")
check = c6.checkbox("Also check detection coverage", value=True, key="rt_cov",
                    help="Emit the attack as decision logs and run the detectors on a scratch copy.")

can_run = actor.can("read:decisions") and actor.can("write:models")
if not can_run:
    st.caption("Running an attack needs the analyst, lead or admin role; you can read past runs below.")
elif st.button("Run attack", type="primary", key="rt_run"):
    with st.status(f"Running {attack} on {system} {version}…", expanded=True) as status:
        with shown("Red-team run"):
            out_dir = tempfile.mkdtemp(prefix="wb-redteam-app-") if check else None
            status.write("learning the feature space and attacking the registered artifact")
            bar = st.progress(0.0, text=f"0 of {int(budget):,} queries")
            shown_pct = [-1]

            def tick(used: int, total: int) -> None:
                """Move the bar when the share of the budget used changes by a percent (not on every batch)."""
                pct = min(100, 100 * used // max(total, 1))
                if pct != shown_pct[0]:
                    shown_pct[0] = pct
                    bar.progress(pct / 100, text=f"{used:,} of {total:,} queries")

            run = cached.fresh(run_attack, actor, system, attack, version=version,
                               budget=int(budget), seed=int(seed), emit_dir=out_dir, progress=tick)
            bar.progress(min(1.0, run["queries"] / max(int(budget), 1)),
                         text=f"{run['queries']:,} of {int(budget):,} queries used")
            status.write(f"{run['queries']} queries in {run['seconds']:.1f} s")
            if out_dir:
                status.write("replaying the traffic through the detectors in a scratch copy")
                cached.fresh(coverage, actor, out_dir)
            st.session_state["rt_selected"] = run["run_id"]
            status.update(label=f"{attack} done: {run['run_id']}", state="complete")

runs = []
with shown("Red-team runs"):
    runs = cached.fresh(list_runs, actor, system)
if not runs:
    st.info("No red-team runs for this system yet.")
    st.stop()

st.subheader("Runs")
st.dataframe(pd.DataFrame([report.headline(r) for r in runs]), hide_index=True, key="rt_runs")
ids = [r["run_id"] for r in runs]
pick = st.selectbox("Run", ids, index=ids.index(st.session_state.get("rt_selected")) if
                    st.session_state.get("rt_selected") in ids else 0, key="rt_pick")
run = runs[ids.index(pick)]
if run["attack"] == "evasion":
    a, b = st.columns(2)
    a.plotly_chart(charts.success_vs_queries(run), key="rt_success")
    b.plotly_chart(charts.feature_changes(run), key="rt_changes")
elif run["attack"] == "extraction":
    st.plotly_chart(charts.fidelity_curve(run), key="rt_fidelity")
elif run["attack"] == "probing":
    st.plotly_chart(charts.sweeps(run), key="rt_sweeps")
else:
    flagged = (run.get("result") or {}).get("flagged") or []
    st.dataframe(pd.DataFrame([{k: c.get(k) for k in ("feature", "value", "flip_rate", "neighbour_flip_rate",
                                                        "direction", "z")} for c in flagged]),
                 hide_index=True, key="rt_flagged")
    if not flagged:
        st.success("No single feature value flips decisions far more often than its neighbours.")

if actor.can("facilitate:drills") and actor.can("read:decisions") and actor.can("export"):
    with st.expander("Drill: train the team on this attack"):
        st.caption("Builds a separate drill workspace: this run's emitted traffic, disguised, inside the normal "
                   "traffic it was emitted with, with questions generated from the run (who attacked, which ATLAS "
                   "technique, for evasion the feature moved most). Its clock waits for the facilitator.")
        if not run.get("emit_dir"):
            st.info("This run kept no traffic: run the attack with 'Also check detection coverage' to start a "
                    "drill from it.")
        else:
            rebuild = st.checkbox("Rebuild it if it exists (its answers are lost)", key="rt_drill_force")
            if st.button("Start a drill from this run", key="rt_drill"):
                from workbench.drills.from_redteam import start_drill_from_redteam

                with shown("Drill"), st.spinner("Building the drill workspace…"):
                    info = cached.fresh(start_drill_from_redteam, actor, run["run_id"], ws.path.parent / "drills",
                                        force=rebuild)
                    st.success(f"Drill {info.scenario_id} ready: {info.path} ({info.decisions:,} decisions, "
                               f"{info.alerts} alerts). Open it with `WORKBENCH_DB={info.path} "
                               f"WORKBENCH_DRILL_ROLE=facilitator streamlit run workbench`; "
                               "the participants' app takes WORKBENCH_DRILL_ROLE=participant.")

st.subheader("Detection coverage")
st.plotly_chart(charts.coverage_matrix(report.coverage_rows(runs)), key="rt_matrix")
missed = [r for r in report.coverage_rows(runs) if r["fired"] == "MISSED"]
if missed:
    st.warning(f"{len(missed)} technique(s) of these attacks were not detected: see the report's findings.")
if actor.can("export"):
    with shown("Report"):
        body = cached.fresh(report.render, actor, system, None, "html")
        st.download_button("Download the report (HTML)", body, file_name=f"redteam-{system}.html",
                           mime="text/html", key="rt_download")
