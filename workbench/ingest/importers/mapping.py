"""The per-system YAML mapping that fills what a platform export lacks, and the SQL that applies it.

Decision importers turn their export into the temp table `_events` (EVENT_COLUMNS): one row per request with its
records (`inputs`, a JSON array: one object or list of values per record) and the matching outputs (`outputs`,
a JSON array), plus `meta`, a JSON object of the platform's own fields (with `custom_attributes` and `headers`
objects where the platform has them). `apply()` then explodes the records and uses the mapping to build
`_stage` (workbench.ingest.decisions.STAGE_COLUMNS): features named, score and prediction picked, principal,
model version and system filled in. Whatever cannot be mapped becomes a quarantine reason naming the field.

Mapping keys (YAML):
  system_id: card-fraud                       # or give --system
  model_version: "3.1"                        # a constant, or {field: served_entity_id, values: {id: "3.1"}}
  principal: {field: requester}               # or {custom_attribute: k}, {header: x-principal}, {input: k}, "svc"
  features: [amount, merchant_category]       # order of CSV / positional payloads; or {amount: number, ...}
  score: {output: 1}                          # index or key into each record's output; "output" = all of it
  prediction: {thresholds: [0.08, 0.30], labels: [allow, review, block]}   # or {output: label}
  decision_id, source_ip, session_id, latency_ms, status, ground_truth, model_sha256: optional, same selectors
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ingest.importers.mapping_schema import (
    FEATURE_TYPES,
    KNOWN_KEYS,
    OPTIONAL,
    SELECTOR_KINDS,
    MappingDoc,
    Selector,
)
from workbench.ingest.reading import sql_str
from workbench.schemas import Problem, problems_error, validate

EVENT_COLUMNS = (
    "line BIGINT", "raw VARCHAR", "parse_error VARCHAR", "event_id VARCHAR", "ts_raw VARCHAR",
    "ts_typed TIMESTAMPTZ", "inputs JSON", "outputs JSON", "meta JSON", "status VARCHAR", "latency_raw VARCHAR",
    "extra JSON",
)

NUMBER_RE = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"

__all__ = ["EVENT_COLUMNS", "EXAMPLES", "FEATURE_TYPES", "KNOWN_KEYS", "OPTIONAL", "SELECTOR_KINDS", "Mapping",
           "MappingDoc", "Selector", "apply", "describe", "fail", "parse", "select_sql"]

EXAMPLES = {
    "sagemaker": '{system_id: loan-origination, model_version: "1.1", principal: {custom_attribute: principal}, '
                 "features: [income, loan_amount, credit_score], score: {output: 0}, "
                 "prediction: {thresholds: [0.10, 0.22], labels: [approve, refer, deny]}}",
    "kserve": '{system_id: card-fraud, model_version: {field: model_version}, principal: {header: x-principal}, '
              "features: [amount, merchant_category, hour], score: {output: probability}, "
              "prediction: {output: label}}",
    "databricks": "{system_id: card-fraud, model_version: {field: served_entity_id, values: "
                  '{fraud-3-1: "3.1"}}, principal: {field: requester}, score: {output: score}, '
                  "prediction: {output: label}}",
    "azureml": '{system_id: loan-origination, model_version: {field: modelversion}, principal: {input: customer}, '
               "score: {output: score}, prediction: {output: decision}}",
    "vertex": "{system_id: card-fraud, model_version: {field: deployed_model_id, values: {\"8123\": \"3.1\"}}, "
              "principal: {input: principal}, score: {output: score}, prediction: {output: label}}",
}


@dataclass
class Mapping:
    """A validated mapping for one system of one platform export."""

    importer: str
    system_id: str | None
    model_version: Selector
    principal: Selector
    prediction: Selector | None
    thresholds: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    score: Selector | None = None
    features: list[tuple[str, str]] = field(default_factory=list)  # (name, type) in payload order
    optional: dict[str, Selector] = field(default_factory=dict)

    def input_keys(self) -> list[str]:
        """Record keys that feed canonical fields (e.g. the principal) and are therefore not features."""
        sels = [self.model_version, self.principal, self.prediction, self.score, *self.optional.values()]
        return [str(s.key) for s in sels if s is not None and s.kind == "input"]


def fail(importer: str, key: str, problem: str) -> WorkbenchError:
    """The one-line mapping error: which field, what is wrong, and an example mapping to write."""
    return _error(importer, [Problem(key, problem)])


def _error(importer: str, found: list[Problem]) -> WorkbenchError:
    """Every mapping problem on one line (an ingest result is one line), then an example mapping."""
    example = EXAMPLES.get(importer, EXAMPLES["kserve"])
    return problems_error(f"{importer} mapping", found, f"example mapping: {example}", one_line=True)


def parse(doc: Any, importer: str, system: str | None = None) -> Mapping:
    """Validate a mapping document (parsed YAML); raise one WorkbenchError naming every bad field on one line."""
    if doc is None:
        raise fail(importer, "mapping", "no mapping given (pass --mapping FILE)")
    if not isinstance(doc, dict):
        raise fail(importer, "mapping", "the mapping file must be a YAML object of key: value lines")
    m, found = validate(MappingDoc, doc, context={"system": system})
    if m is None:
        known = f"unknown key (known: {', '.join(KNOWN_KEYS)})"
        raise _error(importer, [replace(p, message=known) if p.message == "unknown key" else p for p in found])
    pred = m.prediction
    bands = pred.thresholds is not None
    return Mapping(importer, m.system_id, m.model_version.selector(), m.principal.selector(),
                   None if bands else pred.selector(), list(pred.thresholds or []), list(pred.labels or []),
                   m.score.selector() if m.score else None, list((m.features or {}).items()),
                   {k: sel.selector() for k in OPTIONAL if (sel := getattr(m, k)) is not None})


def _path(key: Any, index: Any = None) -> str:
    """A JSONPath for a key (string -> member, int -> array index), optionally followed by an index."""
    def part(k: Any) -> str:
        if isinstance(k, int) and not isinstance(k, bool):
            return f"[{k}]"
        return "".join('."' + p.replace('"', '\\"') + '"' for p in str(k).split("."))
    return "$" + ("" if key is None else part(key)) + ("" if index is None else part(index))


def _unwrap(expr: str) -> str:
    """JSON value as text; a one-element list counts as its element (tensors of shape [n, 1])."""
    return (f"CASE WHEN json_type({expr}) = 'ARRAY' AND json_array_length({expr}) = 1 "
            f"THEN json_extract_string({expr}, '$[0]') ELSE json_extract_string({expr}, '$') END")


def select_sql(sel: Selector) -> str:
    """SQL (VARCHAR) for a selector over the exploded record columns `rec`, `out` and the event's `meta`."""
    if sel.kind == "const":
        expr = sql_str(sel.const or "")
    elif sel.kind == "output" and sel.key == 0 and sel.index is None:  # a lone value counts as output 0
        expr = _unwrap("CASE WHEN json_type(out) IN ('ARRAY', 'OBJECT') THEN json_extract(out, '$[0]') ELSE out END")
    elif sel.kind == "output":
        expr = _unwrap(f"json_extract(out, {sql_str(_path(sel.key, sel.index))})")
    elif sel.kind == "input":
        expr = _unwrap(f"json_extract(rec, {sql_str(_path(sel.key, sel.index))})")
    elif sel.kind == "path":
        expr = _unwrap(f"json_extract(meta, {sql_str(str(sel.key))})")
    else:
        base = {"field": None, "custom_attribute": "custom_attributes", "header": "headers"}[sel.kind]
        key = str(sel.key).lower() if sel.kind == "header" else sel.key
        path = _path(key, sel.index) if base is None else "$." + base + _path(key, sel.index)[1:]
        expr = _unwrap(f"json_extract(meta, {sql_str(path)})")
    if sel.values:
        cases = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in sel.values.items())
        expr = f"(CASE ({expr}) {cases} ELSE ({expr}) END)"
    return expr


