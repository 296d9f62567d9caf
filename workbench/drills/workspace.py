"""Build a separate drill workspace from a scenario: baseline traffic plus the injected incidents, by seed.

A drill workspace is marked in workspace_meta (key 'drill'); every drill call refuses any other workspace,
and `start_drill` refuses to overwrite a file that is not a drill. The answer key (ground truth of the
injected incidents) is kept inside the drill workspace, not on disk beside the data, so participants who
browse the data folder do not find it, and the SQL sandbox refuses its table to anyone who may not facilitate.
(It is obscured, not encrypted: a participant who opens the file with their own DuckDB client and the will to
cheat could still decode it. Drills are for learning.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from workbench import audit
from workbench.access import Actor, local_admin, require
from workbench.drills import traces as drill_traces
from workbench.drills.scenario import Scenario, load_scenario, parse_scenario
from workbench.errors import WorkbenchError
from workbench.sample.incidents import parse_start
from workbench.store import Workspace, open_workspace
from workbench.timestamps import iso_from_us, us_from_iso

META_KEY = "drill"
KEY_KEY = "drill_key"
CLOCK_KEY = "drill_clock"
MODELS_CACHE = ".drill-models"


@dataclass
class DrillInfo:
    """A built drill workspace: where it is, what it holds, when it was built (its clock is not started)."""

    scenario_id: str
    title: str
    path: Path
    data_dir: Path
    seed: int
    decisions: int
    alerts: int
    incidents: int
    built_at: datetime
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for --json."""
        return asdict(self)


# -- recognising drill workspaces ----------------------------------------------------------------------------
def _meta_value(ws: Workspace, key: str) -> Any:
    raw = ws.scalar("SELECT value FROM workspace_meta WHERE key = ?", [key])
    if raw is None:
        return None
    return json.loads(raw) if isinstance(raw, str) else raw


def _set_meta(ws: Workspace, key: str, value: Any) -> None:
    ws.execute("INSERT OR REPLACE INTO workspace_meta(key, value) VALUES (?, ?)", [key, json.dumps(value)])


def is_drill(ws: Workspace) -> bool:
    """Whether the workspace was built by `start_drill` (and so may hold drill answers)."""
    meta = _meta_value(ws, META_KEY)
    return isinstance(meta, dict) and bool(meta.get("drill"))


def require_drill(ws: Workspace) -> dict[str, Any]:
    """The drill's public metadata, or an error for a real (non-drill) workspace."""
    if not is_drill(ws):
        raise WorkbenchError(f"{ws.path} is not a drill workspace; drill commands never touch a real workspace "
                             "(start one with `workbench drill start SCENARIO`, then pass its --db)")
    meta = _meta_value(ws, META_KEY)
    if meta.get("status") != "ready":
        raise WorkbenchError(f"drill workspace {ws.path} was not built completely; rebuild it with "
                             "`workbench drill start SCENARIO --force`")
    return meta


def file_is_drill(path: Path) -> bool:
    """Whether an existing file is a drill workspace (False for real workspaces and for non-DuckDB files)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WorkbenchError(f"{path} is open in another process; close it before rebuilding") from exc
        return False
    except duckdb.Error:
        return False
    try:
        row = con.execute("SELECT value FROM workspace_meta WHERE key = ?", [META_KEY]).fetchone()
    except duckdb.Error:
        return False
    finally:
        con.close()
    if row is None:
        return False
    value = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return isinstance(value, dict) and bool(value.get("drill"))


def scenario_of(ws: Workspace) -> Scenario:
    """The scenario the drill was built from (its text is stored in the workspace)."""
    meta = require_drill(ws)
    return parse_scenario(meta["scenario_text"], meta.get("scenario_path") or meta["scenario_id"])


def truth_of(ws: Workspace, actor: Actor) -> dict[str, Any]:
    """The answer key: ground truth of every injected incident (facilitators only)."""
    require(actor, "facilitate:drills", ws)
    require_drill(ws)
    raw = _meta_value(ws, KEY_KEY)
    if not raw:
        raise WorkbenchError("this drill workspace has no answer key; rebuild it")
    return _decode(raw)


def _truth(ws: Workspace) -> dict[str, Any]:
    """The answer key without a permission check (scoring inside the library)."""
    return _decode(_meta_value(ws, KEY_KEY))


def _encode(obj: Any) -> str:
    return base64.b64encode(zlib.compress(audit.canonical(obj).encode("utf-8"), 9)).decode("ascii")


def _decode(text: str) -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b64decode(text)).decode("utf-8"))


# -- building --------------------------------------------------------------------------------------------
def drill_path(scenario: Scenario, out_dir: Path) -> Path:
    """Where a scenario's drill workspace goes: <out_dir>/<scenario id>.duckdb."""
    return Path(out_dir) / f"{scenario.id}.duckdb"


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".evidence")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


