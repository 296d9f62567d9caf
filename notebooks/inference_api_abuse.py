# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Inference-API abuse
#
# How much of the input space one principal covers over time, against normal principals: the signature of model
# extraction through the inference API (ATLAS AML.T0024.002, AML.T0040).

# %%
import os

import numpy as np
import pandas as pd
import plotly.express as px

from workbench import cases, notebook
from workbench.detect import list_alerts
from workbench.explore import feature_types

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

# %% tags=["parameters"]
# Parameters (papermill-style tag "parameters"; environment variables work too).
WORKSPACE = os.environ.get("WORKBENCH_NOTEBOOK_DB") or None  # a workspace file; None builds a fresh demo workspace
SAMPLE = os.environ.get("WORKBENCH_NOTEBOOK_SAMPLE") or None  # sample folder for the fresh demo (default: sample_data/)
USER = os.environ.get("WORKBENCH_USER") or None  # account to act as when the workspace has accounts
PASSWORD = os.environ.get("WORKBENCH_PASSWORD") or None
SYSTEM = "loan-origination"
PRINCIPAL = None  # None: from the extraction alert
PEERS = 8
INCIDENT_ID = None

# %%
nb = notebook.open_session("notebooks/inference_api_abuse.ipynb", WORKSPACE, sample=SAMPLE, user=USER,
                           password=PASSWORD)
ws, actor = nb.ws, nb.actor
print(nb.describe())

# %% [markdown]
# ## 1. The principal
# The one given, else the principal of the most severe extraction alert, else the principal whose volume is
# furthest above its own median day.

# %%
if PRINCIPAL is None:
    ext = [a for a in list_alerts(ws, actor, system=SYSTEM, detector="extraction") if a["principal"]]
    if ext:
        PRINCIPAL = ext[0]["principal"]
    else:
        PRINCIPAL = nb.aggregate(
            "WITH d AS (SELECT principal, date_trunc('day', ts) AS day, count(*) AS n FROM decisions "
            "WHERE system_id = ? GROUP BY ALL) SELECT principal FROM d GROUP BY principal "
            "ORDER BY max(n) / (median(n) + 1) DESC LIMIT 1", [SYSTEM], why="pick a principal").iloc[0, 0]
print("principal under review:", PRINCIPAL)

# %% [markdown]
# ## 2. Coverage of the input space over time
# The three most varied numeric features are cut into ten equal-width bins over the 1st-99th percentile range of
# the traffic, giving 1,000 joint cells. Per principal and day we count the cells its queries touch, against the
# cells a real caller with the same number of queries would touch (expected from the traffic's own cell
# frequencies), and the share of values outside the 1st-99th percentile. Real callers ask about real applicants;
# an extractor sweeps.

# %%
numeric = [f for f, t in feature_types(ws, SYSTEM).items() if t == "number" and f != "hour"]
variety = nb.aggregate("SELECT " + ", ".join(f"approx_count_distinct(json_extract(features, '$.{f}'))"
                                             for f in numeric)
                       + " FROM decisions WHERE system_id = ?", [SYSTEM], why="feature variety").iloc[0]
dims = [numeric[i] for i in np.argsort(-variety.to_numpy(), kind="stable")[:3]]
vals = ", ".join(f"json_extract(features, '$.{f}')::DOUBLE AS v{i}" for i, f in enumerate(dims))
qs = ", ".join(f"quantile_cont(v{i}, [0.01, 0.99]) AS q{i}" for i in range(3))
binned = " + ".join(f"least(9, greatest(0, floor((v{i} - q{i}[1]) / greatest(q{i}[2] - q{i}[1], 1e-9) * 10)))::INT"
                    f" * {10 ** (2 - i)}" for i in range(3))
outside = " OR ".join(f"v{i} < q{i}[1] OR v{i} > q{i}[2]" for i in range(3))
cells = nb.aggregate(
    f"WITH x AS (SELECT principal, date_trunc('day', ts) AS day, {vals} FROM decisions "
    f"           WHERE system_id = ? AND status = 'ok'), "
    f"q AS (SELECT {qs} FROM x), "
    f"c AS (SELECT principal, day, {binned} AS cell, ({outside})::INT AS outside FROM x, q "
    f"      WHERE v0 IS NOT NULL AND v1 IS NOT NULL AND v2 IS NOT NULL) "
    f"SELECT principal, day, cell, count(*) AS n, sum(outside) AS outside FROM c GROUP BY ALL",
    [SYSTEM], why=f"input-space cells of {', '.join(dims)} per principal and day")
