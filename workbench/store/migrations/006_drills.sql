-- Tabletop drills (issue 7). Only drill workspaces (workspace_meta key 'drill') ever get rows here;
-- the tables exist everywhere so every workspace has one schema.

-- Injects the facilitator released by hand (timed injects are released by the clock, not stored).
CREATE TABLE drill_releases (
    inject_no     INTEGER PRIMARY KEY,
    released_at   TIMESTAMPTZ NOT NULL,
    released_by   VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS drill_answer_seq START 1;

-- Every answer a participant gave, in order; the latest answer per question is the one scored.
CREATE TABLE drill_answers (
    answer_id     INTEGER PRIMARY KEY,
    question_id   VARCHAR NOT NULL,
    participant   VARCHAR NOT NULL,
    answer        VARCHAR NOT NULL,
    answered_at   TIMESTAMPTZ NOT NULL,
    recorded_by   VARCHAR NOT NULL,
    role          VARCHAR NOT NULL
);
