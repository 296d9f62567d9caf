"""Logged features -> model input: one JSON parse per row in DuckDB, the training encoding reproduced."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.explain.loaders import LoadedModel
from workbench.ingest import typed
from workbench.store import Workspace

META = ("decision_id", "ts", "model_version", "model_sha256", "score", "prediction")
_P = "__wb_"  # prefix of the query's own columns; feature columns come back positional (__wb_f0, ...)


def catalog(ws: Workspace, system_id: str) -> dict[str, str]:
    """Feature name -> logged type (number, string, bool) for a system."""
    return dict(ws.rows("SELECT feature, type FROM feature_catalog WHERE system_id = ? ORDER BY feature",
                        [system_id]))


def _typed(ws: Workspace, system_id: str, types: dict[str, str], where: str = "true",
           params: list[Any] | None = None, source: str = "all_decisions") -> tuple[str, str, list[Any]]:
    """(relation of the system's decisions `d` with typed features, outer SELECT items, parameters).

    Features come from the typed feature table written at ingest (workbench.ingest.typed; the JSON is parsed only
    for rows without one). The names travel in one parameter (or quoted) and come back as positional columns
    renamed in pandas."""

    rel, items, rparams = typed.relation(ws.con, system_id, types, source=source, where=where, where_params=params,
                                         prefix=_P)
    outer = "".join(f", {sql} AS {_P}f{i}" for i, sql in enumerate(items))
    return rel, outer, rparams


def _meta(types: dict[str, str]) -> str:
    clash = sorted(set(types) & set(META))
    if clash:
        raise WorkbenchError(f"feature {clash[0]!r} has the name of a decision column ({', '.join(META)}); "
                             "rename it in the log to explain or replay these decisions")
    return ", ".join(f"d.{c} AS {_P}{c}" for c in META)


def unique(ids: list[str]) -> list[str]:
    """Decision ids without repeats, in the order given."""
    return list(dict.fromkeys(str(i) for i in ids))


def load_by_ids(ws: Workspace, system_id: str, ids: list[str], types: dict[str, str]) -> pd.DataFrame:
    """Metadata and typed feature columns for the given decisions, in order; error if any is missing."""
    rel, outer, fparams = _typed(ws, system_id, types, "list_contains(?::VARCHAR[], decision_id)", [ids])
    frame = ws.df(
        f"SELECT {_meta(types)}{outer} FROM (SELECT d.*, ids.k AS {_P}k "
        f"FROM (SELECT unnest(?::VARCHAR[]) AS decision_id, generate_subscripts(?::VARCHAR[], 1) AS k) ids "
        f"JOIN {rel} d ON d.decision_id = ids.decision_id) d ORDER BY d.{_P}k",
        [ids, ids, *fparams])
    frame = _rename(frame, types)
    if len(frame) != len(ids):
        found = set(frame["decision_id"])
        missing = [i for i in ids if i not in found]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise WorkbenchError(f"no decision {', '.join(missing[:5])}{more} for system {system_id}")
        frame = frame.drop_duplicates("decision_id").reset_index(drop=True)
    return frame


def load_where(ws: Workspace, system_id: str, where: str, params: list[Any], types: dict[str, str], *,
               order: str = "hash(d.decision_id)", limit: int | None = None) -> pd.DataFrame:
    """Metadata and typed features for decisions matching a SQL condition on d (sampled by hash order)."""
    lim = f" LIMIT {int(limit)}" if limit else ""
    # the rows are chosen first (in a subquery of their own), and their typed features joined to the kept rows only
    source = f"(SELECT * FROM all_decisions d WHERE d.system_id = ? AND ({where}) ORDER BY {order}{lim})"
    rel, outer, fparams = _typed(ws, system_id, types, source=source)
    frame = ws.df(f"SELECT {_meta(types)}{outer} FROM {rel} d ORDER BY {order}",
                  [*fparams[:-1], system_id, *params, fparams[-1]])
    return _rename(frame, types)


def _rename(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    names = {f"{_P}{c}": c for c in META} | {f"{_P}f{i}": name for i, name in enumerate(types)}
    return frame.rename(columns=names)


def check_features(model: LoadedModel, types: dict[str, str], system_id: str) -> list[str]:
    """Raise if the model needs features the log lacks; return logged features the model ignores."""
    missing = [f for f in model.feature_names if f not in types]
    if missing:
        raise WorkbenchError(f"model {system_id} {model.version or model.sha256[:12]} needs features the "
                             f"decision log lacks: {', '.join(missing)}")
    known = set(model.feature_names)
    return [f for f in types if f not in known]


def matrix(model: LoadedModel, frame: pd.DataFrame, types: dict[str, str]) -> np.ndarray:
    """The float matrix the model scores: category codes from the model's stored category lists."""
    cols = []
    for name in model.feature_names:
        col = frame[name]
        if name in model.categories:
            cats = model.categories[name]
            if cats and not isinstance(cats[0], str):
                col = pd.to_numeric(col, errors="coerce")
            codes = pd.Categorical(col, categories=cats).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            cols.append(codes)
        elif types.get(name) == "string":
            num = pd.to_numeric(col, errors="coerce")
            if num.isna().sum() > col.isna().sum():
                raise WorkbenchError(f"feature {name} is logged as text but the model has no category list "
                                     "for it; encode it the way the model was trained")
            cols.append(num.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            cols.append(pd.Series(col).astype("float64").to_numpy(dtype=np.float64, na_value=np.nan))
    if not cols:
        return np.zeros((len(frame), 0))
    return np.column_stack(cols)


def display_values(frame: pd.DataFrame, names: list[str]) -> list[list[Any]]:
    """Per-feature lists of JSON-friendly logged values (ints for whole numbers, None for nulls)."""
    out = []
    for name in names:
        col = frame[name]
        if pd.api.types.is_float_dtype(col.dtype):
            arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
            whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2**53)
            vals = arr.tolist()
            out.append([None if v != v else (int(v) if w else v) for v, w in zip(vals, whole.tolist(),
                                                                                strict=True)])
        else:
            out.append([None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else
                        (bool(v) if isinstance(v, np.bool_) else v) for v in col.tolist()])
    return out