def start_drill(scenario_path: str | Path, out_dir: str | Path, *, actor: Actor | None = None,
                models_dir: Path | None = None, force: bool = False,
                progress: Callable[[str], None] | None = None) -> DrillInfo:
    """Build a fresh drill workspace for a scenario in out_dir (its clock waits for the facilitator to start it)."""
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.demo import build_demo

    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.sample import generate

    t_start = time.perf_counter()
    say = progress or (lambda _m: None)
    scenario = load_scenario(scenario_path)
    out_dir = Path(out_dir)
    target = drill_path(scenario, out_dir)
    if target.exists():
        if not file_is_drill(target):
            raise WorkbenchError(f"{target} exists and is not a drill workspace; refusing to touch it "
                                 "(choose another --out directory)")
        if not force:
            raise WorkbenchError(f"drill workspace {target} already exists; use --force to rebuild it "
                                 "(its answers and incidents are lost)")
        _remove(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / f"{scenario.id}.data"
    cache, source = _model_sources(scenario, out_dir, models_dir)
    say(f"generating {scenario.days} days of traffic with {len(scenario.incidents)} injected incident(s)")
    generate(data_dir, seed=scenario.seed, days=scenario.days, decisions_per_day=scenario.decisions_per_day,
             incidents=[i for i in scenario.incidents if not i.type.startswith("llm_")], models_dir=source)
    _refresh_cache(data_dir / "models", cache)
    truth_file = data_dir / "ground_truth.json"
    sample_truth = json.loads(truth_file.read_text())
    trace_truth = drill_traces.generate(scenario, data_dir, sample_truth)  # LLM agent traces (drills/traces.py)
    sample_truth["incidents"] += (trace_truth or {}).get("incidents", [])
    # The answer key goes into the workspace; nothing beside the data gives it away.
    for leak in (truth_file, data_dir / "manifest.json"):
        leak.unlink(missing_ok=True)
    shutil.rmtree(data_dir / "models" / "_unregistered", ignore_errors=True)

    builder = actor or local_admin()
    require(builder, "run:drills", None)  # the drill workspace is new: nobody has signed in to it yet
    ws = open_workspace(target)
    try:
        _set_meta(ws, META_KEY, {"drill": True, "status": "building", "scenario_id": scenario.id})
        drill_traces.configure_system(ws, builder, trace_truth)
        say("ingesting and detecting")
        demo = build_demo(ws, builder, data_dir, progress=say)
        truth = _resolve_truth(ws, scenario, sample_truth)
        _check_expectations(scenario, truth)
        now = datetime.now(UTC)
        meta = {"drill": True, "status": "ready", "scenario_id": scenario.id, "title": scenario.title,
                "scenario_path": str(scenario.path), "scenario_sha256": scenario.sha256,
                "scenario_text": scenario.text, "seed": scenario.seed, "built_at": now.isoformat(),
                "built_by": builder.user, "data_dir": str(data_dir)}
        with ws.transaction():
            _set_meta(ws, KEY_KEY, _encode(truth))
            _set_meta(ws, CLOCK_KEY, {"started_at": None, "pauses": []})
            _set_meta(ws, META_KEY, meta)
            audit.record(ws, builder, "drill.start", scenario.id,
                         {"scenario_sha256": scenario.sha256, "seed": scenario.seed, "path": str(target),
                          "incidents": len(scenario.incidents), "built_at": now.isoformat()})
        decisions = int(ws.scalar("SELECT count(*) FROM decisions"))
    except BaseException:
        ws.close()
        _remove(target)
        raise
    ws.close()
    return DrillInfo(scenario.id, scenario.title, target, data_dir, scenario.seed, decisions,
                     int(demo.get("alerts") or 0), len(scenario.incidents), now,
                     round(time.perf_counter() - t_start, 2))


def _model_sources(scenario: Scenario, out_dir: Path, models_dir: Path | None) -> tuple[Path, Path | None]:
    """Where this build's trained models are cached, and the best folder to reuse trained models from.

    Training is the slow part of a build. Models depend on the seed and on any backdoor poisoning, so the
    cache keeps one folder per (seed, poisoning); a fresh one starts from the clean cache or the shipped
    sample's models (same seed: reused; otherwise the generator trains what it must).
    """
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench import settings

    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.sample.models import KEYS_FILE

    poison = [(i.system_id, i.seed, sorted(i.params.items()), i.start) for i in scenario.incidents
              if i.type == "backdoor"]
    sig = f"s{scenario.seed}-" + (hashlib.sha256(repr(poison).encode()).hexdigest()[:10] if poison else "clean")
    cache = out_dir / MODELS_CACHE / sig
    for cand in (models_dir, cache, out_dir / MODELS_CACHE / f"s{scenario.seed}-clean",
                 settings.sample_dir() / "models"):
        if cand is not None and (Path(cand) / KEYS_FILE).is_file():
            return cache, Path(cand)
    return cache, None


def _refresh_cache(models: Path, cache: Path) -> None:
    """Keep the trained models of this build for the next one (training is the slow part)."""
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.sample.models import KEYS_FILE, UNREGISTERED_DIR

    if not (models / KEYS_FILE).is_file():
        return
    cache.mkdir(parents=True, exist_ok=True)
    for src in models.rglob("*"):
        if src.is_file() and UNREGISTERED_DIR not in src.parts and src.name != "registry.json":
            dest = cache / src.relative_to(models)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)


