"""Write the forensic notebooks (without outputs) from the cell sources below: `python notebooks/build_notebooks.py`.

The notebooks are thin: they import the workbench library, act as a named user (single-user mode: the OS
user as admin; with accounts: WORKBENCH_USER / WORKBENCH_PASSWORD or the parameter cell), and every read of
decision-level data and every write goes through the library, so it is checked and audited like the app.
Edit here, not in the .ipynb files, then re-run this script.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

IMPORTS = """\
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from workbench import audit, cases, explore
from workbench.access import local_admin, require
from workbench.session import actor_for
from workbench.store import open_workspace

pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)"""

PARAMS_COMMON = """\
# Parameters (papermill-style tag "parameters"; environment variables work too).
WORKSPACE = os.environ.get("WORKBENCH_NOTEBOOK_DB") or None  # a workspace file; None builds a fresh demo workspace
SAMPLE = os.environ.get("WORKBENCH_NOTEBOOK_SAMPLE") or None  # sample folder for the fresh demo (default: sample_data/)
USER = os.environ.get("WORKBENCH_USER") or None              # account to act as when the workspace has accounts
PASSWORD = os.environ.get("WORKBENCH_PASSWORD") or None"""

OPEN = """\
def fresh_demo_workspace(sample=None) -> Path:
    \"\"\"Build a fresh demo workspace in a temporary folder from the sample data.\"\"\"
    from workbench.demo import build_demo

    folder = tempfile.mkdtemp(prefix="workbench-notebook-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # removed when the kernel shuts down
    path = Path(folder) / "demo.duckdb"
    with open_workspace(path) as fresh:
        build_demo(fresh, local_admin(), Path(sample) if sample else None)
    return path


if not WORKSPACE:
    WORKSPACE = fresh_demo_workspace(SAMPLE)
ws = open_workspace(WORKSPACE)
actor = actor_for(ws, USER, PASSWORD)


def aggregate(sql: str, params=None, why: str = "") -> pd.DataFrame:
    \"\"\"An aggregate query run as the acting user: permission checked and recorded in the audit chain.\"\"\"
    require(actor, "read:aggregates")
    audit.record(ws, actor, "read.aggregates", NOTEBOOK, {"why": why, "sql": " ".join(sql.split())[:400]})
    return ws.df(sql, params)


print(f"workspace {ws.path}; acting as {actor.user} ({actor.role}); reads and writes below are audited")"""


def _nb(name: str, title: str, intro: str, params: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(new_markdown_cell(f"# {title}\n\n{intro}"))
    nb.cells.append(new_code_cell(IMPORTS + f'\n\nNOTEBOOK = "notebooks/{name}.ipynb"'))
    p = new_code_cell(PARAMS_COMMON + ("\n" + params if params else ""))
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    nb.cells.append(new_code_cell(OPEN))
    for kind, src in cells:
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    return nb


# -- post-incident forensics ---------------------------------------------------------------------------------
FORENSICS = [
    ("md", "## 1. The incident\nThe incident named in the parameters; else one opened now from the alert named in "
           "the parameters; else the newest open incident; else one opened from the most severe (then newest) "
           "alert."),
    ("code", """\
from workbench.detect import get_alert, list_alerts

if INCIDENT_ID is None:
    open_incidents = cases.list_incidents(ws, actor, open_only=True)
    if ALERT_ID is None and open_incidents:
        INCIDENT_ID = open_incidents[0]["incident_id"]
    else:
        a = get_alert(ws, actor, ALERT_ID) if ALERT_ID else next(iter(list_alerts(ws, actor)), None)
        if a is None:
            raise SystemExit("no incident and no alert: nothing to investigate")
        who = a["principal"] or ", ".join((a["evidence"] or {}).get("principals") or []) or a["system_id"]
        INCIDENT_ID = cases.create_incident(
            ws, actor, f"{a['detector']}: {who} on {a['system_id']}", a["severity"],
            alert_ids=[a["alert_id"]], description="opened from the forensics notebook")["incident_id"]
incident = cases.get_incident(ws, actor, INCIDENT_ID)
{k: incident[k] for k in ("incident_id", "title", "severity", "status", "systems", "atlas")}"""),
    ("md", "## 2. Timeline\nEvidence timestamps and analysts' actions, from the case library."),
    ("code", """\
from workbench.charts import incident_timeline

timeline = cases.build_timeline(ws, actor, INCIDENT_ID)
display(timeline.tail(15))
incident_timeline(timeline)"""),
    ("md", "## 3. Scope of impact\nEvery decision the incident's alerts and decision sets implicate, read through "
           "the library (audited, masked for roles without personal-data rights)."),
    ("code", """\
items = cases.list_evidence(ws, actor, INCIDENT_ID, with_content=True)
alerts = [get_alert(ws, actor, e["ref"]) for e in items if e["kind"] == "alert"]
ids = {d for a in alerts for d in a["decision_ids"]}
for e in items:
    if e["kind"] == "decision_set":
        ids |= set(cases.evidence.snapshot(ws, actor, e["evidence_id"])["decision_id"])
SYSTEM = (alerts[0]["system_id"] if alerts else incident["systems"][0])
decisions = explore.get_decisions(ws, actor, sorted(ids), system_id=SYSTEM).sort_values("ts")
KIND = alerts[0]["detector"] if alerts else None  # what the detector says happened
print(f"{len(decisions)} decisions on {SYSTEM}; detector: {KIND}")"""),
    ("md", "### How many outcomes would change\nReplay the decisions under the reference version: for a backdoor "
           "the version before the one that served them (named in the alert), else the registered version that "
           "served them (for an unregistered artifact: its registered namesake)."),
    ("code", """\
from workbench.errors import WorkbenchError
from workbench.explain import registry
from workbench.explain.replay import replay

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
    print(f"replay not possible: {exc}")"""),
    ("md", "### Amount at stake\nA sum only over decisions where money could move because of the incident, and "
           "saying which: for a poisoned or unregistered model, the favourable decisions (approve / allow) that "
           "the reference version would not have made; for a stolen key, the favourable decisions made with it; "
           "for probing, the largest amount the walks got through (they repeat one input). Extraction and flood "
           "traffic are queries, not applications: no amount is summed over them."),
    ("code", """\
# The most favourable outcome is the prediction with the lowest mean score (approve / allow).
outcomes = aggregate("SELECT prediction, avg(score) AS mean_score, count(*) AS n FROM decisions "
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
    "amount_at_stake": stake, "amount_at_stake_is": basis,
    "first": decisions["ts"].min(), "last": decisions["ts"].max(),
}
print(f"amount at stake: {'-' if stake is None else f'{stake:,.0f}'} ({basis})")
scope"""),
    ("md", "## 4. First and last malicious decision"),
    ("code", """\
first, last = decisions.iloc[0], decisions.iloc[-1]
display(decisions.iloc[[0, -1]][["decision_id", "ts", "principal", "source_ip", "model_version", "prediction",
                                 "score"]])
activity = explore.principal_activity(ws, actor, SYSTEM, first["principal"], bucket="1 hour")
from workbench.charts import activity as activity_chart
activity_chart(activity, window=(scope["first"], scope["last"]), title=f"{first['principal']} per hour")"""),
    ("md", "## 5. Root cause\nOne cause, from the detector's own evidence (the trigger and the version of a "
           "backdoor, the hash of an unregistered artifact, the key, the addresses, the sender), then, as "
           "support, which inputs drove these decisions unlike normal decisions of the same version."),
    ("code", """\
from workbench.explain.attribution import attribution_drift


def root_cause_of(a: dict) -> str:
    # the cause the detector's evidence names, in one sentence
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
    print(f"Support: attribution drift puts {top_feature} first among the inputs of these decisions.")"""),
    ("md", "## 6. Findings into the incident\nThe scope, the first and last decision and the root cause become "
           "frozen, hashed evidence on the incident (and show in its timeline and report)."),
    ("code", """\
findings = (
    f"Forensics ({NOTEBOOK}, by {actor.user}): {scope['decisions']} decisions on {SYSTEM} from "
    f"{scope['first']:%Y-%m-%d %H:%M} to {scope['last']:%Y-%m-%d %H:%M} UTC; principals "
    f"{', '.join(scope['principals'])}; outcomes {scope['outcomes']}; "
    + (f"{changed} would change under {target}; " if changed is not None else "")
    + f"amount at stake: {'-' if stake is None else f'{stake:,.0f}'} ({basis}); "
    + f"first {first['decision_id']}, last {last['decision_id']}. Root cause: {root_cause}."
)
note = cases.evidence.add_note(ws, actor, INCIDENT_ID, findings)
pair = cases.add_decision_set(ws, actor, INCIDENT_ID, SYSTEM, [first["decision_id"], last["decision_id"]],
                              label="first and last malicious decision (forensics notebook)")
print(f"added evidence #{note['evidence_id']} (note) and #{pair['evidence_id']} (decision set, sha256 "
      f"{pair['sha256'][:12]})")"""),
]

# -- attribution forensics -----------------------------------------------------------------------------------
ATTRIBUTION = [
    ("md", "## 1. The alert and the model versions\nThe backdoor alert named in the parameters (else the most "
           "severe one on the system), the registered versions, and how the decisions split between them."),
    ("code", """\
from workbench.detect import get_alert, list_alerts
from workbench.errors import WorkbenchError
from workbench.explain import registry
from workbench.explain.attribution import attribution_drift
from workbench.explain.replay import replay

# the backdoor alert this notebook starts from: the one named, else the most severe backdoor alert on SYSTEM
if ALERT_ID:
    alert = get_alert(ws, actor, ALERT_ID)
    SYSTEM = alert["system_id"]
else:
    found = list_alerts(ws, actor, system=SYSTEM, detector="backdoor")
    alert = get_alert(ws, actor, found[0]["alert_id"]) if found else None
versions = [v["version"] for v in registry.versions(ws, SYSTEM)]
served = aggregate("SELECT model_version, model_sha256, count(*) AS decisions, min(ts) AS first, max(ts) AS last "
                   "FROM decisions WHERE system_id = ? GROUP BY ALL ORDER BY first", [SYSTEM], why="versions")
print("registered:", versions)
served"""),
    ("md", "## 2. Attribution drift across versions\nMean |SHAP| share per feature on a sample of each version's "
           "decisions (the same SAMPLE_SIZE decisions every run, chosen by a hash of their id): a feature that "
           "suddenly matters in the new version deserves a question. This is context; the hunt below reads "
           "every suspect decision, not a sample."),
    ("code", """\
from workbench.explain import explain_decisions

shares = {}
for version in versions:
    sample = aggregate("SELECT decision_id FROM decisions WHERE system_id = ? AND model_version = ? "
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
by_version.round(3)"""),
    ("md", "## 3. The suspect decisions\nThe backdoor alert's own decisions (the one named in the parameters, else "
           "the most severe backdoor alert on the system): each is replayed under the previous version. Without "
           "a backdoor alert, the hunt replays every favourable decision of the newest version (all of them, "
           "in chunks), not a sample."),
    ("code", """\
favourable = aggregate("SELECT prediction FROM decisions WHERE system_id = ? AND status = 'ok' GROUP BY 1 "
                       "ORDER BY avg(score) LIMIT 1", [SYSTEM], why="favourable outcome")["prediction"].iloc[0]
if alert is not None:
    ev = alert["evidence"]
    new, old = ev["new_version"], ev["previous_version"]
    suspect_ids = list(alert["decision_ids"])
    print(f"alert {alert['alert_id']}: {len(suspect_ids)} decisions, {alert['summary']}")
    replayed = replay(ws, actor, SYSTEM, suspect_ids, old)
    flipped = replayed[replayed["changed"]]
else:
    new, old = versions[-1], (versions[-2] if len(versions) > 1 else versions[-1])
    granted = aggregate("SELECT decision_id FROM decisions WHERE system_id = ? AND model_version = ? "
                        "AND prediction = ? ORDER BY ts, decision_id", [SYSTEM, new, favourable],
                        why="every favourable decision of the newest version, to replay")["decision_id"].tolist()
    parts = [replay(ws, actor, SYSTEM, granted[i:i + HUNT_CHUNK], old) for i in range(0, len(granted), HUNT_CHUNK)]
    replayed = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["decision_id", "changed"])
    flipped = replayed[replayed["changed"]]
    suspect_ids = flipped["decision_id"].tolist()
print(f"{len(flipped)} of {len(replayed)} suspect decisions of {new} would be decided differently by {old}")"""),
    ("md", "## 4. The trigger\nWhich input value the suspect decisions that flip share, and how often normal "
           "traffic of the previous version has it; the strongest is compared with the detector's evidence."),
    ("code", """\
import numpy as np

suspects = explore.get_decisions(ws, actor, flipped["decision_id"].tolist(), system_id=SYSTEM)
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
    base = aggregate(f"SELECT avg(CASE WHEN {test} THEN 1 ELSE 0 END) FROM decisions "
                     "WHERE system_id = ? AND model_version = ?",
                     [col[2:], float(value) if numeric_value else str(value), SYSTEM, old], why="value frequency")
    base_rate = float(base.iloc[0, 0] or 0.0)
    share = count / len(suspects)
    rows.append({"feature": col[2:], "value": value, "count": count, "share_in_flipped": round(share, 3),
                 "share_in_normal": round(base_rate, 4), "lift": round(share / max(base_rate, 1e-4), 1)})
candidates = pd.DataFrame(rows, columns=["feature", "value", "count", "share_in_flipped", "share_in_normal",
                                         "lift"])
candidates = candidates.sort_values("lift", ascending=False)
candidates.head(8)"""),
    ("code", """\
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
    from workbench.charts_explain import alert_vs_baseline
    print(f"attribution drift of these decisions puts {drift.iloc[0]['feature']} first")
    display(alert_vs_baseline(drift))
else:
    carriers = suspects.iloc[0:0]
    print("no input value concentrates the flipped decisions: no backdoor trigger found")"""),
    ("md", "## 5. Replay of the suspect decisions under the previous version"),
    ("code", """\
suspect_replay = replayed[replayed["decision_id"].isin(carriers["decision_id"])]
suspect_replay.head(15)"""),
    ("md", "## 6. Findings into the incident\nThe incident named in the parameters, else one opened now for the "
           "backdoor (only when a trigger was found). The decision set frozen is exactly the alert's decisions "
           "(else the flipped decisions carrying the trigger)."),
    ("code", """\
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
    cases.evidence.add_note(ws, actor, INCIDENT_ID,
        f"Attribution forensics ({NOTEBOOK}, by {actor.user}): {len(flipped)} of {len(replayed)} suspect "
        f"decisions of {SYSTEM} {new} differ under {old}; {len(carriers)} carry "
        f"{trigger['feature']}={trigger['value']} (lift {trigger['lift']} over {old} traffic). "
        f"Backdoor in {new}; {len(frozen)} decisions frozen.")
    print(f"evidence added to {INCIDENT_ID}: decision set #{ds['evidence_id']} ({len(frozen)} decisions), "
          "explanation, note")"""),
]

# -- inference-API abuse --------------------------------------------------------------------------------------
ABUSE = [
    ("md", "## 1. The principal\nThe one given, else the principal of the most severe extraction alert, else the "
           "principal whose volume is furthest above its own median day."),
    ("code", """\
from workbench.detect import list_alerts

if PRINCIPAL is None:
    ext = [a for a in list_alerts(ws, actor, system=SYSTEM, detector="extraction") if a["principal"]]
    if ext:
        PRINCIPAL = ext[0]["principal"]
    else:
        PRINCIPAL = aggregate(
            "WITH d AS (SELECT principal, date_trunc('day', ts) AS day, count(*) AS n FROM decisions "
            "WHERE system_id = ? GROUP BY ALL) SELECT principal FROM d GROUP BY principal "
            "ORDER BY max(n) / (median(n) + 1) DESC LIMIT 1", [SYSTEM], why="pick a principal").iloc[0, 0]
print("principal under review:", PRINCIPAL)"""),
    ("md", "## 2. Coverage of the input space over time\nThe three most varied numeric features are cut into "
           "ten equal-width bins over the 1st-99th percentile range of the traffic, giving 1,000 joint cells. "
           "Per principal and day we count the "
           "cells its queries touch, against the cells a real caller with the same number of queries would touch "
           "(expected from the traffic's own cell frequencies), and the share of values outside the 1st-99th "
           "percentile. Real callers ask about real applicants; an extractor sweeps."),
    ("code", """\
import numpy as np

from workbench.explore import feature_types

numeric = [f for f, t in feature_types(ws, SYSTEM).items() if t == "number" and f != "hour"]
variety = aggregate("SELECT " + ", ".join(f"approx_count_distinct(json_extract(features, '$.{f}'))" for f in numeric)
                    + " FROM decisions WHERE system_id = ?", [SYSTEM], why="feature variety").iloc[0]
dims = [numeric[i] for i in np.argsort(-variety.to_numpy(), kind="stable")[:3]]
vals = ", ".join(f"json_extract(features, '$.{f}')::DOUBLE AS v{i}" for i, f in enumerate(dims))
qs = ", ".join(f"quantile_cont(v{i}, [0.01, 0.99]) AS q{i}" for i in range(3))
binned = " + ".join(f"least(9, greatest(0, floor((v{i} - q{i}[1]) / greatest(q{i}[2] - q{i}[1], 1e-9) * 10)))::INT"
                    f" * {10 ** (2 - i)}" for i in range(3))
outside = " OR ".join(f"v{i} < q{i}[1] OR v{i} > q{i}[2]" for i in range(3))
cells = aggregate(
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
                             zip(daily["principal"], daily["day"])]
peers = (daily[daily["principal"] != PRINCIPAL].groupby("principal")["queries"].sum()
         .sort_values(ascending=False).head(PEERS).index.tolist())
view = daily[daily["principal"].isin([PRINCIPAL, *peers])]
print("cells from ten bins each of", dims)
view.pivot_table(index="day", columns="principal", values="coverage_ratio").round(2)"""),
    ("code", """\
import plotly.express as px

fig = px.line(view.assign(who=view["principal"].where(view["principal"] == PRINCIPAL, "peer: " + view["principal"])),
              x="day", y="coverage_ratio", color="who", markers=True,
              title=f"Cells touched / cells a real caller would touch: {PRINCIPAL} against {len(peers)} busy peers")
fig.add_hline(y=1.0, line_dash="dot")
fig"""),
    ("code", """\
px.line(view.assign(who=view["principal"].where(view["principal"] == PRINCIPAL, "peer: " + view["principal"])),
        x="day", y="cumulative_cells", color="who", markers=True,
        title="Cumulative input-space cells touched (of 1,000)")"""),
    ("code", """\
me = daily[daily["principal"] == PRINCIPAL]
others = daily[daily["principal"].isin(peers)]
summary = pd.DataFrame({
    "queries per active day": [me["queries"].mean(), others.groupby("principal")["queries"].mean().median()],
    "coverage ratio (max day)": [me["coverage_ratio"].max(),
                                 others.groupby("principal")["coverage_ratio"].max().median()],
    "outside 1-99th pct": [me["outside"].sum() / max(me["queries"].sum(), 1),
                           others["outside"].sum() / max(others["queries"].sum(), 1)],
}, index=[PRINCIPAL, "median peer"]).round(3)
summary"""),
    ("md", "## 3. Findings into the incident\nThe incident named in the parameters, else the open incident about "
           "this principal, else a new one when the principal sweeps far more of the space than its peers."),
    ("code", """\
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
    note = cases.evidence.add_note(ws, actor, INCIDENT_ID,
        f"Inference-API abuse ({NOTEBOOK}, by {actor.user}): on its broadest day {PRINCIPAL} touched "
        f"{summary.iloc[0]['coverage ratio (max day)']:.1f}x the input-space cells ({', '.join(dims)}) "
        f"that a real caller with as many queries would, against "
        f"{summary.iloc[1]['coverage ratio (max day)']:.1f}x for the median of the {len(peers)} busiest peers; "
        f"{summary.iloc[0]['outside 1-99th pct']:.0%} of its queries lie outside the 1st-99th percentile of "
        f"real traffic (peers {summary.iloc[1]['outside 1-99th pct']:.1%}).")
    print(f"note #{note['evidence_id']} added to {INCIDENT_ID}")
else:
    print(f"{PRINCIPAL} covers the input space like its peers ({ratio:.1f}x): nothing to add")"""),
]

# -- drill after-action ---------------------------------------------------------------------------------------
DRILL_PARAMS = """\
DRILL = os.environ.get("WORKBENCH_NOTEBOOK_DRILL") or None    # a drill workspace; None builds a fresh one
SCENARIO = "extraction-broker-sweep"                           # scenario for the fresh drill
OUT_DIR = os.environ.get("WORKBENCH_NOTEBOOK_OUT") or None     # where the after-action report goes"""

DRILL_OPEN = """\
from workbench.drills import session
from workbench.drills.report import timeline, write_report
from workbench.drills.scoring import score
from workbench.drills.workspace import require_drill, scenario_of, truth_of

built_here = False
if not DRILL:  # build a fresh drill with the CLI, in its own process (as a facilitator would)
    import json
    import subprocess
    import sys

    out_dir = Path(tempfile.mkdtemp(prefix="workbench-drill-"))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)  # removed when the kernel shuts down
    done = subprocess.run([sys.executable, "-m", "workbench", "drill", "start", SCENARIO, "--out", str(out_dir),
                           "--start-clock", "--json"], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr.strip())
    DRILL, built_here = json.loads(done.stdout.splitlines()[-1])["path"], True
ws = open_workspace(DRILL)
require_drill(ws)
actor = actor_for(ws, USER, PASSWORD)
scenario = scenario_of(ws)
print(f"drill {scenario.id} ({scenario.title}) in {ws.path}; acting as {actor.user} ({actor.role})")"""

DRILL = [
    ("code", """\
if built_here:  # a drill built just now has no team activity yet: transcribe two demo answers
    t0 = session.clock(ws)["started_at"]
    truth = truth_of(ws, actor)
    first = next(iter(truth["incidents"].values()))
    session.answer(ws, actor, scenario.questions[0].id, ", ".join(first["principals"]) or "unknown",
                   participant="demo-analyst", at=t0 + pd.Timedelta(minutes=14))
    session.answer(ws, actor, scenario.questions[-1].id, "block it", participant="demo-lead",
                   at=t0 + pd.Timedelta(minutes=30))"""),
    ("md", "## 1. The score"),
    ("code", """\
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
parts"""),
    ("code", """\
answers = pd.DataFrame(sc.questions)[["id", "text", "expected", "answer", "participant", "points", "max_points",
                                      "verdict", "detail"]]
answers"""),
    ("code", "pd.DataFrame(sc.participants)"),
    ("md", "## 2. What happened against what the team did\nGround truth and detector events sit at their time in "
           "the scenario's data (T+0 is when the team was called in); team events at their drill time."),
    ("code", """\
import plotly.express as px

events = pd.DataFrame(timeline(ws, scenario, truth_of(ws, actor), sc))
events["hours"] = events["offset_s"] / 3600
fig = px.scatter(events, x="hours", y="lane", color="lane", hover_data=["what", "who"],
                 title="Drill timeline (hours from T+0)")
fig.add_vline(x=0, line_dash="dash")
fig"""),
    ("code", "events[['offset_s', 'lane', 'what', 'who']].assign(T=lambda d: d['offset_s'].map("
             "lambda s: f'{s / 60:+.0f} min')).drop(columns='offset_s')"),
    ("md", "## 3. Lessons, as numbers\nWhich questions cost the most points, and how long the team took per "
           "question after the clock started."),
    ("code", """\
answers.assign(lost=answers["max_points"] - answers["points"]).sort_values("lost", ascending=False)[
    ["id", "verdict", "lost", "detail"]]"""),
    ("md", "## 4. The after-action report, into the record\nThe md and html reports are written; the html one "
           "becomes file evidence on the team's incident when there is one."),
    ("code", """\
out = Path(OUT_DIR) if OUT_DIR else ws.path.parent
md = write_report(ws, actor, "md", out / f"{scenario.id}-after-action.md")
html = write_report(ws, actor, "html", out / f"{scenario.id}-after-action.html")
print(md["path"], html["path"])
team_incidents = cases.list_incidents(ws, actor)
if team_incidents:
    item = cases.add_file(ws, actor, team_incidents[-1]["incident_id"], html["path"],
                          label="drill after-action report")
    print(f"report added to {team_incidents[-1]['incident_id']} as evidence #{item['evidence_id']}")"""),
]


def build() -> list[Path]:
    """Write the four notebooks without outputs; return their paths."""
    books = {
        "post_incident_forensics": _nb(
            "post_incident_forensics", "Post-incident forensics",
            "Load an incident, rebuild its timeline, scope the damage (decisions, principals, changed outcomes, "
            "amounts at stake), find the first and last malicious decision and the root cause, and file the "
            "findings as evidence.",
            'INCIDENT_ID = os.environ.get("WORKBENCH_NOTEBOOK_INCIDENT") or None  # None: see section 1\n'
            'ALERT_ID = os.environ.get("WORKBENCH_NOTEBOOK_ALERT") or None  # open an incident from this alert',
            FORENSICS),
        "attribution_forensics": _nb(
            "attribution_forensics", "Attribution forensics",
            "Attribution drift across model versions, a hunt for a backdoor trigger, and replay of the suspect "
            "decisions under the previous version.",
            'SYSTEM = "loan-origination"\nINCIDENT_ID = None  # None: open one when a trigger is found\n'
            'ALERT_ID = os.environ.get("WORKBENCH_NOTEBOOK_ALERT") or None  # None: the top backdoor alert\n'
            "SAMPLE_SIZE = 200  # decisions explained per version (context only)\n"
            "HUNT_CHUNK = 20000  # decisions replayed at a time when there is no backdoor alert", ATTRIBUTION),
        "inference_api_abuse": _nb(
            "inference_api_abuse", "Inference-API abuse",
            "How much of the input space one principal covers over time, against normal principals: the "
            "signature of model extraction through the inference API (ATLAS AML.T0024.002, AML.T0040).",
            'SYSTEM = "loan-origination"\nPRINCIPAL = None  # None: from the extraction alert\nPEERS = 8\n'
            "INCIDENT_ID = None", ABUSE),
    }
    drill = new_notebook()
    drill.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    drill.metadata["language_info"] = {"name": "python"}
    drill.cells.append(new_markdown_cell(
        "# Drill after-action analysis\n\nThe score of a tabletop drill, what happened against what the team "
        "did on one timeline, and the after-action report filed as evidence. Runs on a drill workspace "
        "(`workbench drill start`), never on a real one."))
    drill.cells.append(new_code_cell(IMPORTS + '\n\nNOTEBOOK = "notebooks/drill_after_action.ipynb"'))
    p = new_code_cell("# Parameters (tag \"parameters\"; environment variables work too).\n"
                      'USER = os.environ.get("WORKBENCH_USER") or None\n'
                      'PASSWORD = os.environ.get("WORKBENCH_PASSWORD") or None\n' + DRILL_PARAMS)
    p.metadata["tags"] = ["parameters"]
    drill.cells.append(p)
    drill.cells.append(new_code_cell(DRILL_OPEN))
    for kind, src in DRILL:
        drill.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    books["drill_after_action"] = drill
    paths = []
    for name, nb in books.items():
        nbformat.validate(nb)
        path = HERE / f"{name}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build():
        print(p)
