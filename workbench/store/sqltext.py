"""The one place text from data may become part of a SQL statement: quoting, and typed reads of JSON keys.

Feature names, system ids, principals, metric names and labels come from the decision logs, which the callers
under investigation write. Values always go to DuckDB as parameters. Where a statement needs a *name* (a column
alias, a struct field), it goes through `quote_ident`; where DuckDB needs a constant string, `quote_literal`.
Typed JSON keys (`typed_json_fields`) are read with one parse per row: `json_transform` with its structure
passed as a parameter, or - when names differ only in case, which a DuckDB struct cannot hold - with
`json_extract_string` over JSON pointers passed as a parameter. Either way any key (quotes, dots, `$`, brackets,
`/`, `~`, unicode, `Income` beside `income`) is data, never SQL or a JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

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


def typed_json_fields(json_sql: str, types: Mapping[str, str], alias: str) -> tuple[str, list[str], Any]:
    """Read top-level keys of a JSON expression as their logged types, parsing it once per row.

    Returns (expression to select `AS alias` in an inner query, SQL for each key on `alias` in the order of
    `types`, the one parameter the expression takes). NULL where a key is missing or does not convert."""
    names = list(types)
    folded = {n.casefold() for n in names}
    if names and all(names) and len(folded) == len(names):  # a struct: field names unique regardless of case
        spec = json.dumps({n: SQL_TYPES.get(t, "VARCHAR") for n, t in types.items()})
        return f"json_transform({json_sql}, ?)", [f"{alias}[{quote_literal(n)}]" for n in names], spec
    return f"json_extract_string({json_sql}, ?::VARCHAR[])", typed_items(alias, types.values()), json_pointers(names)
