-- Integrations (issue 17): sinks, the delivery outbox, watch-mode state, and findings from other tools.

CREATE SEQUENCE IF NOT EXISTS sink_seq START 1;
CREATE SEQUENCE IF NOT EXISTS watch_run_seq START 1;

-- Where alerts are delivered. A webhook's secret is never stored: only the NAME of the environment variable
-- that holds it, read at delivery time.
CREATE TABLE sinks (
    sink_id       INTEGER PRIMARY KEY,
    kind          VARCHAR NOT NULL,      -- webhook | file
    target        VARCHAR NOT NULL,      -- URL, 'env:VAR' (a URL that is itself a secret), or file path
    format        VARCHAR NOT NULL,      -- json (webhook) | ocsf | jsonl
    secret_env    VARCHAR,               -- name of the environment variable holding the HMAC secret
    min_severity  VARCHAR NOT NULL DEFAULT 'low',
    unmasked      BOOLEAN NOT NULL DEFAULT false,  -- an admin chose to send personal values unmasked
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    VARCHAR NOT NULL
);

-- The highest severity of each alert already queued for each sink: an alert is queued again only when its
-- severity goes up (escalation). A sink starts with the alerts that existed when it was added.
CREATE TABLE sink_notices (
    sink_id       INTEGER NOT NULL,
    alert_id      VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL,
    PRIMARY KEY (sink_id, alert_id)
);

-- One row per (sink, event): event_id = alert_id + '/' + severity, the receiver's idempotency key.
CREATE TABLE outbox (
    sink_id       INTEGER NOT NULL,
    event_id      VARCHAR NOT NULL,
    alert_id      VARCHAR NOT NULL,
    event         VARCHAR NOT NULL,      -- new | escalated
    severity      VARCHAR NOT NULL,
    payload       JSON NOT NULL,         -- the alert as delivered (masked unless an admin chose otherwise)
    state         VARCHAR NOT NULL,      -- pending | delivered | failed
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  TIMESTAMPTZ NOT NULL,
    last_error    VARCHAR,
    created_at    TIMESTAMPTZ NOT NULL,
    delivered_at  TIMESTAMPTZ,
    PRIMARY KEY (sink_id, event_id)
);

-- Files watch mode has seen: their size and mtime at the last poll (a file is loaded once two polls agree).
CREATE TABLE watch_files (
    path          VARCHAR PRIMARY KEY,
    size_bytes    BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    state         VARCHAR NOT NULL,      -- waiting | loaded | failed
    source_id     INTEGER,
    error         VARCHAR,
    first_seen    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Key/value progress of watch mode (e.g. the newest source already run through detection).
CREATE TABLE watch_state (
    key           VARCHAR PRIMARY KEY,
    value         JSON NOT NULL
);

-- One row per watch cycle that did something: its figures for the Overview.
CREATE TABLE watch_runs (
    run_id        INTEGER PRIMARY KEY,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,
    figures       JSON NOT NULL
);

-- Findings from other tools (guardrails' OpenTelemetry events, OCSF Detection Findings), one row each;
-- they are summarised as alerts with detector 'external:<tool>'.
CREATE TABLE external_findings (
    finding_uid   VARCHAR PRIMARY KEY,   -- the tool's id, else a hash of the record
    source_id     INTEGER NOT NULL,
    line          BIGINT,
    format        VARCHAR NOT NULL,      -- otel | ocsf
    tool          VARCHAR NOT NULL,
    system_id     VARCHAR NOT NULL,
    principal     VARCHAR,
    category      VARCHAR,
    decision      VARCHAR,
    severity      VARCHAR NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    atlas         VARCHAR[] NOT NULL,
    title         VARCHAR NOT NULL,
    attributes    JSON NOT NULL,
    alert_id      VARCHAR NOT NULL
);
