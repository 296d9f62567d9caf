-- Detect: alerts (idempotent by a deterministic alert_id), the decisions each alert implicates,
-- reference windows ("baselines") per system, and a record of detector runs.

CREATE TABLE alerts (
    alert_id      VARCHAR NOT NULL,      -- 'AL-' + 16 hex of sha256(detector|system|principal|feature|metric|window)
    detector      VARCHAR NOT NULL,      -- extraction | evasion | backdoor | artifact | flood | credential | drift | metric_anomaly
    system_id     VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL,      -- low | medium | high | critical
    window_start  TIMESTAMPTZ NOT NULL,
    window_end    TIMESTAMPTZ NOT NULL,
    principal     VARCHAR,
    feature       VARCHAR,
    metric        VARCHAR,
    atlas         VARCHAR[] NOT NULL,    -- MITRE ATLAS technique IDs
    summary       VARCHAR NOT NULL,      -- one plain sentence
    evidence      JSON NOT NULL,         -- the numbers behind it: baseline vs observed, statistic, thresholds
    score         DOUBLE,                -- how extreme (detector-specific, larger = stronger)
    n_decisions   BIGINT NOT NULL DEFAULT 0,
    status        VARCHAR NOT NULL DEFAULT 'open',  -- open | acknowledged | resolved | false_positive
    status_by     VARCHAR,
    status_at     TIMESTAMPTZ,
    note          VARCHAR,
    first_seen    TIMESTAMPTZ NOT NULL,
    last_seen     TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR
);

-- The decisions an alert implicates (can be large, so not an array column).
CREATE TABLE alert_decisions (
    alert_id      VARCHAR NOT NULL,
    system_id     VARCHAR NOT NULL,
    decision_id   VARCHAR NOT NULL
);

-- The reference window ("normal") per system; absent rows mean: learned from the data's first part.
CREATE TABLE baselines (
    system_id     VARCHAR NOT NULL,
    since         TIMESTAMPTZ NOT NULL,
    until         TIMESTAMPTZ NOT NULL,
    set_by        VARCHAR NOT NULL,
    set_at        TIMESTAMPTZ NOT NULL,
    note          VARCHAR
);

CREATE TABLE detect_runs (
    run_id        VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    actor         VARCHAR NOT NULL,
    system_id     VARCHAR,
    since         TIMESTAMPTZ,
    until         TIMESTAMPTZ,
    alerts        INTEGER,
    timings       JSON
)
