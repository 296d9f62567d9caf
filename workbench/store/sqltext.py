"""The one place text from data may become part of a SQL statement: quoting, and typed reads of JSON keys.

Feature names, system ids, principals, metric names and labels come from the decision logs, which the callers
under investigation write. Values always go to DuckDB as parameters. Where a statement needs a *name* (a column
alias, a struct field), it goes through `quote_ident`; where DuckDB needs a constant string, `quote_literal`.
JSON keys are read with `json_extract_string(json, $paths)` and JSON pointers (`json_pointer`) passed as a
parameter, so any key (quotes, dots, `$`, brackets, `/`, `~`, unicode, the empty string, names that differ only
in case) is data, never SQL or a JSON path.
"""

from __future__ import annotations

from collections.abc import Iterable

SQL_TYPES = {"number": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR"}


def quote_ident(name: str) -> str:
    """A DuckDB identifier for any text: double quotes, embedded double quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A DuckDB string constant for any text: single quotes, embedded single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def json_pointer(key: str) -> str:
    """The RFC 6901 JSON pointer of a top-level key (`~` and `/` escaped; any other character is literal)."""
    return "/" + str(key).replace("~", "~0").replace("/", "~1")


def json_pointers(keys: Iterable[str]) -> list[str]:
    """JSON pointers of top-level keys, in order (pass the list as one `?::VARCHAR[]` parameter)."""
    return [json_pointer(k) for k in keys]


def typed_items(list_sql: str, kinds: Iterable[str]) -> list[str]:
    """SQL for item i of a VARCHAR list expression as the i-th logged type (number, bool, string); NULL where
    a value does not convert. Pair with `json_extract_string(json, ?::VARCHAR[])` and `json_pointers`."""
    out = []
    for i, kind in enumerate(kinds, start=1):
        item = f"{list_sql}[{i}]"
        sql_type = SQL_TYPES.get(kind, "VARCHAR")
        out.append(item if sql_type == "VARCHAR" else f"TRY_CAST({item} AS {sql_type})")
    return out
