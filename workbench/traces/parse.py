"""Trace files -> the staging table `_tstage` (one row per span), in DuckDB: OTLP JSON and Langfuse JSONL.

Input is the temp table `_tl(line, raw)` of the file's lines (see loader.py). Every span gets its canonical fields
and, when it cannot be loaded, `err` (the quarantine reason). Conventions read: GenAI semantic conventions in
their current shape (gen_ai.provider.name, gen_ai.input.messages, ...) and the older one (gen_ai.system,
prompt/completion tokens, message events, gen_ai.prompt.N.*), OpenInference (openinference.span.kind,
llm.input_messages.N.message.*, llm.token_count.*, tool.name, retrieval.documents.N.document.*), and Langfuse's
observation export (camelCase API/UI export and snake_case blob export).
"""

from __future__ import annotations

from workbench.traces.macros import EVENT_TYPE

_EVENT_NAMES = ("['gen_ai.system.message', 'gen_ai.user.message', 'gen_ai.tool.message', 'gen_ai.content.prompt']",
                "['gen_ai.assistant.message', 'gen_ai.choice', 'gen_ai.content.completion']")

# The canonical columns every parser fills, in this order.
STAGE = ("line, raw, sha, err, system_id, trace_id, span_id, parent_span_id, name, kind, operation, convention, ts, "
         "end_ts, status, status_message, conversation_id, agent, principal, service, model, provider, "
         "input_tokens, output_tokens, cost, tool_name, tool_args, tool_result, system_prompt, input_text, "
         "output_text, messages, attributes")

_OTLP_SPANS = f"""
CREATE OR REPLACE TEMP TABLE _tx AS
WITH docs AS (SELECT line, raw::JSON AS j FROM _tl WHERE json_valid(raw) AND json_type(raw::JSON,
    '$.resourceSpans') = 'ARRAY'),
rs AS (SELECT line, unnest(from_json(j->'resourceSpans', '["JSON"]')) AS r FROM docs),
ss AS (SELECT line, r->'resource'->'attributes' AS ra,
              unnest(coalesce(try(from_json(coalesce(r->'scopeSpans', r->'instrumentationLibrarySpans'),
                  '["JSON"]')), [])) AS s
       FROM rs),
sp AS (SELECT line, ra, unnest(coalesce(try(from_json(s->'spans', '["JSON"]')), [])) AS sp FROM ss)
SELECT line, sp, ra, _tattrs(sp->'attributes') AS a, _tattrs(ra) AS r,
       coalesce(list_transform(try(from_json(sp->'events', '{EVENT_TYPE}')), lambda e: struct_pack(name := e.name,
           a := coalesce(list_transform(e.attributes, lambda x: struct_pack(k := x.key, v := _tv(x.value))), []))),
           []) AS ev
FROM sp
"""

_OTLP_MSGS = f"""
CREATE OR REPLACE TEMP TABLE _tm AS
SELECT *,
  coalesce(_tne(_tjmsgs(_ta(a, 'gen_ai.input.messages'))), _tne(_tflat(a, 'llm.input_messages.', '.message.')),
           _tne(_tflat(a, 'gen_ai.prompt.', '.')), _tne(_tevmsgs(ev, {_EVENT_NAMES[0]})), []) AS msg_in,
  coalesce(_tne(_tjmsgs(_ta(a, 'gen_ai.output.messages'))), _tne(_tflat(a, 'llm.output_messages.', '.message.')),
           _tne(_tflat(a, 'gen_ai.completion.', '.')), _tne(_tevmsgs(ev, {_EVENT_NAMES[1]})), []) AS msg_out,
  upper(_ta(a, 'openinference.span.kind')) AS oik, lower(_ta(a, 'gen_ai.operation.name')) AS op
FROM _tx
"""

_OTLP_KIND = """CASE
  WHEN oik = 'LLM' OR op IN ('chat', 'text_completion', 'generate_content', 'completion') THEN 'llm'
  WHEN oik = 'TOOL' OR op = 'execute_tool' THEN 'tool'
  WHEN oik IN ('RETRIEVER', 'RERANKER') OR op IN ('retrieval', 'retrieve', 'search') THEN 'retrieval'
  WHEN oik = 'AGENT' OR op IN ('invoke_agent', 'create_agent') THEN 'agent'
  WHEN coalesce(_ta(a, 'gen_ai.request.model'), _ta(a, 'llm.model_name')) IS NOT NULL
       AND op IS DISTINCT FROM 'embeddings' THEN 'llm'
  ELSE 'other' END"""


