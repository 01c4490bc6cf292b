-- Customer data as received through Ingest. Enums are their snake_case names.
-- `fingerprint` is a digest of the record's content, used to tell an identical re-send (a
-- duplicate) from a changed one (a conflict).
--
-- `customer_id` columns carry no FOREIGN KEY: the service checks that the customer exists in
-- the same transaction that writes the row, and customers are never deleted. A per-row
-- foreign-key trigger would roughly halve ingest throughput at the volumes events arrive in.

CREATE TABLE customers (
    customer_id    TEXT PRIMARY KEY NOT NULL,
    segment        TEXT NOT NULL,
    plan           TEXT NOT NULL,
    persona        TEXT,
    region         TEXT,
    annual_value   DOUBLE PRECISION NOT NULL,
    customer_since TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    fingerprint    BIGINT NOT NULL
);

CREATE TABLE usage_events (
    event_id    TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    activity    TEXT NOT NULL,
    quantity    DOUBLE PRECISION NOT NULL,
    fingerprint BIGINT NOT NULL
);
CREATE INDEX usage_events_by_customer_time ON usage_events (customer_id, occurred_at);

CREATE TABLE interactions (
    interaction_id           TEXT PRIMARY KEY NOT NULL,
    customer_id              TEXT NOT NULL,
    occurred_at              TIMESTAMPTZ NOT NULL,
    channel                  TEXT NOT NULL,
    tag                      TEXT NOT NULL,
    failure                  BOOLEAN NOT NULL,
    resolution               TEXT NOT NULL,
    wait_seconds             DOUBLE PRECISION NOT NULL,
    first_contact_resolution BOOLEAN NOT NULL,
    repeat_contact           BOOLEAN NOT NULL,
    fingerprint              BIGINT NOT NULL
);
CREATE INDEX interactions_by_customer_time ON interactions (customer_id, occurred_at);

CREATE TABLE surveys (
    survey_id       TEXT PRIMARY KEY NOT NULL,
    customer_id     TEXT NOT NULL,
    answered_at     TIMESTAMPTZ NOT NULL,
    channel         TEXT NOT NULL,
    interaction_id  TEXT,
    csat            SMALLINT,
    nps             SMALLINT,
    recovery_rating SMALLINT,
    comment         TEXT,
    fingerprint     BIGINT NOT NULL
);
CREATE INDEX surveys_by_customer_time ON surveys (customer_id, answered_at);

CREATE TABLE churn_outcomes (
    customer_id TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL,
    churned_at  TIMESTAMPTZ,
    observed_at TIMESTAMPTZ NOT NULL,
    fingerprint BIGINT NOT NULL
);

CREATE TABLE recovery_cases (
    case_id                TEXT PRIMARY KEY NOT NULL,
    customer_id            TEXT NOT NULL,
    trigger                TEXT NOT NULL,
    tag                    TEXT NOT NULL,
    action                 TEXT NOT NULL,
    cost                   DOUBLE PRECISION NOT NULL,
    trigger_interaction_id TEXT,
    trigger_survey_id      TEXT,
    opened_at              TIMESTAMPTZ NOT NULL,
    first_response_at      TIMESTAMPTZ,
    resolved_at            TIMESTAMPTZ,
    communication          SMALLINT,
    accountability         SMALLINT,
    responsiveness         SMALLINT,
    empathy                SMALLINT,
    solution               SMALLINT,
    resurvey_score         SMALLINT,
    retained               BOOLEAN,
    spend_change_pct       DOUBLE PRECISION,
    updated_at             TIMESTAMPTZ NOT NULL,
    fingerprint            BIGINT NOT NULL
);
CREATE INDEX recovery_cases_by_customer_time ON recovery_cases (customer_id, opened_at);

