"""Load one trace file into trace_spans: quarantine with reasons, duplicates, content policy, custody, audit.

Accounting is exact: rows_read (spans found, plus lines holding no document) = rows_loaded + duplicates +
rows_quarantined. A span already loaded with the same content (the same file read again with --reingest, or an
exporter that wrote it twice) counts as a duplicate; one whose content differs is quarantined as a conflicting
duplicate, so it never vanishes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import audit
from workbench.access import Actor, require
from workbench.access.masking import mask_sql, masking_key
from workbench.ingest.limits import RAW_CAP, ts_window, ts_window_reason
from workbench.ingest.reading import Reader
from workbench.ingest.settle import QUARANTINE_COLUMNS, quarantine_rejects
from workbench.store import Workspace
from workbench.traces import macros, parse, signals

# Attribute keys that carry prompt, answer, tool or document text (masked or dropped with the content).
CONTENT_KEYS = (r"^(gen_ai[.](input|output)[.]messages|gen_ai[.]system_instructions|gen_ai[.]tool[.]call[.]"
                r"(arguments|result)|gen_ai[.](prompt|completion)([.].*)?|llm[.](input|output)_messages[.].*|"
                r"input[.]value|output[.]value|retrieval[.]documents[.].*content|tool[.]parameters|"
                r"gen_ai[.]retrieval[.]documents)$")
TEXT_COLUMNS = ("system_prompt", "input_text", "output_text", "tool_args", "tool_result")


def load_file(ws: Workspace, actor: Actor, path: Path, result: Any, system: str | None, sha256, size: int) -> None:
    """Load a trace file (result.format: otlp-json or langfuse) in one transaction; fill `result`'s counts."""
    require(actor, "write:ingest", ws)
    key = masking_key(ws)
    with ws.transaction() as con:
        sid = int(con.execute("SELECT nextval('source_id_seq')").fetchone()[0])
        reader = Reader.for_file(con, path, "jsonl")
        reader.lines_table("_tl", keep_rejects=True)
        _whole_document(con)
        macros.install(con)
        if result.format == "langfuse":
            parse.stage_langfuse(con, system)
            bad_lines = parse.bad_langfuse_lines_sql()
        else:
            parse.stage_otlp(con, system)
            bad_lines = parse.bad_otlp_lines_sql()
        _fill_trace_level(con)
        lo, hi = ts_window()
        con.execute(f"UPDATE _tstage SET err = {ts_window_reason('ts::VARCHAR', (lo, hi))} "
                    "WHERE err IS NULL AND (ts < ? OR ts >= ?)", [lo, hi])
        con.execute("CREATE OR REPLACE TEMP TABLE _tcanary AS SELECT system_id, canary FROM trace_systems")
        signals.compute(con, key)
        counts = _settle(con, reader, sid, path, bad_lines)
        _apply_policy(con, key)
        con.execute(f"""
            INSERT INTO trace_spans BY NAME
            SELECT * EXCLUDE (line, raw, sha, err, keep, policy, rk, first_sha, first_line, old_sha,
                old_source, old_line),
                   date_diff('microsecond', ts, end_ts) / 1000.0 AS latency_ms, policy AS content_policy,
                   sha AS span_sha, {sid} AS source_id, line AS source_line
            FROM _tstage WHERE keep""")
        systems, t0, t1 = con.execute("SELECT list(DISTINCT system_id ORDER BY system_id), min(ts), max(ts) "
                                      "FROM trace_spans WHERE source_id = ?", [sid]).fetchone()
        digest = sha256()
        con.execute("INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [sid, str(path.resolve()), digest, size, "traces", result.format, datetime.now(UTC),
                     actor.user, actor.role, counts["rows_read"], counts["rows_loaded"], counts["duplicates"],
                     counts["rows_quarantined"], systems or [], t0, t1])
        audit.record(ws, actor, "ingest.file", str(path.resolve()),
                     {"source_id": sid, "sha256": digest, "kind": "traces", "format": result.format,
                      "system": system, **counts})
        for table in ("_tl", "_tstage", "_tcanary"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    result.sha256, result.source_id, result.system_ids = digest, sid, systems or []
    for name, value in counts.items():
        setattr(result, name, value)


def _whole_document(con) -> None:
    """A pretty-printed single JSON document spans many lines: read it as one document on line 1."""
    n, ok = con.execute("SELECT count(*), count(*) FILTER (json_valid(raw)) FROM _tl").fetchone()
    if n > 1 and ok < n:
        whole = con.execute("SELECT json_valid(string_agg(raw, chr(10) ORDER BY line)) FROM _tl").fetchone()[0]
        if whole:
            con.execute("CREATE OR REPLACE TEMP TABLE _tl AS SELECT 1::BIGINT AS line, "
                        "string_agg(raw, chr(10) ORDER BY line) AS raw FROM _tl")


def _fill_trace_level(con) -> None:
    """Principal, conversation and agent logged on one span of a trace hold for all its spans."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _tstage AS
        SELECT * REPLACE (
            coalesce(principal, max(principal) OVER w, service, system_id) AS principal,
            coalesce(conversation_id, max(conversation_id) OVER w, trace_id) AS conversation_id,
            coalesce(agent, max(agent) OVER w, service, system_id) AS agent,
            coalesce(service, system_id) AS service)
        FROM _tstage WINDOW w AS (PARTITION BY system_id, trace_id)""")


