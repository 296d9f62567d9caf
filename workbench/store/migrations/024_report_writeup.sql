-- Reports a CISO and a regulator read (issue 16, item 5): what the analyst writes about an incident.
-- One row per incident; every change is an `incident.write` audit row recording {field: {"from": old, "to": new}},
-- so a report cut at an earlier audit row shows the text as it stood then.
CREATE TABLE incident_writeups (
    incident_id    VARCHAR PRIMARY KEY,
    exec_summary   VARCHAR,               -- replaces the generated executive summary when set
    root_cause     VARCHAR,               -- Markdown
    lessons        VARCHAR,               -- Markdown
    amount_feature VARCHAR,               -- a feature holding money at stake (e.g. loan_amount)
    amount_note    VARCHAR,               -- what that figure is (currency, gross or net, ...)
    updated_at     TIMESTAMPTZ NOT NULL,
    updated_by     VARCHAR NOT NULL
);
