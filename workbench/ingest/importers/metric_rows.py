"""Metric points parsed in Python, staged in bulk: rows gather in memory and go to DuckDB as Arrow batches.

The text exposition and OTLP importers parse their files in Python (a format a SQL reader cannot split), then
`finish()` turns the staged rows into `_mstage` with SQL: labels as a sorted JSON object (the same text as the
other importers write), the system from a `system_id` label, --system or the export, and the time.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from workbench.ingest.reading import sql_str

_SCHEMA = pa.schema([
    ("line", pa.int64()), ("raw", pa.string()), ("parse_error", pa.string()), ("system_id", pa.string()),
    ("metric", pa.string()), ("names", pa.list_(pa.string())), ("vals", pa.list_(pa.string())),
    ("value_raw", pa.string()), ("ts_text", pa.string()),
    # the time in microseconds (or why not), and an alternative reading chosen at the end (see finish)
    ("ts_us", pa.int64()), ("ts_error", pa.string()), ("alt_us", pa.int64()), ("alt_error", pa.string()),
])
FIELDS = tuple(_SCHEMA.names)


class MetricRows:
    """Collect metric rows (tuples in FIELDS order) and append them to a temp table in Arrow batches."""

    def __init__(self, con: Any, table: str = "_mrows", batch: int = 100_000) -> None:
        self.con, self.table, self.batch = con, table, batch
        self.rows: list[tuple] = []
        self.count = 0
        cols = ", ".join(f"{n} {t}" for n, t in zip(FIELDS, (
            "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR[]", "VARCHAR[]", "VARCHAR", "VARCHAR",
            "BIGINT", "VARCHAR", "BIGINT", "VARCHAR"), strict=True))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({cols})")

    def add(self, line: int, raw: str | None, error: str | None = None, system: str | None = None,
            metric: str | None = None, names: list[str] | None = None, vals: list[str] | None = None,
            value: str | None = None, ts_text: str | None = None, ts_us: int | None = None,
            ts_error: str | None = None, alt_us: int | None = None, alt_error: str | None = None) -> None:
        """Add one row; a row with `error` is quarantined with that reason."""
        self.append((line, raw, error, system, metric, names, vals, value, ts_text, ts_us, ts_error, alt_us,
                     alt_error))

    def append(self, row: tuple) -> None:
        """Add one row given as a tuple in FIELDS order."""
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Append the gathered rows to the table in one Arrow batch."""
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        batch = pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(columns, _SCHEMA, strict=True)],
                                     schema=_SCHEMA)
        name = f"{self.table}_batch"
        self.con.register(name, batch)
        try:
            self.con.execute(f"INSERT INTO {self.table} SELECT * FROM {name}")
        finally:
            self.con.unregister(name)
        self.count += len(self.rows)
        self.rows = []

    def finish(self, system: str | None, use_alt: bool = False) -> None:
        """Flush, then build `_mstage` (see workbench.ingest.metrics) from the rows and drop them."""
        self.flush()
        us, err = ("alt_us", "alt_error") if use_alt else ("ts_us", "ts_error")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _mstage AS
            SELECT line, raw,
                coalesce(parse_error, CASE
                    WHEN ts_text IS NULL THEN 'sample has no timestamp (a live scrape cannot be placed in time)'
                    WHEN {us} IS NULL THEN coalesce({err}, 'bad timestamp ' || left(ts_text, 40)) END) AS parse_error,
                ts_text AS ts_raw,
                CASE WHEN parse_error IS NULL THEN make_timestamp({us}) AT TIME ZONE 'UTC' END AS ts_typed,
                coalesce(system_id, {sql_str(system) if system else 'NULL'}) AS system_id, metric, value_raw,
                {labels_sql("names", "vals")} AS labels
            FROM {self.table}
        """)
        self.con.execute(f"DROP TABLE {self.table}")


def labels_sql(names: str, values: str) -> str:
    """SQL: JSON object (keys sorted, system_id left out) from two parallel label lists, NULL when empty."""
    entries = (f"list_sort(list_filter(list_transform(range(CAST(len({names}) AS BIGINT)), lambda i: "
               f"{{'k': {names}[i + 1], 'v': {values}[i + 1]}}), lambda e: e.k <> 'system_id'))")
    return f"CASE WHEN len({entries}) > 0 THEN to_json(map_from_entries({entries}))::VARCHAR END"


def number_text(x: float) -> str:
    """A float as text DuckDB casts back to the same double (`nan`, `inf`, `-inf` for the special values)."""
    return repr(x)
