# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Attribution forensics
#
# Attribution drift across model versions, a hunt for a backdoor trigger, and replay of the suspect decisions
# under the previous version.

# %%
import os

import numpy as np
import pandas as pd
from IPython.display import display

from workbench import cases, explore, notebook
from workbench.charts_explain import alert_vs_baseline
from workbench.detect import get_alert, list_alerts
from workbench.explain import explain_decisions, registry
from workbench.explain.attribution import attribution_drift
from workbench.explain.replay import replay

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

# %% tags=["parameters"]
# Parameters (papermill-style tag "parameters"; environment variables work too).
WORKSPACE = os.environ.get("WORKBENCH_NOTEBOOK_DB") or None  # a workspace file; None builds a fresh demo workspace
SAMPLE = os.environ.get("WORKBENCH_NOTEBOOK_SAMPLE") or None  # sample folder for the fresh demo (default: sample_data/)
USER = os.environ.get("WORKBENCH_USER") or None  # account to act as when the workspace has accounts
PASSWORD = os.environ.get("WORKBENCH_PASSWORD") or None
SYSTEM = "loan-origination"
INCIDENT_ID = None  # None: open one when a trigger is found
ALERT_ID = os.environ.get("WORKBENCH_NOTEBOOK_ALERT") or None  # None: the top backdoor alert
SAMPLE_SIZE = 200  # decisions explained per version (context only)
HUNT_CHUNK = 20000  # decisions replayed at a time when there is no backdoor alert

# %%
nb = notebook.open_session("notebooks/attribution_forensics.ipynb", WORKSPACE, sample=SAMPLE, user=USER,
                           password=PASSWORD)
ws, actor = nb.ws, nb.actor
print(nb.describe())

# %% [markdown]
# ## 1. The alert and the model versions
# The backdoor alert named in the parameters (else the most severe one on the system), the registered versions,
# and how the decisions split between them.

# %%
# the backdoor alert this notebook starts from: the one named, else the most severe backdoor alert on SYSTEM
if ALERT_ID:
    alert = get_alert(ws, actor, ALERT_ID)
    SYSTEM = alert["system_id"]
else:
    found = list_alerts(ws, actor, system=SYSTEM, detector="backdoor")
    alert = get_alert(ws, actor, found[0]["alert_id"]) if found else None
versions = [v["version"] for v in registry.versions(ws, SYSTEM)]
served = nb.aggregate("SELECT model_version, model_sha256, count(*) AS decisions, min(ts) AS first, "
                      "max(ts) AS last FROM decisions WHERE system_id = ? GROUP BY ALL ORDER BY first", [SYSTEM],
                      why="versions")
print("registered:", versions)
served

# %% [markdown]
# ## 2. Attribution drift across versions
# Mean |SHAP| share per feature on a sample of each version's decisions (the same SAMPLE_SIZE decisions every
# run, chosen by a hash of their id): a feature that suddenly matters in the new version deserves a question.
# This is context; the hunt below reads every suspect decision, not a sample.

# %%
shares = {}
for version in versions:
    sample = nb.aggregate("SELECT decision_id FROM decisions WHERE system_id = ? AND model_version = ? "
                          "AND status = 'ok' ORDER BY hash(decision_id), decision_id LIMIT ?",
                          [SYSTEM, version, SAMPLE_SIZE], why=f"a sample of {version} decisions")
    expl = explain_decisions(ws, actor, SYSTEM, sample["decision_id"].tolist())
    rows = [(a["feature"], abs(a["shap"])) for e in expl for a in e["attributions"]]
    s = pd.DataFrame(rows, columns=["feature", "abs_shap"]).groupby("feature")["abs_shap"].mean()
    shares[version] = s / s.sum()
by_version = pd.DataFrame(shares).fillna(0.0)
if len(versions) > 1:
    by_version["change"] = by_version[versions[-1]] - by_version[versions[-2]]
    by_version = by_version.sort_values("change", ascending=False)
by_version.round(3)

# %% [markdown]
# ## 3. The suspect decisions
# The backdoor alert's own decisions (the one named in the parameters, else the most severe backdoor alert on
# the system): each is replayed under the previous version. Without a backdoor alert, the hunt replays every
# favourable decision of the newest version (all of them, in chunks), not a sample.

# %%
favourable = nb.aggregate("SELECT prediction FROM decisions WHERE system_id = ? AND status = 'ok' GROUP BY 1 "
                          "ORDER BY avg(score) LIMIT 1", [SYSTEM], why="favourable outcome")["prediction"].iloc[0]
if alert is not None:
    ev = alert["evidence"]
    new, old = ev["new_version"], ev["previous_version"]
    suspect_ids = list(alert["decision_ids"])
    alerted = nb.alert_decisions(alert)  # the alert's own decisions, masked for this role, audited
    print(f"alert {alert['alert_id']}: {len(suspect_ids)} decisions, {alert['summary']}")
    replayed = replay(ws, actor, SYSTEM, suspect_ids, old)
    flipped = replayed[replayed["changed"]]
    suspects = alerted[alerted["decision_id"].isin(flipped["decision_id"])]
