"""The settling pass of a decision file: line numbers, quarantine, unusable feature names, duplicates, catalog.

The bulk pass (decisions.insert) appended every row of the file, failed ones marked with a reason. Settling moves
the failed rows to the quarantine, then the rows carrying an unusable feature name, then drops duplicates: an
identical record of a decision already loaded is only counted; a record that differs (a forged replay, a changed
prediction) is quarantined as a conflicting duplicate naming the fields that differ, so it never vanishes.
"""

from __future__ import annotations

from pathlib import Path

from workbench.ingest import typed
from workbench.ingest.limits import BAD_NAME_SQL_RE, FEATURE_NAME_MAX, RAW_CAP, feature_name_problem, shown_name
from workbench.ingest.lines import read_numbered
from workbench.ingest.reading import Reader

BLANK = "__blank line__"  # marks a blank line of a text file: not a record, dropped before counting
QUARANTINE_COLUMNS = "source_id, path, line, raw, reason, quarantined_at, raw_bytes, raw_sha256"
# The fields two records of one decision are compared on (all but the key and where they came from).
COMPARED = ("ts", "model_version", "principal", "prediction", "score", "features", "model_sha256", "source_ip",
            "latency_ms", "status", "ground_truth", "session_id", "extra")


def row_json(alias: str = "") -> str:
    """SQL rendering a decisions row as a JSON object (the raw text of a row that has no line of its own)."""
    a = f"{alias}." if alias else ""
    fields = ("decision_id", "ts", "system_id", *COMPARED[1:])
    return "to_json(struct_pack(" + ", ".join(f"{f} := {a}{f}" for f in fields) + "))::VARCHAR"


def _same_json(a: str, b: str) -> str:
    # Two JSON objects hold the same content: the same text, or the same keys with equal values (numbers compared
    # as numbers, so 5 equals 5.0 and key order does not matter). Only computed for records of one decision.
    def norm(x: str) -> str:
        return (f"list_sort(list_transform(map_entries(CAST({x} AS MAP(VARCHAR, JSON))), lambda e: e.key || chr(1) "
                "|| CASE WHEN json_type(e.value) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                "THEN CAST(e.value AS DOUBLE)::VARCHAR ELSE coalesce(json(e.value)::VARCHAR, 'null') END))")
    return (f"CASE WHEN {a} IS NOT DISTINCT FROM {b} THEN true WHEN {a} IS NULL OR {b} IS NULL THEN false "
            f"ELSE {norm(a)} = {norm(b)} END")


def _differs(n: str, o: str) -> str:
    """SQL: the list of COMPARED fields in which row `n` differs from row `o`."""
    parts = []
    for f in COMPARED:
        test = (f"NOT {_same_json(f'{n}.{f}', f'{o}.{f}')}" if f in ("features", "extra")
                else f"{n}.{f} IS DISTINCT FROM {o}.{f}")
        parts.append(f"CASE WHEN {test} THEN '{f}' END")
    return f"list_filter([{', '.join(parts)}], lambda x: x IS NOT NULL)"