normal = cells[cells["principal"] != PRINCIPAL]  # what real callers ask about
p_cell = (normal.groupby("cell")["n"].sum() / normal["n"].sum()).to_numpy()
daily = cells.groupby(["principal", "day"]).agg(queries=("n", "sum"), cells=("cell", "nunique"),
                                                outside=("outside", "sum")).reset_index()
daily["expected_cells"] = [float((1 - (1 - p_cell) ** n).sum()) for n in daily["queries"]]
daily["coverage_ratio"] = daily["cells"] / daily["expected_cells"]
seen = cells.sort_values("day").groupby(["principal", "day"])["cell"].apply(set)
daily["cumulative_cells"] = [len(set().union(*seen.loc[pr].loc[:d].tolist())) for pr, d in
                             zip(daily["principal"], daily["day"], strict=True)]
peers = (daily[daily["principal"] != PRINCIPAL].groupby("principal")["queries"].sum()
         .sort_values(ascending=False).head(PEERS).index.tolist())
view = daily[daily["principal"].isin([PRINCIPAL, *peers])]
view = view.assign(who=view["principal"].where(view["principal"] == PRINCIPAL, "peer: " + view["principal"]))
print("cells from ten bins each of", dims)
view.pivot_table(index="day", columns="principal", values="coverage_ratio").round(2)

# %%
fig = px.line(view, x="day", y="coverage_ratio", color="who", markers=True,
              title=f"Cells touched / cells a real caller would touch: {PRINCIPAL} against {len(peers)} busy peers")
fig.add_hline(y=1.0, line_dash="dot")
fig

# %%
px.line(view, x="day", y="cumulative_cells", color="who", markers=True,
        title="Cumulative input-space cells touched (of 1,000)")

# %%
me = daily[daily["principal"] == PRINCIPAL]
others = daily[daily["principal"].isin(peers)]
summary = pd.DataFrame({
    "queries per active day": [me["queries"].mean(), others.groupby("principal")["queries"].mean().median()],
    "coverage ratio (max day)": [me["coverage_ratio"].max(),
                                 others.groupby("principal")["coverage_ratio"].max().median()],
    "outside 1-99th pct": [me["outside"].sum() / max(me["queries"].sum(), 1),
                           others["outside"].sum() / max(others["queries"].sum(), 1)],
}, index=[PRINCIPAL, "median peer"]).round(3)
summary

# %% [markdown]
# ## 3. Findings into the incident
# The incident named in the parameters, else the open incident about this principal, else a new one when the
# principal sweeps far more of the space than its peers.

# %%
ratio = summary.iloc[0]["coverage ratio (max day)"] / max(summary.iloc[1]["coverage ratio (max day)"], 1e-6)
if INCIDENT_ID is None:
    mine = [i for i in cases.list_incidents(ws, actor, open_only=True) if PRINCIPAL in i["title"]]
    if mine:
        INCIDENT_ID = mine[0]["incident_id"]
    elif ratio >= 1.5:
        INCIDENT_ID = cases.create_incident(
            ws, actor, f"Inference-API abuse by {PRINCIPAL} on {SYSTEM}", "high", systems=[SYSTEM],
            atlas=["AML.T0040", "AML.T0024.002"], description="opened from the inference-API abuse notebook",
        )["incident_id"]
if INCIDENT_ID is not None:
    note = nb.file_finding(
        INCIDENT_ID, "Inference-API abuse",
        f"on its broadest day {PRINCIPAL} touched {summary.iloc[0]['coverage ratio (max day)']:.1f}x the "
        f"input-space cells ({', '.join(dims)}) that a real caller with as many queries would, against "
        f"{summary.iloc[1]['coverage ratio (max day)']:.1f}x for the median of the {len(peers)} busiest peers; "
        f"{summary.iloc[0]['outside 1-99th pct']:.0%} of its queries lie outside the 1st-99th percentile of "
        f"real traffic (peers {summary.iloc[1]['outside 1-99th pct']:.1%}).")
    print(f"note #{note['evidence_id']} added to {INCIDENT_ID}")
else:
    print(f"{PRINCIPAL} covers the input space like its peers ({ratio:.1f}x): nothing to add")
