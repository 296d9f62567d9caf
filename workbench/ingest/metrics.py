"""Monitoring metrics: long format (JSONL, CSV, Parquet) and Prometheus query_range JSON -> the metrics table.

Every reader fills the temp table `_mstage` (see MSTAGE_COLUMNS); `check()` validates it and `load()` inserts
each data point once. Importers of other monitoring exports build the same `_mstage`.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.ingest.limits import RAW_CAP, ts_window, ts_window_reason
from workbench.ingest.reading import Reader, quote_ident, sql_str
from workbench.ingest.settle import QUARANTINE_COLUMNS, quarantine_rejects

MSTAGE_COLUMNS = (
    "line BIGINT", "raw VARCHAR", "parse_error VARCHAR", "ts_raw VARCHAR", "ts_typed TIMESTAMPTZ",
    "system_id VARCHAR", "metric VARCHAR", "value_raw VARCHAR", "labels VARCHAR",
)


def stage(reader: Reader, path: Path, fmt: str, system: str | None) -> None:
    """Fill `_mstage` from a metrics file in the given format."""
    if fmt == "jsonl":
        _stage_jsonl(reader, path)
    elif fmt == "csv":
        _stage_table(reader, path, csv=True)
    elif fmt == "parquet":
        _stage_table(reader, path, csv=False)
    elif fmt == "prometheus":
        stage_prometheus(reader, path)
    else:
        raise WorkbenchError(f"{path}: format {fmt} cannot hold metrics")
    if system:
        reader.con.execute("UPDATE _mstage SET system_id = coalesce(system_id, ?)", [system])


def _stage_jsonl(reader: Reader, path: Path) -> None:
    structure = '{"ts":"JSON","system_id":"JSON","metric":"JSON","value":"JSON","labels":"JSON"}'
    reader.lines_table("_mlines", keep_rejects=True)  # a line too long or not UTF-8 is quarantined, not fatal
    reader.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mstage AS
        SELECT line, raw,
            CASE WHEN j IS NULL THEN CASE WHEN json_valid(raw) THEN 'line is not a JSON object'
                                          ELSE 'unparseable JSON' END
                 WHEN j.labels IS NOT NULL AND json_type(j.labels) NOT IN ('OBJECT', 'NULL')
                      THEN 'labels must be an object'
                 WHEN j.value IS NOT NULL AND json_type(j.value) NOT IN ('BIGINT','UBIGINT','DOUBLE','VARCHAR','NULL')
                      THEN 'value must be a number'
            END AS parse_error,
            json_extract_string(j.ts, '$') AS ts_raw, NULL::TIMESTAMPTZ AS ts_typed,
            json_extract_string(j.system_id, '$') AS system_id, json_extract_string(j.metric, '$') AS metric,
            json_extract_string(j.value, '$') AS value_raw,
            CASE WHEN json_type(j.labels) = 'OBJECT' AND j.labels <> '{{}}' THEN j.labels END AS labels
        FROM (SELECT line, raw, try(json_transform(raw, '{structure}')) AS j FROM _mlines)
    """)
    reader.con.execute("DROP TABLE _mlines")