def describe(sel: Selector) -> str:
    """How a selector reads, for quarantine reasons."""
    if sel.kind == "const":
        return "a constant"
    return f"{sel.kind} {sel.key}" + (f" [{sel.index}]" if sel.index is not None else "")


def _convert(v: str, typ: str, name: str) -> tuple[str, str]:
    """(JSON value, error check) for one positional payload value `v` (JSON) of the given feature type."""
    text = f"json_extract_string({v}, '$')"
    nums = "('BIGINT','UBIGINT','DOUBLE')"
    blank = f"({v} IS NULL OR json_type({v}) = 'NULL' OR {text} = '')"
    if typ == "number":
        val = (f"CASE WHEN json_type({v}) IN {nums} THEN {v} WHEN regexp_full_match(trim({text}), "
               f"'{NUMBER_RE[1:-1]}') THEN trim({text})::JSON END")
        err = (f"WHEN NOT {blank} AND ({val}) IS NULL THEN {sql_str(f'feature {name} must be a number, got ')} "
               f"|| left({text}, 40)")
    elif typ == "bool":
        val = (f"CASE WHEN json_type({v}) = 'BOOLEAN' THEN {v} WHEN lower(trim({text})) IN ('true', '1') "
               f"THEN 'true'::JSON WHEN lower(trim({text})) IN ('false', '0') THEN 'false'::JSON END")
        err = (f"WHEN NOT {blank} AND ({val}) IS NULL THEN {sql_str(f'feature {name} must be true or false, got ')} "
               f"|| left({text}, 40)")
    elif typ == "string":
        val, err = f"CASE WHEN NOT {blank} THEN to_json({text}) END", ""
    else:
        val = (f"CASE WHEN {blank} THEN NULL WHEN json_type({v}) <> 'VARCHAR' THEN {v} "
               f"WHEN regexp_full_match({text}, '{NUMBER_RE[1:-1]}') THEN {text}::JSON "
               f"WHEN {text} IN ('true', 'false') THEN {text}::JSON ELSE {v} END")
        err = ""
    return f"CASE WHEN {blank} THEN 'null'::JSON ELSE ({val}) END", err


