-- Decision files load in two short transactions: a bulk pass that appends every row (the fast, parallel path
-- DuckDB writes straight to disk), then a settling pass that numbers lines, moves failed rows to the quarantine,
-- drops duplicates and records the source. A file between the two is listed here; opening the workspace undoes
-- any file still listed (a crash or kill between the passes), so no partial file is ever left behind.
CREATE TABLE ingest_pending (
    source_id     INTEGER NOT NULL,
    path          VARCHAR NOT NULL,
    actor         VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL
);
