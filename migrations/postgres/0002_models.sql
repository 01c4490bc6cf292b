-- The model registry: every trained (or shipped) model version with its artifact.
CREATE TABLE models (
    version      TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    -- candidate: trained, not serving; active: serving; retired: served once, replaced since.
    status       TEXT NOT NULL,
    -- "trained" here, or "baseline" for the model shipped with the service.
    source       TEXT NOT NULL,
    -- The model artifact: JSON carrying its own checksum.
    artifact     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    -- When the version last became active; NULL if it never was.
    activated_at TIMESTAMPTZ
);
-- At most one active version per kind, whatever the writers do.
CREATE UNIQUE INDEX models_one_active_per_kind ON models (kind) WHERE status = 'active';

-- Replicas learn of promotions through this channel (payload: the kind) and reload.
CREATE FUNCTION models_notify_activation() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'active' THEN
        PERFORM pg_notify('rescue_model_activated', NEW.kind);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER models_activation AFTER INSERT OR UPDATE OF status ON models
    FOR EACH ROW EXECUTE FUNCTION models_notify_activation();
