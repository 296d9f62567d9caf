"""Decision search: rows matching filters on columns and typed features, personal features masked, audited.

Every read of decision rows needs `read:decisions`, masks personal features for roles without `read:personal`,
and is audited as `read.decisions` (who saw which decisions, or which filter). Feature names are checked
against feature_catalog and never reach the SQL text: their JSON pointers are parameters, and the result's
feature columns are positional, renamed to `f.<name>` in pandas (DuckDB would rename `f.Income` beside `f.income`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from workbench import audit
from workbench.access import Actor, masking, require
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.explore.sql import (
    SQL_TYPE,
    SqlParams,
    as_list,
    in_list,
    run_query,
    time_window,
    typed_feature,
)
from workbench.store import Workspace

BASE_COLUMNS = (
    "system_id",
    "decision_id",
    "ts",
    "model_version",
    "principal",
    "prediction",
    "score",
    "model_sha256",
    "source_ip",
    "latency_ms",
    "status",
    "ground_truth",
    "session_id",
)
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "like", "is null", "is not null")
_MAX_AUDITED_IDS = 10_000

Filter = tuple[str, str, Any]


def feature_types(ws: Workspace, system_id: str | None = None) -> dict[str, str]:
    """Feature -> type for one system, or over all (a name typed differently across systems: string)."""
    if system_id is not None:
        return masking.catalog(ws, system_id)
    return {
        f: t
        for f, t in ws.rows(
            "SELECT feature, CASE WHEN count(DISTINCT type) = 1 THEN any_value(type) ELSE 'string' END "
            "FROM feature_catalog GROUP BY feature ORDER BY feature"
        )
    }


def _coerce(ftype: str, value: Any, feature: str) -> Any:
    try:
        if ftype == "number":
            return float(value)
        if ftype == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                return value.lower() == "true"
            return bool(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise WorkbenchError(f"feature {feature} is a {ftype}; cannot compare it with {value!r}") from exc


def _feature_condition(f: Filter, types: dict[str, str], p: SqlParams, personal: set[str], actor: Actor) -> str:
    if not isinstance(f, Sequence) or len(f) not in (2, 3):
        raise WorkbenchError(f"a feature filter is (feature, op, value), got {f!r}")
    feature, op = str(f[0]), str(f[1]).lower().strip()
    value = f[2] if len(f) == 3 else None
    feature = feature[2:] if feature.startswith("f.") and feature[2:] in types else feature
    if feature not in types:
        raise WorkbenchError(f"unknown feature {feature!r}; known: {', '.join(sorted(types)) or 'none'}")
    if op not in OPS:
        raise WorkbenchError(f"unknown operator {op!r}; use one of {', '.join(OPS)}")
    if feature in personal and masking.masked_for(actor):
        raise PermissionDenied(f"{actor.user} ({actor.role}) may not filter on personal feature {feature}")
    ftype = types[feature]
    expr = typed_feature(ftype, p, feature)
    if op in ("is null", "is not null"):
        return f"{expr} {op.upper()}"
    if op in ("in", "not in"):
        values = [_coerce(ftype, v, feature) for v in (as_list(value) or [])]
        neg = "NOT " if op == "not in" else ""
        return f"{neg}list_contains({p(values)}::{SQL_TYPE[ftype]}[], {expr})"
    if op == "like":
        return f"CAST({expr} AS VARCHAR) LIKE {p(str(value))}"
    if ftype != "number" and op in ("<", "<=", ">", ">="):
        raise WorkbenchError(f"feature {feature} is a {ftype}: use =, !=, in, like")
    return f"{expr} {op} {p(_coerce(ftype, value, feature))}::{SQL_TYPE[ftype]}"


@dataclass(frozen=True)
class DecisionFilter:
    """Which decisions a read wants: columns, a time window, score bounds, typed feature conditions, ids.

    The one filter builder behind `search_decisions` and `sample.sample_decisions`: `where` gives the
    SQL condition (every value a parameter) and `details` what the audit log records of it."""

    system_id: str | None = None
    since: datetime | str | None = None
    until: datetime | str | None = None
    principal: str | Sequence[str] | None = None
    prediction: str | Sequence[str] | None = None
    score_min: float | None = None
    score_max: float | None = None
    feature_filters: tuple[Filter, ...] = ()
    decision_ids: tuple[str, ...] | None = None

    @classmethod
    def of(cls, *, feature_filters: Iterable[Filter] | None = (), decision_ids: Iterable[str] | None = None,
           **columns: Any) -> DecisionFilter:
        """A filter from a read's keyword arguments (any iterable of feature filters or ids)."""
        ids = None if decision_ids is None else tuple(str(i) for i in decision_ids)
        return cls(feature_filters=tuple(feature_filters or ()), decision_ids=ids, **columns)

    def where(self, ws: Workspace, actor: Actor, p: SqlParams) -> tuple[str, dict[str, str]]:
        """The SQL condition on `decisions d` and the feature types it was checked against."""
        conds = ["TRUE"]
        if self.system_id is not None:
            conds.append(f"d.system_id = {p(self.system_id)}")
        conds += time_window(p, self.since, self.until, "d.ts")
        for column, value in (("principal", self.principal), ("prediction", self.prediction)):
            values = as_list(value)
            if values is not None:
                conds.append(in_list(p, values, f"d.{column}"))
        if self.score_min is not None:
            conds.append(f"d.score >= {p(float(self.score_min))}")
        if self.score_max is not None:
            conds.append(f"d.score <= {p(float(self.score_max))}")
        if self.decision_ids is not None:
            conds.append(in_list(p, list(self.decision_ids), "d.decision_id"))
        types = feature_types(ws, self.system_id)
        marks = masking.all_personal(ws)
        personal = set(marks.get(self.system_id, [])) if self.system_id else {f for fs in marks.values() for f in fs}
        for f in self.feature_filters:
            conds.append(_feature_condition(f, types, p, personal, actor))
        return " AND ".join(conds), types

    def details(self) -> dict[str, Any]:
        """What the audit log records of the filter (the number of ids, not the ids)."""
        return {"system_id": self.system_id, "since": self.since, "until": self.until, "principal": self.principal,
                "prediction": self.prediction, "score_min": self.score_min, "score_max": self.score_max,
                "feature_filters": [list(f) for f in self.feature_filters],
                "decision_ids": None if self.decision_ids is None else len(self.decision_ids)}


