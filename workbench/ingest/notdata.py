"""Recognise JSON files beside the data that hold no data (a sample's ground_truth.json, a manifest.json).

Ingesting a folder takes every file in it. A `.json` file that is one JSON object, with none of the keys a decision
record, a metric point, an OTLP export or a Langfuse observation has, and that no platform importer claims, is not
ingested: the file is reported as skipped with a one-line note (never silently), and nothing is recorded for it.
`--from` or `--kind decisions|metrics` turn the check off, so a file can always be forced through the ordinary readers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.files import head_text

MAX_BYTES = 8 << 20  # bigger single documents are left to the readers (which report what they find)
_DATA_KEYS = {"decision_id", "features", "metric", "value", "resourceSpans", "resourceMetrics", "resourceLogs",
              "traceId", "trace_id", "spanId", "span_id", "data", "resultType"}


def _document(path: Path) -> Any:
    """The file's single JSON value (a gzip file decompressed), or None when it is not one JSON document."""
    name = path.name.lower()
    if not (name.endswith(".json") or name.endswith(".json.gz")) or path.stat().st_size > MAX_BYTES:
        return None
    text = head_text(path, MAX_BYTES * 4 if name.endswith(".gz") else MAX_BYTES + 1)
    try:
        return json.loads(text)
    except ValueError:  # several documents (JSON Lines under a .json name), or broken: the readers report it
        return None


def note(path: Path, kind: str | None, fmt: str | None, importers: dict[str, Any]) -> str | None:
    """Why `path` is skipped as a file that holds no data, or None when it is (or may be) data to read."""
    if fmt is not None or kind not in (None, "traces"):
        return None
    try:
        doc = _document(path)
    except (OSError, WorkbenchError):
        return None
    if not isinstance(doc, dict) or not doc:
        return None
    keys = set(doc)
    if keys & _DATA_KEYS or any(k.startswith("features") for k in keys):
        return None
    head = json.dumps(doc)[:65536]
    if any(imp.sniff and imp.sniff(path, head) for imp in importers.values()):
        return None
    shown = ", ".join(sorted(keys)[:6]) + (", ..." if len(keys) > 6 else "")
    return (f"not a data file: one JSON document (keys {shown}) with no decision, metric or trace records, such "
            "as a sample's ground_truth.json; nothing recorded (--from, or --kind decisions|metrics, reads it "
            "anyway)")
