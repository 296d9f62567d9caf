"""Drills on LLM and agent traces: the trace workspace part of a drill build (issue 18).

A scenario whose incidents have `llm_*` types (the trace sample's incident types) also gets the LLM customer-service
agent's traces (workbench.sample.llm_agent), starting with the decision sample and written into the drill's data
folder; `build_demo` ingests them and the LLM detectors run with the others. The trace generator injects one
incident of every LLM type; the scenario's `llm_*` incidents name the ones its questions are about (each paired
with the generated incident of its type, so `@INCIDENT.principals` and `@INCIDENT.atlas` resolve to what was
injected). The trace ground truth joins the answer key inside the workspace; its file is removed from the data
folder like the decision sample's. An optional `traces:` mapping in the front matter tunes the traffic: `seed`,
`days` (default: the sample's), `conversations_per_day` (5-200), `phrasing` (a or b), `attack_scale` (0.3-3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.access import Actor
from workbench.drills.model import DrillIncident, Scenario
from workbench.errors import WorkbenchError
from workbench.store import Workspace

_KEYS = {"seed", "days", "conversations_per_day", "phrasing", "attack_scale"}


def llm_types() -> tuple[str, ...]:
    """The LLM incident types the trace generator injects."""
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.detect.llm_eval import TYPE_DETECTOR

    return tuple(TYPE_DETECTOR)


def check_incident(inc: DrillIncident) -> list[str]:
    """Problems with an `llm_*` scenario incident (only its id, type and system may be given)."""
    problems = []
    if inc.type not in llm_types():
        problems.append(f"unknown LLM incident type {inc.type!r}; use one of {', '.join(llm_types())}")
    if inc.start or inc.duration or inc.principals or inc.params or inc.seed is not None:
        problems.append("an LLM trace incident takes only id, type and system (the trace generator places it; "
                        "tune the traffic with the front matter's 'traces' mapping)")
    return problems


def options(scenario: Scenario) -> dict[str, Any] | None:
    """The trace generator's options for this scenario, or None when it has no LLM incident."""
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.drills.scenario import split_front_matter

    meta, _ = split_front_matter(scenario.text, scenario.path or scenario.id)
    raw = meta.get("traces")
    if not any(i.type.startswith("llm_") for i in scenario.incidents):
        if raw:
            raise WorkbenchError(f"drill {scenario.id}: 'traces' is set but no incident has an llm_* type")
        return None
    raw = raw or {}
    if not isinstance(raw, dict) or set(raw) - _KEYS:
        raise WorkbenchError(f"drill {scenario.id}: 'traces' must be a mapping of {', '.join(sorted(_KEYS))}")
    try:
        opts = {"seed": int(raw.get("seed", scenario.seed)), "days": int(raw.get("days", scenario.days)),
                "conversations_per_day": int(raw.get("conversations_per_day", 20)),
                "phrasing": str(raw.get("phrasing", "a")), "attack_scale": float(raw.get("attack_scale", 1.0))}
    except (TypeError, ValueError) as exc:
        raise WorkbenchError(f"drill {scenario.id}: traces seed, days and conversations_per_day must be "
                             "integers, attack_scale a number") from exc
    if not (2 <= opts["days"] <= 31 and 5 <= opts["conversations_per_day"] <= 200
            and opts["phrasing"] in ("a", "b") and 0.3 <= opts["attack_scale"] <= 3):
        raise WorkbenchError(f"drill {scenario.id}: traces days 2-31, conversations_per_day 5-200, phrasing a or "
                             "b, attack_scale 0.3-3")
    return opts


def generate(scenario: Scenario, data_dir: Path, sample_truth: dict[str, Any]) -> dict[str, Any] | None:
    """Write the agent's traces into data_dir/traces/spans and return their ground truth (its file removed)."""
    import json

    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.sample.llm_agent import generate_traces

    opts = options(scenario)
    if opts is None:
        return None
    generate_traces(Path(data_dir), start=sample_truth["start"], **opts)
    truth_file = Path(data_dir) / "traces" / "ground_truth.json"
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    truth_file.unlink()
    for k, inc in enumerate(truth["incidents"], 1):
        inc.setdefault("id", f"trace-{k}-{inc['type']}")
        inc.setdefault("system_id", truth["system_id"])
    return truth


def configure_system(ws: Workspace, actor: Actor, truth: dict[str, Any] | None) -> None:
    """Set the agent's canary and organisation domains before its traces are ingested, as its owner would."""
    if not truth or not actor.can("write:settings"):
        return
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.traces.systems import configure

    configure(ws, actor, truth["system_id"], canary=truth.get("canary"), org_domains=truth.get("org_domains"))
