"""LLM and agent traces: OTLP JSON (GenAI semantic conventions, OpenInference) and Langfuse exports -> spans.

`workbench ingest` recognises a trace file by its content (`--kind traces` forces it): `recognise` says whether
a file is read here, `load` loads it (see load.py). Canonical tables: trace_spans, and the views model_calls,
tool_calls and retrievals (migration 022). Per-system content policy, canary and organisation domains:
workbench.traces.systems. Reading a conversation and freezing it as evidence: workbench.traces.conversations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.files import head_text
from workbench.traces.loader import load_file

FORMATS = ("otlp-json", "langfuse")
_LF_TYPES = {"GENERATION", "SPAN", "EVENT", "TOOL", "RETRIEVER", "AGENT", "CHAIN", "EMBEDDING", "EVALUATOR",
             "GUARDRAIL"}


def sniff(head: str) -> str | None:
    """The trace format of a file's first bytes: otlp-json, langfuse, or None."""
    text = head.lstrip("\ufeff \t\r\n")
    if not text.startswith("{"):
        return None
    if '"resourceSpans"' in text[:8192]:
        return "otlp-json"
    try:
        obj = json.loads(text.split("\n", 1)[0])
    except ValueError:
        return None
    if (isinstance(obj, dict) and ("traceId" in obj or "trace_id" in obj) and "id" in obj
            and str(obj.get("type", "")).upper() in _LF_TYPES and ("startTime" in obj or "start_time" in obj)):
        return "langfuse"
    return None


def recognise(path: Path, kind: str | None, fmt: str | None) -> str | None:
    """The trace format to read a file with when it holds traces (or --kind traces forces it), else None.

    `--from otlp-json` and `--from langfuse` name a trace format; `--from otlp` reads traces when the file holds
    spans (resourceSpans) or `--kind traces` says so, else OTLP metrics; `--kind traces --from jsonl` sniffs
    which of the two trace formats it is. Any other format with `--kind traces` is a one-line error.
    """
    if kind not in (None, "traces"):
        return None
    if fmt in FORMATS:
        return fmt
    try:
        found = sniff(head_text(path))
    except Exception:  # noqa: BLE001 - an unreadable file is left to the ordinary readers to report
        found = None
    if fmt == "otlp":
        return "otlp-json" if found == "otlp-json" or kind == "traces" else None
    if fmt in ("jsonl", "json") and kind == "traces":
        return found or "otlp-json"
    if fmt is not None:
        if kind == "traces":

            raise WorkbenchError(f"{path}: traces are read from OTLP JSON or Langfuse JSONL (--from otlp, otlp-json "
                                 f"or langfuse), not {fmt}")
        return None
    return found or ("otlp-json" if kind == "traces" else None)


def load(ws: Any, actor: Any, path: Path, result: Any, fmt: str, system: str | None, sha256, size: int) -> None:
    """Load a trace file into trace_spans (see loader.load_file); fills the ingest result."""

    result.kind, result.format = "traces", fmt
    load_file(ws, actor, path, result, system, sha256, size)
