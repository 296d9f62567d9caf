-- Case work (issue 16): TLP/PAP markings and merges on incidents, observables, and tasks with people.

-- Traffic Light Protocol (sharing of the information) and Permissible Actions Protocol (what may be done
-- with it): clear | green | amber | amber+strict | red (PAP has no amber+strict).
ALTER TABLE incidents ADD COLUMN tlp VARCHAR NOT NULL DEFAULT 'amber';
ALTER TABLE incidents ADD COLUMN pap VARCHAR NOT NULL DEFAULT 'amber';
-- Set on an incident merged into another one (it is closed; its evidence was copied there).
ALTER TABLE incidents ADD COLUMN merged_into VARCHAR;

CREATE SEQUENCE IF NOT EXISTS observable_seq START 1;
CREATE SEQUENCE IF NOT EXISTS task_seq START 1;

-- Observables added by hand, and the TLP/note an analyst set on an extracted one (extracted observables are
-- computed from the evidence on every read; a row here with source 'extracted' only carries their marking).
CREATE TABLE observables (
    observable_id INTEGER PRIMARY KEY,
    incident_id   VARCHAR NOT NULL,
    type          VARCHAR NOT NULL,      -- principal | ip | api_key | model_sha256 | decision_id | feature_value | url | email | other
    value         VARCHAR NOT NULL,
    system_id     VARCHAR,               -- feature_value: the system whose feature it is (for masking)
    feature       VARCHAR,               -- feature_value: the feature name
    tlp           VARCHAR NOT NULL,
    note          VARCHAR NOT NULL DEFAULT '',
    source        VARCHAR NOT NULL,      -- manual | extracted
    added_at      TIMESTAMPTZ NOT NULL,
    added_by      VARCHAR NOT NULL,
    first_seen    TIMESTAMPTZ,
    last_seen     TIMESTAMPTZ
);

-- Tasks per incident, by hand or from a playbook's steps.
CREATE TABLE incident_tasks (
    task_id       INTEGER PRIMARY KEY,
    incident_id   VARCHAR NOT NULL,
    title         VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,      -- todo | in_progress | done | cancelled
    assignee      VARCHAR,
    due           TIMESTAMPTZ,
    source        VARCHAR,               -- playbook_id/step_id, 'merged from INC-x', or NULL (by hand)
    note          VARCHAR NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    VARCHAR NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    updated_by    VARCHAR NOT NULL
);
