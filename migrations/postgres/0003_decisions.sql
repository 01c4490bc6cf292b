-- Every recovery recommendation made, for the program's funnel and for later evaluation.
-- Like the customer data tables, no foreign key: the service reads the customer before it
-- decides, and the key's trigger would cost every insert.
CREATE TABLE decisions (
    decision_id            TEXT PRIMARY KEY NOT NULL,
    -- When the decision was made (wall clock), and the moment it was made for.
    decided_at             TIMESTAMPTZ NOT NULL,
    as_of                  TIMESTAMPTZ NOT NULL,
    customer_id            TEXT NOT NULL,
    segment                TEXT NOT NULL,
    customer_value         DOUBLE PRECISION NOT NULL,
    -- The failed interaction or survey answer decided on; both NULL when none was found.
    trigger_interaction_id TEXT,
    trigger_survey_id      TEXT,
    trigger_at             TIMESTAMPTZ,
    -- NULL when neither the caller nor a trigger gave one.
    tag                    TEXT,
    eligible               BOOLEAN NOT NULL,
    holdout                BOOLEAN NOT NULL,
    invest                 BOOLEAN NOT NULL,
    -- What invest would have been without the holdout.
    would_invest           BOOLEAN NOT NULL,
    -- The recommended action, NULL when the protocol allows none.
    action                 TEXT,
    cost                   DOUBLE PRECISION,
    expected_uplift        DOUBLE PRECISION,
    expected_value         DOUBLE PRECISION,
    net_value              DOUBLE PRECISION,
    approval               TEXT,
    respond_by             TIMESTAMPTZ,
    churn_probability      DOUBLE PRECISION NOT NULL,
    health_score           DOUBLE PRECISION NOT NULL,
    health_model_version   TEXT NOT NULL,
    -- "prior" or "model", and the uplift model's version or the prior's name.
    uplift_source          TEXT NOT NULL,
    uplift_version         TEXT NOT NULL,
    program_version        TEXT NOT NULL,
    -- The reasons given, one per line.
    reasons                TEXT NOT NULL
);
CREATE INDEX decisions_by_as_of ON decisions (as_of);
CREATE INDEX decisions_by_customer ON decisions (customer_id, as_of);
