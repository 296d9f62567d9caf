-- Drift: what the drift detector judged in its last run per system, per target (input feature, prediction,
-- score), test and window: the statistic, its threshold and the verdict, so the Drift page shows exactly the
-- figures the detector used (see workbench/detect/drift.py and docs/alerts.md).
CREATE TABLE drift_windows (
    system_id     VARCHAR NOT NULL,
    target        VARCHAR NOT NULL,      -- feature name, or prediction / score
    kind          VARCHAR NOT NULL,      -- feature | prediction | score
    type          VARCHAR NOT NULL,      -- number | category
    test          VARCHAR NOT NULL,      -- ks | wasserstein | psi (numbers); chi2 | js (categories)
    w             INTEGER NOT NULL,      -- window index in the run
    window_start  TIMESTAMPTZ NOT NULL,
    window_end    TIMESTAMPTZ NOT NULL,
    n             BIGINT NOT NULL,       -- decisions in the window
    role          VARCHAR NOT NULL,      -- reference | monitored
    statistic     DOUBLE,
    threshold     DOUBLE,
    over          BOOLEAN,
    verdict       VARCHAR NOT NULL,      -- reference | pass | over | drift | new version (outputs of a model version the reference lacks)
    alert_id      VARCHAR,               -- the drift alert the window belongs to
    window_rule   VARCHAR NOT NULL,      -- '1 day', '1 week', '1 month' or 'N decisions'
    run_id        VARCHAR,
    computed_at   TIMESTAMPTZ NOT NULL
);
