"""A red-team run: learn the space, load the target, run one attack in budget, keep the result (and its traffic)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.redteam import backdoor_scan, evasion, extraction, probing, space
from workbench.redteam.emit import emit
from workbench.redteam.target import open_target
from workbench.store import Workspace

ATTACKS = ("evasion", "extraction", "probing", "backdoor-scan")
# What each attack is, in MITRE ATLAS terms: the techniques the detectors should report for its traffic.
ATLAS = {
    "evasion": ["AML.T0043.001", "AML.T0015", "AML.T0042"],
    "extraction": ["AML.T0024.002", "AML.T0040"],
    "probing": ["AML.T0043.001", "AML.T0040"],
    "backdoor-scan": ["AML.T0043.004", "AML.T0040"],
}
DEFAULT_BUDGET = 5000
MAX_BUDGET = 200_000
DEFAULT_SECONDS = 120.0
_COLS = ("run_id, system_id, version, target_kind, model_sha256, attack, seed, budget, queries, seconds, "
         "started_at, actor, role, result, emit_dir, coverage")


def run_attack(ws: Workspace, actor: Actor, system_id: str, attack: str, *, version: str | None = None,
               budget: int = DEFAULT_BUDGET, seed: int = 0, seconds: float = DEFAULT_SECONDS,
               mutable: list[str] | None = None, surrogate: bool = False, emit_dir: str | Path | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Attack a registered model (or a black box's surrogate) in budget; progress(queries, budget) per batch."""
    require(actor, "read:decisions", ws)
    require(actor, "write:models", ws)
    if attack not in ATTACKS:
        raise WorkbenchError(f"unknown attack {attack!r}; use one of {', '.join(ATTACKS)}")
    if not 1 <= int(budget) <= MAX_BUDGET:
        raise WorkbenchError(f"--budget must be between 1 and {MAX_BUDGET} queries")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    sp = space.learn(ws, system_id, mutable)
    target = open_target(ws, actor, system_id, version, sp, budget=budget, seconds=seconds, use_surrogate=surrogate,
                         progress=progress)
    if attack == "evasion":
        result = evasion.run(target, seed)
    elif attack == "extraction":
        result = extraction.run(target, seed)
    elif attack == "probing":
        result = probing.run(target, seed)
    else:
        result = backdoor_scan.run(target, actor, seed)
    run_id = "RT-" + uuid.uuid5(uuid.NAMESPACE_URL, f"{system_id}|{target.version}|{attack}|{seed}|{budget}|"
                                f"{started.isoformat()}").hex[:12]
    out = {"run_id": run_id, "system_id": system_id, "version": target.version, "target_kind": target.kind,
           "model_sha256": target.model.sha256, "attack": attack, "seed": int(seed), "budget": int(budget),
           "queries": target.queries, "seconds": round(time.perf_counter() - t0, 3), "started_at": started,
           "actor": actor.user, "role": actor.role, "atlas": ATLAS[attack],
           "rule": {"labels": target.rule["labels"], "thresholds": target.rule["thresholds"],
                    "learned_from": target.logged_version},
           "space": [s.as_dict() for s in sp.specs.values()], "result": result, "emit_dir": None,
           "coverage": None}
    if emit_dir is not None:

        out["emit_dir"] = str(emit(ws, actor, out, target, Path(emit_dir)))
    _store(ws, actor, out)
    return out


def _store(ws: Workspace, actor: Actor, out: dict[str, Any]) -> None:
    body = {k: out[k] for k in ("atlas", "rule", "space", "result")}
    with ws.transaction() as con:
        con.execute(f"INSERT INTO redteam_runs({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    [out["run_id"], out["system_id"], out["version"], out["target_kind"], out["model_sha256"],
                     out["attack"], out["seed"], out["budget"], out["queries"], out["seconds"], out["started_at"],
                     actor.user, actor.role, audit.canonical(body), out["emit_dir"]])
        audit.record(ws, actor, "redteam.run", out["run_id"],
                     {"system_id": out["system_id"], "version": out["version"], "attack": out["attack"],
                      "queries": out["queries"], "seed": out["seed"], "budget": out["budget"],
                      "emit_dir": out["emit_dir"]})


def set_coverage(ws: Workspace, actor: Actor, run_id: str, coverage: dict[str, Any]) -> None:
    """Keep a run's detection coverage with it (audited)."""
    require(actor, "write:models", ws)
    with ws.transaction() as con:
        con.execute("UPDATE redteam_runs SET coverage = ? WHERE run_id = ?", [audit.canonical(coverage), run_id])
        audit.record(ws, actor, "redteam.coverage", run_id,
                     {t: c.get("fired") for t, c in (coverage.get("techniques") or {}).items()})


def _row(r: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(r.pop("result")) if isinstance(r.get("result"), str) else (r.pop("result") or {})
    r.update(body)
    if isinstance(r.get("coverage"), str):
        r["coverage"] = json.loads(r["coverage"])
    return r


def list_runs(ws: Workspace, actor: Actor, system_id: str | None = None, version: str | None = None
              ) -> list[dict[str, Any]]:
    """Red-team runs, newest first, with their results and coverage."""
    require(actor, "read:aggregates", ws)
    where, params = ["true"], []
    if system_id:
        where.append("system_id = ?")
        params.append(system_id)
    if version:
        where.append("version = ?")
        params.append(version)
    rows = ws.dicts(f"SELECT {_COLS} FROM redteam_runs WHERE {' AND '.join(where)} ORDER BY started_at DESC",
                    params)
    return [_row(r) for r in rows]


def get_run(ws: Workspace, actor: Actor, run_id: str) -> dict[str, Any]:
    """One run by id."""
    require(actor, "read:aggregates", ws)
    rows = ws.dicts(f"SELECT {_COLS} FROM redteam_runs WHERE run_id = ?", [run_id])
    if not rows:
        raise WorkbenchError(f"no red-team run {run_id}")
    return _row(rows[0])