def _first(keys: tuple[str, ...], var: str = "a") -> str:
    return "coalesce(" + ", ".join(f"_ta({var}, '{k}')" for k in keys) + ")"


_PRINCIPAL = ("coalesce(_ta(a, 'enduser.id'), _ta(r, 'enduser.id'), _ta(a, 'user.id'), _ta(r, 'user.id'), "
              "_ta(a, 'api_key.id'), _ta(a, 'gen_ai.api_key.id'), _ta(a, 'apikey.id'), _ta(r, 'api_key.id'))")

_OTLP_SELECT = f"""
CREATE OR REPLACE TEMP TABLE _tstage AS
WITH k AS (SELECT *, {_OTLP_KIND} AS kind, _tid(sp->>'traceId', 16) AS tid, _tid(sp->>'spanId', 8) AS sid,
                  _tns(sp->>'startTimeUnixNano') AS t0, _tns(sp->>'endTimeUnixNano') AS t1,
                  coalesce(?, _ta(r, 'service.name')) AS sys FROM _tm)
SELECT line, sp::VARCHAR AS raw, sha256(sp::VARCHAR || '|' || coalesce(ra::VARCHAR, '')) AS sha,
  CASE WHEN json_type(sp) <> 'OBJECT' THEN 'span is not a JSON object'
       WHEN tid IS NULL
           THEN 'traceId is not 32 hex digits (or base64 of 16 bytes): '
                || coalesce(left(sp->>'traceId', 40), 'missing')
       WHEN sid IS NULL
           THEN 'spanId is not 16 hex digits (or base64 of 8 bytes): ' || coalesce(left(sp->>'spanId', 40), 'missing')
       WHEN t0 IS NULL THEN 'startTimeUnixNano is missing or not a number of nanoseconds'
       WHEN t1 < t0 THEN 'endTimeUnixNano is before startTimeUnixNano'
       WHEN sys IS NULL THEN 'no system: the resource has no service.name (pass --system)' END AS err,
  sys AS system_id, tid AS trace_id, sid AS span_id,
  _tid(nullif(sp->>'parentSpanId', ''), 8) AS parent_span_id, sp->>'name' AS name, kind,
  coalesce(op, lower(oik)) AS operation,
  CASE WHEN oik IS NOT NULL THEN 'openinference'
       WHEN coalesce(_ta(a, 'gen_ai.provider.name'), _ta(a, 'gen_ai.input.messages'), _ta(a, 'gen_ai.output.messages'),
                     _ta(a, 'gen_ai.usage.input_tokens'), _ta(a, 'gen_ai.system_instructions'),
                     _ta(a, 'gen_ai.tool.call.arguments'), _ta(a, 'gen_ai.conversation.id')) IS NOT NULL THEN 'genai'
       WHEN len(list_filter(a, lambda x: starts_with(x.k, 'gen_ai.'))) > 0
            OR len(list_filter(ev, lambda e: starts_with(e.name, 'gen_ai.'))) > 0 THEN 'genai-legacy'
       ELSE 'otel' END AS convention,
  t0 AS ts, t1 AS end_ts,
  CASE WHEN sp->'status'->>'code' IN ('2', 'STATUS_CODE_ERROR') OR _ta(a, 'error.type') IS NOT NULL THEN 'error'
       WHEN sp->'status'->>'code' IN ('1', 'STATUS_CODE_OK') THEN 'ok' ELSE 'unset' END AS status,
  coalesce(sp->'status'->>'message', _ta(a, 'error.type')) AS status_message,
  {_first(('gen_ai.conversation.id', 'session.id'))} AS conversation_id,
  coalesce({_first(('gen_ai.agent.name', 'agent.name'))}, _ta(r, 'gen_ai.agent.name')) AS agent,
  {_PRINCIPAL} AS principal, _ta(r, 'service.name') AS service,
  {_first(('gen_ai.response.model', 'gen_ai.request.model', 'llm.model_name'))} AS model,
  {_first(('gen_ai.provider.name', 'gen_ai.system', 'llm.provider', 'llm.system'))} AS provider,
  try_cast({_first(('gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.token_count.prompt'))} AS BIGINT)
    AS input_tokens,
  try_cast({_first(('gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'llm.token_count.completion'))}
    AS BIGINT) AS output_tokens,
  try_cast({_first(('gen_ai.usage.cost', 'llm.cost.total'))} AS DOUBLE) AS cost,
  coalesce({_first(('gen_ai.tool.name', 'tool.name'))}, CASE WHEN kind = 'tool' THEN sp->>'name' END) AS tool_name,
  CASE WHEN kind = 'tool' THEN {_first(('gen_ai.tool.call.arguments', 'input.value', 'tool.parameters'))} END
      AS tool_args,
  CASE WHEN kind = 'tool' THEN {_first(('gen_ai.tool.call.result', 'output.value'))} END AS tool_result,
  coalesce(_tinstr(_ta(a, 'gen_ai.system_instructions')), _tall(msg_in, 'system')) AS system_prompt,
  CASE WHEN kind <> 'tool' THEN coalesce(_tlast(msg_in, 'user'), _ta(a, 'input.value')) END AS input_text,
  CASE WHEN kind = 'retrieval' THEN coalesce(_tjoin(a, '^retrieval[.]documents[.][0-9]+[.]document[.]content$'),
                                             _ta(a, 'gen_ai.retrieval.documents'), _ta(a, 'output.value'))
       WHEN kind = 'tool' THEN NULL
       ELSE coalesce(_tnull(array_to_string(list_transform(msg_out, lambda m: m.content), chr(10))),
                     _ta(a, 'output.value')) END AS output_text,
  to_json(struct_pack(input := msg_in, output := msg_out)) AS messages, to_json(a) AS attributes
FROM k
"""


