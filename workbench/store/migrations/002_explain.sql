-- Explain: the model registry (with custody copies in the evidence store), refused loads, the
-- explanation cache and fitted surrogates.

CREATE TABLE models (
    system_id     VARCHAR NOT NULL,
    version       VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,      -- of the artifact's bytes
    format        VARCHAR,               -- lightgbm | xgboost-json | xgboost-ubj | skops | pickle | joblib (NULL: BOM only)
    size_bytes    BIGINT,
    feature_names VARCHAR[],
    added_by      VARCHAR NOT NULL,
    added_role    VARCHAR NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL,
    original_path VARCHAR,               -- where the artifact was registered from
    stored_path   VARCHAR,               -- read-only copy: <db>.evidence/models/<sha256> (NULL: BOM only)
    scan          JSON,                  -- pickle scan result or skops type check (NULL: nothing to scan)
    source        VARCHAR NOT NULL,      -- file | bom
    approved      BOOLEAN NOT NULL DEFAULT false,  -- the hash is listed in an imported AI-BOM
    bom           JSON,                  -- the BOM component (name, bom-ref, supplier, file) that approved it
    PRIMARY KEY (system_id, version)
);

CREATE SEQUENCE IF NOT EXISTS model_event_seq START 1;

-- Refused registrations and loads (hash mismatch, pickle refused, unsafe globals, untrusted types),
-- BOM conflicts and other events worth keeping next to the inventory.
CREATE TABLE model_events (
    event_id      BIGINT PRIMARY KEY DEFAULT nextval('model_event_seq'),
    ts            TIMESTAMPTZ NOT NULL,
    actor         VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    event         VARCHAR NOT NULL,      -- refused.hash_mismatch | refused.pickle | refused.unsafe_pickle | ...
    system_id     VARCHAR,
    version       VARCHAR,
    sha256        VARCHAR,
    path          VARCHAR,
    reason        VARCHAR NOT NULL,
    details       JSON
);

-- Explanations, keyed by the decision and the exact artifact that explained it.
CREATE TABLE explanations (
    system_id     VARCHAR NOT NULL,
    decision_id   VARCHAR NOT NULL,
    model_sha256  VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,      -- tree | surrogate
    base_value    DOUBLE NOT NULL,
    output        DOUBLE NOT NULL,       -- raw (margin) output of the explaining model
    features      VARCHAR[] NOT NULL,    -- model feature order
    shap          DOUBLE[] NOT NULL,     -- aligned with features
    attributions  JSON NOT NULL,         -- [{feature, value, shap}] sorted by |shap| desc
    ignored_features VARCHAR[],
    computed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (system_id, decision_id, model_sha256)
);

-- LightGBM surrogates fitted on logged features -> logged score for systems without an artifact.
CREATE TABLE surrogates (
    sha256        VARCHAR PRIMARY KEY,
    system_id     VARCHAR NOT NULL,
    since         TIMESTAMPTZ,
    until         TIMESTAMPTZ,
    r2            DOUBLE NOT NULL,       -- held-out fidelity to the logged score
    n_train       BIGINT NOT NULL,
    n_test        BIGINT NOT NULL,
    features      VARCHAR[] NOT NULL,
    stored_path   VARCHAR NOT NULL,
    fitted_by     VARCHAR NOT NULL,
    fitted_at     TIMESTAMPTZ NOT NULL
);
