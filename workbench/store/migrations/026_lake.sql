-- Lakes: Parquet or Delta decision logs attached read-only (issue 20), with a custody manifest of the files read.

CREATE TABLE lakes (
    name          VARCHAR PRIMARY KEY,
    uri           VARCHAR NOT NULL,      -- absolute directory (or the Delta table's location)
    format        VARCHAR NOT NULL,      -- parquet | delta
    version       BIGINT,                -- the Delta table version pinned at attach (NULL for Parquet)
    source_id     INTEGER NOT NULL,      -- the row in sources that stands for the lake (kind 'lake')
    attached_at   TIMESTAMPTZ NOT NULL,
    attached_by   VARCHAR NOT NULL,
    files         BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    manifest_sha256 VARCHAR NOT NULL,    -- SHA-256 of the sorted manifest lines (path, size, hash)
    relation      VARCHAR NOT NULL       -- the DuckDB SELECT that reads the pinned files as canonical decisions
);

CREATE TABLE lake_files (
    lake          VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,      -- relative to the lake's uri
    size_bytes    BIGINT NOT NULL,
    sha256        VARCHAR,               -- of the bytes, for local files
    etag          VARCHAR,               -- for object stores (not used offline)
    PRIMARY KEY (lake, path)
);

-- Every reader that should see attached lakes reads this relation; attach and detach rebuild it.
CREATE VIEW all_decisions AS SELECT *, NULL::VARCHAR AS lake FROM decisions;
