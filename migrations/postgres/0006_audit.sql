-- The audit trail: every admin, train and ingest call, who made it, what it changed, and its
-- result.
CREATE TABLE audit_events (
    event_id TEXT PRIMARY KEY NOT NULL,
    at       TIMESTAMPTZ NOT NULL,
    caller   TEXT NOT NULL,
    method   TEXT NOT NULL,
    target   TEXT NOT NULL,
    changed  TEXT NOT NULL,
    code     TEXT NOT NULL,
    message  TEXT NOT NULL
);

-- Read newest first, page by page.
CREATE INDEX audit_events_by_time ON audit_events (at, event_id);
