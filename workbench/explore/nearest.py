"""Nearest normal: the decisions closest to one by standardized numeric features, among non-alerted ones."""

from __future__ import annotations

import pandas as pd

from workbench.access import Actor, masking, require
from workbench.errors import WorkbenchError
from workbench.explore.search import search_decisions
from workbench.explore.sql import SqlParams, run_query, typed_feature
from workbench.store import Workspace


def alerted_ids_sql(ws: Workspace, p: SqlParams, system_id: str) -> str | None:
    """A subquery listing decision ids of a system that alerts point at, if the detect tables are there."""
    cols = {
        (t, c): dt
        for t, c, dt in ws.rows(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' "
            "AND table_name IN ('alert_decisions', 'alerts')"
        )
    }
    if ("alert_decisions", "decision_id") in cols:
        by_system = ("alert_decisions", "system_id") in cols
        return "SELECT decision_id FROM alert_decisions" + (
            f" WHERE system_id = {p(system_id)}" if by_system else ""
        )
    dtype = cols.get(("alerts", "decision_ids"))
    if dtype is None:
        return None
    ids = "decision_ids" if dtype.endswith("[]") else "CAST(decision_ids AS VARCHAR[])"
    where = f" WHERE system_id = {p(system_id)}" if ("alerts", "system_id") in cols else ""
    return f"SELECT unnest({ids}) AS decision_id FROM alerts{where}"


def nearest_normal(ws: Workspace, actor: Actor, system_id: str, decision_id: str, k: int = 5) -> pd.DataFrame:
    """The k decisions nearest to one by standardized numeric features, among non-alerted decisions."""
    require(actor, "read:decisions", ws)
    types = masking.catalog(ws, system_id)
    hidden = set(masking.personal_features(ws, system_id)) if masking.masked_for(actor) else set()
    numeric = [f for f, t in types.items() if t == "number" and f not in hidden]
    if not numeric:
        raise WorkbenchError(f"system {system_id} has no numeric features to compare")
    if not ws.scalar(
        "SELECT count(*) FROM decisions WHERE system_id = ? AND decision_id = ?", [system_id, decision_id]
    ):
        raise WorkbenchError(f"no decision {decision_id!r} in system {system_id}")
    p = SqlParams()
    xs = ", ".join(f"{typed_feature('number', p, f)} AS x{i}" for i, f in enumerate(numeric))
    stats = ", ".join(f"avg(x{i}) AS m{i}, nullif(stddev_samp(x{i}), 0) AS s{i}" for i in range(len(numeric)))
    dist = " + ".join(f"coalesce(pow((c.x{i} - t.x{i}) / st.s{i}, 2), 0)" for i in range(len(numeric)))
    zs = ", ".join(f"(c.x{i} - t.x{i}) / st.s{i} AS z{i}, c.x{i} AS v{i}" for i in range(len(numeric)))
    ts = ", ".join(f"t.x{i} AS t{i}" for i in range(len(numeric)))
    alerted = alerted_ids_sql(ws, p, system_id)
    normal = f"AND d.decision_id NOT IN ({alerted})" if alerted else ""
    sys_p, id_p = p(system_id), p(decision_id)
    sql = f"""
        WITH cand AS (SELECT d.decision_id, d.ts, {xs} FROM decisions d
                      WHERE d.system_id = {sys_p} AND d.decision_id <> {id_p} {normal}),
             target AS (SELECT {xs} FROM decisions d
                        WHERE d.system_id = {sys_p} AND d.decision_id = {id_p} LIMIT 1),
             st AS (SELECT {stats} FROM cand)
        SELECT c.decision_id, sqrt({dist}) AS distance, {zs}, {ts}
        FROM cand c, target t, st ORDER BY distance, c.ts, c.decision_id LIMIT {p(max(1, int(k)))}"""
    near = run_query(ws, sql, p.values)
    differs = [_differs(numeric, row) for row in near.to_dict("records")]  # k rows, not the decision table
    near = near[["decision_id", "distance"]].assign(differs=differs)
    ids = near["decision_id"].tolist()
    rows = search_decisions(
        ws,
        actor,
        system_id=system_id,
        decision_ids=ids,
        limit=max(len(ids), 1),
        _why={
            "nearest_to": decision_id,
            "k": k,
            "features": numeric,
            "excluded_alerted": alerted is not None,
        },
    )
    out = rows.merge(near, on="decision_id").sort_values(["distance", "ts"], kind="stable")
    first = ["decision_id", "distance", "differs"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


DIFFERS_TOP = 4  # the features that differ most, in standard deviations


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{v:,.3g}"


def _differs(features: list[str], row: dict) -> str:
    """The features of one neighbour that differ most from the decision, in standard deviations, largest first."""
    found = []
    for i, name in enumerate(features):
        z, v, t = row.get(f"z{i}"), row.get(f"v{i}"), row.get(f"t{i}")
        if z is None or v is None or t is None or pd.isna(z) or pd.isna(v) or pd.isna(t) or v == t:
            continue
        found.append((abs(z), f"{name} {_num(v)} vs {_num(t)} ({z:+.2f} sd)"))
    found.sort(key=lambda x: -x[0])
    more = len(found) - DIFFERS_TOP
    text = "; ".join(t for _, t in found[:DIFFERS_TOP]) + (f"; +{more} more" if more > 0 else "")
    return text or "no numeric feature differs"
