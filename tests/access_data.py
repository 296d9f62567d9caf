"""Small decision logs written as JSONL and ingested, for the access, masking, SQL and explore tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.access import Actor, local_admin
from workbench.ingest import ingest
from workbench.store import Workspace

START = datetime(2024, 5, 1, tzinfo=UTC)
PURPOSES = ("car", "home", "study", "travel")


def loan_rows(n: int = 40) -> list[dict]:
    """n loan decisions, one every 5 minutes, two principals, with an outlier at the end."""
    rows = []
    for i in range(n):
        income = 20000 + 1000 * (i % 20)
        rows.append(
            {
                "decision_id": f"L{i:03d}",
                "ts": (START + timedelta(minutes=5 * i)).isoformat().replace("+00:00", "Z"),
                "system_id": "loan",
                "model_version": "v1",
                "principal": "app-1" if i % 2 == 0 else "app-2",
                "prediction": "approve" if income >= 30000 else "deny",
                "score": round(income / 40000, 4),
                "source_ip": f"10.0.0.{i % 4}",
                "latency_ms": 10.0 + i % 3,
                "features": {
                    "income": income,
                    "age": 20 + i % 30,
                    "email": f"user{i % 7}@example.org",
                    "purpose": PURPOSES[i % 4],
                    "vip": i % 5 == 0,
                },
            }
        )
    return rows


def triage_rows(n: int = 10) -> list[dict]:
    """n triage decisions of a second system (heart_rate, name)."""
    return [
        {
            "decision_id": f"T{i:03d}",
            "ts": (START + timedelta(minutes=7 * i)).isoformat().replace("+00:00", "Z"),
            "system_id": "triage",
            "model_version": "t1",
            "principal": "ward-a",
            "prediction": "urgent" if i % 3 else "ok",
            "score": i / 10,
            "features": {"heart_rate": 60 + i, "name": f"patient {i % 4}"},
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as JSON Lines."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def load(ws: Workspace, tmp: Path, actor: Actor | None = None) -> None:
    """Ingest the loan and triage logs into the workspace."""
    who = actor or local_admin()
    files = [write_jsonl(tmp / "loan.jsonl", loan_rows()), write_jsonl(tmp / "triage.jsonl", triage_rows())]
    results = ingest(ws, who, files)
    assert all(r.error is None and r.rows_loaded for r in results), results


def role(name: str) -> Actor:
    """An actor of the given role."""
    return Actor(f"test-{name}", name)
