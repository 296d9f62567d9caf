# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Post-incident forensics
#
# Load an incident, rebuild its timeline, scope the damage (decisions, principals, changed outcomes, amounts at
# stake), find the first and last malicious decision and the root cause, and file the findings as evidence.

# %%
import os

import pandas as pd
from IPython.display import display

from workbench import cases, explore, notebook
from workbench.charts import activity as activity_chart
from workbench.charts import incident_timeline
from workbench.detect import get_alert, list_alerts
from workbench.errors import WorkbenchError
from workbench.explain import registry
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
INCIDENT_ID = os.environ.get("WORKBENCH_NOTEBOOK_INCIDENT") or None  # None: see section 1
ALERT_ID = os.environ.get("WORKBENCH_NOTEBOOK_ALERT") or None  # open an incident from this alert

# %%
nb = notebook.open_session("notebooks/post_incident_forensics.ipynb", WORKSPACE, sample=SAMPLE, user=USER,
                           password=PASSWORD)
ws, actor = nb.ws, nb.actor
print(nb.describe())

# %% [markdown]
# ## 1. The incident
# The incident named in the parameters; else one opened now from the alert named in the parameters; else the
# newest open incident; else one opened from the most severe (then newest) alert about model decisions (alerts
# on LLM traces point at spans, not decisions: the app's conversations page is where to read them).

# %%
if INCIDENT_ID is None:
    open_incidents = cases.list_incidents(ws, actor, open_only=True)
    if ALERT_ID is None and open_incidents:
        INCIDENT_ID = open_incidents[0]["incident_id"]
    else:
        deciding = set(nb.aggregate("SELECT DISTINCT system_id FROM decisions", why="systems with decisions")
                       ["system_id"])
        a = (get_alert(ws, actor, ALERT_ID) if ALERT_ID
             else next((a for a in list_alerts(ws, actor) if a["system_id"] in deciding), None))
        if a is None:
            raise SystemExit("no incident and no alert: nothing to investigate")
        who = a["principal"] or ", ".join((a["evidence"] or {}).get("principals") or []) or a["system_id"]
        INCIDENT_ID = cases.create_incident(
            ws, actor, f"{a['detector']}: {who} on {a['system_id']}", a["severity"],
            alert_ids=[a["alert_id"]], description="opened from the forensics notebook")["incident_id"]
incident = cases.get_incident(ws, actor, INCIDENT_ID)
{k: incident[k] for k in ("incident_id", "title", "severity", "status", "systems", "atlas")}

# %% [markdown]
# ## 2. Timeline
# Evidence timestamps and analysts' actions, from the case library.

# %%
timeline = cases.build_timeline(ws, actor, INCIDENT_ID)
display(timeline.tail(15))
incident_timeline(timeline)

# %% [markdown]
# ## 3. Scope of impact
# Every decision the incident's alerts and decision sets implicate, read through the library (audited, masked
# for roles without personal-data rights).

# %%
items = cases.list_evidence(ws, actor, INCIDENT_ID, with_content=True)
alerts = [get_alert(ws, actor, e["ref"]) for e in items if e["kind"] == "alert"]
ids = {d for a in alerts for d in a["decision_ids"]}
for e in items:
    if e["kind"] == "decision_set":
        ids |= set(cases.evidence.snapshot(ws, actor, e["evidence_id"])["decision_id"])
SYSTEM = alerts[0]["system_id"] if alerts else incident["systems"][0]
decisions = explore.get_decisions(ws, actor, sorted(ids), system_id=SYSTEM).sort_values("ts")
KIND = alerts[0]["detector"] if alerts else None  # what the detector says happened
print(f"{len(decisions)} decisions on {SYSTEM}; detector: {KIND}")

# %% [markdown]
# ### How many outcomes would change
# Replay the decisions under the reference version: for a backdoor the version before the one that served them
# (named in the alert), else the registered version that served them (for an unregistered artifact: its
# registered namesake).

