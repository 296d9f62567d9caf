"""SQL building blocks for the explore reads: named parameters, typed feature access, common conditions.

Values only ever reach the SQL as parameters; names reach it only as quoted identifiers or JSON pointers
passed as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.store import Workspace
from workbench.store.sqltext import SQL_TYPES as SQL_TYPE
from workbench.store.sqltext import json_pointer, quote_ident

__all__ = ["SQL_TYPE", "SqlParams", "as_list", "in_list", "quote_ident", "run_query", "time_window",
           "typed_feature"]


class SqlParams:
    """Named query parameters: add a value, get its placeholder."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def typed_feature(ftype: str, p: SqlParams, feature: str, alias: str = "d") -> str:
    """SQL for one feature of `alias`.features as its catalog type (NULL where it does not convert)."""
    raw = f"json_extract_string({alias}.features, {p(json_pointer(feature))})"
    return raw if ftype == "string" else f"TRY_CAST({raw} AS {SQL_TYPE[ftype]})"


def as_list(value: Any) -> list[Any] | None:
    """None stays None; a string or other single value becomes a one-item list; an iterable becomes a list."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def in_list(p: SqlParams, values: Iterable[Any], column: str) -> str:
    """Condition: `column` is one of the values (compared as text)."""
    return f"list_contains({p([str(v) for v in values])}::VARCHAR[], {column})"


def time_window(p: SqlParams, since: Any, until: Any, column: str = "ts") -> list[str]:
    """Conditions for `column` in [since, until); a missing bound adds none."""
    conds = []
    if since is not None:
        conds.append(f"{column} >= {p(since)}::TIMESTAMPTZ")
    if until is not None:
        conds.append(f"{column} < {p(until)}::TIMESTAMPTZ")
    return conds


def run_query(ws: Workspace, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run a read as a DataFrame; a filter value DuckDB cannot convert is a user error."""
    try:
        return ws.df(sql, params)
    except duckdb.ConversionException as exc:
        raise WorkbenchError(f"bad filter value: {str(exc).splitlines()[0]}") from exc