def stage_otlp(con, system: str | None) -> None:
    """Fill _tstage from the OTLP JSON documents in _tl (one per line, or the whole file as line 1)."""
    con.execute(_OTLP_SPANS)
    con.execute(_OTLP_MSGS)
    con.execute(_OTLP_SELECT, [system])
    con.execute("DROP TABLE _tx")
    con.execute("DROP TABLE _tm")


def bad_otlp_lines_sql() -> str:
    """SQL: (line, raw, reason) of the lines that hold no OTLP traces document."""
    return """SELECT line, raw, CASE WHEN NOT json_valid(raw) THEN 'not valid JSON'
                  ELSE 'not an OTLP traces document (no resourceSpans list)' END
              FROM _tl WHERE NOT json_valid(raw) OR json_type(raw::JSON, '$.resourceSpans') IS DISTINCT FROM 'ARRAY'"""


def _lf(*keys: str) -> str:
    return "coalesce(" + ", ".join(f"j->>'{k}'" if "." not in k else
                                   "j->'" + k.split(".")[0] + "'->>'" + k.split(".")[1] + "'" for k in keys) + ")"


_LF_SELECT = f"""
CREATE OR REPLACE TEMP TABLE _tstage AS
WITH o AS (SELECT line, raw, raw::JSON AS j FROM _tl WHERE json_valid(raw) AND json_type(raw::JSON) = 'OBJECT'),
k AS (SELECT *, {_lf('traceId', 'trace_id')} AS tid0, j->>'id' AS sid0,
             {_lf('parentObservationId', 'parent_observation_id')} AS pid0, upper(j->>'type') AS typ,
             try_cast({_lf('startTime', 'start_time')} AS TIMESTAMPTZ) AS t0,
             try_cast({_lf('endTime', 'end_time')} AS TIMESTAMPTZ) AS t1,
             j->'input' AS inp, j->'output' AS outp FROM o),
m AS (SELECT *, CASE upper(typ) WHEN 'GENERATION' THEN 'llm' WHEN 'TOOL' THEN 'tool' WHEN 'RETRIEVER' THEN 'retrieval'
                     WHEN 'AGENT' THEN 'agent' ELSE 'other' END AS kind,
             coalesce(CASE json_type(inp) WHEN 'ARRAY' THEN _tjmsgs(inp::VARCHAR)
                      WHEN 'OBJECT' THEN _tjmsgs((inp->'messages')::VARCHAR)
                      WHEN 'VARCHAR' THEN [_tmsg('user', inp->>'$')] END, []) AS msg_in,
             coalesce(CASE json_type(outp) WHEN 'ARRAY' THEN _tjmsgs(outp::VARCHAR)
                      WHEN 'OBJECT' THEN [_tmsg(coalesce(outp->>'role', 'assistant'),
                          coalesce(outp->>'content', outp::VARCHAR))]
                      WHEN 'VARCHAR' THEN [_tmsg('assistant', outp->>'$')] END, []) AS msg_out,
             CASE WHEN json_type(inp) = 'VARCHAR' THEN inp->>'$' ELSE inp::VARCHAR END AS inp_text,
             CASE WHEN json_type(outp) = 'VARCHAR' THEN outp->>'$' ELSE outp::VARCHAR END AS out_text,
             coalesce(?, {_lf('metadata.service.name', 'metadata.system_id')}, 'langfuse') AS sys FROM k)
SELECT line, raw, sha256(raw) AS sha,
  CASE WHEN sid0 IS NULL OR sid0 = '' THEN 'observation has no id'
       WHEN tid0 IS NULL OR tid0 = '' THEN 'observation has no traceId'
       WHEN typ IS NULL THEN 'observation has no type'
       WHEN t0 IS NULL THEN 'startTime is missing or not a timestamp'
       WHEN t1 < t0 THEN 'endTime is before startTime' END AS err,
  sys AS system_id,
  CASE WHEN regexp_full_match(tid0, '[0-9a-f]{{32}}') THEN tid0 ELSE left(sha256(tid0), 32) END AS trace_id,
  CASE WHEN regexp_full_match(sid0, '[0-9a-f]{{16}}') THEN sid0 ELSE left(sha256(sid0), 16) END AS span_id,
  CASE WHEN pid0 IS NULL OR pid0 = '' THEN NULL WHEN regexp_full_match(pid0, '[0-9a-f]{{16}}') THEN pid0
       ELSE left(sha256(pid0), 16) END AS parent_span_id,
  j->>'name' AS name, kind, lower(typ) AS operation, 'langfuse' AS convention, t0 AS ts, t1 AS end_ts,
  CASE WHEN upper(j->>'level') = 'ERROR' THEN 'error' ELSE 'unset' END AS status,
  {_lf('statusMessage', 'status_message')} AS status_message,
  {_lf('sessionId', 'session_id', 'metadata.session_id', 'metadata.sessionId')} AS conversation_id,
  {_lf('metadata.agent', 'metadata.agent_name')} AS agent,
  {_lf('userId', 'user_id', 'metadata.user_id', 'metadata.userId')} AS principal, NULL AS service,
  {_lf('model', 'provided_model_name', 'providedModelName')} AS model,
  {_lf('metadata.provider', 'modelParameters.provider')} AS provider,
  try_cast({_lf('usageDetails.input', 'usage_details.input', 'usage.input', 'promptTokens', 'usage.promptTokens')}
    AS BIGINT) AS input_tokens,
  try_cast({_lf('usageDetails.output', 'usage_details.output', 'usage.output', 'completionTokens',
                'usage.completionTokens')} AS BIGINT) AS output_tokens,
  try_cast({_lf('calculatedTotalCost', 'costDetails.total', 'cost_details.total', 'totalCost')} AS DOUBLE) AS cost,
  CASE WHEN kind = 'tool' THEN j->>'name' END AS tool_name,
  CASE WHEN kind = 'tool' THEN inp_text END AS tool_args, CASE WHEN kind = 'tool' THEN out_text END AS tool_result,
  _tall(msg_in, 'system') AS system_prompt,
  CASE WHEN kind <> 'tool' THEN coalesce(_tlast(msg_in, 'user'), inp_text) END AS input_text,
  CASE WHEN kind = 'retrieval' THEN out_text WHEN kind = 'tool' THEN NULL
       ELSE coalesce(_tnull(array_to_string(list_transform(msg_out, lambda m: m.content), chr(10))), out_text) END
    AS output_text,
  to_json(struct_pack(input := msg_in, output := msg_out)) AS messages,
  to_json(j->'metadata') AS attributes
FROM m
"""


def stage_langfuse(con, system: str | None) -> None:
    """Fill _tstage from Langfuse observation lines in _tl (one JSON object per line)."""
    con.execute(_LF_SELECT, [system])


def bad_langfuse_lines_sql() -> str:
    """SQL: (line, raw, reason) of the lines that hold no observation object."""
    return """SELECT line, raw, CASE WHEN NOT json_valid(raw) THEN 'not valid JSON'
                  ELSE 'not a Langfuse observation (not a JSON object)' END
              FROM _tl WHERE NOT json_valid(raw) OR json_type(raw::JSON) <> 'OBJECT'"""
