"""Typed feature storage: one table per system with a typed column per feature, parsed once at ingest.

`store(con, source_id)` runs in a decision file's settling transaction: for each system the file loaded it
creates the system's table (`features_<n>`) or widens it (ALTER TABLE ADD COLUMN, recorded in feature_columns) for
new features, then fills it from the rows just loaded, keyed by (source_id, source_line). A value that is not of its
column's type (a word in a number feature) goes to the row's `overflow` JSON object instead: never lost.

`relation(...)` is what the heavy readers (detection, explanation, surrogate, overview) read instead of parsing
decisions.features: the system's decisions joined to their typed row; rows that have none (written by other paths,
attached lakes) are read from the JSON, parsed only for those rows. Feature names never become SQL: tables and
columns are numbered, names travel as parameters, and generated identifiers pass through quote_ident anyway.
"""

from __future__ import annotations

from typing import Any

from workbench.store.sqltext import SQL_TYPES, json_pointer, json_pointers, quote_ident, quote_literal

_NUMERIC = {"number": "DOUBLE", "bool": "BOOLEAN"}


def columns(con, system_id: str) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """(the system's typed table or None, feature -> (column, type))."""
    row = con.execute("SELECT table_name FROM feature_tables WHERE system_id = ?", [system_id]).fetchone()
    cols = {f: (c, t) for f, c, t in con.execute(
        "SELECT feature, col, type FROM feature_columns WHERE system_id = ? ORDER BY col", [system_id]).fetchall()}
    return (row[0] if row else None), cols


def _migrate(con, system_id: str, source_id: int) -> tuple[str, dict[str, tuple[str, str]]]:
    """Create or widen the system's typed table so it has a column per catalogued feature."""
    table, cols = columns(con, system_id)
    if table is None:
        n = con.execute("SELECT coalesce(max(TRY_CAST(substr(table_name, 10) AS INTEGER)), 0) + 1 "
                        "FROM feature_tables").fetchone()[0]
        table = f"features_{int(n)}"
        con.execute(f"CREATE TABLE {quote_ident(table)} (source_id INTEGER NOT NULL, source_line BIGINT NOT NULL, "
                    "overflow JSON)")
        con.execute("INSERT INTO feature_tables VALUES (?, ?, ?, now())", [system_id, table, source_id])
    new = con.execute("SELECT feature, type FROM feature_catalog WHERE system_id = ? AND feature NOT IN "
                      "(SELECT feature FROM feature_columns WHERE system_id = ?) ORDER BY feature",
                      [system_id, system_id]).fetchall()
    start = 1 + max((int(c[1:]) for c, _ in cols.values()), default=0)
    for k, (feature, kind) in enumerate(new, start=start):
        col = f"c{k}"
        con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(col)} "
                    f"{SQL_TYPES.get(kind, 'VARCHAR')}")
        con.execute("INSERT INTO feature_columns VALUES (?, ?, ?, ?, ?, now())",
                    [system_id, feature, col, kind, source_id])
        cols[feature] = (col, kind)
    return table, cols


