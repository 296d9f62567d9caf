"""A drill from a red-team run: the run's emitted attack traffic, mixed into the normal traffic emitted with it, is
the drill's injected incident, and its questions are generated from the run.

`start_drill_from_redteam(ws, actor, run_id, out_dir)` reads a stored run (`workbench redteam --emit DIR`) from
the real workspace and builds a separate drill workspace: one decision log in which the attacker is disguised
(a neutral principal name, sessions renamed, every decision id re-keyed, no ground-truth column), ingested, the
system's registered models added, the detectors run. The answer key holds the attack: its principal, its ATLAS
techniques, its address and start, and for evasion the feature the attacker moved most. The questions are the
entity-scored kinds (principal, atlas, feature, ip) and a time question, so the drill scores like any other.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import yaml

from workbench import audit
from workbench.access import Actor, require
from workbench.detect import run_all
from workbench.drills.scenario import Scenario, parse_scenario
from workbench.drills.workspace import (
    DrillInfo,
    begin_drill,
    clear_drill_target,
    remove_drill_files,
    seal_drill,
)
from workbench.errors import WorkbenchError
from workbench.explain import registry
from workbench.ingest import ingest
from workbench.redteam import get_run
from workbench.redteam.coverage import _manifests
from workbench.redteam.report import headline
from workbench.store import Workspace, open_workspace
from workbench.store.sqltext import quote_literal

INCIDENT = "attack"
# The sample generator's incident type and the playbook closest to each red-team attack.
INCIDENT_TYPE = {"evasion": "evasion", "probing": "evasion", "extraction": "extraction", "backdoor-scan": "evasion"}
PLAYBOOK = {"evasion": "ai-evasion-probing", "probing": "ai-evasion-probing", "extraction": "ai-model-extraction",
            "backdoor-scan": "ai-backdoor-poisoned-version"}
HINT = {
    "evasion": "Customer operations: a few applications that were refused came back approved after a run of "
               "near-identical resubmissions from the same client.",
    "probing": "An analyst notices requests that differ from each other in one field at a time.",
    "extraction": "Capacity engineering: one client sent far more requests than usual in a short time, with "
                  "profiles that do not look like real customers.",
    "backdoor-scan": "An analyst notices bursts of requests that set one field to many unusual values in quick "
                     "succession.",
}
ALIAS_PREFIXES = ("partner", "broker", "api-client", "integration")
_TYPES = {"decision_id": "VARCHAR", "ts": "TIMESTAMPTZ", "system_id": "VARCHAR", "model_version": "VARCHAR",
          "model_sha256": "VARCHAR", "principal": "VARCHAR", "session_id": "VARCHAR", "source_ip": "VARCHAR",
          "prediction": "VARCHAR", "score": "DOUBLE", "status": "VARCHAR", "latency_ms": "DOUBLE",
          "features": "JSON"}


def drill_id(run_id: str) -> str:
    """The id (and file stem) of the drill built from a run."""
    return f"redteam-{run_id.lower()}"


def moved_most(run: dict[str, Any]) -> str | None:
    """For evasion: the feature with the largest median relative change among successful attempts (best method
    first), or None."""
    res = run.get("result") or {}
    methods = res.get("methods") or []
    ordered = sorted(methods, key=lambda m: m.get("method") != res.get("best_method"))
    for m in ordered:
        med = m.get("median_change") or {}
        if med:
            return max(sorted(med), key=lambda n: (med[n]["median_relative_change"], med[n]["changed_in"]))
    return None


def _manifest(run: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    run_id = run["run_id"]
    if not run.get("emit_dir"):
        raise WorkbenchError(f"red-team run {run_id} kept no traffic: run the attack again with --emit DIR (in the "
                             "app: 'Also check detection coverage'), then start the drill from that run")
    emit_dir = Path(run["emit_dir"])

    try:
        man = _manifests(emit_dir)[0]
    except WorkbenchError as exc:
        raise WorkbenchError(f"red-team run {run_id}: its emitted traffic is gone ({exc})") from None
    if man["run_id"] != run_id:
        raise WorkbenchError(f"{emit_dir} now holds the traffic of run {man['run_id']}, not {run_id}: start the "
                             f"drill from {man['run_id']}, or emit {run_id}'s attack again")
    for key in ("attack_file", "normal_file"):
        if not (emit_dir / Path(man.get(key) or "-").name).is_file():
            raise WorkbenchError(f"red-team run {run_id}: {emit_dir} has lost {man.get(key)}")
    return emit_dir, man


def _alias(run_id: str, taken: set[str]) -> str:
    """A neutral principal name for the attacker that no normal client uses."""
    h = hashlib.sha256(run_id.encode()).hexdigest()
    prefix = ALIAS_PREFIXES[int(h[:2], 16) % len(ALIAS_PREFIXES)]
    for k in range(0, len(h) - 4, 4):
        name = f"{prefix}-{h[k:k + 4]}"
        if name not in taken:
            return name
    return f"{prefix}-{h[:12]}"


def _mix(emit_dir: Path, man: dict[str, Any], out: Path) -> dict[str, Any]:
    """One decision log (attack disguised inside the normal traffic), written in DuckDB; the attack's facts."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in _TYPES.items()) + "}"

        def src(name: str) -> str:
            path = quote_literal(str(emit_dir / Path(name).name))
            return f"read_json({path}, format = 'newline_delimited', columns = {cols})"

        con.execute(f"CREATE TEMP TABLE raw AS SELECT *, false AS atk FROM {src(man['normal_file'])} "
                    f"UNION ALL BY NAME SELECT *, true AS atk FROM {src(man['attack_file'])}")
        taken = {r[0] for r in con.execute("SELECT DISTINCT principal FROM raw WHERE NOT atk AND principal "
                                           "IS NOT NULL").fetchall()}
        alias = _alias(man["run_id"], taken)
        con.execute("CREATE TEMP TABLE mixed AS SELECT 'd-' || substr(md5(? || decision_id), 1, 20) AS decision_id, "
                    "ts, system_id, model_version, model_sha256, "
                    "CASE WHEN atk THEN ? ELSE principal END AS principal, "
                    "CASE WHEN atk THEN ? || '-' || substr(md5(? || coalesce(session_id, '')), 1, 8) "
                    "ELSE session_id END AS session_id, "
                    "source_ip, prediction, score, status, latency_ms, features, atk FROM raw",
                    [man["run_id"], alias, alias, man["run_id"]])
        con.execute(f"COPY (SELECT decision_id, strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts, system_id, "
                    f"model_version, model_sha256, principal, session_id, source_ip, prediction, score, status, "
                    f"latency_ms, features FROM mixed ORDER BY ts, decision_id) TO {quote_literal(str(out))} "
                    f"(FORMAT JSON)")
        ids = [r[0] for r in con.execute("SELECT decision_id FROM mixed WHERE atk ORDER BY ts, decision_id")
               .fetchall()]
        first, last, version, sha = con.execute(
            "SELECT min(ts), max(ts), mode(model_version), mode(model_sha256) FROM mixed WHERE atk").fetchone()
        ips = [r[0] for r in con.execute("SELECT DISTINCT source_ip FROM mixed WHERE atk AND source_ip IS NOT NULL "
                                         "ORDER BY 1").fetchall()]
        outcomes = dict(con.execute("SELECT prediction, count(*) FROM mixed WHERE atk GROUP BY 1 ORDER BY 1")
                        .fetchall())
        lo, hi, n = con.execute("SELECT min(ts), max(ts), count(*) FROM mixed").fetchone()
    finally:
        con.close()
    return {"alias": alias, "ids": ids, "first": first, "last": last, "version": version, "sha256": sha, "ips": ips,
            "outcomes": outcomes, "data_start": lo, "data_end": hi, "rows": int(n)}


