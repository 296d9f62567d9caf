"""Decisions for a chart: when more match than can be shown, an even sample across the whole window.

``explore.search_decisions`` returns the oldest ``limit`` matches, which for a month of traffic means the
first hours. ``sample_decisions`` counts every match and, when there are more than ``limit``, keeps an evenly
spaced subset by row number in time order (DuckDB window functions; nothing large reaches pandas), or the
newest / oldest ``limit``. It says how many matched and how many it returns, so a chart can be labelled
honestly. Same permission, masking and audit as the search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from workbench.access import Actor, masking, require
from workbench.explore.search import (
    BASE_COLUMNS,
    DecisionFilter,
    Filter,
    audit_read,
    feature_columns,
    feature_labels,
)
from workbench.explore.sql import SqlParams, run_query
from workbench.store import Workspace

MODES = ("even", "newest", "oldest")
MODE_TEXT = {
    "all": "all of them",
    "even": "sampled evenly across the window",
    "newest": "the newest",
    "oldest": "the oldest",
}


def sample_decisions(
    ws: Workspace,
    actor: Actor,
    system_id: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    principal: str | Sequence[str] | None = None,
    prediction: str | Sequence[str] | None = None,
    score_min: float | None = None,
    score_max: float | None = None,
    feature_filters: Iterable[Filter] = (),
    decision_ids: Iterable[str] | None = None,
    limit: int = 2000,
    mode: str = "even",
) -> dict[str, Any]:
    """At most `limit` matching decisions (oldest first) and how many matched: {decisions, total, shown, mode}.

    mode 'even' keeps evenly spaced matches in time order (the first and last included), 'newest'/'oldest'
    the last/first `limit`; the returned mode is 'all' when nothing had to be left out."""
    require(actor, "read:decisions", ws)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    flt = DecisionFilter.of(system_id=system_id, since=since, until=until, principal=principal,
                            prediction=prediction, score_min=score_min, score_max=score_max,
                            feature_filters=feature_filters, decision_ids=decision_ids)
    p = SqlParams()
    where, types = flt.where(ws, actor, p)
    limit = max(1, int(limit))
    lim = p(limit)
    keep = {
        # rn = 1 + floor(k (n-1) / (limit-1)) for k = 0 .. limit-1: the first and the last match included.
        "even": f"n <= {lim} OR rn = 1 OR ((rn - 1) * ({lim} - 1)) // (n - 1) > ((rn - 2) * ({lim} - 1)) // (n - 1)",
        "newest": f"rn > n - {lim}",
        "oldest": f"rn <= {lim}",
    }[mode]
    select = ", ".join([*(f"d.{c}" for c in BASE_COLUMNS), *feature_columns(ws, actor, p, system_id, types)])
    # Only row ids are numbered; features are parsed for the kept rows alone.
    sql = (
        "WITH hit AS (SELECT d.rowid AS rid, "
        "row_number() OVER (ORDER BY d.ts, d.system_id, d.decision_id, d.rowid) AS rn, count(*) OVER () AS n "
        f"FROM decisions d WHERE {where}), "
        f"kept AS (SELECT rid, n FROM hit WHERE {keep}) "
        f"SELECT {select}, k.n AS __total FROM kept k JOIN decisions d ON d.rowid = k.rid "
        "ORDER BY d.ts, d.system_id, d.decision_id"
    )
    df = run_query(ws, sql, p.values).rename(columns=feature_labels(types))
    total = int(df["__total"].iloc[0]) if len(df) else 0
    df = df.drop(columns="__total")
    shown = len(df)
    used = "all" if shown >= total else mode
    why = {
        "sample": {**flt.details(), "limit": limit, "mode": used, "matched": total},
        "masked": masking.masked_for(actor),
    }
    audit_read(ws, actor, system_id, why, df["decision_id"].astype(str).tolist())
    return {"decisions": df, "total": total, "shown": shown, "mode": used}


def describe(result: dict[str, Any], noun: str = "decisions") -> str:
    """'2,000 of 232,741 decisions, sampled evenly across the window' (or '512 decisions' when all shown)."""
    shown, total, mode = result["shown"], result["total"], result["mode"]
    if mode == "all":
        return f"{shown:,} {noun}"
    return f"{shown:,} of {total:,} {noun}, {MODE_TEXT.get(mode, mode)}"