def _stage_table(reader: Reader, path: Path, *, csv: bool) -> None:
    con = reader.con
    if csv:
        cols = reader.csv_to_table(path, "_mcsv")
        src, line = "_mcsv", reader.line_expr
    else:
        src = f"read_parquet({sql_str(str(path))}, file_row_number=true)"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall() if r[0] != "file_row_number"]
        line = "file_row_number + 1"
    missing = [c for c in ("ts", "metric", "value") if c not in cols]
    if missing:
        raise WorkbenchError(f"{path}: not a long-format metrics file: missing column(s) {', '.join(missing)}")
    label_cols = [c for c in cols if c.startswith("labels.")]
    if label_cols:
        labels = ("CASE WHEN " + " OR ".join(f"{quote_ident(c)} IS NOT NULL" for c in label_cols)
                  + " THEN json_object(" + ", ".join(f"{sql_str(c[7:])}, CAST({quote_ident(c)} AS VARCHAR)"
                                                     for c in label_cols) + ")::VARCHAR END")
    elif "labels" in cols:
        labels = "CASE WHEN CAST(labels AS VARCHAR) NOT IN ('', '{}') THEN CAST(labels AS VARCHAR) END"
    else:
        labels = "NULL::VARCHAR"
    ts_typed = "NULL::TIMESTAMPTZ"
    if not csv:
        ts_type = con.execute(f"SELECT typeof(ts) FROM {src} LIMIT 1").fetchone()
        if ts_type and ts_type[0].startswith("TIMESTAMP"):
            ts_typed = "CAST(ts AS TIMESTAMPTZ)"
    system = "CAST(system_id AS VARCHAR)" if "system_id" in cols else "NULL::VARCHAR"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mstage AS
        SELECT {line} AS line, NULL::VARCHAR AS raw,
               CASE WHEN labels IS NOT NULL AND NOT json_valid(labels)
                    THEN 'labels is not valid JSON' END AS parse_error,
               ts_raw, ts_typed, system_id, metric, value_raw, labels
        FROM (SELECT *, CAST(ts AS VARCHAR) AS ts_raw, {ts_typed} AS ts_typed, {system} AS system_id,
                     CAST(metric AS VARCHAR) AS metric, CAST(value AS VARCHAR) AS value_raw, {labels} AS labels
              FROM {src})
    """)
    if csv:
        con.execute("DROP TABLE _mcsv")
        con.execute("DROP TABLE IF EXISTS _rej_lines")


def stage_prometheus(reader: Reader, path: Path) -> None:
    """Prometheus HTTP API /api/v1/query_range JSON (resultType matrix): one row per (series, sample)."""
    con = reader.con
    try:
        doc = con.execute(
            f"SELECT status, data FROM read_json({sql_str(str(path))}, columns={{'status': 'VARCHAR', "
            f"'data': 'JSON'}}, format='auto', maximum_object_size=1073741824, compression='{reader.compression}')"
        ).fetchall()
    except Exception as exc:
        raise WorkbenchError(f"{path}: not a Prometheus query_range response ({str(exc).splitlines()[0]})") from exc
    if len(doc) != 1 or doc[0][1] is None:
        raise WorkbenchError(f"{path}: not a Prometheus query_range response (no data object)")
    status, data = doc[0]
    rtype = con.execute("SELECT json_extract_string(?::JSON, '$.resultType')", [data]).fetchone()[0]
    if status != "success" or rtype != "matrix":
        raise WorkbenchError(f"{path}: Prometheus response has status {status!r} and resultType {rtype!r}; "
                             "expected success and matrix (use /api/v1/query_range)")
    con.execute("CREATE OR REPLACE TEMP TABLE _promdoc AS SELECT ?::JSON AS data", [data])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _mstage AS
        WITH series AS (
            SELECT row_number() OVER () AS s, s_json
            FROM (SELECT unnest(json_extract(data, '$.result[*]')) AS s_json FROM _promdoc)
        ), points AS (
            SELECT s, s_json->'metric' AS labels_all, unnest(json_extract(s_json, '$.values[*]')) AS p,
                   generate_subscripts(json_extract(s_json, '$.values[*]'), 1) AS k
            FROM series
        )
        SELECT row_number() OVER (ORDER BY s, k) AS line,
               to_json(struct_pack(metric := labels_all, value := p))::VARCHAR AS raw,
               CASE WHEN json_array_length(p) <> 2 THEN 'sample is not a [timestamp, value] pair' END AS parse_error,
               CASE WHEN abs(TRY_CAST(p->>0 AS DOUBLE)) < 9e12
                    THEN strftime(make_timestamp(CAST(round(CAST(p->>0 AS DOUBLE) * 1e6) AS BIGINT)),
                                  '%Y-%m-%dT%H:%M:%S.%fZ')
                    ELSE p->>0 END AS ts_raw,
               NULL::TIMESTAMPTZ AS ts_typed,
               labels_all->>'system_id' AS system_id,
               labels_all->>'__name__' AS metric,
               p->>1 AS value_raw,
               CASE WHEN len(list_filter(json_keys(labels_all), lambda x: x NOT IN ('__name__', 'system_id'))) > 0
                    THEN to_json(map_from_entries(list_transform(
                        list_filter(json_keys(labels_all), lambda x: x NOT IN ('__name__', 'system_id')),
                        lambda x: {'k': x, 'v': labels_all->>x})))::VARCHAR END AS labels
        FROM points
    """)
    con.execute("DROP TABLE _promdoc")


# {{10,16}}, {ts_min}, ...: str.format fills the plausible window in.
CHECK_SQL = r"""
CREATE OR REPLACE TEMP TABLE _mchecked AS
SELECT *,
    CASE
        WHEN parse_error IS NOT NULL THEN parse_error
        WHEN ts_raw IS NULL OR ts_raw = '' THEN 'missing required field ts'
        WHEN system_id IS NULL OR system_id = '' THEN 'missing system_id (give --system or a system_id label)'
        WHEN metric IS NULL OR metric = '' THEN 'missing required field metric'
        WHEN value_raw IS NULL OR value_raw = '' THEN 'missing required field value'
        WHEN value IS NULL THEN 'value must be a number, got ' || left(value_raw, 40)
        WHEN ts IS NULL AND epoch THEN {implausible}
        WHEN ts IS NULL THEN 'bad timestamp ' || left(ts_raw, 40)
        WHEN ts < TIMESTAMPTZ '{ts_min}' OR ts >= TIMESTAMPTZ '{ts_max}' THEN {implausible}
    END AS reason
FROM (
    SELECT s.*, regexp_full_match(ts_raw, '\d{{10,16}}') AS epoch,
        coalesce(ts_typed, CASE
            WHEN regexp_full_match(ts_raw, '\d{{10,16}}') AND TRY_CAST(ts_raw AS BIGINT) < 9000000000000000
                THEN epoch_ms(CAST(ts_raw AS BIGINT))::TIMESTAMPTZ
            WHEN regexp_matches(ts_raw, '([zZ]|[+-]\d\d(:?\d\d)?)$') THEN TRY_CAST(ts_raw AS TIMESTAMPTZ)
        END) AS ts,
        TRY_CAST(value_raw AS DOUBLE) AS value
    FROM _mstage s
)
"""