def _quarantine(con, sid: int, path: Path, select_sql: str, params: list[Any] | None = None) -> None:
    """Insert (line, raw, reason) rows into the quarantine (raw cut to RAW_CAP, with its size and hash)."""
    con.execute(f"""INSERT INTO quarantine ({QUARANTINE_COLUMNS})
                    SELECT {sid}, ?, line, left(raw, {RAW_CAP}), reason, now(), strlen(raw), sha256(raw)
                    FROM ({select_sql}) q(line, raw, reason) ORDER BY line""", [str(path), *(params or [])])


def _settle(con, reader: Reader, sid: int, path: Path, bad_lines_sql: str) -> dict[str, int]:
    """Quarantine bad lines, bad spans and conflicting duplicates; mark the rows to keep; return the counts."""
    quarantine_rejects(reader, sid, path)
    n_bad_lines = con.execute(f"SELECT count(*) FROM ({bad_lines_sql})").fetchone()[0]
    _quarantine(con, sid, path, bad_lines_sql)
    _quarantine(con, sid, path, "SELECT line, raw, err FROM _tstage WHERE err IS NOT NULL")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _tstage AS
        SELECT s.*, err IS NULL AND rk = 1 AND old_sha IS NULL AS keep FROM (
            SELECT t.*, row_number() OVER (PARTITION BY t.system_id, t.trace_id, t.span_id ORDER BY t.line,
                                           t.sha) AS rk,
                   first_value(t.sha) OVER (PARTITION BY t.system_id, t.trace_id, t.span_id ORDER BY t.line,
                                            t.sha) AS first_sha,
                   first_value(t.line) OVER (PARTITION BY t.system_id, t.trace_id, t.span_id ORDER BY t.line,
                                             t.sha) AS first_line,
                   o.span_sha AS old_sha, o.source_id AS old_source, o.source_line AS old_line
            FROM _tstage t LEFT JOIN (SELECT system_id, trace_id, span_id, span_sha, source_id, source_line
                                      FROM trace_spans QUALIFY row_number() OVER (PARTITION BY system_id, trace_id,
                                      span_id ORDER BY source_id) = 1) o
              ON o.system_id = t.system_id AND o.trace_id = t.trace_id AND o.span_id = t.span_id
              AND t.err IS NULL) s""")
    _quarantine(con, sid, path, """
        SELECT line, raw, 'conflicting duplicate: span ' || span_id || ' of trace ' || trace_id
               || ' differs from the record kept (' || CASE WHEN old_sha IS NOT NULL
               THEN 'source ' || old_source || ', line ' || old_line ELSE 'line ' || first_line END || ')'
        FROM _tstage WHERE err IS NULL AND ((old_sha IS NOT NULL AND old_sha <> sha)
                                            OR (old_sha IS NULL AND rk > 1 AND sha <> first_sha))""")
    total, loaded = con.execute("SELECT count(*), count(*) FILTER (keep) FROM _tstage").fetchone()
    quarantined = con.execute("SELECT count(*) FROM quarantine WHERE source_id = ?", [sid]).fetchone()[0]
    read = total + n_bad_lines + len(reader.rejects)
    return {"rows_read": read, "rows_loaded": loaded, "duplicates": read - loaded - quarantined,
            "rows_quarantined": quarantined}


def _apply_policy(con, key: str | None) -> None:
    """Keep, mask (HMAC tokens: equal texts still match) or drop the text, per the system's content policy."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _tstage AS
                   SELECT s.*, coalesce(p.content_policy, 'keep') AS policy
                   FROM _tstage s LEFT JOIN trace_systems p USING (system_id) WHERE s.keep""")
    if not con.execute("SELECT count(*) FROM _tstage WHERE policy <> 'keep'").fetchone()[0]:
        return
    con.execute(f"SET VARIABLE wb_tkey = '{key or '00' * 128}'")

    def tok(expr: str) -> str:
        return mask_sql("system_id", expr, "getvariable('wb_tkey')", "'trace:text'")

    sets = ", ".join(f"{c} = CASE policy WHEN 'mask' THEN {tok(c)} END" for c in TEXT_COLUMNS)
    con.execute(f"""
        UPDATE _tstage SET {sets},
          messages = CASE policy WHEN 'mask' THEN to_json(struct_pack(
              input := list_transform(from_json(messages->'input', '[{{"role":"VARCHAR","content":"VARCHAR"}}]'),
                                      lambda m: struct_pack(role := m.role, content := {tok('m.content')})),
              output := list_transform(from_json(messages->'output', '[{{"role":"VARCHAR","content":"VARCHAR"}}]'),
                                       lambda m: struct_pack(role := m.role, content := {tok('m.content')})))) END,
          attributes = to_json(list_transform(list_filter(
              from_json(attributes, '[{{"k":"VARCHAR","v":"VARCHAR"}}]'),
              lambda x: policy = 'mask' OR NOT regexp_matches(x.k, '{CONTENT_KEYS}')),
              lambda x: struct_pack(k := x.k, v := CASE WHEN regexp_matches(x.k, '{CONTENT_KEYS}')
                                                        THEN {tok('x.v')} ELSE x.v END)))
        WHERE policy IN ('mask', 'drop') AND convention <> 'langfuse'""")
    con.execute(f"UPDATE _tstage SET {sets}, messages = NULL, attributes = NULL "
                "WHERE policy IN ('mask', 'drop') AND convention = 'langfuse'")
    con.execute("RESET VARIABLE wb_tkey")
