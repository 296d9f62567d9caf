"""Decision-level reads for the app and notebooks: search, fetch, principal activity, metrics, nearest normal.

Every read of decision rows needs `read:decisions`, masks personal features for roles without `read:personal`,
and is audited as `read.decisions` (who saw which decisions, or which filter). Aggregates need only
`read:aggregates`. All SQL is parameterised; feature names are checked against feature_catalog and
reach the SQL text only as quoted column aliases built from catalog names (their values are parameters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from workbench import audit
from workbench.access import Actor, require
from workbench.cases import masking
from workbench.errors import PermissionDenied, WorkbenchError
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
_SQL_TYPE = {"number": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
_MAX_AUDITED_IDS = 10_000

Filter = tuple[str, str, Any]


class _Params:
    """Named query parameters: add a value, get its placeholder."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def quote_ident(name: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def _pointer(feature: str) -> str:
    """JSON pointer of a top-level key (any characters are safe)."""
    return "/" + feature.replace("~", "~0").replace("/", "~1")


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


def _typed(ftype: str, p: _Params, feature: str, alias: str = "d") -> str:
    raw = f"json_extract_string({alias}.features, {p(_pointer(feature))})"
    return raw if ftype == "string" else f"TRY_CAST({raw} AS {_SQL_TYPE[ftype]})"


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]
    return list(value)


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


def _feature_condition(f: Filter, types: dict[str, str], p: _Params, personal: set[str], actor: Actor) -> str:
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
    expr = _typed(ftype, p, feature)
    if op in ("is null", "is not null"):
        return f"{expr} {op.upper()}"
    if op in ("in", "not in"):
        values = [_coerce(ftype, v, feature) for v in (_as_list(value) or [])]
        neg = "NOT " if op == "not in" else ""
        return f"{neg}list_contains({p(values)}::{_SQL_TYPE[ftype]}[], {expr})"
    if op == "like":
        return f"CAST({expr} AS VARCHAR) LIKE {p(str(value))}"
    if ftype != "number" and op in ("<", "<=", ">", ">="):
        raise WorkbenchError(f"feature {feature} is a {ftype}: use =, !=, in, like")
    return f"{expr} {op} {p(_coerce(ftype, value, feature))}::{_SQL_TYPE[ftype]}"


def _where(
    ws: Workspace,
    actor: Actor,
    p: _Params,
    *,
    system_id: str | None,
    since: Any,
    until: Any,
    principal: Any,
    prediction: Any,
    score_min: float | None,
    score_max: float | None,
    feature_filters: Iterable[Filter],
    decision_ids: Iterable[str] | None,
) -> tuple[str, dict[str, str]]:
    conds = ["TRUE"]
    if system_id is not None:
        conds.append(f"d.system_id = {p(system_id)}")
    if since is not None:
        conds.append(f"d.ts >= {p(since)}::TIMESTAMPTZ")
    if until is not None:
        conds.append(f"d.ts < {p(until)}::TIMESTAMPTZ")
    for column, value in (("principal", principal), ("prediction", prediction)):
        values = _as_list(value)
        if values is not None:
            conds.append(f"list_contains({p([str(v) for v in values])}::VARCHAR[], d.{column})")
    if score_min is not None:
        conds.append(f"d.score >= {p(float(score_min))}")
    if score_max is not None:
        conds.append(f"d.score <= {p(float(score_max))}")
    if decision_ids is not None:
        conds.append(f"list_contains({p([str(i) for i in decision_ids])}::VARCHAR[], d.decision_id)")
    types = feature_types(ws, system_id)
    marks = masking.all_personal(ws)
    personal = set(marks.get(system_id, [])) if system_id else {f for fs in marks.values() for f in fs}
    for f in feature_filters or ():
        conds.append(_feature_condition(f, types, p, personal, actor))
    return " AND ".join(conds), types


def _feature_columns(
    ws: Workspace, actor: Actor, p: _Params, system_id: str | None, types: dict[str, str]
) -> list[str]:
    masked = masking.masked_for(actor)
    marks = masking.all_personal(ws) if masked else {}
    key_sql = p(masking.masking_key(ws)) if masked and any(marks.values()) else None
    cols = []
    for feature, ftype in types.items():
        typed = _typed(ftype, p, feature)
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
        cols.append(f"{expr} AS {quote_ident('f.' + feature)}")
    return cols


def _audit_read(
    ws: Workspace, actor: Actor, system_id: str | None, details: dict[str, Any], ids: list[str]
) -> None:
    details = {**details, "rows": len(ids), "decision_ids": ids[:_MAX_AUDITED_IDS]}
    if len(ids) > _MAX_AUDITED_IDS:
        details["decision_ids_truncated"] = True
    audit.record(ws, actor, "read.decisions", system_id or "*", details)


