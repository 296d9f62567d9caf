"""Red team: attack a registered model offline with a budget, see the result charts, and whether the detectors
saw the attack's traffic (the coverage matrix per ATLAS technique)."""

from __future__ import annotations

import tempfile

import pandas as pd
import streamlit as st

from workbench.redteam import charts, report
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
    models = cached.call("workbench.explain.registry", "list_models", actor)
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
            run = cached.fresh("workbench.redteam", "run_attack", actor, system, attack, version=version,
                               budget=int(budget), seed=int(seed), emit_dir=out_dir)
            status.write(f"{run['queries']} queries in {run['seconds']:.1f} s")
            if out_dir:
                status.write("replaying the traffic through the detectors in a scratch copy")
                cached.fresh("workbench.redteam.coverage", "coverage", actor, out_dir)
            st.session_state["rt_selected"] = run["run_id"]
            status.update(label=f"{attack} done: {run['run_id']}", state="complete")

runs = []
with shown("Red-team runs"):
    runs = cached.fresh("workbench.redteam", "list_runs", actor, system)
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

st.subheader("Detection coverage")
st.plotly_chart(charts.coverage_matrix(report.coverage_rows(runs)), key="rt_matrix")
missed = [r for r in report.coverage_rows(runs) if r["fired"] == "MISSED"]
if missed:
    st.warning(f"{len(missed)} technique(s) of these attacks were not detected: see the report's findings.")
if actor.can("export"):
    with shown("Report"):
        body = cached.fresh("workbench.redteam.report", "render", actor, system, None, "html")
        st.download_button("Download the report (HTML)", body, file_name=f"redteam-{system}.html",
                           mime="text/html", key="rt_download")
