"""Decision logs (JSONL, CSV, Parquet) -> a staging table of text fields -> validated canonical rows.

Each reader builds the temp table `_stage` with the same columns (see STAGE_COLUMNS); `check_sql()` turns it into
typed rows with a quarantine reason, and `load()` inserts the valid, new rows and quarantines the rest.
Importers of platform exports (workbench.ingest.importers) build the same `_stage` and reuse the rest.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.ingest.reading import LINES_SQL, Reader, quote_ident, sql_str

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
)


def stage(reader: Reader, path: Path, fmt: str, system: str | None = None) -> None:
    """Fill `_stage` from a canonical decision log in the given format."""
    if fmt == "jsonl":
        _stage_jsonl(reader, path)
    elif fmt == "csv":
        _stage_csv(reader, path)
    elif fmt == "parquet":
        _stage_parquet(reader, path)
    else:
        raise WorkbenchError(f"{path}: format {fmt} cannot hold canonical decisions")
    if system:
        reader.con.execute("UPDATE _stage SET system_id = coalesce(system_id, ?)", [system])


def _json_field(name: str) -> str:
    return f"json_extract_string(j.{quote_ident(name)}, '$')"


def _stage_jsonl(reader: Reader, path: Path) -> None:
    structure = "{" + ",".join(f'"{k}":"JSON"' for k in KNOWN) + "}"
    known_list = ", ".join(sql_str(k) for k in KNOWN)
    scalar_types = "('VARCHAR','BIGINT','UBIGINT','DOUBLE','BOOLEAN')"
    number_types = "('BIGINT','UBIGINT','DOUBLE')"
    string_fields = [k for k in KNOWN if k not in ("score", "latency_ms", "features", "ts")]
    type_checks = " ".join(
        f"WHEN json_type(j.{quote_ident(k)}) NOT IN {scalar_types} AND j.{quote_ident(k)} IS NOT NULL "
        f"AND json_type(j.{quote_ident(k)}) <> 'NULL' THEN '{k} must be a string, not ' || lower(json_type(j.{k}))"
        for k in string_fields
    )
    reader.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _parsed AS
        SELECT line, raw, try(json_transform(raw, '{structure}')) AS j
        FROM ({LINES_SQL.format(path=sql_str(str(path)), compression=reader.compression)})
        WHERE raw IS NOT NULL AND trim(raw) <> ''
    """)
    reader.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _stage AS
        SELECT line, raw,
            CASE
                WHEN j IS NULL THEN CASE WHEN json_valid(raw) THEN 'line is not a JSON object' ELSE 'unparseable JSON' END
                WHEN j.decision_id IS NULL AND json_type(raw) <> 'OBJECT' THEN 'line is not a JSON object'
                {type_checks}
                WHEN j.score IS NOT NULL AND json_type(j.score) NOT IN {number_types} AND json_type(j.score) <> 'NULL'
                    THEN 'score must be a number, not ' || lower(json_type(j.score))
                WHEN j.latency_ms IS NOT NULL AND json_type(j.latency_ms) NOT IN {number_types}
                    AND json_type(j.latency_ms) <> 'NULL'
                    THEN 'latency_ms must be a number, not ' || lower(json_type(j.latency_ms))
                WHEN j.ts IS NOT NULL AND json_type(j.ts) NOT IN ('VARCHAR','BIGINT','UBIGINT','NULL')
                    THEN 'ts must be an ISO-8601 string or epoch milliseconds, not ' || lower(json_type(j.ts))
                WHEN j.features IS NOT NULL AND json_type(j.features) NOT IN ('OBJECT','NULL')
                    THEN 'features must be an object, not ' || lower(json_type(j.features))
                WHEN j.features IS NOT NULL AND regexp_matches(substr(j.features, 2), '[\\[{{]')
                    AND list_bool_or(list_transform(map_values(CAST(j.features AS MAP(VARCHAR, JSON))),
                        lambda v: json_type(v) IN ('OBJECT', 'ARRAY')))
                    THEN 'features values must be numbers, strings, booleans or null (found a nested object or list)'
            END AS parse_error,
            {", ".join(f"{_json_field(k)} AS {k}" for k in ("decision_id",))},
            {_json_field("ts")} AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            {_json_field("system_id")} AS system_id, {_json_field("model_version")} AS model_version,
            {_json_field("principal")} AS principal, {_json_field("prediction")} AS prediction,
            {_json_field("score")} AS score_raw,
            CASE WHEN json_type(j.features) = 'OBJECT' THEN j.features END AS features,
            {_json_field("model_sha256")} AS model_sha256, {_json_field("source_ip")} AS source_ip,
            {_json_field("latency_ms")} AS latency_raw, {_json_field("status")} AS status,
            {_json_field("ground_truth")} AS ground_truth, {_json_field("session_id")} AS session_id,
            CASE WHEN j IS NOT NULL AND len(json_keys(raw)) > len(list_filter(
                    [{", ".join(f"j.{quote_ident(k)}" for k in KNOWN)}], lambda v: v IS NOT NULL))
                THEN to_json(map_from_entries(list_transform(
                    list_filter(json_keys(raw), lambda k: k NOT IN ({known_list})),
                    lambda k: {{'k': k, 'v': json_extract(raw, '$."' || replace(k, '"', '\\"') || '"')}})))::VARCHAR
            END AS extra
        FROM _parsed
    """)
    reader.con.execute("DROP TABLE _parsed")


def _stage_csv(reader: Reader, path: Path) -> None:
    con = reader.con
    cols = reader.csv_to_table(path, "_csv")
    missing = [k for k in REQUIRED if k != "features" and k not in cols]
    feature_cols = [c for c in cols if c.startswith("features.")]
    if not feature_cols and "features" in cols:
        feature_cols = []
    elif not feature_cols:
        missing.append("features.<name>")
    if missing:
        raise WorkbenchError(f"{path}: not a canonical decision log: missing column(s) {', '.join(missing)}")
    types = infer_feature_types(reader, "_csv", feature_cols)
    feature_exprs, type_errors = [], []
    for col in feature_cols:
        name, q = col[len("features."):], quote_ident(col)
        if types[col] == "number":
            feature_exprs.append(f"{sql_str(name)}, TRY_CAST({q} AS DOUBLE)")
            type_errors.append(f"WHEN {q} IS NOT NULL AND TRY_CAST({q} AS DOUBLE) IS NULL "
                               f"THEN '{col} must be a number, got ' || {q}")
        elif types[col] == "bool":
            feature_exprs.append(f"{sql_str(name)}, TRY_CAST({q} AS BOOLEAN)")
            type_errors.append(f"WHEN {q} IS NOT NULL AND TRY_CAST({q} AS BOOLEAN) IS NULL "
                               f"THEN '{col} must be true or false, got ' || {q}")
        else:
            feature_exprs.append(f"{sql_str(name)}, {q}")
    if "features" in cols and not feature_cols:
        features_sql = "CASE WHEN json_valid(features) THEN features END"
        type_errors.append("WHEN features IS NOT NULL AND NOT json_valid(features) THEN 'features is not valid JSON'")
    else:
        features_sql = f"json_object({', '.join(feature_exprs)})::VARCHAR"
    extras = [c for c in cols if c not in KNOWN and not c.startswith("features.")]
    extra_sql = (
        "CASE WHEN " + " OR ".join(f"{quote_ident(c)} IS NOT NULL" for c in extras) + " THEN json_object("
        + ", ".join(f"{sql_str(c)}, {quote_ident(c)}" for c in extras) + ")::VARCHAR END"
    ) if extras else "NULL"
    opt = {k: (quote_ident(k) if k in cols else "NULL") for k in OPTIONAL}
    checks = " ".join(type_errors)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _stage AS
        SELECT {reader.line_expr} AS line, NULL::VARCHAR AS raw,
            {("CASE " + checks + " END") if checks else "NULL"} AS parse_error,
            decision_id, ts AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed, system_id, model_version, principal, prediction,
            {opt['score']} AS score_raw, {features_sql} AS features, {opt['model_sha256']} AS model_sha256,
            {opt['source_ip']} AS source_ip, {opt['latency_ms']} AS latency_raw, {opt['status']} AS status,
            {opt['ground_truth']} AS ground_truth, {opt['session_id']} AS session_id, {extra_sql} AS extra
        FROM _csv
    """)
    con.execute("DROP TABLE _csv")
    con.execute("DROP TABLE IF EXISTS _rej_lines")