def store(con, source_id: int, systems: list[str], unique_lines: bool = True) -> None:
    """Parse the features of the rows a source loaded once, into each system's typed table (settling pass)."""
    sid = int(source_id)
    for system_id in systems:
        if not unique_lines and con.execute(
                f"SELECT count(*) <> count(DISTINCT source_line) FROM decisions WHERE source_id = {sid} "
                "AND system_id = ?", [system_id]).fetchone()[0]:
            continue  # rows without a line of their own stay JSON-only (read from decisions.features)
        table, cols = _migrate(con, system_id, sid)
        names = list(cols)
        if not names:
            continue
        # one parse per row: every value as text, then cast to its column's type; a value that does not cast goes
        # to `overflow` under its name
        items, failed, over = [], [], []
        for i, name in enumerate(names, start=1):
            kind = cols[name][1]
            v = f"v[{i}]"
            if kind in _NUMERIC:
                cast = f"TRY_CAST({v} AS {_NUMERIC[kind]})"
                items.append(cast)
                failed.append(f"({v} IS NOT NULL AND {cast} IS NULL)")
                pointer = quote_literal(json_pointer(name))
                over.append(f"CASE WHEN {v} IS NOT NULL AND {cast} IS NULL THEN "
                            f"{{'k': {quote_literal(name)}, 'v': json_extract(features, {pointer})}} END")
            else:
                items.append(v)
        overflow = ("CASE WHEN " + " OR ".join(failed) + " THEN to_json(map_from_entries(list_filter(["
                    + ", ".join(over) + "], lambda e: e IS NOT NULL))) END") if failed else "NULL::JSON"
        col_list = ", ".join(quote_ident(cols[n][0]) for n in names)
        n = con.execute(f"""
            INSERT INTO {quote_ident(table)} (source_id, source_line, overflow, {col_list})
            SELECT source_id, source_line, {overflow}, {', '.join(items)}
            FROM (SELECT source_id, source_line, features, json_extract_string(features, ?::VARCHAR[]) AS v
                  FROM decisions WHERE source_id = {sid} AND system_id = ?)""",
                        [json_pointers(names), system_id]).fetchone()[0]
        con.execute("INSERT OR REPLACE INTO typed_sources VALUES (?, ?, ?)", [system_id, sid, n])


def relation(con, system_id: str, types: dict[str, str], *, source: str = "all_decisions", where: str = "true",
             where_params: list[Any] | None = None, sample: str = "",
             prefix: str = "__wb_") -> tuple[str, list[str], list[Any]]:
    """A system's decisions with their features typed: (SQL relation with every column of `source` (alias d) and
    the features, SQL for each feature of `types` on that relation in order, its parameters).

    `types` maps feature -> wanted type (number, string, bool); `where` a condition on d with `where_params`;
    `sample` a USING SAMPLE clause applied to the decisions before the join.
    """
    table, cols = columns(con, system_id)
    names = list(types)
    typed_ok = table is not None
    join = (f"LEFT JOIN {quote_ident(table)} t ON t.source_id = d.source_id AND t.source_line = d.source_line"
            if typed_ok else "")
    hit = "t.source_id IS NOT NULL" if typed_ok else "false"
    picked = []
    for i, name in enumerate(names):
        want = SQL_TYPES.get(types[name], "VARCHAR")
        if typed_ok and name in cols:
            col = f"t.{quote_ident(cols[name][0])}"
            value = col if SQL_TYPES.get(cols[name][1]) == want else f"TRY_CAST({col} AS {want})"
            if want == "VARCHAR" and cols[name][1] != "string":  # a value that went to overflow, as text
                value = f"coalesce({value}, json_extract_string(t.overflow, {quote_literal(json_pointer(name))}))"
        else:
            value = "NULL"
        picked.append(f"{value} AS {prefix}t{i}")
    # JSON only for the rows without a typed row (CASE evaluates its THEN for those rows alone)
    json_part = (f", CASE WHEN NOT ({hit}) THEN json_extract_string(d.features, ?::VARCHAR[]) END AS {prefix}j"
                 if names else "")
    rel = (f"(SELECT d.*, {hit} AS {prefix}typed{json_part}{''.join(', ' + p for p in picked)} "
           f"FROM (SELECT * FROM {source} WHERE system_id = ? AND ({where}) {sample}) d {join})")
    items = []
    for i, name in enumerate(names, start=1):
        want = SQL_TYPES.get(types[name], "VARCHAR")
        raw = f"{prefix}j[{i}]"
        from_json = raw if want == "VARCHAR" else f"TRY_CAST({raw} AS {want})"
        items.append(f"CASE WHEN {prefix}typed THEN {prefix}t{i - 1} ELSE {from_json} END")
    params: list[Any] = ([json_pointers(names)] if names else []) + [system_id, *(where_params or [])]
    return rel, items, params
