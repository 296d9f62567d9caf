"""Small helpers shared by the incident-case tests: a tiny decision log ingested through the real pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.access import Actor
from workbench.ingest import ingest_file
from workbench.store import Workspace

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def write_decisions(path: Path, start: int, count: int, system: str = "loan") -> Path:
    """Write `count` decisions d<start>.. as JSONL."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(start, start + count):
            fh.write(
                json.dumps(
                    {
                        "decision_id": f"d{i}",
                        "ts": (T0 + timedelta(minutes=i)).isoformat(),
                        "system_id": system,
                        "model_version": "v1",
                        "principal": f"broker-{i % 3}",
                        "prediction": "approve" if i % 2 else "deny",
                        "score": i / 100,
                        "features": {"income": 1000 + i, "purpose": "car"},
                        "source_ip": "10.0.0.1",
                    }
                )
                + "\n"
            )
    return path


def ingest_decisions(ws: Workspace, actor: Actor, tmp: Path, start: int, count: int) -> None:
    """Ingest a fresh file of decisions into the workspace."""
    result = ingest_file(ws, actor, write_decisions(tmp / f"dec_{start}_{count}.jsonl", start, count))
    assert not result.error, result.error


def add_metrics(ws: Workspace, system: str = "loan", metric: str = "request_rate", n: int = 30) -> None:
    """Insert metric points one minute apart from T0 (a test fixture, as an importer would)."""
    ws.execute(
        "INSERT INTO metrics SELECT ? + to_minutes(i), ?, ?, i * 1.5, NULL, 0, i FROM range(?) t(i)",
        [T0, system, metric, n],
    )
