"""One detector run: the systems in scope, their reference windows, and a typed copy of their decisions.

Every run parses the features JSON once per row (json_transform) into a temp table per system, `_d<i>`,
with the decision columns, the typed features as f0..fN, and two flags: in_ref (inside the reference window)
and in_scope (inside the requested --since/--until). Detectors read only these tables and the metrics table,
put the decisions each alert implicates into `_hits`, and mark decisions they explain in `_claimed` so later
detectors (drift, credential) do not count attack traffic as a change of the population.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.access import Actor
from workbench.detect import baseline
from workbench.store import Workspace


@dataclass
class Feature:
    """A logged input feature: its name, logged type (number|string|bool) and column in the run table."""

    name: str
    type: str
    col: str

    @property
    def numeric(self) -> bool:
        """Whether the feature is a number (binned by quantiles) rather than a category."""
        return self.type == "number"


@dataclass
class SystemScope:
    """One system in a run."""

    system_id: str
    table: str
    features: list[Feature]
    ref_since: datetime
    ref_until: datetime
    ref_source: str
    since: datetime
    until: datetime
    n: int = 0
    n_ref: int = 0
    n_scope: int = 0
    bins: dict[str, tuple[str, int]] | None = None  # feature -> (bin column, number of bins), see ensure_bins

    def feature(self, name: str) -> Feature | None:
        """The feature of that name, if the system has it."""
        return next((f for f in self.features if f.name == name), None)


@dataclass
class Ctx:
    """Shared state of one run of the detectors."""

    ws: Workspace
    actor: Actor
    run_id: str
    systems: list[SystemScope] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alerts: list = field(default_factory=list)  # alerts of the detectors that already ran

    def hit(self, detector: str, system: SystemScope, sql: str, params: list[Any] | None = None) -> None:
        """Add (key, decision_id) rows selected by sql to the run's hit table for this detector."""
        self.ws.execute(f"INSERT INTO _hits SELECT ?, k, ?, decision_id FROM ({sql}) q(k, decision_id)",
                        [detector, system.system_id, *(params or [])])

    def claim(self, detector: str, system: SystemScope, keys: list[str]) -> None:
        """Mark the decisions of these hit keys as explained (later detectors leave them out)."""
        if keys:
            self.ws.execute("INSERT INTO _claimed SELECT DISTINCT system_id, decision_id FROM _hits "
                            "WHERE detector = ? AND system_id = ? AND list_contains(?, key)",
                            [detector, system.system_id, keys])
            self.ws.execute(f"UPDATE {system.table} SET claimed = true FROM (SELECT DISTINCT decision_id FROM _hits "
                            "WHERE detector = ? AND system_id = ? AND list_contains(?, key)) h "
                            f"WHERE {system.table}.decision_id = h.decision_id",
                            [detector, system.system_id, keys])

    def unclaimed(self, system: SystemScope, alias: str = "") -> str:
        """A SQL condition on the run table: the decision is not claimed by an earlier detector."""
        return f"NOT {alias}.claimed" if alias else "NOT claimed"


def build(ws: Workspace, actor: Actor, run_id: str, system: str | None, since: datetime | None,
          until: datetime | None) -> Ctx:
    """Create the run's temp tables for every system with decisions (or just `system`)."""
    ctx = Ctx(ws, actor, run_id)
    ws.execute("CREATE OR REPLACE TEMP TABLE _hits(detector VARCHAR, key VARCHAR, system_id VARCHAR, "
               "decision_id VARCHAR)")
    ws.execute("CREATE OR REPLACE TEMP TABLE _claimed(system_id VARCHAR, decision_id VARCHAR)")
    spans = ws.rows("SELECT system_id, min(ts), max(ts) FROM all_decisions "
                    + ("WHERE system_id = ? " if system else "") + "GROUP BY system_id ORDER BY system_id",
                    [system] if system else None)
    for i, (sid, first, last) in enumerate(spans):
        ref = baseline.reference(ws, sid)
        s_since = since or first
        s_until = until or last
        if s_until < s_since:
            continue
        lo = min(s_since, ref["since"])
        hi = max(s_until, ref["until"])
        feats = [Feature(name, typ, f"f{k}") for k, (name, typ) in enumerate(
            ws.rows("SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY feature", [sid]))]
        rel, items, rparams = _typed_features(ws, sid, feats, lo, hi)
        cols = "".join(f", {sql} AS {f.col}" for f, sql in zip(feats, items, strict=True))
        table = f"_d{i}"
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT decision_id, ts, principal, prediction, score, model_version, model_sha256, source_ip,
                   latency_ms, status,
                   ts >= ? AND ts < ? AS in_ref,
                   ts >= ? AND ts <= ? AS in_scope, false AS claimed{cols}
            FROM {rel}
        """, [ref["since"], ref["until"], s_since, s_until, *rparams])
        n, n_ref, n_scope = ws.one(f"SELECT count(*), count_if(in_ref), count_if(in_scope) FROM {table}")
        ctx.systems.append(SystemScope(sid, table, feats, ref["since"], ref["until"], ref["source"], s_since,
                                       s_until, n, n_ref, n_scope))
    return ctx


def _typed_features(ws: Workspace, sid: str, feats: list[Feature], lo: datetime, hi: datetime):
    """(relation, SQL per feature, parameters): the system's decisions in [lo, hi] with their typed features, read
    from the typed feature table written at ingest (workbench.ingest.typed; JSON only for rows without one)."""
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.ingest import typed

    return typed.relation(ws.con, sid, {f.name: f.type for f in feats}, where="ts >= ? AND ts <= ?",
                          where_params=[lo, hi])


def ensure_bins(ctx: Ctx, s: SystemScope) -> dict[str, tuple[str, int]]:
    """Add each feature's reference bin (b0..bN, SMALLINT) and the day to the run table, once per run."""
    if s.bins is not None:
        return s.bins
    # imported here: moving this file's imports to the top forms an import cycle
    from workbench.detect.extraction import bin_sql

    exprs, bins = [], {}
    for k, f in enumerate(s.features):
        spec = bin_sql(ctx, s, f)
        if spec:
            exprs.append(f"({spec[0]})::SMALLINT AS b{k}")
            bins[f.name] = (f"b{k}", spec[1])
    ctx.ws.execute(f"CREATE OR REPLACE TEMP TABLE {s.table} AS SELECT *, ts::DATE AS day"
                   f"{''.join(', ' + e for e in exprs)} FROM {s.table}")
    s.bins = bins
    return bins


def drop(ctx: Ctx) -> None:
    """Drop the run's temp tables."""
    for s in ctx.systems:
        ctx.ws.execute(f"DROP TABLE IF EXISTS {s.table}")
