"""Detection coverage: ingest emitted attack traffic into a scratch copy of the workspace, run every detector,
and say per ATLAS technique whether they fired, how late, and what they missed.

A miss is a finding: a technique with no alert on the attack's decisions is reported as missed, with the
share of attack decisions no alert named. "Time to detect" is measured on the emitted timeline (a batch
detector run over the whole log): from the attack's first query to the first attack decision an alert names.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.access import Actor, require
from workbench.detect import run_all
from workbench.errors import WorkbenchError
from workbench.ingest import ingest
from workbench.redteam.runs import ATLAS, set_coverage
from workbench.store import Workspace, open_workspace


def _manifests(emit_dir: Path) -> list[dict[str, Any]]:
    path = emit_dir / ".redteam-manifest.json"
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{emit_dir}: no readable .redteam-manifest.json from `workbench redteam --emit` "
                             f"({exc})") from exc
    if not isinstance(man, dict) or not {"run_id", "system_id", "attack_file", "id_prefix"} <= set(man):
        raise WorkbenchError(f"{path}: not a red-team emit manifest")
    return [man]


def coverage(ws: Workspace, actor: Actor, emit_dir: str | Path, *, keep_scratch: Path | None = None
             ) -> dict[str, Any]:
    """Ingest the emitted attack into a scratch copy of the workspace, detect, and score the detectors."""

    require(actor, "read:decisions", ws)
    require(actor, "write:detect", ws)
    emit_dir = Path(emit_dir)
    man = _manifests(emit_dir)[0]
    attack_file = emit_dir / Path(man["attack_file"]).name
    tmp = Path(tempfile.mkdtemp(prefix="wb-redteam-"))
    try:
        ws.execute("CHECKPOINT")
        scratch_path = tmp / "scratch.duckdb"
        shutil.copy(ws.path, scratch_path)
        scratch = open_workspace(scratch_path)
        try:
            files = ingest(scratch, actor, [attack_file], kind="decisions")
            errors = [f.error for f in files if f.error]
            if errors:
                raise WorkbenchError(f"the emitted traffic did not ingest: {errors[0]}")
            n_attack = scratch.scalar("SELECT count(*) FROM decisions WHERE starts_with(decision_id, ?)",
                                      [man["id_prefix"]])
            since = datetime.fromisoformat(man["start"]) - timedelta(days=1)
            alerts = run_all(scratch, actor, system=man["system_id"], since=since)
            result = score(scratch, man, alerts, int(n_attack or 0))
            if keep_scratch:
                scratch.execute("CHECKPOINT")
        finally:
            scratch.close()
        if keep_scratch:
            shutil.copy(scratch_path, keep_scratch)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if ws.scalar("SELECT count(*) FROM redteam_runs WHERE run_id = ?", [man["run_id"]]):
        set_coverage(ws, actor, man["run_id"], result)
    return result


def score(scratch: Workspace, man: dict[str, Any], alerts: list[dict[str, Any]], n_attack: int) -> dict[str, Any]:
    """Per ATLAS technique of the attack: fired, by which detectors, time to detect, attack decisions missed."""
    prefix, start = man["id_prefix"], datetime.fromisoformat(man["start"])
    first = {r[0]: r[1] for r in scratch.rows(
        "SELECT decision_id, ts FROM decisions WHERE starts_with(decision_id, ?)", [prefix])}
    order = sorted(first, key=lambda k: (first[k], k))
    rank = {k: i for i, k in enumerate(order)}
    hit_alerts, caught = [], set()
    for a in alerts:
        mine = [d for d in a.get("decision_ids") or [] if d.startswith(prefix)]
        if mine or a.get("principal") == man.get("principal"):
            caught.update(mine)
            t_first = min((first[d] for d in mine if d in first), default=None)
            hit_alerts.append({"alert_id": a["alert_id"], "detector": a["detector"], "severity": a["severity"],
                               "atlas": a.get("atlas") or [], "attack_decisions": len(mine),
                               "first_flagged": t_first, "summary": a.get("summary"),
                               "queries_before": min((rank[d] for d in mine if d in rank), default=None)})
    others = [a for a in alerts if a["alert_id"] not in {h["alert_id"] for h in hit_alerts}]
    techniques = {}
    for tech in ATLAS.get(man["attack"], man.get("atlas") or []):
        mine = [h for h in hit_alerts if tech in h["atlas"]]
        ts = [h["first_flagged"] for h in mine if h["first_flagged"] is not None]
        techniques[tech] = {
            "fired": bool(mine), "detectors": sorted({h["detector"] for h in mine}),
            "alerts": [h["alert_id"] for h in mine],
            "time_to_detect_s": (min(ts) - start).total_seconds() if ts else None,
            "queries_before_first_flag": min((h["queries_before"] for h in mine
                                              if h["queries_before"] is not None), default=None),
            "decisions_flagged": sum(h["attack_decisions"] for h in mine),
        }
    missed = n_attack - len(caught)
    return {"run_id": man["run_id"], "system_id": man["system_id"], "attack": man["attack"],
            "principal": man.get("principal"), "attack_decisions": n_attack, "decisions_flagged": len(caught),
            "decisions_missed": missed, "missed_share": missed / n_attack if n_attack else None,
            "detected": bool(hit_alerts), "techniques": techniques,
            "alerts": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in h.items()}
                       for h in hit_alerts],
            "techniques_missed": [t for t, c in techniques.items() if not c["fired"]],
            "other_alerts_in_window": len(others)}
