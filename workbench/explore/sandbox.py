"""Ad-hoc SQL for analysts: one read-only SELECT over workspace tables, time- and row-limited, audited.

DuckDB's `enable_external_access=false` is a one-way, database-wide switch, and this process must still ingest
files, so the sandbox checks the statement itself before DuckDB binds it (binding alone would open files):

1. exactly one statement, of type SELECT (`extract_statements`);
2. its parse tree (`json_serialize_sql`) is walked: every table reference must be a workspace table in
   the main schema that the actor may read (or a CTE in scope), every table function must be on a short
   allow-list (range, unnest, ...: nothing that reads files, URLs, settings, secrets or the catalog), and
   every scalar, aggregate and window function must be a built-in that does not read settings or the
   environment or change state (getenv, current_setting, nextval, setseed, ... are refused). Replacement
   scans (`FROM '/etc/passwd'`, Python variables) are table references that are not workspace tables, so
   they are refused too;
3. it runs on a cursor of its own in a transaction that is rolled back, interrupted after query_timeout
   seconds, cut at query_max_rows rows, and with at most query_memory_limit more memory (an address-space
   ceiling, see workbench.store.limits: DuckDB's memory_limit does not cover a function's result).
   query_timeout and query_max_rows are ceilings: a caller may ask for less, only an admin for more.
   The audit row keeps the first 4,000 characters of the statement and the SHA-256 of all of it.

Table rules: `accounts` and `access_secrets` are never readable; `audit_log` needs read:audit; tables
holding decision-level values (decisions, quarantine, evidence snapshots, explanations: any table with a
`features`, `raw` or `attributions` column) need read:decisions, and - once any feature is marked
personal - read:personal, because SQL results are not masked. So an analyst may query those tables
until personal features are marked; after that, they read decisions through workbench.explore (masked)
and use SQL for metrics and cases (alerts and evidence items, which may quote a personal value, then go through
`workbench alerts` / the evidence reads, masked).
Viewers hold no run:sql. Every run (and every refusal) is audited as `sql.run` / `sql.refused`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb

from workbench import audit, settings
from workbench.access import Actor, masking, require
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.store import Workspace
from workbench.store.limits import parse_size

NEVER_TABLES = frozenset({"accounts", "access_secrets"})
ROW_LEVEL_COLUMNS = frozenset({"features", "raw", "attributions"})
# alerts.evidence/summary and evidence.content/label may quote personal feature values (a backdoor trigger):
# masked by the library's reads, so SQL on them needs read:personal once any feature is marked personal
PERSONAL_TEXT_COLUMNS = {"alerts": frozenset({"evidence", "summary"}), "evidence": frozenset({"content", "label"})}
TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree", "repeat", "repeat_row"}
)
DENIED_FUNCTIONS = frozenset(
    {
        "getenv",
        "current_setting",
        "current_query",
        "current_query_id",
        "current_connection_id",
        "current_transaction_id",
        "nextval",
        "currval",
        "setval",
        "setseed",
        "write_log",
        "sleep_ms",
        "pg_sleep",
        "json_execute_serialized_sql",
        "query",
        "query_table",
        "txid_current",
    }
)
# Built into the SQL grammar rather than listed as scalar functions in duckdb_functions().
EXTRA_FUNCTIONS = frozenset({"unnest", "unlist"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_functions_lock = threading.Lock()
_functions: frozenset[str] | None = None


class SqlRefused(WorkbenchError):
    """The statement is not allowed in the SQL sandbox."""


@dataclass
class SqlResult:
    """Columns, rows (tuples), whether the row cap cut the result, and the run time."""

    columns: list[str]
    rows: list[tuple]
    truncated: bool
    seconds: float
    statement: str = ""
    notes: list[str] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dictionaries keyed by column name."""
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def df(self) -> Any:
        """Rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame.from_records(self.rows, columns=self.columns)


def _allowed_functions(ws: Workspace) -> frozenset[str]:
    """Built-in scalar, aggregate, window and macro function names, minus the denied ones."""
    global _functions
    with _functions_lock:
        if _functions is None:
            names = {
                r[0].lower()
                for r in ws.rows(
                    "SELECT DISTINCT function_name FROM duckdb_functions() WHERE internal "
                    "AND function_type IN ('scalar', 'aggregate', 'window', 'macro')"
                )
            }
            _functions = frozenset((names | EXTRA_FUNCTIONS) - DENIED_FUNCTIONS)
        return _functions


def _table_rules(ws: Workspace, actor: Actor) -> dict[str, str | None]:
    """Workspace table -> None when the actor may read it, else the reason it may not."""
    columns: dict[str, set[str]] = {}
    for table, column in ws.rows(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_catalog = current_database()"
    ):
        columns.setdefault(table.lower(), set()).add(column.lower())
    personal_marked = masking.any_personal(ws)
    rules: dict[str, str | None] = {}
    for table, cols in columns.items():
        if table in NEVER_TABLES:
            rules[table] = f"table {table} is not available to SQL"
        elif table == "audit_log" and not actor.can("read:audit"):
            rules[table] = f"{actor.role} may not read the audit log"
        elif table == "workspace_meta" and not actor.can("facilitate:drills"):
            # a drill workspace keeps its answer key here: participants must not read it back with SQL
            rules[table] = f"{actor.role} may not read workspace_meta (a drill's answer key lives there)"
        elif cols & ROW_LEVEL_COLUMNS and not actor.can("read:decisions"):
            rules[table] = f"{actor.role} may not read decision-level table {table}"
        elif (cols & ROW_LEVEL_COLUMNS or cols & PERSONAL_TEXT_COLUMNS.get(table, frozenset())) and \
                personal_marked and not actor.can("read:personal"):
            rules[table] = (
                f"{table} holds personal features and SQL results are not masked: "
                f"{actor.role} may read decisions only through the masked search"
            )
        else:
            rules[table] = None
    return rules


class _Checker:
    """Walks a serialized parse tree and raises SqlRefused at the first thing not allowed."""

    def __init__(
        self, rules: dict[str, str | None], functions: frozenset[str], denied: type[Exception]
    ) -> None:
        self.rules, self.functions, self.denied = rules, functions, denied

    def walk(self, node: Any, ctes: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, ctes)
            return
        if not isinstance(node, dict):
            return
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict) and cte_map.get("map"):
            entries = cte_map["map"]
            names = [str(e.get("key", "")).lower() for e in entries]
            for i, entry in enumerate(entries):
                if not _IDENT.match(names[i]):
                    raise SqlRefused(f"refused: CTE name {entry.get('key')!r} must be a plain identifier")
                if names[i] in self.rules:  # a CTE may not shadow a table: every table name is always checked
                    raise SqlRefused(f"refused: CTE name {entry.get('key')!r} is the name of a workspace table")
                value = entry.get("value") or {}
                recursive = (value.get("query_node") or {}).get("type") == "RECURSIVE_CTE_NODE"
                self.walk(value, ctes | frozenset(names[: i + 1] if recursive else names[:i]))
            ctes = ctes | frozenset(names)
            node = {k: v for k, v in node.items() if k != "cte_map"}
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "")).lower()
            if name not in TABLE_FUNCTIONS or fn.get("schema") or fn.get("catalog"):
                raise SqlRefused(
                    f"refused: table function {name}() is not allowed (no file, network, "
                    "setting or catalog access); query workspace tables"
                )
            self.walk(fn.get("arguments"), ctes)
            self.walk([v for k, v in node.items() if k != "function"], ctes)
            return
        if kind == "BASE_TABLE":
            self._table(node, ctes)
        elif kind == "SHOW_REF" and node.get("table_name"):
            raise SqlRefused("refused: SHOW is not allowed; DESCRIBE or SUMMARIZE a workspace table instead")
        if "function_name" in node:
            name = str(node["function_name"]).lower()
            if name not in self.functions or node.get("schema") not in (None, "", "main"):
                raise SqlRefused(f"refused: function {node['function_name']}() is not allowed in the sandbox")
        for value in node.values():
            if isinstance(value, dict | list):
                self.walk(value, ctes)

    def _table(self, node: dict[str, Any], ctes: frozenset[str]) -> None:
        name = str(node.get("table_name", ""))
        schema, catalog = str(node.get("schema_name") or ""), str(node.get("catalog_name") or "")
        low = name.lower()
        if not schema and not catalog and low in ctes:
            return
        if schema.lower() not in ("", "main") or catalog:
            raise SqlRefused(
                f"refused: {'.'.join(x for x in (catalog, schema, name) if x)} is not a workspace "
                "table (only tables of the workspace's main schema)"
            )
        if low not in self.rules:
            raise SqlRefused(
                f"refused: {name!r} is not a workspace table (files, URLs and other sources "
                "cannot be read from SQL)"
            )
        reason = self.rules[low]
        if low in NEVER_TABLES:
            raise SqlRefused(f"refused: {reason}")
        if reason:
            raise self.denied(f"refused: {reason}")


_COMMENT = re.compile(r"\s+|--[^\n]*(\n|$)|/\*.*?\*/", re.DOTALL)
_KEYWORD = re.compile(r"(?:FORCE\s+)?[A-Za-z]+", re.IGNORECASE)


def statement_kind(text: str, stmt_type: Any = None) -> str:
    """The statement's leading keyword as the user wrote it (INSTALL, not DuckDB's LOAD), upper-case.

    DuckDB files some statements under another type (INSTALL is a LOAD statement); a statement that starts
    with WITH or a parenthesis falls back to DuckDB's type name."""
    pos = 0
    while m := _COMMENT.match(text, pos):
        if m.end() == pos:
            break
        pos = m.end()
    word = _KEYWORD.match(text, pos)
    kind = getattr(stmt_type, "name", None) or (str(stmt_type) if stmt_type is not None else "")
    if word and word.group(0).upper() != "WITH":
        return " ".join(word.group(0).upper().split())
    return kind.upper() or "an unknown statement"


