"""Decision logs (JSONL, CSV, Parquet) -> a staging table of text fields -> validated canonical rows.

Each reader yields the same columns (see STAGE_COLUMNS) as a streamed SELECT (`reader.stage_sql`); `check()`
wraps it in the typed, validated SELECT with a quarantine reason per row, and `load()` streams that into the
decisions table in one pass, then moves the failed rows to the quarantine and drops duplicates, all inside the
file's transaction. Importers of platform exports (workbench.ingest.importers) may instead build a temp table
`_stage` with the same columns and reuse the rest.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.ingest.files import csv_header
from workbench.ingest.limits import feature_name_problem, shown_name, ts_window, ts_window_reason
from workbench.ingest.reading import Reader, quote_ident, sql_str
from workbench.ingest.settle import BLANK

REQUIRED = ("decision_id", "ts", "system_id", "model_version", "principal", "prediction", "features")
OPTIONAL = ("score", "model_sha256", "source_ip", "latency_ms", "status", "ground_truth", "session_id")
KNOWN = REQUIRED + OPTIONAL

# The staging contract: every reader and importer fills exactly these columns.
STAGE_COLUMNS = (
    "line BIGINT",            # 1-based line (JSONL/CSV) or row (Parquet) in the file
    "raw VARCHAR",            # the record as found, for the quarantine
    "parse_error VARCHAR",    # set when the record could not be parsed or had a field of the wrong type
    "decision_id VARCHAR", "ts_raw VARCHAR", "ts_typed TIMESTAMPTZ", "system_id VARCHAR", "model_version VARCHAR",
    "principal VARCHAR", "prediction VARCHAR", "score_raw VARCHAR", "features VARCHAR", "model_sha256 VARCHAR",
    "source_ip VARCHAR", "latency_raw VARCHAR", "status VARCHAR", "ground_truth VARCHAR", "session_id VARCHAR",
    "extra VARCHAR",
)  # the canonical readers add score_typed and latency_typed (DOUBLE): see check()


def stage(reader: Reader, path: Path, fmt: str, system: str | None = None) -> None:
    """Set `reader.stage_sql`: a SELECT over the file yielding STAGE_COLUMNS (streamed, not materialised)."""
    if fmt == "jsonl":
        sql = _stage_jsonl(reader, path)
    elif fmt == "csv":
        sql = _stage_csv(reader, path)
    elif fmt == "parquet":
        sql = _stage_parquet(reader, path)
    else:
        raise WorkbenchError(f"{path}: format {fmt} cannot hold canonical decisions")
    if system:
        sql = f"SELECT * REPLACE (coalesce(system_id, {sql_str(system)}) AS system_id) FROM ({sql})"
    reader.stage_sql = sql


def _stage_jsonl(reader: Reader, path: Path) -> str:
    # One parse per line: known fields straight to their types (a number where text is expected becomes its
    # text, a non-number score becomes NULL); only suspicious rows are parsed again to name the problem.
    types = {k: "VARCHAR" for k in KNOWN} | {"score": "DOUBLE", "latency_ms": "DOUBLE", "features": "JSON"}
    structure = "{" + ",".join(f'"{k}":"{t}"' for k, t in types.items()) + "}"
    known_list = ", ".join(sql_str(k) for k in KNOWN)
    text_fields = [k for k, t in types.items() if t == "VARCHAR"]
    # CASE (unlike AND) evaluates its branch only for the rows that reach it: one cheap test finds the
    # suspicious rows, and only those are parsed again to name the problem.
    detail = " ".join(
        f"WHEN json_type(raw, '$.{k}') IN ('OBJECT', 'ARRAY') "
        f"THEN '{k} must be a string, not ' || lower(json_type(raw, '$.{k}'))"
        for k in text_fields
    ) + " " + " ".join(
        f"WHEN json_type(raw, '$.{k}') NOT IN ('NULL', 'BIGINT', 'UBIGINT', 'DOUBLE') "
        f"THEN '{k} must be a number, not ' || lower(json_type(raw, '$.{k}'))"
        for k in ("score", "latency_ms")
    )
    # A boolean expression in a SELECT list evaluates every operand on every row; CASE evaluates its THEN only
    # where the WHEN holds, so the scans of the raw line run just for rows without a score or latency.
    suspicious = " OR ".join(f"left(j.{k}, 1) IN ('{{', '[')" for k in text_fields) + (
        " OR (CASE WHEN j.score IS NULL THEN strpos(raw, '\"score\"') > 0 ELSE false END)"
        " OR (CASE WHEN j.latency_ms IS NULL THEN strpos(raw, '\"latency_ms\"') > 0 ELSE false END)")
    lines = reader.raw_lines_sql()
    fields = ", ".join(f"j.{k} AS {k}" for k in text_fields if k not in ("ts",))
    return f"""
        SELECT NULL::BIGINT AS line, raw,
            CASE
                WHEN blank THEN '{BLANK}'
                WHEN j IS NULL
                    THEN CASE WHEN json_valid(raw) THEN 'line is not a JSON object' ELSE 'unparseable JSON' END
                WHEN (CASE WHEN j.decision_id IS NULL THEN json_type(raw) END) <> 'OBJECT'
                    THEN 'line is not a JSON object'
                WHEN (CASE WHEN suspicious THEN (CASE {detail} END) END) IS NOT NULL
                    THEN (CASE WHEN suspicious THEN (CASE {detail} END) END)
                WHEN j.features IS NOT NULL AND left(j.features, 1) <> '{{' AND j.features <> 'null'
                    THEN 'features must be an object, not ' || lower(json_type(j.features))
                WHEN (CASE WHEN contains(j.features, '[') OR contains(substr(j.features, 2), '{{')
                      THEN list_bool_or(list_transform(map_values(CAST(j.features AS MAP(VARCHAR, JSON))),
                                        lambda v: json_type(v) IN ('OBJECT', 'ARRAY'))) END)
                    THEN 'features values must be numbers, strings, booleans or null (found a nested object or list)'
            END AS parse_error,
            {fields}, j.ts AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            NULL::VARCHAR AS score_raw, NULL::VARCHAR AS latency_raw, j.score AS score_typed,
            j.latency_ms AS latency_typed,
            CASE WHEN left(j.features, 1) = '{{' THEN j.features END AS features,
            CASE WHEN j IS NOT NULL AND len(json_keys(raw)) > ({" + ".join(
                    f"(j.{k} IS NOT NULL)::INTEGER" for k in KNOWN)})
                THEN to_json(map_from_entries(list_transform(
                    list_filter(json_keys(raw), lambda k: k NOT IN ({known_list})),
                    lambda k: {{'k': k, 'v': json_extract(raw, '$."' || replace(k, '"', '\"') || '"')}})))::VARCHAR
            END AS extra
        FROM (SELECT *, {suspicious} AS suspicious
              FROM (SELECT raw, try(json_transform(raw, '{structure}')) AS j,
                           CASE WHEN raw IS NULL THEN true WHEN left(raw, 1) IN (' ', '\t', '\r') THEN trim(raw) = ''
                                ELSE false END AS blank
                    FROM ({lines})))
    """


def _stage_csv(reader: Reader, path: Path) -> str:
    cols = csv_header(path)[0]
    missing = [k for k in REQUIRED if k != "features" and k not in cols]
    feature_cols = [c for c in cols if c.startswith("features.")]
    if not feature_cols and "features" not in cols:
        missing.append("features.<name>")
    if missing:
        raise WorkbenchError(f"{path}: not a canonical decision log: missing column(s) {', '.join(missing)}")
    check_feature_columns(path, feature_cols)
    reader.names_checked = bool(feature_cols)
    types = infer_feature_types(reader, reader.csv_sample(path, feature_cols), feature_cols)
    if feature_cols:
        reader.feature_types = {c[len("features."):]: t for c, t in types.items()}
    # Number and bool features are typed by the CSV parser itself (faster than text and a cast): a value that is
    # not of its column's type makes the row a parser reject, quarantined with its line and the parser's reason.
    source = reader.csv_source(path, {c: {"number": "DOUBLE", "bool": "BOOLEAN"}[t]
                                      for c, t in types.items() if t != "string"})
    type_errors = []
    if not feature_cols:
        features_sql = "CASE WHEN json_valid(features) AND json_type(features) = 'OBJECT' THEN features END"
        type_errors.append("WHEN features IS NOT NULL AND NOT json_valid(features) THEN 'features is not valid JSON'")
    else:  # JSON-typed, so storing it in the JSON column does not parse it again
        features_sql = "json_object(" + ", ".join(f"{sql_str(c[len('features.'):])}, {quote_ident(c)}"
                                                  for c in feature_cols) + ")"
    extras = [c for c in cols if c not in KNOWN and not c.startswith("features.")]
    extra_sql = (
        "CASE WHEN " + " OR ".join(f"{quote_ident(c)} IS NOT NULL" for c in extras) + " THEN json_object("
        + ", ".join(f"{sql_str(c)}, {quote_ident(c)}" for c in extras) + ")::VARCHAR END"
    ) if extras else "NULL"
    opt = {k: (quote_ident(k) if k in cols else "NULL") for k in OPTIONAL}
    checks = " ".join(type_errors)
    return f"""
        SELECT NULL::BIGINT AS line, NULL::VARCHAR AS raw,
            {("CASE " + checks + " END") if checks else "NULL"} AS parse_error,
            decision_id, ts AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed, system_id, model_version, principal, prediction,
            {opt['score']} AS score_raw, {features_sql} AS features, {opt['model_sha256']} AS model_sha256,
            {opt['source_ip']} AS source_ip, {opt['latency_ms']} AS latency_raw, {opt['status']} AS status,
            {opt['ground_truth']} AS ground_truth, {opt['session_id']} AS session_id, {extra_sql} AS extra,
            NULL::DOUBLE AS score_typed, NULL::DOUBLE AS latency_typed
        FROM {source}
    """


def check_feature_columns(path: Path, feature_cols: list[str]) -> None:
    """Refuse a file whose header or schema names an unusable feature (control characters, too long, empty)."""
    for c in feature_cols:
        why = feature_name_problem(c[len("features."):])
        if why:
            raise WorkbenchError(f"{path}: column {shown_name(c)} names an unusable feature ({why}); rename it")


def infer_feature_types(reader: Reader, source: str, feature_cols: list[str]) -> dict[str, str]:
    """Type of each text feature column: number or bool when >= 95% of its values parse as such, else string."""
    if not feature_cols:
        return {}
    parts = []
    for c in feature_cols:
        q = quote_ident(c)
        parts.append(f"count({q}), count(TRY_CAST({q} AS DOUBLE)), "
                     f"count(CASE WHEN lower({q}) IN ('true','false') THEN 1 END)")
    row = reader.con.execute(f"SELECT {', '.join(parts)} FROM {source}").fetchone()
    out = {}
    for i, c in enumerate(feature_cols):
        n, num, boolean = row[3 * i: 3 * i + 3]
        if n and num >= 0.95 * n:
            out[c] = "number"
        elif n and boolean >= 0.95 * n:
            out[c] = "bool"
        else:
            out[c] = "string" if n else "number"
    return out


def _stage_parquet(reader: Reader, path: Path) -> str:
    con = reader.con
    src = f"read_parquet({sql_str(str(path))}, file_row_number=true)"
    schema = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    cols = [c for c in schema if c != "file_row_number"]
    feature_cols = [c for c in cols if c.startswith("features.")]
    missing = [k for k in REQUIRED if k != "features" and k not in cols]
    if not feature_cols and "features" not in cols:
        missing.append("features")
    if missing:
        raise WorkbenchError(f"{path}: not a canonical decision log: missing column(s) {', '.join(missing)}")
    bad_features = "NULL"
    check_feature_columns(path, feature_cols)
    reader.names_checked = bool(feature_cols)
    if feature_cols:
        features_sql = "to_json(struct_pack(" + ", ".join(
            f"{quote_ident(c[len('features.'):])} := {quote_ident(c)}" for c in feature_cols) + "))::VARCHAR"
    elif schema["features"].startswith(("STRUCT", "MAP")):
        features_sql = "to_json(features)::VARCHAR"
    else:
        features_sql = ("CASE WHEN json_valid(features::VARCHAR) AND json_type(features::VARCHAR) = 'OBJECT' "
                        "THEN features::VARCHAR END")
        bad_features = ("CASE WHEN features IS NOT NULL AND NOT (json_valid(features::VARCHAR) AND "
                        "json_type(features::VARCHAR) = 'OBJECT') THEN 'features is not a JSON object' END")
    ts_typed = "CAST(ts AS TIMESTAMPTZ)" if schema["ts"].startswith("TIMESTAMP") else "NULL::TIMESTAMPTZ"
    extras = [c for c in cols if c not in KNOWN and not c.startswith("features.")]
    extra_sql = ("to_json(struct_pack(" + ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in extras)
                 + "))::VARCHAR") if extras else "NULL"

    numeric = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
               "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
    handed_typed = {k for k in ("score", "latency_ms") if k in cols and schema[k].startswith(numeric)}

    def text(k: str) -> str:
        return f"CAST({quote_ident(k)} AS VARCHAR)" if k in cols and k not in handed_typed else "NULL::VARCHAR"

    def typed(k: str) -> str:
        return f"CAST({quote_ident(k)} AS DOUBLE)" if k in handed_typed else "NULL::DOUBLE"

    # Typed timestamps without a zone in Parquet are taken as UTC (the Parquet convention for event times).
    return f"""
        SELECT file_row_number + 1 AS line, NULL::VARCHAR AS raw, {bad_features} AS parse_error,
            {text('decision_id')} AS decision_id, CAST(ts AS VARCHAR) AS ts_raw, {ts_typed} AS ts_typed,
            {text('system_id')} AS system_id, {text('model_version')} AS model_version,
            {text('principal')} AS principal, {text('prediction')} AS prediction, {text('score')} AS score_raw,
            {features_sql} AS features, {text('model_sha256')} AS model_sha256, {text('source_ip')} AS source_ip,
            {text('latency_ms')} AS latency_raw, {text('status')} AS status, {text('ground_truth')} AS ground_truth,
            {text('session_id')} AS session_id, {extra_sql} AS extra,
            {typed('score')} AS score_typed, {typed('latency_ms')} AS latency_typed
        FROM {src}
    """


# Typed values first (inner query), then the first reason a row cannot be loaded (outer query).
CHECK_SQL = r"""
SELECT line, system_id, decision_id, ts, model_version, principal, prediction, score, features, model_sha256,
    source_ip, latency_ms, status, ground_truth, session_id, extra, reason,
    CASE WHEN reason IS NOT NULL THEN raw END AS raw,
    CASE WHEN reason IS NOT NULL AND raw IS NULL THEN to_json(struct_pack(decision_id, ts := ts_raw, system_id,
        model_version, principal, prediction, score := coalesce(score_raw, score_typed::VARCHAR), features,
        model_sha256, source_ip, latency_ms := coalesce(latency_raw, latency_typed::VARCHAR), status, ground_truth,
        session_id, extra))::VARCHAR END AS fields