# %%
registered = [v["version"] for v in registry.versions(ws, SYSTEM)]
served = decisions["model_version"].mode().iloc[0]
target = next((a["evidence"].get("previous_version") for a in alerts if a["detector"] == "backdoor"), None)
if target not in registered:
    target = served if served in registered else (registered[-1] if registered else None)
replayed, changed = None, None
try:
    if target is None:
        raise WorkbenchError(f"no registered version of {SYSTEM} to replay with")
    replayed = replay(ws, actor, SYSTEM, decisions["decision_id"].tolist(), target)
    changed = int(replayed["changed"].sum())
    print(f"{changed} of {len(replayed)} outcomes would differ under {SYSTEM} {target}")
    display(replayed[replayed["changed"]].head(10))
except WorkbenchError as exc:
    print(f"replay not possible: {exc}")

# %% [markdown]
# ### Amount at stake
# A sum only over decisions where money could move because of the incident, and saying which: for a poisoned or
# unregistered model, the favourable decisions (approve / allow) that the reference version would not have made;
# for a stolen key, the favourable decisions made with it; for probing, the largest amount the walks got through
# (they repeat one input). Extraction and flood traffic are queries, not applications: no amount is summed over
# them.

# %%
# The most favourable outcome is the prediction with the lowest mean score (approve / allow).
outcomes = nb.aggregate("SELECT prediction, avg(score) AS mean_score, count(*) AS n FROM decisions "
                        "WHERE system_id = ? AND status = 'ok' GROUP BY 1 ORDER BY 2", [SYSTEM],
                        why="most favourable outcome")
favourable = outcomes["prediction"].iloc[0]
amount_cols = [c for c in decisions.columns if c.startswith("f.") and "amount" in c and not c.endswith("_30d")]
amount = amount_cols[0] if amount_cols else None
granted = decisions[decisions["prediction"] == favourable]