def feature_columns(
    ws: Workspace, actor: Actor, p: SqlParams, system_id: str | None, types: dict[str, str]
) -> list[str]:
    """SQL for each feature of `types` (positional aliases `__wb_f<i>`), personal ones masked for `actor`."""
    masked = masking.masked_for(actor)
    marks = masking.all_personal(ws) if masked else {}
    key_sql = p(masking.masking_key(ws)) if masked and any(marks.values()) else None
    cols = []
    for feature, ftype in types.items():
        typed = typed_feature(ftype, p, feature)
        systems = [s for s, fs in marks.items() if feature in fs and (system_id is None or s == system_id)]
        if systems:
            text = f"CAST({typed} AS VARCHAR)"
            hidden = (
                masking.mask_sql("d.system_id", text, key_sql, p(feature))
                if key_sql
                else f"CASE WHEN {text} IS NULL THEN NULL ELSE '{masking.MASK}' END"
            )
            expr = (
                hidden
                if system_id is not None
                else f"CASE WHEN list_contains({p(systems)}::VARCHAR[], d.system_id) "
                f"THEN {hidden} ELSE {text} END"
            )
        else:
            expr = typed
        cols.append(f"{expr} AS __wb_f{len(cols)}")  # positional: DuckDB renames aliases equal but for case
    return cols


def feature_labels(types: dict[str, str]) -> dict[str, str]:
    """Result column -> `f.<feature>`, for the positional feature columns of `_feature_columns`."""
    return {f"__wb_f{i}": f"f.{feature}" for i, feature in enumerate(types)}


def audit_read(
    ws: Workspace, actor: Actor, system_id: str | None, details: dict[str, Any], ids: list[str]
) -> None:
    """Record a read of decision rows (`read.decisions`): the filter, the row count and the ids (capped)."""
    details = {**details, "rows": len(ids), "decision_ids": ids[:_MAX_AUDITED_IDS]}
    if len(ids) > _MAX_AUDITED_IDS:
        details["decision_ids_truncated"] = True
    audit.record(ws, actor, "read.decisions", system_id or "*", details)


def search_decisions(
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
    limit: int = 500,
    _why: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Decisions matching the filters (oldest first, at most `limit`), features as `f.<name>`, masked."""
    require(actor, "read:decisions", ws)
    flt = DecisionFilter.of(system_id=system_id, since=since, until=until, principal=principal,
                            prediction=prediction, score_min=score_min, score_max=score_max,
                            feature_filters=feature_filters, decision_ids=decision_ids)
    p = SqlParams()
    where, types = flt.where(ws, actor, p)
    limit = max(0, int(limit))
    features = feature_columns(ws, actor, p, system_id, types)
    select = ", ".join([*(f"d.{c}" for c in BASE_COLUMNS), *features])
    sql = (
        f"WITH hit AS (SELECT * FROM all_decisions d WHERE {where} ORDER BY d.ts, d.system_id, d.decision_id "
        f"LIMIT {p(limit)}) SELECT {select} FROM hit d ORDER BY d.ts, d.system_id, d.decision_id"
    )
    df = run_query(ws, sql, p.values).rename(columns=feature_labels(types))
    why = _why or {"filter": {**flt.details(), "limit": limit}}
    why["masked"] = masking.masked_for(actor)
    audit_read(ws, actor, system_id, why, df["decision_id"].tolist())
    return df


def get_decisions(
    ws: Workspace,
    actor: Actor,
    decision_ids: Iterable[str],
    system_id: str | None = None,
) -> pd.DataFrame:
    """The named decisions (all of them, masked, audited)."""
    ids = [str(i) for i in decision_ids]
    return search_decisions(
        ws,
        actor,
        system_id=system_id,
        decision_ids=ids,
        limit=max(len(ids), 1) * 2,
        _why={"get": {"system_id": system_id, "requested": len(ids)}},
    )