def infer_feature_types(reader: Reader, table: str, feature_cols: list[str]) -> dict[str, str]:
    """Type of each text feature column: number or bool when >= 95% of its values parse as such, else string."""
    if not feature_cols:
        return {}
    parts = []
    for c in feature_cols:
        q = quote_ident(c)
        parts.append(f"count({q}), count(TRY_CAST({q} AS DOUBLE)), "
                     f"count(CASE WHEN lower({q}) IN ('true','false') THEN 1 END)")
    row = reader.con.execute(f"SELECT {', '.join(parts)} FROM {table}").fetchone()
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


def _stage_parquet(reader: Reader, path: Path) -> None:
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
    if feature_cols:
        features_sql = "to_json(struct_pack(" + ", ".join(
            f"{quote_ident(c[len('features.'):])} := {quote_ident(c)}" for c in feature_cols) + "))::VARCHAR"
    elif schema["features"].startswith(("STRUCT", "MAP")):
        features_sql = "to_json(features)::VARCHAR"
    else:
        features_sql = "CASE WHEN json_valid(features::VARCHAR) THEN features::VARCHAR END"
    ts_type = schema["ts"]
    if ts_type.startswith("TIMESTAMP"):
        ts_raw, ts_typed = "CAST(ts AS VARCHAR)", "CAST(ts AS TIMESTAMPTZ)"  # typed timestamps without zone are UTC
    else:
        ts_raw, ts_typed = "CAST(ts AS VARCHAR)", "NULL::TIMESTAMPTZ"
    extras = [c for c in cols if c not in KNOWN and not c.startswith("features.")]
    extra_sql = ("to_json(struct_pack(" + ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in extras)
                 + "))::VARCHAR") if extras else "NULL"

    def text(k: str) -> str:
        return f"CAST({quote_ident(k)} AS VARCHAR)" if k in cols else "NULL::VARCHAR"

    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _stage AS
        SELECT file_row_number + 1 AS line, NULL::VARCHAR AS raw,
            CASE WHEN {features_sql} IS NULL AND {"features" if "features" in cols and not feature_cols else "NULL"}
                IS NOT NULL THEN 'features is not valid JSON' END AS parse_error,
            {text('decision_id')} AS decision_id, {ts_raw} AS ts_raw, {ts_typed} AS ts_typed,
            {text('system_id')} AS system_id, {text('model_version')} AS model_version,
            {text('principal')} AS principal, {text('prediction')} AS prediction, {text('score')} AS score_raw,
            {features_sql} AS features, {text('model_sha256')} AS model_sha256, {text('source_ip')} AS source_ip,
            {text('latency_ms')} AS latency_raw, {text('status')} AS status, {text('ground_truth')} AS ground_truth,
            {text('session_id')} AS session_id, {extra_sql} AS extra
        FROM {src}
    """)


CHECK_SQL = r"""
CREATE OR REPLACE TEMP TABLE _checked AS
SELECT s.*,
    coalesce(ts_typed, CASE
        WHEN regexp_full_match(ts_raw, '\d{10,16}') THEN epoch_ms(CAST(ts_raw AS BIGINT))::TIMESTAMPTZ
        WHEN regexp_matches(ts_raw, '([zZ]|[+-]\d\d(:?\d\d)?)$') THEN TRY_CAST(ts_raw AS TIMESTAMPTZ)
    END) AS ts,
    TRY_CAST(score_raw AS DOUBLE) AS score,
    TRY_CAST(latency_raw AS DOUBLE) AS latency_ms,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN decision_id IS NULL OR decision_id = '' THEN 'missing required field decision_id'
        WHEN ts_raw IS NULL OR ts_raw = '' THEN 'missing required field ts'
        WHEN system_id IS NULL OR system_id = '' THEN 'missing required field system_id'
        WHEN model_version IS NULL OR model_version = '' THEN 'missing required field model_version'
        WHEN principal IS NULL OR principal = '' THEN 'missing required field principal'
        WHEN prediction IS NULL OR prediction = '' THEN 'missing required field prediction'
        WHEN features IS NULL THEN 'missing required field features'
        WHEN ts_typed IS NULL AND NOT regexp_full_match(ts_raw, '\d{10,16}')
             AND NOT regexp_matches(ts_raw, '([zZ]|[+-]\d\d(:?\d\d)?)$')
             THEN 'bad timestamp ' || left(ts_raw, 40) || ': no UTC offset (add Z or +hh:mm) and not epoch milliseconds'
        WHEN coalesce(ts_typed, CASE
            WHEN regexp_full_match(ts_raw, '\d{10,16}') THEN epoch_ms(CAST(ts_raw AS BIGINT))::TIMESTAMPTZ
            ELSE TRY_CAST(ts_raw AS TIMESTAMPTZ) END) IS NULL
             THEN 'bad timestamp ' || left(ts_raw, 40)
        WHEN score_raw IS NOT NULL AND score_raw <> '' AND TRY_CAST(score_raw AS DOUBLE) IS NULL
             THEN 'score must be a number, got ' || left(score_raw, 40)
        WHEN latency_raw IS NOT NULL AND latency_raw <> '' AND TRY_CAST(latency_raw AS DOUBLE) IS NULL
             THEN 'latency_ms must be a number, got ' || left(latency_raw, 40)
        WHEN status IS NOT NULL AND status NOT IN ('ok', 'error') THEN 'status must be ok or error, got ' || left(status, 40)
    END AS reason
