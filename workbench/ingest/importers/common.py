"""Helpers shared by the platform importers: JSON lines with line numbers, sibling files, registration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.importers import Importer, payloads, register
from workbench.ingest.importers import mapping as mapping_mod
from workbench.ingest.reading import LINES_SQL, Reader, sql_str

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
BAD_JSON = ("CASE WHEN j IS NULL THEN 'unparseable JSON' WHEN json_type(j) <> 'OBJECT' "
            "THEN 'line is not a JSON object' END")


def json_lines(reader: Reader, path: Path, table: str = "_jl") -> None:
    """Temp table (line, raw, j): every non-blank line of a JSON Lines file, j NULL when it is not JSON."""
    reader.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT line, raw, CASE WHEN json_valid(raw) THEN raw::JSON END AS j
        FROM ({LINES_SQL.format(path=sql_str(str(path)), compression=reader.compression)})
        WHERE raw IS NOT NULL AND trim(raw) <> ''
    """)


def many_lines_sql(files: list[Path]) -> str:
    """SQL reading the valid JSON lines of several files at once (j JSON, filename); bad lines are skipped."""
    if not files:
        return "SELECT NULL::JSON AS j, NULL::VARCHAR AS filename WHERE false"
    names = "[" + ", ".join(sql_str(str(f)) for f in files) + "]"
    return (f"SELECT raw::JSON AS j, filename FROM read_csv({names}, columns={{'raw': 'VARCHAR'}}, header=false, "
            "delim='\\0', quote='', escape='', auto_detect=false, strict_mode=false, max_line_size=67108864, "
            "compression='auto', filename=true) WHERE raw IS NOT NULL AND json_valid(raw) "
            "AND json_type(raw) = 'OBJECT'")


def siblings(path: Path, folder: Path | None = None, recursive: bool = False) -> list[Path]:
    """The JSON event files next to path (or in folder), hidden files skipped, path itself included."""
    folder = folder or path.parent
    if not folder.is_dir():
        return [path]
    found = folder.rglob("*") if recursive else folder.glob("*")
    files = sorted(f for f in found if f.is_file() and not f.name.startswith(".")
                   and f.name.lower().endswith(JSON_SUFFIXES))
    return files if path in files or not path.exists() else sorted({*files, path})


def parquet_or_json(reader: Reader, path: Path, table: str, columns: dict[str, str]) -> None:
    """Load a table export (Parquet, or JSON Lines as BigQuery / Spark write it) as text columns with `line`.

    Unparseable JSON lines keep their raw text and get `_bad` set; missing columns come back NULL.
    """
    con = reader.con
    with path.open("rb") as fh:
        is_parquet = fh.read(4) == b"PAR1"
    if is_parquet:
        src = f"read_parquet({sql_str(str(path))}, file_row_number=true)"
        have = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        cols = ", ".join(
            (f"CASE WHEN typeof({_q(c)}) LIKE 'TIMESTAMP%' THEN strftime(CAST({_q(c)} AS TIMESTAMPTZ), "
             f"'%Y-%m-%dT%H:%M:%S.%fZ') WHEN typeof({_q(c)}) LIKE '%[]' OR typeof({_q(c)}) LIKE 'STRUCT%' "
             f"OR typeof({_q(c)}) LIKE 'MAP%' THEN to_json({_q(c)})::VARCHAR ELSE CAST({_q(c)} AS VARCHAR) END"
             if c in have else "NULL::VARCHAR") + f" AS {_q(c)}" for c in columns)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT file_row_number + 1 AS line, "
                    f"NULL::VARCHAR AS raw, NULL::VARCHAR AS _bad, {cols} FROM {src}")
        con.execute(f"UPDATE {table} SET raw = to_json(struct_pack("
                    + ", ".join(f"{_q(c)} := {_q(c)}" for c in columns) + "))::VARCHAR")
        return
    json_lines(reader, path, "_tj")
    cols = ", ".join(f"CASE WHEN json_type(j, {sql_str('$.' + c)}) IN ('ARRAY', 'OBJECT') "
                     f"THEN json_extract(j, {sql_str('$.' + c)})::VARCHAR "
                     f"ELSE json_extract_string(j, {sql_str('$.' + c)}) END AS {_q(c)}" for c in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT line, raw, {BAD_JSON} AS _bad, {cols} FROM _tj")
    con.execute("DROP TABLE _tj")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def decision_importer(name: str, build: Callable[[Reader, Path, mapping_mod.Mapping], None],
                      sniff: Callable[[Path, str], bool], what: str) -> Importer:
    """Register a decision importer: build() fills `_events`; the mapping then builds `_stage`."""

    def stage(reader: Reader, path: Path, system: str | None, doc: dict[str, Any] | None) -> None:
        m = mapping_mod.parse(doc, name, system)
        payloads.install(reader.con)
        build(reader, path, m)
        mapping_mod.apply(reader.con, m, system)

    example = mapping_mod.EXAMPLES[name]
    return register(Importer(name, "decisions", stage, sniff, needs_mapping=True,
                             help=f"{what}; write a mapping such as {example}"))


def metrics_importer(name: str, stage: Callable[[Reader, Path, str | None, dict[str, Any] | None], None],
                     sniff: Callable[[Path, str], bool], what: str) -> Importer:
    """Register a metrics importer (no mapping; --system names the system where the export does not)."""
    return register(Importer(name, "metrics", stage, sniff, needs_mapping=False, help=what))


def require_rows(reader: Reader, path: Path, table: str, what: str) -> None:
    """Raise when an export produced no rows at all (probably the wrong --from)."""
    n = reader.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if n == 0:
        raise WorkbenchError(f"{path}: no {what} found")


def parquet_schema(path: Path) -> set[str]:
    """Column names of a Parquet file (empty when it is not one)."""
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"PAR1":
                return set()
        import pyarrow.parquet as pq

        return set(pq.read_schema(path).names)
    except (OSError, ValueError):
        return set()
