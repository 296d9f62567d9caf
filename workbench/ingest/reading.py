"""Low-level reading helpers shared by the canonical readers and the platform importers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from workbench.ingest.files import csv_header, is_gzip, read_lines_at
from workbench.ingest.limits import MAX_LINE, RAW_CAP

# Every physical line of a text file, in file order and read in parallel (blank lines come back as NULL).
# Line numbers are given afterwards from the order rows land in the table (see decisions.settle), because
# row_number() over a scan would force the whole pipeline onto one thread. A line the reader cannot hold (longer
# than MAX_LINE, or not UTF-8) is left out of the scan and kept in the rejects table {rejects}: see fix_lines().
RAW_LINES_SQL = (
    "SELECT raw FROM read_csv({path}, columns={{'raw': 'VARCHAR'}}, header=false, "
    "delim='\\0', quote='', escape='', auto_detect=false, strict_mode=false, max_line_size=" + str(MAX_LINE) + ", "
    "compression='{compression}', store_rejects=true, rejects_table='{rejects}', rejects_scan='{rejects}_scan')"
)

# Every physical line of a text file with its 1-based number (blank lines come back as NULL); one line too long
# or not UTF-8 fails the whole read (the platform importers use it; the canonical readers use lines_table()).
LINES_SQL = (
    "SELECT row_number() OVER () AS line, raw FROM read_csv({path}, columns={{'raw': 'VARCHAR'}}, header=false, "
    "delim='\\0', quote='', escape='', auto_detect=false, strict_mode=false, max_line_size=8388608, "
    "compression='{compression}')"
)

# One row per line the parser rejected: its line, where it starts, the text DuckDB kept and the first reason.
_REJECTS_SQL = ("SELECT line, any_value(line_byte_position), any_value(csv_line), "
                "arg_min(error_type || ': ' || coalesce(error_message, ''), coalesce(column_idx, 0)), "
                "bool_or(error_type IN ('LINE SIZE OVER MAXIMUM', 'INVALID ENCODING')) "
                "FROM {table} GROUP BY line ORDER BY line")


_CAST_ERROR = re.compile(r'CAST: Error when converting column "(?P<col>.*)"\. Could not convert string "(?P<val>.*)" '
                         r"to '(?P<type>DOUBLE|BOOLEAN)'")


def csv_reason(parser_error: str | None) -> str:
    """The quarantine reason for a row the CSV parser rejected, worded like the other type errors."""
    m = _CAST_ERROR.match(parser_error or "")
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
    # (line, raw, reason[, raw_bytes, raw_sha256]): rows the file parser itself rejected, for the quarantine
    rejects: list[tuple] = field(default_factory=list)
    line_expr: str = "_line"  # SQL giving the physical line of a CSV data row (see csv_to_table)
    stage_sql: str | None = None  # the reader's streamed SELECT of staged rows
    check_sql: str | None = None  # the typed and validated SELECT over them
    feature_types: dict[str, str] | None = None  # feature -> number/string/bool, when the format fixes them
    names_checked: bool = False  # feature names came from a header or schema and were validated there
    # the numbers of the file's blank lines: DuckDB's CSV reader skips them without counting them (see fix_lines)
    blank_lines: Callable[[], list[int]] | None = None
    _pending: str | None = None  # the rejects table of a scan whose rejects are still to be collected

    @classmethod
    def for_file(cls, con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> Reader:
        """A reader for path, with gzip recognised from the bytes rather than the name."""
        for table in ("_rej_err", "_rej_err_scan", "_lrej", "_lrej_scan"):  # left by a load that failed
            con.execute(f"DROP TABLE IF EXISTS {table}")
        return cls(con, path, "gzip" if is_gzip(path) else "none", fmt)

    def raw_lines_sql(self) -> str:
        """The parallel scan of the file's physical lines (RAW_LINES_SQL); its rejects are collected by fix_lines()."""
        self._pending = "_rej_err"
        return RAW_LINES_SQL.format(path=sql_str(str(self.path)), compression=self.compression, rejects="_rej_err")

    def lines_table(self, table: str, keep_rejects: bool = False) -> None:
        """Materialise the file's non-blank lines as (line, raw) in a temp table.

        Lines too long or not UTF-8 are not in it (the parser rejected them; kept in `rejects` if asked).
        """
        src = RAW_LINES_SQL.format(path=sql_str(str(self.path)), compression=self.compression, rejects="_lrej")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT raw, NULL::BIGINT AS line FROM ({src})")
        bad = self._take_rejects("_lrej")
        # Rows landed in file order: row k is line k, moved down past the rejected lines before it.
        # (row ids are relative: inside a transaction they start far from 0)
        self.con.execute(f"UPDATE {table} SET line = rowid - (SELECT min(rowid) FROM {table}) + 1")
        self._shift(table, "line", "true", [line for line, *_ in bad], first_line=1)
        self.con.execute(f"DELETE FROM {table} WHERE raw IS NULL OR trim(raw) = ''")
        if keep_rejects:
            self.rejects.extend(bad)

    def _csv_opts(self, rejects: bool, types: dict[str, str] | None = None) -> str:
        # The header is read here, not sniffed by DuckDB: a sniffer gives up on a whole file for one bad quote,
        # while with explicit columns such a row is rejected and kept like any other.
        names, delim, header_bytes = csv_header(self.path, with_size=True)
        types = types or {}
        columns = "{" + ", ".join(f"{sql_str(n)}: '{types.get(n, 'VARCHAR')}'" for n in names) + "}"
        opts = (f"columns={columns}, auto_detect=false, header=true, delim={sql_str(delim)}, quote='\"', "
                f"escape='\"', compression='{self.compression}', max_line_size={max(MAX_LINE, header_bytes + 2)}")
        if rejects:
            opts += ", store_rejects=true, rejects_table='_rej_err', rejects_scan='_rej_err_scan'"
        else:
            opts += ", ignore_errors=true"
        return opts

    def csv_source(self, path: Path, types: dict[str, str] | None = None) -> str:
        """A streamed, parallel subquery over a CSV: columns as text, or the DuckDB type given in `types`.

        Rows the CSV parser rejects (a value that is not of its column's type, a broken quote, a line too long or
        not UTF-8) are collected by fix_lines() after the query has run.
        """
        self._pending = "_rej_err"
        return f"(SELECT * FROM read_csv({sql_str(str(path))}, {self._csv_opts(True, types)}))"

    def csv_sample(self, path: Path, columns: list[str] | None = None, rows: int = 100_000) -> str:
        """A subquery over the first rows of a CSV (all columns, or just these), for type inference."""
        select = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        return f"(SELECT {select} FROM read_csv({sql_str(str(path))}, {self._csv_opts(False)}) LIMIT {rows})"

    def fix_lines(self, table: str, column: str = "line", where: str = "true") -> None:
        """After a scan ran: keep the parser's rejects and shift `column` past the rejected lines before each row."""
        if not self._pending:
            return
        bad = self._take_rejects(self._pending)
        self._pending = None
        self.rejects.extend(bad)
        self._shift(table, column, where, self._skipped(bad), first_line=2 if self.fmt == "csv" else 1)

    def _skipped(self, bad: list[tuple]) -> list[int]:
        """The lines a CSV scan gave no row for: its rejects, and (CSV only) the blank lines it skipped."""
        lines = {int(line) for line, *_ in bad}
        if self.fmt == "csv" and self.blank_lines is not None:
            lines.update(n for n in self.blank_lines() if n > 1)
        return sorted(lines)

    def _shift(self, table: str, column: str, where: str, lines: list[int], first_line: int) -> None:
        """Row k of a scan sat on line k + first_line - 1 without rejects; move it down past the rejected lines."""
        if not lines:
            return
        # The j-th rejected line (1-based) on line L has L - first_line + 1 - j data rows before it; a row moves
        # down by the number of rejected lines with fewer rows before them than it has (an as-of join).
        before = [int(line) - first_line + 1 - j for j, line in enumerate(lines, start=1)]
        self.con.execute("CREATE OR REPLACE TEMP TABLE _rej_lines AS SELECT before, max(n) AS n FROM "
                         "(SELECT unnest(?::BIGINT[]) AS before, generate_subscripts(?::BIGINT[], 1) AS n) "
                         "GROUP BY before", [before, before])
        self.con.execute(f"""
            UPDATE {table} SET {column} = {column} + s.n FROM (
                SELECT t.rowid AS rid, r.n FROM {table} t ASOF JOIN _rej_lines r
                  ON t.{column} - {first_line - 1} > r.before WHERE {where}) s
            WHERE {table}.rowid = s.rid""")
        self.con.execute("DROP TABLE _rej_lines")

    def _take_rejects(self, table: str) -> list[tuple]:
        """The rejected lines of the last scan into `table` as quarantine rows; drops the rejects tables.

        A line too long or not UTF-8 is read back from the file (all of them in one pass) for its bytes and hash.
        """
        bad = self.con.execute(_REJECTS_SQL.format(table=table)).fetchall()
        self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.con.execute(f"DROP TABLE IF EXISTS {table}_scan")
        found = read_lines_at(self.path, [pos for _, pos, _, _, unreadable in bad if unreadable and pos], RAW_CAP)
        out = []
        for line, position, kept, why, unreadable in bad:
            got = found.get(position) if unreadable else None
            if got is None:  # (after a blank line DuckDB's text of the row starts with that line's end: not ours)
                out.append((int(line), kept.lstrip("\r\n") if kept else kept, csv_reason(why)))
                continue
            text, size, digest, bad_byte = got
            if size > MAX_LINE:
                reason = f"line too long: {size:,} bytes (the limit is {MAX_LINE >> 20} MiB)"
            elif bad_byte is not None:
                reason = f"invalid UTF-8 at byte {bad_byte:,} of the line"
            else:
                reason = csv_reason(why)
            out.append((int(line), text, reason, size, digest))
        return out

    def csv_to_table(self, path: Path, table: str) -> list[str]:
        """Read a CSV as text columns into a temp table with its line in `_line`; keep the parser's rejects."""
        src = sql_str(str(path))
        opts = self._csv_opts(True)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT row_number() OVER () + 1 AS _line, * "
                         f"FROM read_csv({src}, {opts})")
        bad = self._take_rejects("_rej_err")
        self.rejects.extend(bad)
        # Data row k sits on line k + 1 (header) + the rejected and blank lines before it.
        self._shift(table, "_line", "true", self._skipped(bad), first_line=2)
        self.line_expr = "_line"
        cols = [r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()]
        return [c for c in cols if c != "_line"]
