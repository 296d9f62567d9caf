"""What the LLM detectors share: the spans in scope, episodes, hits, and alerts naming ATLAS and OWASP ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx
from workbench.detect.episodes import episodes_sql

EPISODE_GAP_HOURS = 6  # a principal's flagged spans further apart than this are separate episodes
OWASP_NAMES = {"LLM01": "Prompt Injection", "LLM02": "Sensitive Information Disclosure",
               "LLM06": "Excessive Agency", "LLM07": "System Prompt Leakage", "LLM10": "Unbounded Consumption"}


def has_traces(ctx: Ctx) -> bool:
    """Whether the workspace holds any span (the LLM detectors are skipped otherwise)."""
    return ctx.ws.table_exists("trace_spans") and bool(ctx.ws.scalar("SELECT count(*) FROM (SELECT 1 FROM "
                                                                      "trace_spans LIMIT 1)"))


def scope(ctx: Ctx, alias: str = "") -> tuple[str, list[Any]]:
    """SQL condition and parameters for the spans in the run's scope (system, since, until)."""
    system, since, until = getattr(ctx, "trace_scope", (None, None, None))
    a = f"{alias}." if alias else ""
    clauses, params = ["true"], []
    if system:
        clauses.append(f"{a}system_id = ?")
        params.append(system)
    if since:
        clauses.append(f"{a}ts >= ?")
        params.append(since)
    if until:
        clauses.append(f"{a}ts <= ?")
        params.append(until)
    return " AND ".join(clauses), params


def episodes(ctx: Ctx, table: str) -> None:
    """Add an `episode` key to a temp table of flagged spans (system_id, principal, ts): 6-hour gaps split."""
    rows = episodes_sql(table, ["system_id", "principal"], EPISODE_GAP_HOURS * 60, "span_id", key="episode")
    ctx.ws.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {rows}")


def hit(ctx: Ctx, detector: str, sql: str, params: list[Any] | None = None) -> None:
    """Add (key, system_id, span_id) rows selected by sql to the run's hit table (span ids as decision ids)."""
    ctx.ws.execute(f"INSERT INTO _hits SELECT ?, k, s, d FROM ({sql}) q(k, s, d)", [detector, *(params or [])])


def alert(detector: str, system_id: str, severity: str, t0: datetime, t1: datetime, summary: str,
          evidence: dict[str, Any], atlas: list[str], owasp: list[str], *, principal: str | None = None,
          score: float = 0.0, key: str, subject: str | None = None) -> Alert:
    """An alert with the OWASP LLM Top 10 (2025) ids and names in its evidence."""
    evidence = {**evidence, "atlas": atlas, "owasp_llm_top10_2025": owasp,
                "owasp_names": {o: OWASP_NAMES[o] for o in owasp}}
    return Alert(detector, system_id, severity, t0, t1, summary, evidence, atlas=list(atlas), principal=principal,
                 metric="tokens" if detector == "llm_consumption" else None, score=float(score), subject=subject,
                 hits=key)
