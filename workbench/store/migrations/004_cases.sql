-- Incident cases: incidents, their status history, frozen evidence, and playbook step progress.

CREATE SEQUENCE IF NOT EXISTS incident_seq START 1;
CREATE SEQUENCE IF NOT EXISTS evidence_seq START 1;

CREATE TABLE incidents (
    incident_id   VARCHAR PRIMARY KEY,   -- INC-0001, INC-0002, ...
    title         VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL,      -- low | medium | high | critical
    status        VARCHAR NOT NULL,      -- open | triage | contained | eradicated | recovered | closed
    owner         VARCHAR,
    systems       VARCHAR[] NOT NULL,
    atlas         VARCHAR[] NOT NULL,    -- MITRE ATLAS technique IDs
    description   VARCHAR NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    VARCHAR NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    closed_at     TIMESTAMPTZ
);

-- Every status change, with who made it and why.
CREATE TABLE incident_status (
    incident_id   VARCHAR NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    from_status   VARCHAR,
    to_status     VARCHAR NOT NULL,
    note          VARCHAR
);

-- One row per evidence item; content holds small items (alert, explanation, note, file facts) verbatim.
-- sha256 is of the canonical snapshot (see workbench/cases/evidence.py for the recipe per kind).
CREATE TABLE evidence (
    evidence_id   INTEGER PRIMARY KEY,
    incident_id   VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,      -- alert | decision_set | metric_window | explanation | note | file
    label         VARCHAR NOT NULL,
    ref           VARCHAR,               -- alert id, system id, original file name
    added_at      TIMESTAMPTZ NOT NULL,
    added_by      VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    event_start   TIMESTAMPTZ,           -- the evidence's own time span (alert window, decision range, ...)
    event_end     TIMESTAMPTZ,
    item_count    BIGINT,                -- rows in a frozen snapshot, bytes of a file
    content       JSON,
    store_path    VARCHAR,               -- file copy, relative to the workspace evidence store
    sha256        VARCHAR NOT NULL
);

-- Frozen copies of decision rows at the time they were added as evidence.
CREATE TABLE evidence_decisions (
    evidence_id   INTEGER NOT NULL,
    system_id     VARCHAR NOT NULL,
    decision_id   VARCHAR NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    model_version VARCHAR NOT NULL,
    principal     VARCHAR NOT NULL,
    prediction    VARCHAR NOT NULL,
    score         DOUBLE,
    features      JSON NOT NULL,
    model_sha256  VARCHAR,
    source_ip     VARCHAR,
    latency_ms    DOUBLE,
    status        VARCHAR,
    ground_truth  VARCHAR,
    session_id    VARCHAR,
    extra         JSON,
    source_id     INTEGER NOT NULL,
    source_line   BIGINT NOT NULL
);

-- Frozen copies of metric points at the time a metric window was added as evidence.
CREATE TABLE evidence_metrics (
    evidence_id   INTEGER NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    system_id     VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    value         DOUBLE,
    labels        JSON,
    source_id     INTEGER NOT NULL,
    source_line   BIGINT NOT NULL
);

-- Playbooks attached to an incident (the version followed is kept).
CREATE TABLE incident_playbooks (
    incident_id   VARCHAR NOT NULL,
    playbook_id   VARCHAR NOT NULL,
    version       VARCHAR NOT NULL,
    attached_at   TIMESTAMPTZ NOT NULL,
    attached_by   VARCHAR NOT NULL,
    PRIMARY KEY (incident_id, playbook_id)
);

-- The current state of each playbook step per incident; every change is also in the audit chain.
CREATE TABLE playbook_progress (
    incident_id   VARCHAR NOT NULL,
    playbook_id   VARCHAR NOT NULL,
    step_id       VARCHAR NOT NULL,
    done          BOOLEAN NOT NULL,
    actor         VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    note          VARCHAR,
    PRIMARY KEY (incident_id, playbook_id, step_id)
);