FROM (
SELECT *,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN decision_id IS NULL OR decision_id = '' THEN 'missing required field decision_id'
        WHEN ts_raw IS NULL OR ts_raw = '' THEN 'missing required field ts'
        WHEN system_id IS NULL OR system_id = '' THEN 'missing required field system_id'
        WHEN model_version IS NULL OR model_version = '' THEN 'missing required field model_version'
        WHEN principal IS NULL OR principal = '' THEN 'missing required field principal'
        WHEN prediction IS NULL OR prediction = '' THEN 'missing required field prediction'
        WHEN features IS NULL THEN 'missing required field features'
        WHEN ts IS NULL AND ts_typed IS NULL AND epoch IS NULL AND NOT has_offset
             THEN 'bad timestamp ' || left(ts_raw, 40) || ': no UTC offset (add Z or +hh:mm) and not epoch milliseconds'
        WHEN ts IS NULL AND epoch IS NOT NULL THEN {implausible}
        WHEN ts IS NULL THEN 'bad timestamp ' || left(ts_raw, 40)
        WHEN ts < TIMESTAMPTZ '{ts_min}' OR ts >= TIMESTAMPTZ '{ts_max}' THEN {implausible}
        WHEN score IS NULL AND score_raw IS NOT NULL AND score_raw <> ''
             THEN 'score must be a number, got ' || left(score_raw, 40)
        WHEN latency_ms IS NULL AND latency_raw IS NOT NULL AND latency_raw <> ''
             THEN 'latency_ms must be a number, got ' || left(latency_raw, 40)
        WHEN status IS NOT NULL AND status NOT IN ('ok', 'error')
             THEN 'status must be ok or error, got ' || left(status, 40)
    END AS reason
FROM (
    SELECT *,
        CASE WHEN ts_typed IS NOT NULL THEN ts_typed
             WHEN epoch < 9000000000000000 THEN epoch_ms(epoch)::TIMESTAMPTZ
             WHEN has_offset THEN TRY_CAST(ts_raw AS TIMESTAMPTZ) END AS ts,
        coalesce(score_typed, TRY_CAST(score_raw AS DOUBLE)) AS score,
        coalesce(latency_typed, TRY_CAST(latency_raw AS DOUBLE)) AS latency_ms
    FROM (
        SELECT *,
            CASE WHEN ts_typed IS NULL AND length(ts_raw) BETWEEN 10 AND 16 AND ts_raw[1] BETWEEN '0' AND '9'
                 THEN TRY_CAST(ts_raw AS BIGINT) END AS epoch,
            CASE WHEN right(ts_raw, 1) IN ('Z', 'z') THEN true
                 ELSE regexp_matches(right(ts_raw, 6), '[+-]\d\d(:?\d\d)?$') END AS has_offset
        FROM {source}
    )
)
)
"""


def check(reader: Reader) -> None:
    """Prepare the typed, validated SELECT over the staged rows (reader.stage_sql, or an importer's `_stage`)."""
    # The canonical readers may hand score and latency over already typed (score_typed, latency_typed), which
    # spares a number -> text -> number round trip per row; importers' `_stage` tables have them as text only.
    source = (f"({reader.stage_sql})" if reader.stage_sql
              else "(SELECT *, NULL::DOUBLE AS score_typed, NULL::DOUBLE AS latency_typed FROM _stage)")
    lo, hi = ts_window()
    reader.check_sql = CHECK_SQL.format(source=source, ts_min=lo.isoformat(), ts_max=hi.isoformat(),
                                        implausible=ts_window_reason("ts_raw", (lo, hi)))


COLUMNS = ("system_id, decision_id, ts, model_version, principal, prediction, score, features, model_sha256, "
           "source_ip, latency_ms, status, ground_truth, session_id, extra")


def insert(reader: Reader, source_id: int) -> None:
    """Bulk pass: stream every checked row into `decisions` in file order, the failed ones marked with a reason."""
    # One parallel pass over the file, and nothing else in its transaction: DuckDB then writes the rows
    # straight to disk; updating or deleting them in the same transaction would send them all through the WAL.
    reader.con.execute(f"""
        INSERT INTO decisions ({COLUMNS}, source_id, source_line, ingest_error, ingest_raw)
        SELECT {COLUMNS}, {int(source_id)}, coalesce(line, 0), reason,
               CASE WHEN reason IS NOT NULL THEN coalesce(raw, fields) END
        FROM ({reader.check_sql})
    """)
