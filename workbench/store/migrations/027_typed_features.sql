-- Typed feature storage (issue 15). Each system's features are also kept typed, parsed once at ingest: one table
-- per system (features_1, features_2, ...; the names never come from the data) with a typed column per feature
-- (c1, c2, ...), keyed by the decision's (source_id, source_line), plus an `overflow` JSON object holding any
-- value whose type is not the catalog's (nothing is lost). Ingest creates a system's table and widens it with
-- ALTER TABLE ADD COLUMN when a new feature appears, recording each change in feature_columns. decisions.features
-- stays the canonical JSON for everything that reads decisions generically; rows not typed (written by other
-- paths, lakes) are read from that JSON.
CREATE TABLE feature_tables (
    system_id     VARCHAR PRIMARY KEY,
    table_name    VARCHAR NOT NULL,      -- features_<n>
    created_source INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE feature_columns (
    system_id     VARCHAR NOT NULL,
    feature       VARCHAR NOT NULL,      -- as in feature_catalog
    col           VARCHAR NOT NULL,      -- c<n> in the system's table
    type          VARCHAR NOT NULL,      -- number | string | bool (the catalog's type when the column was added)
    added_source  INTEGER NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (system_id, feature)
);

-- Which sources' rows of a system are in its typed table (the rest are read from decisions.features).
CREATE TABLE typed_sources (
    system_id     VARCHAR NOT NULL,
    source_id     INTEGER NOT NULL,
    rows          BIGINT NOT NULL,
    PRIMARY KEY (system_id, source_id)
);
