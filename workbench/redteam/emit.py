"""--emit: the attack's queries as canonical decision logs, timed like the attacker sent them, inside normal traffic.

DIR gets `attack-<run>.jsonl` (one canonical decision per query: a principal of its own per attack, a
TEST-NET-2 address, sessions per walk, realistic gaps), `normal-<run>.jsonl` (a copy of the system's logged
traffic over the attack's window and the day before it, so the directory alone replays the mix into an empty
workspace) and `.redteam-manifest.json` (hidden, so `workbench ingest DIR` takes only the logs).
The attack ends at the system's last logged decision, so in a copy of the
workspace it is mixed into the traffic that is already there.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from workbench import audit
from workbench.access import Actor, require
from workbench.errors import WorkbenchError
from workbench.redteam.target import Target
from workbench.store import Workspace
from workbench.store.sqltext import quote_literal

# Seconds between queries (low, high) inside one session, and the pause between sessions.
TIMING = {
    "evasion": ((4.0, 30.0), (600.0, 2400.0)),
    "hsj": ((0.5, 3.0), (120.0, 600.0)),
    "extraction": ((1.0, 11.0), (1.0, 11.0)),
    "probing": ((1.0, 8.0), (30.0, 300.0)),
    "backdoor-scan": ((0.5, 4.0), (10.0, 120.0)),
}


def _profile(attack: str, tag: str) -> tuple[tuple[float, float], tuple[float, float]]:
    return TIMING["hsj"] if tag.startswith("hsj") else TIMING[attack]


def _value(v: Any, kind: str, integer: bool) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if kind == "number":
        return int(round(float(v))) if integer else float(v)
    if kind == "bool":
        return bool(v)
    return str(v)


def emit(ws: Workspace, actor: Actor, run: dict[str, Any], target: Target, out_dir: Path) -> Path:
    """Write the run's queries (and a copy of normal traffic around them) as canonical decision logs."""
    require(actor, "export", ws)
    q = target.queried()
    if q.empty:
        raise WorkbenchError("the attack sent no queries: nothing to emit")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(run["seed"] + 17)
    tags = q["__tag"].to_numpy()
    gaps = np.empty(len(q))
    for i, tag in enumerate(tags):
        inner, pause = _profile(run["attack"], str(tag))
        new_session = i == 0 or tags[i - 1] != tag
        gaps[i] = rng.uniform(*pause) if new_session and i else rng.uniform(*inner)
    offsets = np.cumsum(gaps) - gaps[0]
    last = ws.one("SELECT max(ts), median(latency_ms) FROM decisions WHERE system_id = ?", [run["system_id"]])
    end: datetime = last[0]
    start = end - timedelta(seconds=float(offsets[-1]) + 60)
    served = target.logged_version or run["version"]
    sha = target.model.sha256 if target.kind == "registered" else ws.scalar(
        "SELECT any_value(model_sha256) FROM decisions WHERE system_id = ? AND model_version = ?",
        [run["system_id"], served])
    principal = f"redteam-{run['attack']}-{run['run_id'][3:9].lower()}"
    ip = f"198.51.100.{int(run['run_id'][3:5], 16) % 250 + 2}"
    specs = target.space.specs
    latency = float(last[1] or 20.0)
    path = out_dir / f"attack-{run['run_id']}.jsonl"
    lat = rng.lognormal(math.log(latency), 0.25, len(q))
    with path.open("w", encoding="utf-8") as fh:
        names = list(specs)
        cols = [q[n].to_numpy(dtype=object) for n in names]
        for i in range(len(q)):
            feats = {n: _value(cols[j][i], specs[n].kind, specs[n].integer) for j, n in enumerate(names)}
            ts = start + timedelta(seconds=float(offsets[i]))
            fh.write(json.dumps({
                "decision_id": f"{run['run_id']}-{i:06d}", "ts": ts.isoformat().replace("+00:00", "Z"),
                "system_id": run["system_id"], "model_version": served, "model_sha256": sha,
                "principal": principal, "session_id": f"{principal}-{tags[i]}", "source_ip": ip,
                "prediction": str(q["__prediction"].iat[i]), "score": float(q["__score"].iat[i]),
                "status": "ok", "latency_ms": round(float(lat[i]), 2), "features": feats}) + "\n")
    normal = out_dir / f"normal-{run['run_id']}.jsonl"
    ws.execute(f"COPY (SELECT decision_id, strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts, system_id, model_version, "
               f"model_sha256, principal, session_id, source_ip, prediction, score, status, latency_ms, "
               f"ground_truth, features FROM decisions WHERE system_id = ? AND ts >= ? AND ts <= ? "
               f"ORDER BY ts, decision_id) TO {quote_literal(str(normal))} (FORMAT JSON)",
               [run["system_id"], start - timedelta(days=1), end])
    manifest = {"run_id": run["run_id"], "system_id": run["system_id"], "attack": run["attack"],
                "version": run["version"], "served_as": served, "principal": principal, "source_ip": ip,
                "start": start.isoformat(), "end": (start + timedelta(seconds=float(offsets[-1]))).isoformat(),
                "queries": int(len(q)), "queries_sent": run["queries"], "atlas": run["atlas"],
                "attack_file": path.name, "normal_file": normal.name, "id_prefix": f"{run['run_id']}-"}
    (out_dir / ".redteam-manifest.json").write_text(json.dumps(manifest, indent=1))
    audit.record(ws, actor, "redteam.emit", run["run_id"], {"dir": str(out_dir), "queries": int(len(q)),
                                                            "principal": principal})
    return out_dir
