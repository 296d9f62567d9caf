-- LLM and agent traces (issue 18): one canonical row per span, with the content signals computed at ingest
-- (before the system's content policy masks or drops the text), and per-system trace settings.

CREATE TABLE trace_spans (
    system_id       VARCHAR NOT NULL,
    trace_id        VARCHAR NOT NULL,      -- 32 hex digits
    span_id         VARCHAR NOT NULL,      -- 16 hex digits (alerts' decision_ids)
    parent_span_id  VARCHAR,
    name            VARCHAR,
    kind            VARCHAR NOT NULL,      -- llm | tool | retrieval | agent | other
    operation       VARCHAR,               -- gen_ai.operation.name or the OpenInference span kind
    convention      VARCHAR NOT NULL,      -- genai | genai-legacy | openinference | langfuse | otel
    ts              TIMESTAMPTZ NOT NULL,  -- span start
    end_ts          TIMESTAMPTZ,
    latency_ms      DOUBLE,
    status          VARCHAR,               -- ok | error | unset
    status_message  VARCHAR,
    conversation_id VARCHAR,
    agent           VARCHAR,
    principal       VARCHAR,
    service         VARCHAR,
    model           VARCHAR,
    provider        VARCHAR,
    input_tokens    BIGINT,
    output_tokens   BIGINT,
    cost            DOUBLE,
    tool_name       VARCHAR,
    tool_args       VARCHAR,
    tool_result     VARCHAR,
    destinations    VARCHAR[],             -- e-mail addresses and hosts named in the tool arguments
    system_prompt   VARCHAR,
    input_text      VARCHAR,               -- the user's turn (last user message)
    output_text     VARCHAR,               -- the answer, or the retrieved documents' text
    messages        JSON,                  -- [{role, content}] as logged
    attributes      JSON,                  -- [{k, v}] every span attribute as text
    content_policy  VARCHAR NOT NULL,      -- keep | mask | drop, as applied at ingest
    sig_injection   VARCHAR[],             -- injection signal families in the user's turn
    sig_doc_injection VARCHAR[],           -- ... in a tool result or retrieved document
    sig_leak        DOUBLE,                -- share of the system prompt's 6-word shingles found in the answer
    sig_canary      BOOLEAN,
    sig_refusal     BOOLEAN,
    sig_sensitive   VARCHAR[],             -- 'type:token' of sensitive values in the answer (tokens are HMACs)
    sig_caller      VARCHAR[],             -- 'type:token' of e-mails/phones the caller gave (input, own lookups)
    span_sha        VARCHAR NOT NULL,      -- SHA-256 of the span as read (duplicates are judged on it)
    source_id       INTEGER NOT NULL,
    source_line     BIGINT NOT NULL
);

CREATE VIEW model_calls AS SELECT * FROM trace_spans WHERE kind = 'llm';
CREATE VIEW tool_calls AS SELECT * FROM trace_spans WHERE kind = 'tool';
CREATE VIEW retrievals AS SELECT * FROM trace_spans WHERE kind = 'retrieval';

CREATE TABLE trace_systems (
    system_id       VARCHAR PRIMARY KEY,
    content_policy  VARCHAR NOT NULL DEFAULT 'keep',   -- keep | mask | drop
    canary          VARCHAR,                           -- a string planted in the system prompt
    org_domains     VARCHAR[],                         -- the organisation's own e-mail / web domains
    updated_at      TIMESTAMPTZ,
    updated_by      VARCHAR
);