def _resolve_truth(ws: Workspace, scenario: Scenario, sample_truth: dict[str, Any]) -> dict[str, Any]:
    """Pair each scenario incident with the generator's ground truth and add what questions may ask."""
    origin = us_from_iso(sample_truth["start"])
    remaining = list(sample_truth["incidents"])
    out: dict[str, Any] = {}
    for inc in scenario.incidents:
        system = inc.system_id
        cands = [t for t in remaining if t["type"] == inc.type and (system is None or t["system_id"] == system)]
        if inc.principals:
            cands = [t for t in cands if sorted(t["principals"]) == sorted(inc.principals)] or cands
        if inc.start and len(cands) > 1:
            want = parse_start(inc.start, origin)
            cands.sort(key=lambda t, w=want: abs(us_from_iso(t["start"]) - w))
        if not cands:
            raise WorkbenchError(f"drill {scenario.id}: the generator did not inject incident {inc.id}")
        t = cands[0]
        remaining.remove(t)
        ids = list(t.get("decision_ids") or [])
        facts = _facts(ws, t["system_id"], ids)
        trigger = t.get("trigger") or {}
        out[inc.id] = {
            "id": inc.id, "truth_id": t["id"], "type": t["type"], "system_id": t["system_id"],
            "atlas": list(t.get("atlas") or []), "start": t["start"], "end": t["end"],
            "principals": list(t.get("principals") or []), "decision_count": len(ids), "decision_ids": ids,
            "ips": facts["ips"], "version": facts["version"], "sha256": facts["sha256"],
            "sha256_prefix": (facts["sha256"] or "")[:12] or None,
            "feature": t.get("feature"), "metric": t.get("metric"),
            "trigger_feature": trigger.get("feature"), "trigger_value": trigger.get("value"),
            "description": t.get("description", ""), "first_decision": facts["first"],
            "last_decision": facts["last"], "outcomes": facts["outcomes"],
        }
    t0 = scenario.t0
    t0_iso = (iso_from_us(parse_start(t0, origin)) if t0 else sample_truth["end"])
    return {"sample_start": sample_truth["start"], "sample_end": sample_truth["end"], "t0": t0_iso,
            "model_releases": sample_truth.get("model_releases", []), "incidents": out}


