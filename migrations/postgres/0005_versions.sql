-- Every version of each customer profile and recovery case, so that what is known as of a
-- moment can be read back as it was then: a score or a training row as of T uses the profile
-- and the case states valid at T, whatever was recorded later. The tables `customers` and
-- `recovery_cases` keep the newest version, which ingest judges re-sends against; each
-- version written there is copied here in the same transaction.

CREATE TABLE customer_versions (
    customer_id    TEXT NOT NULL,
    segment        TEXT NOT NULL,
    plan           TEXT NOT NULL,
    persona        TEXT,
    region         TEXT,
    annual_value   DOUBLE PRECISION NOT NULL,
    customer_since TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    attributes     TEXT NOT NULL,
    fingerprint    BIGINT NOT NULL,
    PRIMARY KEY (customer_id, updated_at)
);

CREATE TABLE recovery_case_versions (
    case_id                TEXT NOT NULL,
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
    fingerprint            BIGINT NOT NULL,
    PRIMARY KEY (case_id, updated_at)
);
CREATE INDEX recovery_case_versions_by_customer ON recovery_case_versions (customer_id, updated_at);

-- What was stored before versions were kept: the newest version of each.
INSERT INTO customer_versions (customer_id, segment, plan, persona, region, annual_value,
                               customer_since, updated_at, attributes, fingerprint)
SELECT customer_id, segment, plan, persona, region, annual_value,
       customer_since, updated_at, attributes, fingerprint
FROM customers;
INSERT INTO recovery_case_versions
SELECT case_id, customer_id, trigger, tag, action, cost, trigger_interaction_id,
       trigger_survey_id, opened_at, first_response_at, resolved_at, communication,
       accountability, responsiveness, empathy, solution, resurvey_score, retained,
       spend_change_pct, updated_at, fingerprint
FROM recovery_cases;