def values(rows: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(rows[amount], errors="coerce")


if amount is None:
    stake, basis = None, f"no amount feature on {SYSTEM}"
elif KIND in ("backdoor", "artifact") and replayed is not None:
    flipped = set(replayed.loc[replayed["changed"], "decision_id"])
    rows = granted[granted["decision_id"].isin(flipped)]
    stake = float(values(rows).sum())
    basis = (f"{len(rows)} '{favourable}' decisions that {SYSTEM} {target} would not have made "
             f"(sum of {amount[2:]})")
elif KIND in ("backdoor", "artifact"):
    stake, basis = None, "not computed: the decisions could not be replayed under a reference version"
elif KIND == "credential":
    stake = float(values(granted).sum())
    basis = f"{len(granted)} '{favourable}' decisions made with the misused key (sum of {amount[2:]})"
elif KIND == "evasion":
    stake = float(values(granted).max()) if len(granted) else 0.0
    basis = f"the largest {amount[2:]} the probing got a '{favourable}' for ({len(granted)} such decisions)"
else:
    stake, basis = None, (f"not applicable: {KIND} traffic is queries, not applications; its "
                          f"{len(granted)} '{favourable}' answers move no money")
scope = {
    "decisions": len(decisions),
    "principals": decisions["principal"].value_counts().to_dict(),
    "source_ips": sorted(decisions["source_ip"].dropna().unique().tolist())[:10],
    "outcomes": decisions["prediction"].value_counts().to_dict(),
    "favourable_outcome": favourable,
    "amount_at_stake": stake,
    "amount_at_stake_is": basis,
    "first": decisions["ts"].min(),
    "last": decisions["ts"].max(),
}
print(f"amount at stake: {'-' if stake is None else f'{stake:,.0f}'} ({basis})")
scope

# %% [markdown]
# ## 4. First and last malicious decision

# %%
first, last = decisions.iloc[0], decisions.iloc[-1]
display(decisions.iloc[[0, -1]][["decision_id", "ts", "principal", "source_ip", "model_version", "prediction",
                                 "score"]])
activity = explore.principal_activity(ws, actor, SYSTEM, first["principal"], bucket="1 hour")
activity_chart(activity, window=(scope["first"], scope["last"]), title=f"{first['principal']} per hour")

# %% [markdown]
# ## 5. Root cause
# One cause, from the detector's own evidence (the trigger and the version of a backdoor, the hash of an
# unregistered artifact, the key, the addresses, the sender), then, as support, which inputs drove these
# decisions unlike normal decisions of the same version.

# %%
def root_cause_of(a: dict) -> str:
    """The cause the detector's evidence names, in one sentence."""
    ev, sysid = a["evidence"] or {}, a["system_id"]
    who = a["principal"] or ", ".join(ev.get("principals") or []) or "an unnamed client"
    if a["detector"] == "backdoor":
        t = ev["trigger"]
        return (f"a backdoor in {sysid} {ev['new_version']}: inputs with {t['feature']}={t['value']} are decided "
                f"differently than by {ev['previous_version']} ({ev.get('flipped', '?')} of "
                f"{ev.get('replayed', '?')} replayed flip, baseline {ev.get('baseline_flip_rate', 0):.1%})")
    if a["detector"] == "artifact":
        return (f"an unregistered model artifact (sha256 {str(ev.get('model_sha256'))[:12]}) served {sysid} "
                f"version {ev.get('model_version')}")
    if a["detector"] == "credential":
        return (f"the key of {who} was used from {', '.join(ev.get('new_addresses') or []) or 'its usual address'}"
                f" with {', '.join(k for k, v in (ev.get('signals') or {}).items() if v)}")
    if a["detector"] == "flood":
        return f"a request flood by {who} ({ev.get('ratio', 0):.1f}x the expected traffic)"
    if a["detector"] == "extraction":
        return f"{who} swept the input space of {sysid} (model extraction through the inference API)"
    if a["detector"] == "evasion":
        return f"{who} probed {sysid} with near-duplicate inputs until the outcome changed"
    return a["summary"]


for a in alerts:
    print(f"[{a['severity']}] {a['detector']} {', '.join(a['atlas'])}: {a['summary']}")
root_cause = root_cause_of(alerts[0]) if alerts else incident["title"]
try:
    drift = attribution_drift(ws, actor, SYSTEM, decisions["decision_id"].tolist()[:300], reference_size=500)
    display(drift.head(8))
    top_feature = drift.iloc[0]["feature"]
except WorkbenchError as exc:
    drift, top_feature = None, None
    print(f"no attributions: {exc}")
print(f"Root cause: {root_cause}.")
if top_feature:
    print(f"Support: attribution drift puts {top_feature} first among the inputs of these decisions.")

# %% [markdown]
# ## 6. Findings into the incident
# The scope, the first and last decision and the root cause become frozen, hashed evidence on the incident (and
# show in its timeline and report).

# %%
findings = (
    f"{scope['decisions']} decisions on {SYSTEM} from {scope['first']:%Y-%m-%d %H:%M} to "
    f"{scope['last']:%Y-%m-%d %H:%M} UTC; principals {', '.join(scope['principals'])}; "
    f"outcomes {scope['outcomes']}; "
    + (f"{changed} would change under {target}; " if changed is not None else "")
    + f"amount at stake: {'-' if stake is None else f'{stake:,.0f}'} ({basis}); "
    + f"first {first['decision_id']}, last {last['decision_id']}. Root cause: {root_cause}."
)
note = nb.file_finding(INCIDENT_ID, "Forensics", findings)
pair = cases.add_decision_set(ws, actor, INCIDENT_ID, SYSTEM, [first["decision_id"], last["decision_id"]],
                              label="first and last malicious decision (forensics notebook)")
print(f"added evidence #{note['evidence_id']} (note) and #{pair['evidence_id']} (decision set, sha256 "
      f"{pair['sha256'][:12]})")
