-- The model registry: every trained (or shipped) model version with its artifact.
-- Times are UTC microseconds since 1970-01-01.
CREATE TABLE models (
    version      TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    -- candidate: trained, not serving; active: serving; retired: served once, replaced since.
    status       TEXT NOT NULL,
    -- "trained" here, or "baseline" for the model shipped with the service.
    source       TEXT NOT NULL,
    -- The model artifact: JSON carrying its own checksum.
    artifact     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    -- When the version last became active; NULL if it never was.
    activated_at INTEGER
);
-- At most one active version per kind, whatever the writers do.
CREATE UNIQUE INDEX models_one_active_per_kind ON models (kind) WHERE status = 'active';
