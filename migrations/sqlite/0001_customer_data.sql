-- Customer data as received through Ingest. Times are UTC microseconds since 1970-01-01;
-- booleans are 0/1; enums are their snake_case names. `fingerprint` is a digest of the record's
-- content, used to tell an identical re-send (a duplicate) from a changed one (a conflict).

CREATE TABLE customers (
    customer_id    TEXT PRIMARY KEY NOT NULL,
    segment        TEXT NOT NULL,
    plan           TEXT NOT NULL,
    persona        TEXT,
    region         TEXT,
    annual_value   REAL NOT NULL,
    customer_since INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    fingerprint    INTEGER NOT NULL
);

CREATE TABLE usage_events (
    event_id    TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    occurred_at INTEGER NOT NULL,
    activity    TEXT NOT NULL,
    quantity    REAL NOT NULL,
    fingerprint INTEGER NOT NULL
);
CREATE INDEX usage_events_by_customer_time ON usage_events (customer_id, occurred_at);

CREATE TABLE interactions (
    interaction_id           TEXT PRIMARY KEY NOT NULL,
    customer_id              TEXT NOT NULL REFERENCES customers (customer_id),
    occurred_at              INTEGER NOT NULL,
    channel                  TEXT NOT NULL,
    tag                      TEXT NOT NULL,
    failure                  INTEGER NOT NULL,
    resolution               TEXT NOT NULL,
    wait_seconds             REAL NOT NULL,
    first_contact_resolution INTEGER NOT NULL,
    repeat_contact           INTEGER NOT NULL,
    fingerprint              INTEGER NOT NULL
);
CREATE INDEX interactions_by_customer_time ON interactions (customer_id, occurred_at);

CREATE TABLE surveys (
    survey_id       TEXT PRIMARY KEY NOT NULL,
    customer_id     TEXT NOT NULL REFERENCES customers (customer_id),
    answered_at     INTEGER NOT NULL,
    channel         TEXT NOT NULL,
    interaction_id  TEXT,
    csat            INTEGER,
    nps             INTEGER,
    recovery_rating INTEGER,
    comment         TEXT,
    fingerprint     INTEGER NOT NULL
);
CREATE INDEX surveys_by_customer_time ON surveys (customer_id, answered_at);

CREATE TABLE churn_outcomes (
    customer_id TEXT PRIMARY KEY NOT NULL REFERENCES customers (customer_id),
    status      TEXT NOT NULL,
    churned_at  INTEGER,
    observed_at INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL
);

CREATE TABLE recovery_cases (
    case_id                TEXT PRIMARY KEY NOT NULL,
    customer_id            TEXT NOT NULL REFERENCES customers (customer_id),
    trigger                TEXT NOT NULL,
    tag                    TEXT NOT NULL,
    action                 TEXT NOT NULL,
    cost                   REAL NOT NULL,
    trigger_interaction_id TEXT,
    trigger_survey_id      TEXT,
    opened_at              INTEGER NOT NULL,
    first_response_at      INTEGER,
    resolved_at            INTEGER,
    communication          INTEGER,
    accountability         INTEGER,
    responsiveness         INTEGER,
    empathy                INTEGER,
    solution               INTEGER,
    resurvey_score         INTEGER,
    retained               INTEGER,
    spend_change_pct       REAL,
    updated_at             INTEGER NOT NULL,
    fingerprint            INTEGER NOT NULL
);
CREATE INDEX recovery_cases_by_customer_time ON recovery_cases (customer_id, opened_at);
