-- Every recovery recommendation made, for the program's funnel and for later evaluation.
-- Times are UTC microseconds since 1970-01-01.
CREATE TABLE decisions (
    decision_id            TEXT PRIMARY KEY NOT NULL,
    -- When the decision was made (wall clock), and the moment it was made for.
    decided_at             INTEGER NOT NULL,
    as_of                  INTEGER NOT NULL,
    customer_id            TEXT NOT NULL REFERENCES customers (customer_id),
    segment                TEXT NOT NULL,
    customer_value         REAL NOT NULL,
    -- The failed interaction or survey answer decided on; both NULL when none was found.
    trigger_interaction_id TEXT,
    trigger_survey_id      TEXT,
    trigger_at             INTEGER,
    -- NULL when neither the caller nor a trigger gave one.
    tag                    TEXT,
    eligible               INTEGER NOT NULL,
    holdout                INTEGER NOT NULL,
    invest                 INTEGER NOT NULL,
    -- What invest would have been without the holdout.
    would_invest           INTEGER NOT NULL,
    -- The recommended action, NULL when the protocol allows none.
    action                 TEXT,
    cost                   REAL,
    expected_uplift        REAL,
    expected_value         REAL,
    net_value              REAL,
    approval               TEXT,
    respond_by             INTEGER,
    churn_probability      REAL NOT NULL,
    health_score           REAL NOT NULL,
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