def check(reader: Reader) -> None:
    """Validate `_mstage` into `_mchecked`."""
    lo, hi = ts_window()
    reader.con.execute(CHECK_SQL.format(ts_min=lo.isoformat(), ts_max=hi.isoformat(),
                                        implausible=ts_window_reason("ts_raw", (lo, hi))))
    reader.con.execute("DROP TABLE _mstage")


def load(reader: Reader, source_id: int, path: Path) -> dict[str, int]:
    """Quarantine bad points, insert each new point once (system, metric, labels, ts), return the counts."""
    con = reader.con
    _mark_conflicts(con, source_id)
    total, bad = con.execute("SELECT count(*), count(reason) FROM _mchecked").fetchone()
    if bad:
        if reader.fmt == "csv":
            reader.lines_table("_lines")
            con.execute("UPDATE _mchecked SET raw = l.raw FROM _lines l WHERE _mchecked.reason IS NOT NULL "
                        "AND _mchecked.raw IS NULL AND l.line = _mchecked.line")
            con.execute("DROP TABLE _lines")
        con.execute("""UPDATE _mchecked SET raw = to_json(struct_pack(ts := ts_raw, system_id, metric,
                       value := value_raw, labels))::VARCHAR WHERE reason IS NOT NULL AND raw IS NULL""")
        con.execute(f"INSERT INTO quarantine ({QUARANTINE_COLUMNS}) SELECT ?, ?, line, left(raw, {RAW_CAP}), "
                    "reason, now(), strlen(raw), sha256(raw) FROM _mchecked WHERE reason IS NOT NULL ORDER BY line",
                    [source_id, str(path)])
    quarantine_rejects(reader, source_id, path)
    loaded = con.execute("""
        INSERT INTO metrics
        SELECT ts, system_id, metric, value, labels, ?, line
        FROM (SELECT *, row_number() OVER (PARTITION BY system_id, metric, coalesce(labels::VARCHAR, ''), ts
                                           ORDER BY line) AS _rk
              FROM _mchecked WHERE reason IS NULL) v
        WHERE _rk = 1 AND NOT EXISTS (
            SELECT 1 FROM metrics m WHERE m.system_id = v.system_id AND m.metric = v.metric AND m.ts = v.ts
              AND coalesce(m.labels::VARCHAR, '') = coalesce(v.labels::VARCHAR, ''))
    """, [source_id]).fetchone()[0]
    con.execute("DROP TABLE _mchecked")
    read = total + len(reader.rejects)
    quarantined = bad + len(reader.rejects)
    return {"rows_read": read, "rows_loaded": loaded, "duplicates": read - quarantined - loaded,
            "rows_quarantined": quarantined}


def _mark_conflicts(con, source_id: int) -> None:
    """A second point for a (system, metric, labels, ts) with another value is quarantined, not dropped."""
    # The point kept is the one already in the workspace, else the first in the file.
    con.execute(f"""
        UPDATE _mchecked SET reason = c.why FROM (
            SELECT rid, 'conflicting duplicate: value ' || value || ' differs from the ' || kept
                        || ' kept (source ' || kept_source || ', line ' || kept_line || ')' AS why
            FROM (SELECT v.rowid AS rid, v.value,
                         CASE WHEN m.ts IS NULL THEN first_value(v.value) OVER w ELSE m.value END AS kept,
                         CASE WHEN m.ts IS NULL THEN {int(source_id)} ELSE m.source_id END AS kept_source,
                         CASE WHEN m.ts IS NULL THEN first_value(v.line) OVER w ELSE m.source_line END AS kept_line,
                         m.ts IS NOT NULL OR row_number() OVER w > 1 AS dup
                  FROM _mchecked v LEFT JOIN metrics m
                    ON m.system_id = v.system_id AND m.metric = v.metric AND m.ts = v.ts
                   AND coalesce(m.labels::VARCHAR, '') = coalesce(v.labels::VARCHAR, '')
                  WHERE v.reason IS NULL
                  WINDOW w AS (PARTITION BY v.system_id, v.metric, coalesce(v.labels::VARCHAR, ''), v.ts
                               ORDER BY v.line))
            WHERE dup AND value IS DISTINCT FROM kept
        ) c WHERE _mchecked.rowid = c.rid""")


def span(con, source_id: int) -> tuple[list[str], object, object]:
    """Systems and time range of what a source loaded."""
    return con.execute("SELECT list(DISTINCT system_id ORDER BY system_id), min(ts), max(ts) FROM metrics "
                       "WHERE source_id = ?", [source_id]).fetchone()
