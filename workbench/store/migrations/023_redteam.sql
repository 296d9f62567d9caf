-- Red team (issue 19): attack runs on registered models, their detection coverage, and supply-chain assessments.

CREATE TABLE redteam_runs (
    run_id       VARCHAR PRIMARY KEY,    -- RT-<12 hex>
    system_id    VARCHAR NOT NULL,
    version      VARCHAR NOT NULL,       -- the registered version attacked, or surrogate:<sha12>
    target_kind  VARCHAR NOT NULL,       -- registered | surrogate
    model_sha256 VARCHAR,
    attack       VARCHAR NOT NULL,       -- evasion | extraction | probing | backdoor-scan
    seed         BIGINT NOT NULL,
    budget       BIGINT NOT NULL,        -- queries allowed
    queries      BIGINT NOT NULL,        -- queries used
    seconds      DOUBLE NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    actor        VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,
    result       JSON NOT NULL,          -- the attack's figures (see workbench/redteam)
    emit_dir     VARCHAR,                -- where --emit wrote the attack traffic
    coverage     JSON                    -- per ATLAS technique: fired, detectors, time to detect, missed
);

-- `workbench model assess PATH`: what an artifact is and whether loading it can run code, before `model add`.
CREATE TABLE model_assessments (
    sha256       VARCHAR NOT NULL,
    assessed_at  TIMESTAMPTZ NOT NULL,
    actor        VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    format       VARCHAR,
    decision     VARCHAR NOT NULL,       -- accept | review | refuse
    result       JSON NOT NULL,
    PRIMARY KEY (sha256, assessed_at)
);