def scenario_text(run: dict[str, Any], facts: dict[str, Any], emitted_principal: str | None) -> str:
    """The drill's scenario (front matter and facilitator notes), generated from the run."""

    attack, system = run["attack"], run["system_id"]
    days = max(2, min(31, (facts["data_end"] - facts["data_start"]).days + 1))
    t0 = facts["data_end"]
    questions: list[dict[str, Any]] = [
        {"id": "who", "kind": "principal", "incident": INCIDENT, "points": 20,
         "text": f"Which principal (client key) attacked the {system} model? Answer with the principal only."},
        {"id": "technique", "kind": "atlas", "incident": INCIDENT, "points": 10, "match": "any",
         "text": "Which MITRE ATLAS technique(s) describe the activity? Give the ids only (AML.T....)."},
    ]
    feature = moved_most(run) if attack == "evasion" else None
    if feature:
        questions.append({"id": "feature", "kind": "feature", "incident": INCIDENT, "points": 10,
                          "text": "Which input feature did the attacker change most to turn refusals into "
                                  "favourable outcomes? Give the feature name only."})
    questions += [
        {"id": "source", "kind": "ip", "incident": INCIDENT, "points": 5, "match": "any",
         "text": "From which source address did the attack come?"},
        {"id": "since", "kind": "time", "incident": INCIDENT, "points": 10, "tolerance": "30m",
         "partial_tolerance": "2h", "text": "When did the attack start (UTC)?"},
    ]
    front = {
        "id": drill_id(run["run_id"]), "title": f"Red-team replay on {system}", "version": "1",
        "difficulty": "intermediate", "duration_minutes": 45,
        "summary": f"Traffic of a red-team exercise against {system}, replayed inside its normal decisions.",
        "systems": [system],
        "story": (f"You are the AI incident-response team. It is {t0:%A %H:%M} UTC. The owner of the {system} "
                  f"model (version {facts['version']}) asks you to look at its last day of decisions: a security "
                  "review suggests that someone attacked the model through its normal API, and nobody knows who, "
                  "how or since when. Open the workbench on the drill workspace and start where you would on a "
                  "real shift."),
        "sample": {"seed": int(run["seed"]), "days": days,
                   "decisions_per_day": max(200, min(200_000, facts["rows"] // days))},
        "source": {"redteam_run": run["run_id"], "attack": attack, "version": run["version"],
                   "emit_dir": run.get("emit_dir")},
        "incidents": [{"id": INCIDENT, "type": INCIDENT_TYPE[attack], "principals": [facts["alias"]]}],
        "clock": {"t0": t0.isoformat()},
        "release": "timed",
        "playbooks": [PLAYBOOK[attack]],
        "injects": [
            {"at": "T+0m", "title": "The ask", "text": f"The {system} model's owner: \"A security review thinks "
             "someone has been attacking the model through the API. Can you find out who, how and since when?\""},
            {"at": "T+15m", "title": "A lead", "text": HINT[attack]},
        ],
        "questions": questions,
    }
    h = headline(run)
    cov = run.get("coverage") or {}
    missed = ", ".join(cov.get("techniques_missed") or []) or ("none" if cov else "not checked")
    notes = (f"# Facilitator notes\n\nBuilt from red-team run **{run['run_id']}**: {attack} on {system} "
             f"{run['version']} ({run['target_kind']}), seed {run['seed']}, {run['queries']} of {run['budget']} "
             f"queries; result: {h['figure']}.\n\nThe attacker sent its queries as `{emitted_principal}`; in this "
             f"drill it is **{facts['alias']}** from {', '.join(facts['ips']) or 'no address'}, "
             f"{len(facts['ids'])} decisions from {facts['first']:%Y-%m-%d %H:%M} to {facts['last']:%H:%M} UTC. "
             f"ATLAS: {', '.join(run.get('atlas') or [])}." + (f" The feature moved most: `{feature}`." if feature
                                                                else "")
             + f"\n\nDetection coverage of the run: techniques missed: {missed}.\n\n**Debrief prompts.** Which "
             "alert (if any) pointed at the attacker first? What would a slower attacker have looked like?\n")
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=110) + "---\n" + notes


def _truth(run: dict[str, Any], scenario: Scenario, facts: dict[str, Any]) -> dict[str, Any]:
    inc = {"id": INCIDENT, "truth_id": run["run_id"], "type": scenario.incidents[0].type, "attack": run["attack"],
           "system_id": run["system_id"], "atlas": list(run.get("atlas") or []),
           "start": facts["first"].isoformat(), "end": facts["last"].isoformat(), "principals": [facts["alias"]],
           "decision_count": len(facts["ids"]), "decision_ids": facts["ids"], "ips": facts["ips"],
           "version": facts["version"], "sha256": facts["sha256"],
           "sha256_prefix": (facts["sha256"] or "")[:12] or None,
           "feature": moved_most(run) if run["attack"] == "evasion" else None, "metric": None,
           "trigger_feature": None, "trigger_value": None,
           "description": f"red-team {run['attack']} run {run['run_id']} replayed",
           "first_decision": facts["first"].isoformat(), "last_decision": facts["last"].isoformat(),
           "outcomes": facts["outcomes"]}
    return {"sample_start": facts["data_start"].isoformat(), "sample_end": facts["data_end"].isoformat(),
            "t0": facts["data_end"].isoformat(), "model_releases": [], "incidents": {INCIDENT: inc}}


def start_drill_from_redteam(ws: Workspace, actor: Actor, run_id: str, out_dir: str | Path, *, force: bool = False,
                             progress: Callable[[str], None] | None = None) -> DrillInfo:
    """Build a drill workspace from a stored red-team run's emitted traffic (its clock waits for the facilitator)."""

    require(actor, "facilitate:drills", ws)
    require(actor, "read:decisions", ws)
    require(actor, "export", ws)  # the drill takes a copy of decision-level traffic out of the workspace
    say = progress or (lambda _m: None)
    t_start = time.perf_counter()
    run = get_run(ws, actor, run_id)
    emit_dir, man = _manifest(run)
    out_dir = Path(out_dir)
    target = out_dir / f"{drill_id(run_id)}.duckdb"
    clear_drill_target(target, force)
    data_dir = out_dir / f"{drill_id(run_id)}.data"
    data_dir.mkdir(parents=True, exist_ok=True)
    say("mixing the attack into the normal traffic")
    log = data_dir / "decisions.jsonl"
    facts = _mix(emit_dir, man, log)
    scenario = parse_scenario(scenario_text(run, facts, man.get("principal")), f"red-team run {run_id}")
    models = ws.rows("SELECT version, stored_path FROM models WHERE system_id = ? AND stored_path IS NOT NULL "
                     "ORDER BY added_at, version", [run["system_id"]])
    dws = open_workspace(target)
    try:
        begin_drill(dws, scenario.id)
        say("ingesting")
        files = ingest(dws, actor, [log], kind="decisions")
        errors = [f.error for f in files if f.error]
        if errors:
            raise WorkbenchError(f"the red-team traffic did not ingest: {errors[0]}")
        for version, stored in models:
            registry.add_model(dws, actor, run["system_id"], version, stored, exist_ok=True)
        say("detecting")
        alerts = run_all(dws, actor)
        built = seal_drill(dws, actor, scenario, _truth(run, scenario, facts), data_dir,
                           {"source": "redteam", "redteam_run": run_id})
        decisions = int(dws.scalar("SELECT count(*) FROM decisions"))
    except BaseException:
        dws.close()
        remove_drill_files(target)
        raise
    dws.close()
    audit.record(ws, actor, "drill.from_redteam", run_id, {"path": str(target), "decisions": decisions,
                                                          "attack_decisions": len(facts["ids"])})
    return DrillInfo(scenario.id, scenario.title, target, data_dir, int(run["seed"]), decisions, len(alerts), 1,
                     built, round(time.perf_counter() - t_start, 2))
