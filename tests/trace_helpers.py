"""A small LLM-agent trace workspace for the trace CLI, report and app tests (real DuckDB files, no mocks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.access import local_admin
from workbench.detect import run_all
from workbench.detect.llm_detectors import NAMES
from workbench.ingest import ingest
from workbench.sample.llm_agent import generate_traces
from workbench.store import open_workspace
from workbench.traces.systems import configure


def build_trace_ws(tmp: Path, seed: int = 3, days: int = 8, per_day: int = 10) -> tuple[Path, dict[str, Any]]:
    """Generate the agent's traces, ingest them (with its canary and domains) and run the LLM detectors."""
    generate_traces(tmp, seed=seed, days=days, conversations_per_day=per_day)
    truth = json.loads((tmp / "traces" / "ground_truth.json").read_text())
    path = tmp / "traces.duckdb"
    with open_workspace(path) as ws:
        who = local_admin()
        configure(ws, who, truth["system_id"], canary=truth["canary"], org_domains=truth["org_domains"])
        files = ingest(ws, who, [tmp / "traces" / "spans"])
        assert all(f.error is None for f in files), [f.error for f in files]
        run_all(ws, who, only=list(NAMES))
        ws.execute("CHECKPOINT")
    return path, truth


def conversation_of(path: Path, span_id: str) -> str:
    """The conversation a span belongs to."""
    with open_workspace(path) as ws:
        return str(ws.scalar("SELECT conversation_id FROM trace_spans WHERE span_id = ?", [span_id]))


def incident_span(truth: dict[str, Any], kind: str) -> str:
    """The first labelled span of the trace incident of a type."""
    return next(i for i in truth["incidents"] if i["type"] == kind)["decision_ids"][0]
