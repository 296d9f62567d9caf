"""OpenMetrics / Prometheus text exposition with sample timestamps -> metrics.

`name{label="v",...} value timestamp` per line; `# HELP`, `# TYPE`, `# UNIT`, `# EOF` and blank lines are skipped.
The timestamp is seconds (OpenMetrics) or milliseconds (Prometheus text format), told apart by magnitude. A
`system_id` label names the system (else --system); the other labels are kept, sorted by name. A sample
without a timestamp (a live scrape) cannot be placed in time and goes to quarantine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench.ingest.importers.common import metrics_importer
from workbench.ingest.reading import LINES_SQL, Reader, sql_str

SAMPLE_RE = r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{(.*)\})?\s+(\S+)(\s+(\S+))?\s*$"
LABEL_RE = r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"'
_SNIFF = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?\s+[-+0-9.eEInfNa]+(\s+[0-9.]+)?\s*$")


def labels_sql(names: str, values: str) -> str:
    """SQL: JSON object (keys sorted, system_id left out) from two parallel label lists, NULL when empty."""
    entries = (f"list_sort(list_filter(list_transform(range(CAST(len({names}) AS BIGINT)), lambda i: "
               f"{{'k': {names}[i + 1], 'v': {values}[i + 1]}}), lambda e: e.k <> 'system_id'))")
    return f"CASE WHEN len({entries}) > 0 THEN to_json(map_from_entries({entries}))::VARCHAR END"


def stage(reader: Reader, path: Path, system: str | None, _mapping: dict[str, Any] | None) -> None:
    """Fill `_mstage` from one text exposition file."""
    bs = "chr(92)"  # label values escape \\, \" and \n
    unescape = (f"replace(replace(replace(replace(v, {bs} || {bs}, chr(1)), {bs} || '\"', '\"'), {bs} || 'n', "
                f"chr(10)), chr(1), {bs})")
    reader.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mstage AS
        WITH l AS (
            SELECT line, raw, regexp_extract(trim(raw), {sql_str(SAMPLE_RE)},
                       ['name', 'b', 'lbl', 'value', 's', 'ts']) AS p
            FROM ({LINES_SQL.format(path=sql_str(str(path)), compression=reader.compression)})
            WHERE raw IS NOT NULL AND trim(raw) <> '' AND NOT starts_with(trim(raw), '#')
        ), s AS (
            SELECT line, raw, nullif(p.name, '') AS metric, nullif(p.value, '') AS value_raw,
                   nullif(p.ts, '') AS ts_text,
                   regexp_extract_all(p.lbl, {sql_str(LABEL_RE)}, 1) AS names,
                   list_transform(regexp_extract_all(p.lbl, {sql_str(LABEL_RE)}, 2), lambda v: {unescape}) AS vals
            FROM l
        )
        SELECT line, raw,
            CASE WHEN metric IS NULL OR (TRY_CAST(value_raw AS DOUBLE) IS NULL
                      AND lower(value_raw) NOT IN ('nan', '+inf', '-inf', 'inf'))
                 THEN 'not an exposition sample (expected name{{labels}} value timestamp)'
                 WHEN ts_text IS NULL THEN 'sample has no timestamp (a live scrape cannot be placed in time)'
                 WHEN TRY_CAST(ts_text AS DOUBLE) IS NULL THEN 'bad timestamp ' || left(ts_text, 40)
            END AS parse_error,
            CASE WHEN TRY_CAST(ts_text AS DOUBLE) IS NOT NULL THEN strftime(make_timestamp(CAST(round(
                CASE WHEN abs(CAST(ts_text AS DOUBLE)) > 1e11 THEN CAST(ts_text AS DOUBLE) * 1e3
                     ELSE CAST(ts_text AS DOUBLE) * 1e6 END) AS BIGINT)), '%Y-%m-%dT%H:%M:%S.%fZ')
                 ELSE ts_text END AS ts_raw,
            NULL::TIMESTAMPTZ AS ts_typed,
            coalesce(vals[list_position(names, 'system_id')], {sql_str(system) if system else 'NULL'}) AS system_id,
            metric, value_raw, {labels_sql('names', 'vals')} AS labels
        FROM s
    """)


def sniff(path: Path, head: str) -> bool:
    """Text whose first non-comment line is an exposition sample, or that carries # TYPE / # HELP lines."""
    text = head.lstrip()
    if not text or text[0] in "{[" or head.startswith("PAR1"):
        return False
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if any(ln.startswith(("# TYPE ", "# HELP ")) for ln in lines):
        return True
    samples = [ln for ln in lines if not ln.startswith("#")]
    return bool(samples) and all(_SNIFF.match(ln.strip()) for ln in samples[:5])


IMPORTER = metrics_importer("openmetrics", stage, sniff, "OpenMetrics / Prometheus text exposition with timestamps")