def settle(reader: Reader, source_id: int, path: Path) -> dict[str, int]:
    """Settling pass: number lines, quarantine failed rows and unusable names, drop duplicates; return the counts."""
    con = reader.con
    sid = int(source_id)
    from_file = reader.stage_sql is not None and reader.fmt in ("csv", "jsonl")
    if from_file:
        # Rows were appended in file order, so their row ids give the line: after the header for CSV.
        first_line = 2 if reader.fmt == "csv" else 1
        con.execute(f"UPDATE decisions SET source_line = rowid - (SELECT min(rowid) FROM decisions "
                    f"WHERE source_id = {sid}) + {first_line} WHERE source_id = {sid}")
        con.execute(f"DELETE FROM decisions WHERE source_id = {sid} AND ingest_error = ?", [BLANK])
    reader.fix_lines("decisions", "source_line", f"source_id = {sid}")
    if not reader.stage_sql:
        con.execute("DROP TABLE IF EXISTS _stage")
    total, bad, systems, maybe_dups = con.execute(f"""
        SELECT count(*), count(ingest_error), list(DISTINCT system_id) FILTER (ingest_error IS NULL),
               count(*) FILTER (ingest_error IS NULL)
                 - count(DISTINCT hash(system_id, decision_id)) FILTER (ingest_error IS NULL)
        FROM decisions WHERE source_id = {sid}""").fetchone()
    # Quarantined rows whose raw text is to come from the file's own line (CSV rows, rows that parsed fine).
    con.execute("CREATE OR REPLACE TEMP TABLE _need_raw(line BIGINT)")
    if bad:
        con.execute(f"INSERT INTO quarantine ({QUARANTINE_COLUMNS}) SELECT {sid}, ?, source_line, "
                    f"left(ingest_raw, {RAW_CAP}), ingest_error, now(), strlen(ingest_raw), sha256(ingest_raw) "
                    f"FROM decisions WHERE source_id = {sid} AND ingest_error IS NOT NULL ORDER BY source_line",
                    [str(path)])
        if reader.fmt == "csv" and from_file:
            con.execute(f"INSERT INTO _need_raw SELECT source_line FROM decisions WHERE source_id = {sid} "
                        "AND ingest_error IS NOT NULL")
        con.execute(f"DELETE FROM decisions WHERE source_id = {sid} AND ingest_error IS NOT NULL")
    quarantine_rejects(reader, source_id, path)
    keyed = not reader.names_checked
    if keyed and _quarantine_unusable_names(reader, sid, path):
        _feature_keys(con, sid)
    removed = _drop_duplicates(con, sid, path, maybe_dups, systems or [])
    if from_file and con.execute("SELECT count(*) FROM _need_raw").fetchone()[0]:
        _raw_from_file(reader, sid)
    con.execute("DROP TABLE _need_raw")
    if keyed and removed:
        _feature_keys(con, sid)
    loaded = con.execute(f"SELECT count(*) FROM decisions WHERE source_id = {sid}").fetchone()[0]
    update_feature_catalog(reader, source_id, systems or [], keyed=keyed)
    # the canonical readers give every row its own line; an importer's rows are checked for that first
    typed.store(con, sid, sorted(systems or []), unique_lines=reader.stage_sql is not None)
    read = total + len(reader.rejects)
    quarantined = con.execute(f"SELECT count(*) FROM quarantine WHERE source_id = {sid}").fetchone()[0]
    return {"rows_read": read, "rows_loaded": loaded, "duplicates": read - quarantined - loaded,
            "rows_quarantined": quarantined}


