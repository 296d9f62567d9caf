# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Drill after-action analysis
#
# The score of a tabletop drill, what happened against what the team did on one timeline, and the after-action
# report filed as evidence. Runs on a drill workspace (`workbench drill start`), never on a real one.

# %%
import os
from pathlib import Path

import pandas as pd
import plotly.express as px

from workbench import cases, notebook
from workbench.drills import session
from workbench.drills.report import timeline, write_report
from workbench.drills.scoring import score
from workbench.drills.workspace import require_drill, scenario_of, truth_of

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

# %% tags=["parameters"]
# Parameters (tag "parameters"; environment variables work too).
USER = os.environ.get("WORKBENCH_USER") or None
PASSWORD = os.environ.get("WORKBENCH_PASSWORD") or None
DRILL = os.environ.get("WORKBENCH_NOTEBOOK_DRILL") or None  # a drill workspace; None builds a fresh one
SCENARIO = "extraction-broker-sweep"  # scenario for the fresh drill
OUT_DIR = os.environ.get("WORKBENCH_NOTEBOOK_OUT") or None  # where the after-action report goes

# %%
built_here = not DRILL
if built_here:  # a fresh drill, started with the CLI in its own process (as a facilitator would)
    DRILL = notebook.fresh_drill_workspace(SCENARIO)
ws, actor = notebook.open_as_user(DRILL, user=USER, password=PASSWORD)
require_drill(ws)
scenario = scenario_of(ws)
print(f"drill {scenario.id} ({scenario.title}) in {ws.path}; acting as {actor.user} ({actor.role})")

# %%
if built_here:  # a drill built just now has no team activity yet: transcribe two demo answers
    t0 = session.clock(ws)["started_at"]
    truth = truth_of(ws, actor)
    first = next(iter(truth["incidents"].values()))
    session.answer(ws, actor, scenario.questions[0].id, ", ".join(first["principals"]) or "unknown",
                   participant="demo-analyst", at=t0 + pd.Timedelta(minutes=14))
    session.answer(ws, actor, scenario.questions[-1].id, "block it", participant="demo-lead",
                   at=t0 + pd.Timedelta(minutes=30))

# %% [markdown]
# ## 1. The score

# %%
sc = score(ws, actor)
parts = pd.DataFrame([
    {"part": "questions", "points": sum(q["points"] for q in sc.questions),
     "max": sum(q["max_points"] for q in sc.questions)},
    {"part": "time to detect", "points": sc.time_to_detect["points"], "max": sc.time_to_detect["max_points"]},
    {"part": "playbook steps", "points": sc.playbook_steps["points"], "max": sc.playbook_steps["max_points"]},
    {"part": "evidence", "points": sc.evidence["points"], "max": sc.evidence["max_points"]},
])
print(f"{sc.total:g} / {sc.max_points:g} ({sc.percent:g}%); time to detect: "
      f"{sc.time_to_detect['elapsed'] or 'not detected'} {sc.time_to_detect['via'] or ''}")
parts

# %%
answers = pd.DataFrame(sc.questions)[["id", "text", "expected", "answer", "participant", "points", "max_points",
                                      "verdict", "detail"]]
answers

# %%
pd.DataFrame(sc.participants)

# %% [markdown]
# ## 2. What happened against what the team did
# Ground truth and detector events sit at their time in the scenario's data (T+0 is when the team was called
# in); team events at their drill time.

# %%
events = pd.DataFrame(timeline(ws, scenario, truth_of(ws, actor), sc))
events["hours"] = events["offset_s"] / 3600
fig = px.scatter(events, x="hours", y="lane", color="lane", hover_data=["what", "who"],
                 title="Drill timeline (hours from T+0)")
fig.add_vline(x=0, line_dash="dash")
fig

# %%
events.assign(T=events["offset_s"].map(lambda s: f"{s / 60:+.0f} min"))[["T", "lane", "what", "who"]]

# %% [markdown]
# ## 3. Lessons, as numbers
# Which questions cost the most points, and how long the team took per question after the clock started.

# %%
answers.assign(lost=answers["max_points"] - answers["points"]).sort_values("lost", ascending=False)[
    ["id", "verdict", "lost", "detail"]]

# %% [markdown]
# ## 4. The after-action report, into the record
# The md and html reports are written; the html one becomes file evidence on the team's incident when there is
# one.

# %%
out = Path(OUT_DIR) if OUT_DIR else ws.path.parent
md = write_report(ws, actor, "md", out / f"{scenario.id}-after-action.md")
html = write_report(ws, actor, "html", out / f"{scenario.id}-after-action.html")
print(md["path"], html["path"])
team_incidents = cases.list_incidents(ws, actor)
if team_incidents:
    item = cases.add_file(ws, actor, team_incidents[-1]["incident_id"], html["path"],
                          label="drill after-action report")
    print(f"report added to {team_incidents[-1]['incident_id']} as evidence #{item['evidence_id']}")
