//! Which model serves: activating a version (on promotion, rollback or start-up) both in the
//! store, where every replica sees it, and in this process's [`ModelSlot`].

use crate::domain::Timestamp;
use crate::model::ModelError;
use crate::model::artifact::HEALTH_MODEL_KIND;
use crate::scoring::{HealthModel, ModelSlot};
use crate::store::{Store, StoreError, StoredModel};

/// `source` of models trained by this service.
pub const SOURCE_TRAINED: &str = "trained";
/// `source` of the model shipped with the service.
pub const SOURCE_BASELINE: &str = "baseline";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no model version {0:?}")]
    UnknownVersion(String),
    #[error("no earlier active {0} model to roll back to")]
    NothingToRollBackTo(String),
    #[error("model {version} cannot be loaded: {source}")]
    Unloadable {
        version: String,
        #[source]
        source: ModelError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new version name: the kind and the creation time to the millisecond, so versions sort
/// by age and read as dates.
pub fn new_version(kind: &str, created_at: Timestamp) -> String {
    let (seconds, nanos) = created_at.to_seconds_nanos();
    let at = chrono::DateTime::from_timestamp(seconds, nanos).unwrap_or_default();
    format!("{kind}-{}", at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Makes `version` the active model: checks that its artifact loads, records it in the
/// store, then swaps it into `slot`.
pub async fn activate(
    store: &dyn Store,
    slot: &ModelSlot,
    version: &str,
) -> Result<StoredModel, RegistryError> {
    let stored = store
        .model(version)
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(version.to_owned()))?;
    let loaded = HealthModel::from_artifact_json(&stored.artifact).map_err(|source| {
        RegistryError::Unloadable {
            version: version.to_owned(),
            source,
        }
    })?;
    let activated = store
        .activate_model(version, Timestamp::now())
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(version.to_owned()))?;
    slot.replace(std::sync::Arc::new(loaded));
    tracing::info!(%version, "model activated");
    Ok(activated)
}

/// Makes the previously active model of `kind` active again.
pub async fn roll_back(
    store: &dyn Store,
    slot: &ModelSlot,
    kind: &str,
) -> Result<StoredModel, RegistryError> {
    let previous = store
        .previously_active_model(kind)
        .await?
        .ok_or_else(|| RegistryError::NothingToRollBackTo(kind.to_owned()))?;
    activate(store, slot, &previous.version).await
}

/// Loads the store's active health model into `slot` (what replicas do on start-up and on a
/// promotion elsewhere). Returns the version now serving, if any.
pub async fn load_active(
    store: &dyn Store,
    slot: &ModelSlot,
) -> Result<Option<String>, RegistryError> {
    let Some(active) = store.active_model(HEALTH_MODEL_KIND).await? else {
        return Ok(None);
    };
    if slot
        .current()
        .is_some_and(|current| current.version == active.version)
    {
        return Ok(Some(active.version));
    }
    let loaded = HealthModel::from_artifact_json(&active.artifact).map_err(|source| {
        RegistryError::Unloadable {
            version: active.version.clone(),
            source,
        }
    })?;
    slot.replace(std::sync::Arc::new(loaded));
    Ok(Some(active.version))
}

/// The shipped baseline: trained on simulated data (see `models/health-baseline.card.json`),
/// so a fresh server scores at once, until a model trained on real data replaces it.
pub const BASELINE_ARTIFACT: &str = include_str!("../models/health-baseline.json");

/// Loads the active health model, or, when the store has none, registers and activates the
/// shipped baseline. Returns the version now serving.
pub async fn load_active_or_baseline(
    store: &dyn Store,
    slot: &ModelSlot,
) -> Result<String, RegistryError> {
    if let Some(version) = load_active(store, slot).await? {
        return Ok(version);
    }
    let baseline = crate::model::ModelArtifact::from_json(
        BASELINE_ARTIFACT,
        crate::features::FEATURE_NAMES,
        crate::features::FEATURE_SCHEMA_VERSION,
    )
    .map_err(|source| RegistryError::Unloadable {
        version: "baseline".into(),
        source,
    })?;
    if store.model(&baseline.version).await?.is_none() {
        let registered = store
            .insert_model(&StoredModel {
                version: baseline.version.clone(),
                kind: HEALTH_MODEL_KIND.to_owned(),
                status: crate::store::ModelStatus::Candidate,
                source: SOURCE_BASELINE.to_owned(),
                artifact: BASELINE_ARTIFACT.to_owned(),
                created_at: baseline.created_at,
                activated_at: None,
            })
            .await;
        // Another replica starting at the same time may have registered it first.
        if let Err(error) = registered
            && store.model(&baseline.version).await?.is_none()
        {
            return Err(error.into());
        }
    }
    match store.active_model(HEALTH_MODEL_KIND).await? {
        Some(_) => {}
        None => {
            activate(store, slot, &baseline.version).await?;
        }
    }
    load_active(store, slot)
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(baseline.version))
}
