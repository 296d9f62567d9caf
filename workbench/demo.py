"""Build the demo workspace from the shipped sample data: ingest, register models, detect."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench import audit, settings
from workbench.access import Actor, require
from workbench.detect import LAST_RUN, run_all
from workbench.errors import WorkbenchError
from workbench.explain import registry
from workbench.ingest import ingest
from workbench.store import Workspace
from workbench.traces.systems import configure


def is_empty(ws: Workspace) -> bool:
    """Whether the workspace holds no decisions and no metrics yet."""
    return not ws.scalar("SELECT (SELECT count(*) FROM decisions) + (SELECT count(*) FROM metrics)")


def build_demo(ws: Workspace, actor: Actor, sample: Path | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load sample decisions, metrics and LLM traces, register the sample's models, and run detection once.

    A detector that fails is named in `detector_errors` (one line each, also said through `progress`); the
    other detectors' alerts are kept."""
    require(actor, "write:ingest", ws)
    sample = Path(sample) if sample else settings.sample_dir()
    say = progress or (lambda _msg: None)
    if not (sample / "decisions").is_dir():
        raise WorkbenchError(f"no sample data at {sample}: run `workbench sample --out {sample}` first")
    say("ingesting decisions")
    files = ingest(ws, actor, [sample / "decisions"], kind="decisions")
    say("ingesting metrics")
    files += ingest(ws, actor, [sample / "metrics"], kind="metrics")
    files += _ingest_traces(ws, actor, sample, say)
    errors = [f.error for f in files if f.error]
    if errors:
        raise WorkbenchError("demo ingest failed: " + errors[0])
    models = _register_models(ws, actor, sample, say)
    alerts, detector_errors = _detect(ws, actor, say)
    ws.execute("INSERT OR REPLACE INTO workspace_meta(key, value) VALUES ('demo', ?)",
               [json.dumps({"sample": str(sample)})])
    audit.record(ws, actor, "demo.build", str(sample), {"files": len(files), "models": models, "alerts": alerts,
                                                       "detector_errors": detector_errors})
    return {"files": [f.as_dict() for f in files], "models": models, "alerts": alerts,
            "detector_errors": detector_errors}


def _ingest_traces(ws: Workspace, actor: Actor, sample: Path, say: Callable[[str], None]) -> list:
    """The LLM agent's spans (sample/traces/spans), after setting its canary and organisation domains as its owner
    would (from the sample's traces/ground_truth.json, when the actor may change settings)."""
    spans = sample / "traces" / "spans"
    if not spans.is_dir():
        return []
    truth_file = sample / "traces" / "ground_truth.json"
    if truth_file.exists() and actor.can("write:settings"):
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        if truth.get("system_id"):
            configure(ws, actor, truth["system_id"], canary=truth.get("canary"),
                      org_domains=truth.get("org_domains"))
    say("ingesting LLM agent traces")
    return ingest(ws, actor, [spans], kind="traces")


def _register_models(ws: Workspace, actor: Actor, sample: Path, say: Callable[[str], None]) -> int:
    registry_file = sample / "models" / "registry.json"
    if not registry_file.exists():
        return 0
    say("registering models")
    count = 0
    for entry in json.loads(registry_file.read_text()):
        registry.add_model(ws, actor, entry["system_id"], entry["version"], sample / "models" / entry["path"]
                           if not (sample / entry["path"]).exists() else sample / entry["path"], exist_ok=True)
        count += 1
    return count


def _detect(ws: Workspace, actor: Actor, say: Callable[[str], None]) -> tuple[int, dict[str, str]]:
    say("running detectors")
    alerts = run_all(ws, actor)
    errors = dict(LAST_RUN.get("errors") or {})
    for name, error in errors.items():
        say(f"detector {name} failed: {error}")
    return len(alerts), errors