def _run(ws: Workspace, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    try:
        return ws.df(sql, params)
    except duckdb.ConversionException as exc:
        raise WorkbenchError(f"bad filter value: {str(exc).splitlines()[0]}") from exc


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
    require(actor, "read:decisions")
    if decision_ids is not None:
        decision_ids = [str(i) for i in decision_ids]
    p = _Params()
    where, types = _where(
        ws,
        actor,
        p,
        system_id=system_id,
        since=since,
        until=until,
        principal=principal,
        prediction=prediction,
        score_min=score_min,
        score_max=score_max,
        feature_filters=feature_filters,
        decision_ids=decision_ids,
    )
    limit = max(0, int(limit))
    features = _feature_columns(ws, actor, p, system_id, types)
    select = ", ".join([*(f"d.{c}" for c in BASE_COLUMNS), *features])
    sql = (
        f"WITH hit AS (SELECT * FROM decisions d WHERE {where} ORDER BY d.ts, d.system_id, d.decision_id "
        f"LIMIT {p(limit)}) SELECT {select} FROM hit d ORDER BY d.ts, d.system_id, d.decision_id"
    )
    df = _run(ws, sql, p.values)
    why = _why or {
        "filter": {
            "system_id": system_id,
            "since": since,
            "until": until,
            "principal": principal,
            "prediction": prediction,
            "score_min": score_min,
            "score_max": score_max,
            "feature_filters": [list(f) for f in feature_filters or ()],
            "decision_ids": None if decision_ids is None else len(decision_ids),
            "limit": limit,
        }
    }
    why["masked"] = masking.masked_for(actor)
    _audit_read(ws, actor, system_id, why, df["decision_id"].tolist())
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


def principal_activity(
    ws: Workspace,
    actor: Actor,
    system_id: str,
    principal: str,
    bucket: str = "1 hour",
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """Per time bucket: decisions, scores, predictions, IPs and sessions of one principal (aggregates)."""
    require(actor, "read:aggregates")
    _check_interval(ws, bucket)
    p = _Params()
    conds = [f"system_id = {p(system_id)}", f"principal = {p(principal)}"]
    if since is not None:
        conds.append(f"ts >= {p(since)}::TIMESTAMPTZ")
    if until is not None:
        conds.append(f"ts < {p(until)}::TIMESTAMPTZ")
    return _run(
        ws,
        f"""
        SELECT time_bucket({p(bucket)}::INTERVAL, ts) AS bucket, count(*) AS decisions,
               avg(score) AS mean_score, min(score) AS min_score, max(score) AS max_score,
               count(DISTINCT prediction) AS predictions, mode(prediction) AS top_prediction,
               count(DISTINCT source_ip) AS source_ips, count(DISTINCT session_id) AS sessions,
               avg(latency_ms) AS mean_latency_ms, count(DISTINCT model_version) AS model_versions
        FROM decisions WHERE {" AND ".join(conds)} GROUP BY ALL ORDER BY bucket""",
        p.values,
    )


def _check_interval(ws: Workspace, bucket: str) -> None:
    try:
        ok = ws.scalar("SELECT TRY_CAST(? AS INTERVAL) > INTERVAL 0 SECOND", [str(bucket)])
    except duckdb.Error:
        ok = False
    if not ok:
        raise WorkbenchError(
            f"bucket {bucket!r} is not a positive interval (e.g. '15 minutes', '1 hour', '1 day')"
        )


def metric_window(
    ws: Workspace,
    actor: Actor,
    system_id: str,
    metrics: str | Sequence[str] | None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
) -> pd.DataFrame:
    """Metric points (ts, metric, value, labels) of a system in [since, until), named metrics or all."""
    require(actor, "read:aggregates")
    p = _Params()
    conds = [f"system_id = {p(system_id)}"]
    names = _as_list(metrics)
    if names is not None:
        conds.append(f"list_contains({p([str(m) for m in names])}::VARCHAR[], metric)")
    if since is not None:
        conds.append(f"ts >= {p(since)}::TIMESTAMPTZ")
    if until is not None:
        conds.append(f"ts < {p(until)}::TIMESTAMPTZ")
    return _run(
        ws,
        f"SELECT ts, metric, value, labels FROM metrics WHERE {' AND '.join(conds)} ORDER BY metric, ts",
        p.values,
    )


def alerted_ids_sql(ws: Workspace, p: _Params, system_id: str) -> str | None:
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
    require(actor, "read:decisions")
    types = masking.catalog(ws, system_id)
    hidden = set(masking.personal_features(ws, system_id)) if masking.masked_for(actor) else set()
    numeric = [f for f, t in types.items() if t == "number" and f not in hidden]
    if not numeric:
        raise WorkbenchError(f"system {system_id} has no numeric features to compare")
    if not ws.scalar(
        "SELECT count(*) FROM decisions WHERE system_id = ? AND decision_id = ?", [system_id, decision_id]
    ):
        raise WorkbenchError(f"no decision {decision_id!r} in system {system_id}")
    p = _Params()
    xs = ", ".join(f"{_typed('number', p, f)} AS x{i}" for i, f in enumerate(numeric))
    stats = ", ".join(f"avg(x{i}) AS m{i}, nullif(stddev_samp(x{i}), 0) AS s{i}" for i in range(len(numeric)))
    dist = " + ".join(f"coalesce(pow((c.x{i} - t.x{i}) / st.s{i}, 2), 0)" for i in range(len(numeric)))
    alerted = alerted_ids_sql(ws, p, system_id)
    normal = f"AND d.decision_id NOT IN ({alerted})" if alerted else ""
    sys_p, id_p = p(system_id), p(decision_id)
    sql = f"""
        WITH cand AS (SELECT d.decision_id, d.ts, {xs} FROM decisions d
                      WHERE d.system_id = {sys_p} AND d.decision_id <> {id_p} {normal}),
             target AS (SELECT {xs} FROM decisions d
                        WHERE d.system_id = {sys_p} AND d.decision_id = {id_p} LIMIT 1),
             st AS (SELECT {stats} FROM cand)
        SELECT c.decision_id, sqrt({dist}) AS distance
        FROM cand c, target t, st ORDER BY distance, c.ts, c.decision_id LIMIT {p(max(1, int(k)))}"""
    near = _run(ws, sql, p.values)
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
    return out.reset_index(drop=True)