def _facts(ws: Workspace, system_id: str, ids: list[str]) -> dict[str, Any]:
    """Addresses, model version and outcome counts of an incident's decisions, computed in DuckDB."""
    empty = {"ips": [], "version": None, "sha256": None, "first": None, "last": None, "outcomes": {}}
    if not ids:
        return empty
    con = ws.con
    con.execute("CREATE OR REPLACE TEMP TABLE _drill_ids(decision_id VARCHAR)")
    con.executemany("INSERT INTO _drill_ids VALUES (?)", [[i] for i in ids])
    where = "FROM decisions d JOIN _drill_ids USING (decision_id) WHERE d.system_id = ?"
    ips = [r[0] for r in ws.rows(f"SELECT DISTINCT source_ip {where} AND source_ip IS NOT NULL ORDER BY 1",
                                 [system_id])]
    row = ws.one(f"SELECT mode(model_version), mode(model_sha256), min(ts), max(ts) {where}", [system_id])
    outcomes = dict(ws.rows(f"SELECT prediction, count(*) {where} GROUP BY 1 ORDER BY 1", [system_id]))
    con.execute("DROP TABLE _drill_ids")
    return {"ips": ips, "version": row[0], "sha256": row[1],
            "first": row[2].isoformat() if row[2] else None, "last": row[3].isoformat() if row[3] else None,
            "outcomes": outcomes}


def _check_expectations(scenario: Scenario, truth: dict[str, Any]) -> None:
    """Refuse a scenario whose literal expected principals disagree with what was injected."""
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.drills.scoring import expected_values

    for q in scenario.questions:
        if q.kind != "principal" or not q.incident:
            continue
        want = {str(v).lower() for v in expected_values(q, truth)}
        have = {p.lower() for p in truth["incidents"][q.incident]["principals"]}
        if want and have and not want <= have:
            raise WorkbenchError(f"drill {scenario.id}: question {q.id} expects {sorted(want)} but incident "
                                 f"{q.incident} injected {sorted(have)}")


def find_drill(db: Path | None, search_dir: Path = Path("drills")) -> Path:
    """The drill workspace to act on: --db if given, else the newest drill under ./drills/."""
    if db is not None:
        return Path(db)
    cands = sorted(Path(search_dir).glob("*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not cands:
        raise WorkbenchError("no drill workspace found under ./drills; give --db or run `workbench drill start`")
    return cands[0]


# -- hooks for drills built from another source than a scenario's generator (workbench/drills/from_redteam.py) --
def clear_drill_target(path: Path, force: bool) -> None:
    """Make way for a drill workspace at path: never a non-drill file, an existing drill only with force."""
    if not path.exists():
        return
    if not file_is_drill(path):
        raise WorkbenchError(f"{path} exists and is not a drill workspace; refusing to touch it "
                             "(choose another --out directory)")
    if not force:
        raise WorkbenchError(f"drill workspace {path} already exists; use --force to rebuild it "
                             "(its answers and incidents are lost)")
    _remove(path)


def remove_drill_files(path: Path) -> None:
    """Delete a (half-built) drill workspace and its side files."""
    _remove(path)


def begin_drill(ws: Workspace, scenario_id: str) -> None:
    """Mark a workspace as a drill being built (so a failed build can be rebuilt with --force)."""
    _set_meta(ws, META_KEY, {"drill": True, "status": "building", "scenario_id": scenario_id})


def seal_drill(ws: Workspace, builder: Actor, scenario: Scenario, truth: dict[str, Any], data_dir: Path,
               extra: dict[str, Any] | None = None) -> datetime:
    """Make a built workspace a ready drill: answer key, stopped clock, public metadata; audited as drill.start."""
    now = datetime.now(UTC)
    meta = {"drill": True, "status": "ready", "scenario_id": scenario.id, "title": scenario.title,
            "scenario_path": None, "scenario_sha256": scenario.sha256, "scenario_text": scenario.text,
            "seed": scenario.seed, "built_at": now.isoformat(), "built_by": builder.user, "data_dir": str(data_dir),
            **(extra or {})}
    with ws.transaction():
        _set_meta(ws, KEY_KEY, _encode(truth))
        _set_meta(ws, CLOCK_KEY, {"started_at": None, "pauses": []})
        _set_meta(ws, META_KEY, meta)
        audit.record(ws, builder, "drill.start", scenario.id,
                     {"scenario_sha256": scenario.sha256, "seed": scenario.seed, "path": str(ws.path),
                      "incidents": len(scenario.incidents), "built_at": now.isoformat(), **(extra or {})})
    return now
