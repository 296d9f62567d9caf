"""SQL macros that turn serving payloads (V1, V2 Open Inference Protocol, Seldon, Databricks, CSV) into records.

`install(con)` defines temp macros on the cursor; every macro works on JSON values, so importers parse whole
files in one statement:
  wb_records(body)   request body -> JSON array of records (objects, or lists of values in feature order)
  wb_outputs(body)   response body -> JSON array with one output per record
  wb_csv(text)       CSV text (RFC 4180: quotes, "" inside quotes, commas and newlines in quoted fields; one
                     record per line, blank lines skipped) -> JSON array of lists of strings
  wb_csv_ok(text)    whether the text is CSV (a quote left open, or text around a quoted field, is not)
  wb_csv_error(text) why it is not
  wb_csv_out(text)   CSV response -> JSON array (a number per line, or a list when a line has several values)
  wb_text(data, enc) capture `data` decoded per its encoding (BASE64 -> text)
"""

from __future__ import annotations

from typing import Any

# RFC 4180 CSV as RE2 patterns: a field is quoted ("" for a quote; commas and newlines allowed inside, blanks
# around it) or unquoted (no comma, quote or newline); a record is fields joined by commas; records are lines.
CSV_FIELD = r'[ \t]*"(?:[^"]|"")*"[ \t]*|[^,"\r\n]*'
CSV_RECORD = f"(?:{CSV_FIELD})(?:,(?:{CSV_FIELD}))*"
EOL = r"\r?\n"
CSV_TEXT = f"{CSV_RECORD}(?:{EOL}{CSV_RECORD})*"
_STRAY = r'(^|[,\n])[ \t]*[^ \t,"\r\n][^,"\r\n]*"'  # a field that starts unquoted and has a quote
_UNQUOTE = r'(?s)^[ \t]*"(.*)"[ \t]*$'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_MACROS = (
    # element i (0-based) of a V2 tensor: a scalar for shape [n] / [n, 1], else the row of length shape[1]
    """wb_v2_elem(t, i) AS (
        CASE WHEN json_type(json_extract(t, '$.data[0]')) = 'ARRAY' THEN json_extract(json_extract(t, '$.data'), i)
             WHEN json_array_length(json_extract(t, '$.shape')) < 2
                  OR CAST(json_extract_string(t, '$.shape[1]') AS BIGINT) = 1
             THEN json_extract(json_extract(t, '$.data'), i)
             ELSE to_json((CAST(json_extract(t, '$.data') AS JSON[]))[
                    i * CAST(json_extract_string(t, '$.shape[1]') AS BIGINT) + 1 :
                    (i + 1) * CAST(json_extract_string(t, '$.shape[1]') AS BIGINT)])
        END)""",
    """wb_v2_n(t) AS (coalesce(TRY_CAST(json_extract_string(t, '$.shape[0]') AS BIGINT),
                               CAST(json_array_length(json_extract(t, '$.data')) AS BIGINT)))""",
    # V2 tensors -> one object per row {tensor name: element}
    """wb_v2_rows(ts) AS (
        to_json(list_transform(range(wb_v2_n(json_extract(ts, '$[0]'))), lambda i:
            to_json(map_from_entries(list_transform(CAST(ts AS JSON[]), lambda t:
                {'k': json_extract_string(t, '$.name'), 'v': wb_v2_elem(t, i)}))))))""",
    # V2 request: one tensor of shape [n, k>1] -> positional rows; several tensors -> named rows
    """wb_v2_inputs(ts) AS (
        CASE WHEN json_array_length(ts) = 1 AND json_array_length(json_extract(ts, '$[0].shape')) = 2
                  AND CAST(json_extract_string(ts, '$[0].shape[1]') AS BIGINT) > 1
             THEN to_json(list_transform(range(wb_v2_n(json_extract(ts, '$[0]'))), lambda i:
                    wb_v2_elem(json_extract(ts, '$[0]'), i)))
             ELSE wb_v2_rows(ts) END)""",
    # Seldon / pandas-split style {names: [...], ndarray: [[...]]} or {columns, data}
    """wb_named_rows(names, rows) AS (
        CASE WHEN names IS NULL OR json_array_length(names) = 0 THEN rows
             ELSE to_json(list_transform(CAST(rows AS JSON[]), lambda r:
                    CASE WHEN json_type(r) = 'ARRAY' THEN to_json(map_from_entries(list_transform(
                        range(CAST(json_array_length(r) AS BIGINT)), lambda j:
                        {'k': json_extract_string(names, '$[' || j || ']'), 'v': json_extract(r, j)})))
                    ELSE r END)) END)""",
    # columnar {"a": [1, 2], "b": [3, 4]} -> [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
    """wb_columns(o) AS (
        to_json(list_transform(range(CAST(json_array_length(json_extract(o, '$."' || json_keys(o)[1] || '"'))
                                          AS BIGINT)), lambda i:
            to_json(map_from_entries(list_transform(json_keys(o), lambda k:
                {'k': k, 'v': json_extract(json_extract(o, '$."' || k || '"'), i)}))))))""",
    """wb_as_list(x) AS (
        CASE WHEN x IS NULL THEN NULL
             WHEN json_type(x) = 'ARRAY' AND json_array_length(x) > 0
                  AND json_type(json_extract(x, '$[0]')) NOT IN ('ARRAY', 'OBJECT') THEN json_array(x)
             WHEN json_type(x) = 'ARRAY' THEN x
             ELSE json_array(x) END)""",
    """wb_records(b) AS (
        CASE WHEN b IS NULL OR NOT json_valid(b) THEN NULL
             WHEN json_type(b) = 'ARRAY' THEN wb_as_list(b)
             WHEN json_type(b) <> 'OBJECT' THEN json_array(b)
             WHEN json_extract(b, '$.instances') IS NOT NULL THEN wb_as_list(json_extract(b, '$.instances'))
             WHEN json_extract(b, '$.dataframe_records') IS NOT NULL
                  THEN wb_as_list(json_extract(b, '$.dataframe_records'))
             WHEN json_extract(b, '$.dataframe_split') IS NOT NULL
                  THEN wb_named_rows(json_extract(b, '$.dataframe_split.columns'),
                                     json_extract(b, '$.dataframe_split.data'))
             WHEN json_type(json_extract(b, '$.inputs')) = 'ARRAY'
                  AND json_extract(b, '$.inputs[0].data') IS NOT NULL
                  THEN wb_v2_inputs(json_extract(b, '$.inputs'))
             WHEN json_type(json_extract(b, '$.inputs')) = 'OBJECT' THEN wb_columns(json_extract(b, '$.inputs'))
             WHEN json_extract(b, '$.inputs') IS NOT NULL THEN wb_as_list(json_extract(b, '$.inputs'))
             WHEN json_type(json_extract(b, '$.data')) = 'OBJECT' AND json_extract(b, '$.data.ndarray') IS NOT NULL
                  THEN wb_named_rows(json_extract(b, '$.data.names'), json_extract(b, '$.data.ndarray'))
             WHEN json_type(json_extract(b, '$.data')) = 'ARRAY' THEN wb_as_list(json_extract(b, '$.data'))
             ELSE json_array(b) END)""",
    """wb_outputs(b) AS (
        CASE WHEN b IS NULL OR NOT json_valid(b) THEN NULL
             WHEN json_type(b) = 'ARRAY' THEN b
             WHEN json_type(b) <> 'OBJECT' THEN json_array(b)
             WHEN json_type(json_extract(b, '$.predictions')) = 'ARRAY' THEN json_extract(b, '$.predictions')
             WHEN json_type(json_extract(b, '$.predictions')) = 'OBJECT'
                  THEN wb_columns(json_extract(b, '$.predictions'))
             WHEN json_type(json_extract(b, '$.outputs')) = 'ARRAY'
                  AND json_extract(b, '$.outputs[0].data') IS NOT NULL
                  THEN wb_v2_rows(json_extract(b, '$.outputs'))
             WHEN json_type(json_extract(b, '$.data')) = 'OBJECT' AND json_extract(b, '$.data.ndarray') IS NOT NULL
                  THEN wb_named_rows(json_extract(b, '$.data.names'), json_extract(b, '$.data.ndarray'))
             ELSE json_array(b) END)""",
    """wb_lines(t) AS (list_filter(string_split(replace(t, chr(13), ''), chr(10)), lambda l: trim(l) <> ''))""",
    # CSV with RE2 (linear time): the whole text must match the grammar; records are then cut at the newlines
    # outside quotes and fields at the commas outside quotes, quotes removed and "" turned into ".
    f"""wb_csv_ok(t) AS (regexp_full_match(t, {_lit(CSV_TEXT)}))""",
    f"""wb_csv_error(t) AS (CASE WHEN regexp_matches(t, {_lit(_STRAY)}) THEN 'a quote inside an unquoted field'
        WHEN (length(t) - length(replace(t, '"', ''))) % 2 = 1 THEN 'a quoted field is not closed'
        ELSE 'text after a closing quote' END)""",
    f"""wb_csv_records(t) AS (list_filter(regexp_extract_all(t || chr(10), {_lit('(' + CSV_RECORD + ')' + EOL)}, 1),
        lambda r: trim(r) <> ''))""",
    f"""wb_csv_unquote(f) AS (CASE WHEN strpos(f, '"') = 0 THEN f
        ELSE replace(regexp_extract(f, {_lit(_UNQUOTE)}, 1), '""', '"') END)""",
    f"""wb_csv_fields(r) AS (list_transform(regexp_extract_all(r || ',', {_lit('(' + CSV_FIELD + '),')}, 1),
        lambda f: wb_csv_unquote(f)))""",
    # without a quote in the text, CSV is lines split at commas: the fast path gives the same lists
    """wb_csv_rows(t) AS (CASE WHEN strpos(t, '"') = 0
        THEN list_transform(wb_lines(t), lambda l: string_split(l, ','))
        ELSE list_transform(wb_csv_records(t), lambda r: wb_csv_fields(r)) END)""",
    """wb_csv(t) AS (to_json(wb_csv_rows(t)))""",
    # a response value: a JSON number when it reads as a finite number, else a string
    """wb_csv_value(v) AS (CASE
        WHEN regexp_full_match(trim(v), '-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?') THEN trim(v)::JSON
        WHEN isfinite(TRY_CAST(trim(v) AS DOUBLE)) THEN to_json(CAST(trim(v) AS DOUBLE))
        ELSE to_json(trim(v)) END)""",
    """wb_csv_out(t) AS (to_json(list_transform(wb_csv_rows(t),
        lambda fs: CASE WHEN len(fs) = 1 THEN wb_csv_value(fs[1])
                        ELSE to_json(list_transform(fs, lambda v: wb_csv_value(v))) END)))""",
    """wb_text(d, enc) AS (
        CASE WHEN upper(enc) = 'BASE64' THEN TRY(decode(from_base64(d))) ELSE d END)""",
)


def install(con: Any) -> None:
    """Define the payload macros on this cursor (temporary; idempotent)."""
    for macro in _MACROS:
        con.execute(f"CREATE OR REPLACE TEMP MACRO {macro}")