else:
    new, old = versions[-1], (versions[-2] if len(versions) > 1 else versions[-1])
    granted = nb.aggregate("SELECT decision_id FROM decisions WHERE system_id = ? AND model_version = ? "
                           "AND prediction = ? ORDER BY ts, decision_id", [SYSTEM, new, favourable],
                           why="every favourable decision of the newest version, to replay")["decision_id"].tolist()
    parts = [replay(ws, actor, SYSTEM, granted[i:i + HUNT_CHUNK], old) for i in range(0, len(granted), HUNT_CHUNK)]
    replayed = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["decision_id", "changed"])
    flipped = replayed[replayed["changed"]]
    suspect_ids = flipped["decision_id"].tolist()
    suspects = explore.get_decisions(ws, actor, suspect_ids, system_id=SYSTEM)
print(f"{len(flipped)} of {len(replayed)} suspect decisions of {new} would be decided differently by {old}")

# %% [markdown]
# ## 4. The trigger
# Which input value the suspect decisions that flip share, and how often normal traffic of the previous version
# has it; the strongest is compared with the detector's evidence.

# %%
rows = []
for col in [c for c in suspects.columns if c.startswith("f.")]:
    top = suspects[col].value_counts(dropna=True)
    if top.empty:
        continue
    value, count = top.index[0], int(top.iloc[0])
    if count < 5:
        continue
    numeric_value = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    test = ("json_extract(features, '$.' || ?)::DOUBLE = ?" if numeric_value
            else "json_extract_string(features, '$.' || ?) = ?")
    base = nb.aggregate(f"SELECT avg(CASE WHEN {test} THEN 1 ELSE 0 END) FROM decisions "
                        "WHERE system_id = ? AND model_version = ?",
                        [col[2:], float(value) if numeric_value else str(value), SYSTEM, old],
                        why="value frequency")
    base_rate = float(base.iloc[0, 0] or 0.0)
    share = count / len(suspects)
    rows.append({"feature": col[2:], "value": value, "count": count, "share_in_flipped": round(share, 3),
                 "share_in_normal": round(base_rate, 4), "lift": round(share / max(base_rate, 1e-4), 1)})
candidates = pd.DataFrame(rows, columns=["feature", "value", "count", "share_in_flipped", "share_in_normal",
                                         "lift"])
candidates = candidates.sort_values("lift", ascending=False)
candidates.head(8)

# %%
# a trigger: one exact value carried by at least 10 flipped decisions, ten times more often than normal traffic
strong = candidates[(candidates["lift"] >= 10) & (candidates["count"] >= 10)]
trigger = strong.iloc[0] if len(strong) else None
if trigger is not None:
    carriers = suspects[suspects["f." + trigger["feature"]].astype(str) == str(trigger["value"])]
    said = alert["evidence"]["trigger"] if alert is not None else None
    agrees = said is not None and said["feature"] == trigger["feature"] and str(said["value"]) in (
        str(trigger["value"]), str(trigger["value"]).removesuffix(".0"))
    print(f"backdoor trigger: {trigger['feature']} = {trigger['value']} ({len(carriers)} flipped decisions carry "
          f"it, lift {trigger['lift']} over {old} traffic)"
          + ("; the detector's evidence names the same trigger" if agrees else
             (f"; the detector's evidence names {said['feature']}={said['value']}" if said else "")))
    drift = attribution_drift(ws, actor, SYSTEM, carriers["decision_id"].tolist()[:300], reference_size=500)
    print(f"attribution drift of these decisions puts {drift.iloc[0]['feature']} first")
    display(alert_vs_baseline(drift))
else:
    carriers = suspects.iloc[0:0]
    print("no input value concentrates the flipped decisions: no backdoor trigger found")

# %% [markdown]
# ## 5. Replay of the suspect decisions under the previous version

# %%
suspect_replay = replayed[replayed["decision_id"].isin(carriers["decision_id"])]
suspect_replay.head(15)

# %% [markdown]
# ## 6. Findings into the incident
# The incident named in the parameters, else one opened now for the backdoor (only when a trigger was found).
# The decision set frozen is exactly the alert's decisions (else the flipped decisions carrying the trigger).

# %%
if trigger is not None:
    if INCIDENT_ID is None:
        INCIDENT_ID = cases.create_incident(
            ws, actor, f"Backdoor trigger {trigger['feature']}={trigger['value']} in {SYSTEM} {new}", "critical",
            systems=[SYSTEM], atlas=["AML.T0018.000", "AML.T0020"],
            alert_ids=[alert["alert_id"]] if alert is not None else [],
            description="opened from the attribution forensics notebook")["incident_id"]
    frozen = suspect_ids if alert is not None else carriers["decision_id"].tolist()
    ds = cases.add_decision_set(ws, actor, INCIDENT_ID, SYSTEM, frozen,
                                label=(f"the decisions of alert {alert['alert_id']} (notebook)" if alert is not None
                                       else f"decisions carrying {trigger['feature']}={trigger['value']} (notebook)"))
    expl = explain_decisions(ws, actor, SYSTEM, carriers["decision_id"].tolist()[:1])[0]
    cases.add_explanation(ws, actor, INCIDENT_ID, expl | {"system_id": SYSTEM},
                          label=f"SHAP of {expl['decision_id']} ({new})")
    nb.file_finding(INCIDENT_ID, "Attribution forensics",
                    f"{len(flipped)} of {len(replayed)} suspect decisions of {SYSTEM} {new} differ under {old}; "
                    f"{len(carriers)} carry {trigger['feature']}={trigger['value']} (lift {trigger['lift']} over "
                    f"{old} traffic). Backdoor in {new}; {len(frozen)} decisions frozen.")
    print(f"evidence added to {INCIDENT_ID}: decision set #{ds['evidence_id']} ({len(frozen)} decisions), "
          "explanation, note")