def apply(con: Any, m: Mapping, system: str | None = None) -> None:
    """Explode `_events` into records and build `_stage` with the mapping; drop `_events`."""
    drop = m.input_keys()
    drop_sql = "[" + ", ".join(sql_str(k) for k in drop) + "]::VARCHAR[]"
    named = (f"to_json(map_from_entries(list_transform(list_filter(json_keys(rec), lambda k: NOT list_contains("
             f"{drop_sql}, k)), lambda k: {{'k': k, 'v': json_extract(rec, '$.\"' || replace(k, '\"', '\\\"') "
             f"|| '\"')}})))::VARCHAR")
    errors = []
    if m.features:
        parts = []
        for i, (name, typ) in enumerate(m.features):
            val, err = _convert(f"json_extract(prow, '$[{i}]')", typ, name)
            parts.append(f"{sql_str(name)}, {val}")
            if err:
                errors.append(err)
        positional = f"json_object({', '.join(parts)})::VARCHAR"
        n_feat = len(m.features)
        shape_error = (f"WHEN json_array_length(prow) <> {n_feat} THEN 'payload record has ' || "
                       f"json_array_length(prow) || ' values but the mapping lists {n_feat} features'")
    else:
        positional = "NULL"
        shape_error = ("WHEN true THEN 'payload record is a list of values without names: the mapping must "
                       "name them in order (features: [a, b, ...])'")
    score = select_sql(m.score) if m.score else "NULL"
    if m.thresholds:
        bands = " ".join(f"WHEN TRY_CAST(score_raw AS DOUBLE) < {t!r} THEN {sql_str(lab)}"
                         for t, lab in zip(m.thresholds, m.labels, strict=False))
        prediction = (f"CASE WHEN TRY_CAST(score_raw AS DOUBLE) IS NULL THEN NULL {bands} "
                      f"ELSE {sql_str(m.labels[-1])} END")
        pred_desc = "thresholds on the score"
    else:
        prediction = select_sql(m.prediction)
        pred_desc = describe(m.prediction)
    opt = {k: select_sql(s) for k, s in m.optional.items()}
    required = [("principal", "principal", m.principal), ("model_version", "model_version", m.model_version)]
    missing = " ".join(
        f"WHEN {col}_m IS NULL OR {col}_m = '' THEN {sql_str(f'cannot map {label}: no {describe(sel)} in this record')}"
        for col, label, sel in required if sel.kind != "const")
    if m.score is not None and m.score.kind == "output":  # an explicit null score is fine (failed request)
        raw = f"json_extract(out, {sql_str(_path(m.score.key, m.score.index))})"
        if m.score.key == 0 and m.score.index is None:
            raw = "CASE WHEN json_type(out) IN ('ARRAY', 'OBJECT') THEN json_extract(out, '$[0]') ELSE out END"
        missing += (f" WHEN score_raw IS NULL AND ({raw}) IS NULL "
                    f"THEN {sql_str('cannot map score: no ' + describe(m.score) + ' in the output')}")
    missing += (f" WHEN prediction IS NULL OR prediction = '' "
                f"THEN {sql_str(f'cannot map prediction: no {pred_desc} in the output')}")
    system_sql = sql_str(m.system_id) if m.system_id else (sql_str(system) if system else "NULL")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _recs AS
        WITH ev AS (
            SELECT *, CASE WHEN json_type(inputs) = 'ARRAY' THEN CAST(json_array_length(inputs) AS BIGINT) END AS n_in,
                   CASE WHEN json_type(outputs) = 'ARRAY' THEN CAST(json_array_length(outputs) AS BIGINT) END AS n_out
            FROM _events
        )
        SELECT ev.* EXCLUDE (inputs), k, n_in, n_out,
               json_extract(inputs, '$[' || k || ']') AS rec, json_extract(outputs, '$[' || k || ']') AS out,
               CASE WHEN json_type(json_extract(inputs, '$[' || k || ']')) = 'ARRAY'
                    THEN json_extract(inputs, '$[' || k || ']')
                    WHEN json_type(json_extract(inputs, '$[' || k || ']')) <> 'OBJECT'
                    THEN json_array(json_extract(inputs, '$[' || k || ']')) END AS prow
        FROM ev, unnest(CASE WHEN n_in > 0 THEN range(n_in) ELSE [0] END) AS u(k)
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _mapped AS
        SELECT *, {prediction} AS prediction
        FROM (SELECT *,
                CASE WHEN rec IS NULL THEN NULL WHEN json_type(rec) = 'OBJECT' THEN {named}
                     ELSE {positional} END AS features_m,
                {score} AS score_raw,
                {select_sql(m.principal)} AS principal_m, {select_sql(m.model_version)} AS model_version_m,
                {opt.get('decision_id', 'NULL')} AS decision_id_m
              FROM _recs)
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _stage AS
        SELECT line, raw,
            coalesce(parse_error, CASE
                WHEN n_in IS NULL THEN 'request payload is not a list of records'
                WHEN n_in = 0 THEN 'request payload holds no records'
                WHEN outputs IS NULL THEN 'request without response (no output for this request)'
                WHEN n_out IS NULL THEN 'response payload is not a list of outputs'
                WHEN n_out <> n_in THEN 'request has ' || n_in || ' records but the response has ' || n_out
                    || ' outputs'
                WHEN json_type(rec) <> 'OBJECT' THEN CASE {shape_error} {' '.join(errors)} END
            END, CASE {missing} END) AS parse_error,
            coalesce(decision_id_m, CASE WHEN n_in > 1 THEN event_id || '-' || k ELSE event_id END) AS decision_id,
            ts_raw, ts_typed, {system_sql} AS system_id, model_version_m AS model_version,
            principal_m AS principal, prediction, score_raw, features_m AS features,
            {opt.get('model_sha256', 'NULL')} AS model_sha256, {opt.get('source_ip', 'NULL')} AS source_ip,
            coalesce({opt.get('latency_ms', 'NULL')}, latency_raw) AS latency_raw,
            coalesce({opt.get('status', 'NULL')}, status) AS status,
            {opt.get('ground_truth', 'NULL')} AS ground_truth, {opt.get('session_id', 'NULL')} AS session_id,
            CASE WHEN extra IS NOT NULL AND extra::VARCHAR <> '{{}}' THEN extra::VARCHAR END AS extra
        FROM _mapped
    """)
    for t in ("_events", "_recs", "_mapped"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
