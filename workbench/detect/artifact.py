"""Unregistered model artifacts and tampering: decisions served by a hash or version not in the registry."""

from __future__ import annotations

from workbench.detect.alerts import Alert
from workbench.detect.context import Ctx, SystemScope
from workbench.detect.episodes import episodes_sql
from workbench.explain.registry import registered_hashes
from workbench.timestamps import human_utc

NAME = "artifact"
ATLAS = ["AML.T0018", "AML.T0010.003"]
GAP_MINUTES = 60  # unregistered decisions further apart than this are separate episodes


def _registry(ctx: Ctx, system_id: str) -> tuple[set[str], set[str]]:
    """Registered hashes and versions of a system (empty when the registry is not there)."""

    hashes = set(registered_hashes(ctx.ws, system_id))
    versions: set[str] = set()
    if ctx.ws.table_exists("models"):
        versions = {r[0] for r in ctx.ws.rows("SELECT DISTINCT version FROM models WHERE system_id = ?",
                                              [system_id])}
        if not hashes:
            hashes = {r[0] for r in ctx.ws.rows("SELECT DISTINCT sha256 FROM models WHERE system_id = ?",
                                                [system_id])}
    return hashes, versions


def detect(ctx: Ctx) -> list[Alert]:
    """One alert per episode of decisions whose artifact hash (or version) is not registered."""
    out: list[Alert] = []
    for s in ctx.systems:
        hashes, versions = _registry(ctx, s.system_id)
        if not hashes:
            ctx.notes.append(f"{s.system_id}: no registered models, artifact check skipped")
            continue
        out += _system(ctx, s, sorted(hashes), sorted(versions))
    return out


def _system(ctx: Ctx, s: SystemScope, hashes: list[str], versions: list[str]) -> list[Alert]:
    ws = ctx.ws
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE _art AS
        WITH u AS (
            SELECT decision_id, ts, model_version, coalesce(model_sha256, '') AS sha, principal, prediction
            FROM {s.table}
            WHERE in_scope AND (CASE WHEN model_sha256 IS NULL THEN NOT list_contains(?, model_version)
                                     ELSE NOT list_contains(?, model_sha256) END))
        {episodes_sql("u", ["model_version", "sha"], GAP_MINUTES, "decision_id")}
    """, [versions, hashes])
    episodes = ws.dicts("""
        SELECT k, any_value(model_version) AS version, any_value(sha) AS sha, count(*) AS n, min(ts) AS t0,
               max(ts) AS t1, count(DISTINCT principal) AS principals
        FROM _art GROUP BY k ORDER BY t0
    """)
    if not episodes:
        return []
    ctx.hit(NAME, s, "SELECT k, decision_id FROM _art")
    out = []
    for e in episodes:
        # traffic share and outcome mix against registered artifacts in the same hours
        total = ws.scalar(f"SELECT count(*) FROM {s.table} WHERE ts >= ? AND ts <= ?", [e["t0"], e["t1"]])
        mix_u = dict(ws.rows("SELECT prediction, count(*)::DOUBLE / sum(count(*)) OVER () FROM _art WHERE k = ? "
                             "GROUP BY 1", [e["k"]]))
        mix_r = dict(ws.rows(f"""
            SELECT prediction, count(*)::DOUBLE / sum(count(*)) OVER () FROM {s.table}
            WHERE model_version = ? AND list_contains(?, model_sha256) AND in_scope GROUP BY 1""",
                             [e["version"], hashes]))
        known_version = e["version"] in versions
        sev = "critical" if known_version and e["sha"] else "high"
        what = (f"version {e['version']} with unregistered hash {e['sha'][:12]}" if known_version and e["sha"]
                else f"unregistered version {e['version']}" + (f" (hash {e['sha'][:12]})" if e["sha"] else ""))
        summary = (f"{s.system_id} served {e['n']} decisions from {what} between {human_utc(e['t0'])} and "
                   f"{human_utc(e['t1'])}, an artifact that is not in the model registry.")
        out.append(Alert(
            NAME, s.system_id, sev, e["t0"], e["t1"], summary,
            {"model_version": e["version"], "model_sha256": e["sha"] or None, "decisions": e["n"],
             "registered_hashes": hashes, "registered_versions": versions, "version_registered": known_version,
             "share_of_traffic_in_window": e["n"] / max(total, 1), "distinct_principals": e["principals"],
             "prediction_mix_unregistered": mix_u, "prediction_mix_registered_same_version": mix_r,
             "threshold": "any decision whose hash/version is not registered", "gap_minutes": GAP_MINUTES},
            atlas=list(ATLAS), score=float(e["n"]), subject=e["sha"] or e["version"], hits=e["k"]))
    return out
