-- Quarantined raw text is cut to its first 65,536 characters (a 50 MB line must not bloat the workspace); these
-- keep the whole line's size in bytes and its SHA-256, so the cut text can still be matched to the file.
ALTER TABLE quarantine ADD COLUMN raw_bytes BIGINT;
ALTER TABLE quarantine ADD COLUMN raw_sha256 VARCHAR;