def _feature_keys(con, sid: int) -> None:
    """Temp table _fkeys(system_id, feature): every feature name the source's rows carry."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fkeys AS SELECT DISTINCT system_id, "
                f"unnest(json_keys(features)) AS feature FROM decisions WHERE source_id = {sid}")


def _quarantine_unusable_names(reader: Reader, sid: int, path: Path) -> bool:
    """Quarantine the rows whose features carry an unusable name (control characters, too long, empty)."""
    con = reader.con
    _feature_keys(con, sid)
    names = [r[0] for r in con.execute(
        f"SELECT DISTINCT feature FROM _fkeys WHERE feature = '' OR length(feature) > {FEATURE_NAME_MAX} "
        "OR regexp_matches(feature, ?)", [BAD_NAME_SQL_RE]).fetchall()]
    bad = [(n, f"unusable feature name {shown_name(n)}: {why}") for n in names if (why := feature_name_problem(n))]
    if not bad:
        return False
    con.execute("CREATE OR REPLACE TEMP TABLE _badkeys AS SELECT unnest(?::VARCHAR[]) AS feature, "
                "unnest(?::VARCHAR[]) AS why", [[n for n, _ in bad], [w for _, w in bad]])
    hit = "list_has_any(json_keys(d.features), (SELECT list(feature) FROM _badkeys))"
    con.execute(f"""
        INSERT INTO quarantine ({QUARANTINE_COLUMNS})
        SELECT {sid}, ?, d.source_line, left(r, {RAW_CAP}),
               (SELECT min(why) FROM _badkeys b WHERE list_contains(json_keys(d.features), b.feature)),
               now(), strlen(r), sha256(r)
        FROM (SELECT *, {row_json('x')} AS r FROM decisions x WHERE source_id = {sid}) d
        WHERE {hit} ORDER BY d.source_line""", [str(path)])
    con.execute(f"INSERT INTO _need_raw SELECT source_line FROM decisions d WHERE source_id = {sid} AND {hit}")
    con.execute(f"DELETE FROM decisions WHERE source_id = {sid} AND rowid IN "
                f"(SELECT d.rowid FROM decisions d WHERE source_id = {sid} AND {hit})")
    con.execute("DROP TABLE _badkeys")
    return True


def _drop_duplicates(con, sid: int, path: Path, maybe_dups: int, systems: list[str]) -> int:
    """Drop second records of a decision (in the file, or already loaded); quarantine those that differ."""
    removed = 0
    if maybe_dups:  # the first occurrence in the file wins
        removed += _settle_dups(con, sid, path, f"""
            WITH r AS (SELECT rowid AS rid, *,
                              row_number() OVER (PARTITION BY system_id, decision_id ORDER BY source_line) AS rk
                       FROM decisions WHERE source_id = {sid}
                       QUALIFY count(*) OVER (PARTITION BY system_id, decision_id) > 1)
            SELECT n.rid, n.source_line AS line, {sid} AS kept_source, o.source_line AS kept_line,
                   {_differs('n', 'o')} AS differs, {row_json('n')} AS raw
            FROM r n JOIN r o ON o.system_id = n.system_id AND o.decision_id = n.decision_id AND o.rk = 1
            WHERE n.rk > 1""")
    existing = systems and con.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM decisions WHERE source_id <> {sid} AND system_id IN "
        "(SELECT unnest(?)) LIMIT 1)", [systems]).fetchone()[0]
    if existing:  # a decision already in the workspace keeps its first record
        removed += _settle_dups(con, sid, path, f"""
            SELECT n.rowid AS rid, n.source_line AS line, o.source_id AS kept_source, o.source_line AS kept_line,
                   {_differs('n', 'o')} AS differs, {row_json('n')} AS raw
            FROM decisions n JOIN decisions o
              ON o.system_id = n.system_id AND o.decision_id = n.decision_id AND o.source_id <> {sid}
            WHERE n.source_id = {sid}
            QUALIFY row_number() OVER (PARTITION BY n.rowid ORDER BY o.source_id, o.source_line) = 1""")
    return removed


def _settle_dups(con, sid: int, path: Path, pairs_sql: str) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _dup AS {pairs_sql}")
    n = con.execute("SELECT count(*) FROM _dup").fetchone()[0]
    if n:
        con.execute(f"""
            INSERT INTO quarantine ({QUARANTINE_COLUMNS})
            SELECT {sid}, ?, line, left(raw, {RAW_CAP}),
                   'conflicting duplicate: ' || array_to_string(differs, ', ')
                     || CASE WHEN len(differs) = 1 THEN ' differs' ELSE ' differ' END
                     || ' from the record kept (source ' || kept_source || ', line ' || kept_line || ')',
                   now(), strlen(raw), sha256(raw)
            FROM _dup WHERE len(differs) > 0 ORDER BY line""", [str(path)])
        con.execute("INSERT INTO _need_raw SELECT line FROM _dup WHERE len(differs) > 0")
        con.execute(f"DELETE FROM decisions WHERE source_id = {sid} AND rowid IN (SELECT rid FROM _dup)")
    con.execute("DROP TABLE _dup")
    return n


# Up to this many quarantined lines are read back from the file by number in one forward pass that stops at the
# last one (a few bad rows must not cost a copy of the whole file); more, and the file's lines are loaded instead.
FEW_LINES = 20_000


def _raw_from_file(reader: Reader, sid: int) -> None:
    """Give quarantined rows listed in _need_raw the text of their own line in the file."""
    con = reader.con
    need = [r[0] for r in con.execute("SELECT DISTINCT line FROM _need_raw ORDER BY 1").fetchall()]
    if len(need) <= FEW_LINES:
        found = read_numbered(reader.path, need, RAW_CAP)
        if not found:
            return
        lines = list(found)
        raws, sizes, digests = (list(c) for c in zip(*found.values(), strict=True))
        con.execute("CREATE OR REPLACE TEMP TABLE _lines AS SELECT unnest(?::BIGINT[]) AS line, "
                    "unnest(?::VARCHAR[]) AS raw, unnest(?::BIGINT[]) AS raw_bytes, unnest(?::VARCHAR[]) AS sha",
                    [lines, raws, sizes, digests])
        con.execute(f"""
            UPDATE quarantine SET raw = l.raw, raw_bytes = l.raw_bytes, raw_sha256 = l.sha
            FROM _lines l WHERE quarantine.source_id = {sid} AND l.line = quarantine.line""")
    else:
        reader.lines_table("_lines")
        con.execute(f"""
            UPDATE quarantine SET raw = left(l.raw, {RAW_CAP}), raw_bytes = strlen(l.raw), raw_sha256 = sha256(l.raw)
            FROM _lines l WHERE quarantine.source_id = {sid} AND l.line = quarantine.line
              AND quarantine.line IN (SELECT line FROM _need_raw)""")
    con.execute("DROP TABLE _lines")


def span(con, source_id: int) -> tuple[list[str], object, object]:
    """Systems and time range of what a source loaded."""
    return con.execute("SELECT list(DISTINCT system_id ORDER BY system_id), min(ts), max(ts) FROM decisions "
                       "WHERE source_id = ?", [source_id]).fetchone()


def quarantine_rejects(reader: Reader, source_id: int, path: Path) -> None:
    """Insert the rows the file parser itself rejected into the quarantine (raw cut to RAW_CAP, with its hash)."""
    import hashlib

    rows = []
    for line, raw, reason, *known in reader.rejects:
        if known:
            size, digest = known
        else:
            data = (raw or "").encode("utf-8", errors="surrogateescape")
            size, digest = (len(data), hashlib.sha256(data).hexdigest()) if raw is not None else (None, None)
        rows.append((line, raw[:RAW_CAP] if raw else raw, reason, size, digest))
    if rows:  # one statement however many (a file in another encoding may have a reject on every line)
        lines, raws, reasons, sizes, digests = (list(c) for c in zip(*rows, strict=True))
        reader.con.execute(f"INSERT INTO quarantine ({QUARANTINE_COLUMNS}) SELECT ?, ?, unnest(?::BIGINT[]), "
                           "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), now(), unnest(?::BIGINT[]), "
                           "unnest(?::VARCHAR[])", [source_id, str(path), lines, raws, reasons, sizes, digests])


def update_feature_catalog(reader: Reader, source_id: int, systems: list[str] | None = None,
                           keyed: bool = False) -> None:
    """Record each system's feature names and types (number, string, bool) as first seen.

    With `keyed`, the names are those in the temp table _fkeys (every row's keys, see _feature_keys).
    """
    sid = int(source_id)
    if reader.feature_types is not None and systems is not None:  # a CSV's columns name and type its features
        rows = [(s, name, t) for s in systems for name, t in reader.feature_types.items()]
        if rows:
            reader.con.execute("INSERT OR IGNORE INTO feature_catalog SELECT unnest(?::VARCHAR[]), "
                               "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?",
                               [*(list(c) for c in zip(*rows, strict=True)), sid])
        return
    # Parquet rows with feature columns all carry the same keys, so one row per system names them.
    keys = ("SELECT * FROM _fkeys" if keyed else
            f"SELECT DISTINCT system_id, unnest(json_keys(features)) AS feature FROM (SELECT DISTINCT ON "
            f"(system_id) system_id, features FROM decisions WHERE source_id = {sid})")
    reader.con.execute(f"""
        INSERT INTO feature_catalog
        WITH keys AS ({keys}), sampled AS (
            SELECT system_id, features FROM decisions WHERE source_id = {sid} LIMIT 20000
        ), typed AS (
            SELECT k.system_id, k.feature,
                   mode(json_type(s.features, '$."' || replace(k.feature, '"', '\\"') || '"'))
                       FILTER (json_type(s.features, '$."' || replace(k.feature, '"', '\\"') || '"') <> 'NULL') AS t
            FROM keys k LEFT JOIN sampled s ON s.system_id = k.system_id
            GROUP BY ALL
        )
        SELECT system_id, feature,
               CASE WHEN t IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN 'number' WHEN t = 'BOOLEAN' THEN 'bool'
                    ELSE 'string' END, {sid}
        FROM typed
        WHERE (system_id, feature) NOT IN (SELECT (system_id, feature) FROM feature_catalog)
    """)
    if keyed:
        reader.con.execute("DROP TABLE IF EXISTS _fkeys")