FROM _stage s
"""


def check(reader: Reader) -> None:
    """Type and validate `_stage` into `_checked` (typed columns plus a quarantine reason or NULL)."""
    reader.con.execute(CHECK_SQL)
    reader.con.execute("DROP TABLE _stage")


def load(reader: Reader, source_id: int, path: Path) -> dict[str, int]:
    """Quarantine the rejected rows of `_checked`, insert the valid new ones, and return the counts."""
    con = reader.con
    total, bad = con.execute("SELECT count(*), count(reason) FROM _checked").fetchone()
    if bad:
        _fill_raw(reader)
        con.execute(
            "INSERT INTO quarantine SELECT ?, ?, line, raw, reason, now() FROM _checked WHERE reason IS NOT NULL",
            [source_id, str(path)],
        )
    quarantine_rejects(reader, source_id, path)
    systems = [r[0] for r in con.execute("SELECT DISTINCT system_id FROM _checked WHERE reason IS NULL").fetchall()]
    existing = systems and con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM decisions WHERE system_id IN (SELECT unnest(?)) LIMIT 1)", [systems]
    ).fetchone()[0]
    anti_join = ("AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.system_id = v.system_id "
                 "AND d.decision_id = v.decision_id)") if existing else ""
    loaded = con.execute(f"""
        INSERT INTO decisions
        SELECT system_id, decision_id, ts, model_version, principal, prediction, score, features, model_sha256,
               source_ip, latency_ms, status, ground_truth, session_id, extra, ?, line
        FROM (SELECT *, row_number() OVER (PARTITION BY system_id, decision_id ORDER BY line) AS _rk
              FROM _checked WHERE reason IS NULL) v
        WHERE _rk = 1 {anti_join}
    """, [source_id]).fetchone()[0]
    update_feature_catalog(reader, source_id)
    read = total + len(reader.rejects)
    quarantined = bad + len(reader.rejects)
    return {"rows_read": read, "rows_loaded": loaded, "duplicates": read - quarantined - loaded,
            "rows_quarantined": quarantined}


def _fill_raw(reader: Reader) -> None:
    """Give quarantined rows without raw text their physical line (CSV) or their fields as JSON (Parquet)."""
    con = reader.con
    if not con.execute("SELECT count(*) FROM _checked WHERE reason IS NOT NULL AND raw IS NULL").fetchone()[0]:
        return
    if reader.fmt == "csv":
        reader.lines_table("_lines")
        con.execute("UPDATE _checked SET raw = l.raw FROM _lines l "
                    "WHERE _checked.reason IS NOT NULL AND _checked.raw IS NULL AND l.line = _checked.line")
        con.execute("DROP TABLE _lines")
    con.execute("""UPDATE _checked SET raw = to_json(struct_pack(decision_id, ts := ts_raw, system_id, model_version,
                    principal, prediction, score := score_raw, features, model_sha256, source_ip,
                    latency_ms := latency_raw, status, ground_truth, session_id, extra))::VARCHAR
                   WHERE reason IS NOT NULL AND raw IS NULL""")


def quarantine_rejects(reader: Reader, source_id: int, path: Path) -> None:
    """Insert the rows the file parser itself rejected into the quarantine."""
    if reader.rejects:
        reader.con.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, now())",
            [[source_id, str(path), line, raw, reason] for line, raw, reason in reader.rejects],
        )


def update_feature_catalog(reader: Reader, source_id: int) -> None:
    """Record each system's feature names and types (number, string, bool) as first seen."""
    con = reader.con
    con.execute(f"""
        INSERT INTO feature_catalog
        WITH keys AS (
            SELECT DISTINCT system_id, unnest(json_keys(features)) AS feature
            FROM (SELECT DISTINCT ON (system_id, json_keys(features)) system_id, features
                  FROM _checked WHERE reason IS NULL)
        ), typed AS (
            SELECT k.system_id, k.feature,
                   (SELECT mode(t) FROM (
                        SELECT json_type(c.features, '$."' || replace(k.feature, '"', '\\"') || '"') AS t
                        FROM (SELECT system_id, features FROM _checked WHERE reason IS NULL LIMIT 20000) c
                        WHERE c.system_id = k.system_id) WHERE t IS NOT NULL AND t <> 'NULL') AS t
            FROM keys k
        )
        SELECT system_id, feature,
               CASE WHEN t IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN 'number' WHEN t = 'BOOLEAN' THEN 'bool'
                    ELSE 'string' END, {int(source_id)}
        FROM typed
        WHERE (system_id, feature) NOT IN (SELECT (system_id, feature) FROM feature_catalog)
    """)
