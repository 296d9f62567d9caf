"""Low-level reading helpers shared by the canonical readers and the platform importers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from workbench.ingest.files import csv_header, is_gzip

# Every physical line of a text file, in file order and read in parallel (blank lines come back as NULL).
# Line numbers are given afterwards from the order rows land in the table (see decisions.settle), because
# row_number() over a scan would force the whole pipeline onto one thread.
RAW_LINES_SQL = (
    "SELECT raw FROM read_csv({path}, columns={{'raw': 'VARCHAR'}}, header=false, "
    "delim='\\0', quote='', escape='', auto_detect=false, strict_mode=false, max_line_size=8388608, "
    "compression='{compression}')"
)

# Every physical line of a text file with its 1-based number (blank lines come back as NULL).
LINES_SQL = (
    "SELECT row_number() OVER () AS line, raw FROM read_csv({path}, columns={{'raw': 'VARCHAR'}}, header=false, "
    "delim='\\0', quote='', escape='', auto_detect=false, strict_mode=false, max_line_size=8388608, "
    "compression='{compression}')"
)


_CAST_ERROR = re.compile(r'CAST: Error when converting column "(?P<col>.*)"\. Could not convert string "(?P<val>.*)" '
                         r"to '(?P<type>DOUBLE|BOOLEAN)'")


def csv_reason(parser_error: str) -> str:
    """The quarantine reason for a row the CSV parser rejected, worded like the other type errors."""
    m = _CAST_ERROR.match(parser_error)
    if m:
        kind = "a number" if m["type"] == "DOUBLE" else "true or false"
        return f"{m['col']} must be {kind}, got {m['val'][:40]}"
    return f"CSV parse error: {parser_error}"


def quote_ident(name: str) -> str:
    """Quote a column name for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Reader:
    """One file being read on one cursor: its compression and the rows its parser rejected."""

    con: duckdb.DuckDBPyConnection
    path: Path
    compression: str = "none"
    fmt: str = ""
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, raw, reason)
    line_expr: str = "_ord + 1"  # SQL giving the physical line of a CSV data row
    stage_sql: str | None = None  # the reader's streamed SELECT of staged rows
    check_sql: str | None = None  # the typed and validated SELECT over them
    feature_types: dict[str, str] | None = None  # feature -> number/string/bool, when the format fixes them
    _csv_pending: bool = False

    @classmethod
    def for_file(cls, con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> Reader:
        """A reader for path, with gzip recognised from the bytes rather than the name."""
        return cls(con, path, "gzip" if is_gzip(path) else "none", fmt)

    def lines_table(self, table: str) -> None:
        """Materialise the file's non-blank lines as (line, raw) in a temp table."""
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM ("
            + LINES_SQL.format(path=sql_str(str(self.path)), compression=self.compression)
            + ") WHERE raw IS NOT NULL AND trim(raw) <> ''"
        )

    def _csv_opts(self, rejects: bool, types: dict[str, str] | None = None) -> str:
        # The header is read here, not sniffed by DuckDB: a sniffer gives up on a whole file for one bad quote,
        # while with explicit columns such a row is rejected and kept like any other.
        names, delim = csv_header(self.path)
        types = types or {}
        columns = "{" + ", ".join(f"{sql_str(n)}: '{types.get(n, 'VARCHAR')}'" for n in names) + "}"
        opts = (f"columns={columns}, auto_detect=false, header=true, delim={sql_str(delim)}, quote='\"', "
                f"escape='\"', compression='{self.compression}', max_line_size=8388608")
        if rejects:
            opts += ", store_rejects=true, rejects_table='_rej_err', rejects_scan='_rej_scan'"
        else:
            opts += ", ignore_errors=true"
        return opts

    def csv_source(self, path: Path, types: dict[str, str] | None = None) -> str:
        """A streamed, parallel subquery over a CSV: columns as text, or the DuckDB type given in `types`.

        Rows the CSV parser rejects (a value that is not of its column's type, a broken quote) are collected by
        fix_csv_lines() after the query has run.
        """
        self._csv_pending = True
        return f"(SELECT * FROM read_csv({sql_str(str(path))}, {self._csv_opts(True, types)}))"

    def csv_sample(self, path: Path, columns: list[str] | None = None, rows: int = 100_000) -> str:
        """A subquery over the first rows of a CSV (all columns, or just these), for type inference."""
        select = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        return f"(SELECT {select} FROM read_csv({sql_str(str(path))}, {self._csv_opts(False)}) LIMIT {rows})"

    def fix_csv_lines(self, table: str, column: str = "line", where: str = "true") -> None:
        """After a CSV query ran: keep the parser's rejects and shift `line` past the rejected lines before it."""
        if not self._csv_pending:
            return
        self._csv_pending = False
        bad = self.con.execute(
            "SELECT line, any_value(csv_line), arg_min(error_type || ': ' || error_message, column_idx) "
            "FROM _rej_err GROUP BY line ORDER BY line"
        ).fetchall()
        self.con.execute("DROP TABLE IF EXISTS _rej_err")
        self.con.execute("DROP TABLE IF EXISTS _rej_scan")
        if not bad:
            return
        self.rejects.extend((int(line), raw, csv_reason(why)) for line, raw, why in bad)
        # Data row k (line k + 1 without rejects) moves down by the number of rejected lines before it.
        self.con.execute("CREATE OR REPLACE TEMP TABLE _rej_lines(before BIGINT)")
        self.con.executemany("INSERT INTO _rej_lines VALUES (?)",
                             [[int(line) - 1 - j] for j, (line, _, _) in enumerate(bad, start=1)])
        self.con.execute(f"UPDATE {table} SET {column} = {column} + "
                         f"(SELECT count(*) FROM _rej_lines r WHERE r.before < {table}.{column} - 1) WHERE {where}")
        self.con.execute("DROP TABLE _rej_lines")

    def csv_to_table(self, path: Path, table: str) -> list[str]:
        """Read a CSV as text columns into a temp table with a `_line` column; keep the parser's rejects."""
        src = sql_str(str(path))
        opts = self._csv_opts(True)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT row_number() OVER () AS _ord, * "
                         f"FROM read_csv({src}, {opts})")
        bad = self.con.execute(
            "SELECT line, any_value(csv_line), arg_min(error_type || ': ' || error_message, column_idx) "
            "FROM _rej_err GROUP BY line ORDER BY line"
        ).fetchall()
        self.con.execute("DROP TABLE IF EXISTS _rej_err")
        self.con.execute("DROP TABLE IF EXISTS _rej_scan")
        self.rejects.extend((int(line), raw, csv_reason(why)) for line, raw, why in bad)
        # Data row k sits on line k + 1 (header) + the rejected lines before it.
        self.con.execute("CREATE OR REPLACE TEMP TABLE _rej_lines(line BIGINT, before BIGINT)")
        if bad:
            self.con.executemany("INSERT INTO _rej_lines VALUES (?, ?)",
                                 [[int(line), int(line) - 1 - j] for j, (line, _, _) in enumerate(bad, start=1)])
            self.line_expr = f"_ord + 1 + (SELECT count(*) FROM _rej_lines r WHERE r.before < {table}._ord)"
        else:
            self.line_expr = "_ord + 1"
        cols = [r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()]
        return [c for c in cols if c != "_ord"]