def check(ws: Workspace, actor: Actor, sql: str) -> str:
    """Validate one statement for the sandbox and return it (no trailing semicolon); raise SqlRefused."""
    if not isinstance(sql, str) or not sql.strip():
        raise SqlRefused("refused: empty statement")
    try:
        statements = ws.con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(f"SQL syntax error: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise SqlRefused(f"refused: exactly one statement at a time (got {len(statements)})")
    stmt = statements[0]
    if stmt.type != duckdb.StatementType.SELECT:
        raise SqlRefused(
            f"refused: only a single SELECT is allowed; got {statement_kind(stmt.query, stmt.type)} "
            "(the sandbox is read-only)"
        )
    text = stmt.query.strip().rstrip(";").strip()
    tree = json.loads(ws.scalar("SELECT json_serialize_sql(?::VARCHAR)", [text]))
    if tree.get("error"):
        raise SqlRefused(f"refused: {tree.get('error_message', 'statement not supported')}")
    if len(tree.get("statements", [])) != 1:
        raise SqlRefused("refused: exactly one statement at a time")
    checker = _Checker(_table_rules(ws, actor), _allowed_functions(ws), PermissionDenied)
    checker.walk(tree["statements"][0], frozenset())
    return text


AUDIT_STATEMENT_CHARS = 4000  # an audit row keeps this much of the statement, and the SHA-256 of all of it


def audited_statement(sql: str) -> dict[str, Any]:
    """The statement as an audit row keeps it: the first 4,000 characters, the SHA-256 and length of the whole."""
    text = str(sql)
    out: dict[str, Any] = {"statement": text[:AUDIT_STATEMENT_CHARS],
                           "statement_sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()}
    if len(text) > AUDIT_STATEMENT_CHARS:
        out |= {"statement_truncated": True, "statement_chars": len(text)}
    return out


def limits_for(actor: Actor, timeout: float | None = None, max_rows: int | None = None) -> tuple[float, int]:
    """The time and row limits of a run: the settings, or lower values asked for; only an admin may ask for more.

    query_timeout and query_max_rows are ceilings: a non-admin asking above them is refused (PermissionDenied)."""
    ceiling_t, ceiling_r = float(settings.get("query_timeout")), int(settings.get("query_max_rows"))
    t = ceiling_t if timeout is None else float(timeout)
    r = ceiling_r if max_rows is None else int(max_rows)
    if not t > 0 or r < 1:
        raise WorkbenchError("the time limit must be above 0 seconds and the row cap at least 1")
    if actor.role != "admin":
        if t > ceiling_t:
            raise PermissionDenied(f"a time limit of {t:g} s is above the configured {ceiling_t:g} s "
                                   f"(query_timeout); only an admin may raise it")
        if r > ceiling_r:
            raise PermissionDenied(f"a row cap of {r} is above the configured {ceiling_r} (query_max_rows); "
                                   "only an admin may raise it")
    return t, r


def run_sql(
    ws: Workspace, actor: Actor, sql: str, *, timeout: float | None = None, max_rows: int | None = None
) -> SqlResult:
    """Run one checked SELECT read-only, time-, row- and memory-limited; audited as sql.run (or sql.refused).

    timeout and max_rows may lower the query_timeout and query_max_rows settings; raising them needs an admin.
    Memory: the query_memory_limit setting (see workbench.store.limits)."""
    require(actor, "run:sql", ws)
    try:
        timeout, max_rows = limits_for(actor, timeout, max_rows)
        memory = parse_size(settings.get("query_memory_limit"))
        text = check(ws, actor, sql)
    except (WorkbenchError, ValueError) as exc:
        audit.record(ws, actor, "sql.refused", None, {**audited_statement(str(sql)), "reason": str(exc)})
        if isinstance(exc, ValueError):
            raise WorkbenchError(f"setting query_memory_limit: {exc}") from exc
        raise
    started = time.perf_counter()
    try:
        cols, rows, truncated = ws.limited(text, timeout=timeout, max_rows=max_rows, memory=memory)
    except (duckdb.Error, WorkbenchError) as exc:
        audit_error = _first_line(exc)
        audit.record(ws, actor, "sql.run", None, {**audited_statement(text), "error": audit_error})
        if isinstance(exc, WorkbenchError):
            raise
        raise WorkbenchError(f"query failed: {audit_error}") from exc
    seconds = time.perf_counter() - started
    audit.record(
        ws,
        actor,
        "sql.run",
        None,
        {**audited_statement(text), "rows": len(rows), "truncated": truncated, "seconds": round(seconds, 3)},
    )
    notes = [f"result cut at {max_rows} rows (query_max_rows)"] if truncated else []
    return SqlResult(cols, rows, truncated, seconds, text, notes)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
