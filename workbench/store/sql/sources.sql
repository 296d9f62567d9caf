-- name: sources
-- description: The chain-of-custody record of every ingested file.
-- params: (none)
SELECT source_id, path, sha256, size_bytes, kind, format, ingested_at, actor, role, rows_read, rows_loaded,
       duplicates, rows_quarantined, system_ids, ts_min, ts_max
FROM sources
ORDER BY source_id
