-- The foundation: custody of source files, decisions, metrics, the quarantine and the audit chain.

CREATE SEQUENCE IF NOT EXISTS source_id_seq START 1;

CREATE TABLE sources (
    source_id     INTEGER PRIMARY KEY DEFAULT nextval('source_id_seq'),
    path          VARCHAR NOT NULL,      -- absolute path at ingest time
    sha256        VARCHAR NOT NULL,      -- of the file's bytes as found on disk
    size_bytes    BIGINT NOT NULL,
    kind          VARCHAR NOT NULL,      -- decisions | metrics
    format        VARCHAR NOT NULL,      -- jsonl | csv | parquet | prometheus | ...
    ingested_at   TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    rows_read     BIGINT NOT NULL,
    rows_loaded   BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    system_ids    VARCHAR[],
    ts_min        TIMESTAMPTZ,
    ts_max        TIMESTAMPTZ
);

-- Required fields are checked by ingest, not by constraints: a file streams into this table in one pass, and the
-- rows that failed a check (ingest_error set) move to the quarantine before the file's transaction commits.
CREATE TABLE decisions (
    system_id     VARCHAR,
    decision_id   VARCHAR,
    ts            TIMESTAMPTZ,
    model_version VARCHAR,
    principal     VARCHAR,
    prediction    VARCHAR,
    score         DOUBLE,
    features      JSON,                  -- object: feature name -> number, string, bool or null
    model_sha256  VARCHAR,
    source_ip     VARCHAR,
    latency_ms    DOUBLE,
    status        VARCHAR,
    ground_truth  VARCHAR,
    session_id    VARCHAR,
    extra         JSON,                  -- unknown top-level fields, kept verbatim
    source_id     INTEGER NOT NULL,
    source_line   BIGINT NOT NULL,       -- line (JSONL/CSV, 1-based, header = line 1 in CSV) or row number (Parquet)
    ingest_error  VARCHAR,               -- always NULL once a file's ingest has committed
    ingest_raw    VARCHAR                -- always NULL once a file's ingest has committed
);

-- Which features each system has, with the type seen first (number, string, bool).
CREATE TABLE feature_catalog (
    system_id     VARCHAR NOT NULL,
    feature       VARCHAR NOT NULL,
    type          VARCHAR NOT NULL,
    first_source  INTEGER NOT NULL,
    PRIMARY KEY (system_id, feature)
);

CREATE TABLE metrics (
    ts            TIMESTAMPTZ NOT NULL,
    system_id     VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    value         DOUBLE,
    labels        JSON,                  -- NULL when the series has no labels beyond system and metric
    source_id     INTEGER NOT NULL,
    source_line   BIGINT NOT NULL
);

CREATE TABLE quarantine (
    source_id     INTEGER NOT NULL,
    path          VARCHAR NOT NULL,
    line          BIGINT,                -- 1-based line or row number in the file
    raw           VARCHAR,               -- the line as found (or the row rendered as JSON for Parquet)
    reason        VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_log (
    seq           BIGINT PRIMARY KEY,
    ts            TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    action        VARCHAR NOT NULL,
    object        VARCHAR,
    details       JSON,
    prev_hash     VARCHAR NOT NULL,
    hash          VARCHAR NOT NULL
);

-- Workspace-level key/value facts: demo flag, baselines, mode.
CREATE TABLE workspace_meta (
    key           VARCHAR PRIMARY KEY,
    value         JSON NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
