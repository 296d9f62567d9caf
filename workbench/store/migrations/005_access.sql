-- Accounts and roles, personal-data marks, and the masking key (issue 5, "Accounts and roles").

-- Local accounts. A workspace with no rows here runs in single-user mode; the first account (an admin)
-- switches it to sign-in for everyone. password_hash is an argon2id PHC string; never shown, never exported.
CREATE TABLE accounts (
    "user"        VARCHAR PRIMARY KEY,
    role          VARCHAR NOT NULL,
    password_hash VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    VARCHAR NOT NULL,
    failed_count  INTEGER NOT NULL DEFAULT 0,      -- consecutive failed sign-ins since the last success or lock
    locked_until  TIMESTAMPTZ,                      -- sign-in refused until then (lockout)
    disabled      BOOLEAN NOT NULL DEFAULT false,
    last_login    TIMESTAMPTZ,
    password_changed_at TIMESTAMPTZ
);

-- Feature columns of a system that hold personal data: masked for roles without read:personal.
CREATE TABLE personal_features (
    system_id     VARCHAR NOT NULL,
    feature       VARCHAR NOT NULL,
    marked_at     TIMESTAMPTZ NOT NULL,
    marked_by     VARCHAR NOT NULL,
    PRIMARY KEY (system_id, feature)
);

-- Workspace secrets (the key of the masking hash). Never readable through ad-hoc SQL.
CREATE TABLE access_secrets (
    name          VARCHAR PRIMARY KEY,
    value         VARCHAR NOT NULL
);
