//! Which model serves: activating a version (on promotion, rollback or start-up) both in the
//! store, where every replica sees it, and in this process's serving slot of its kind — the
//! health model's [`ModelSlot`] or the recovery uplift model's [`UpliftSlot`].

use std::sync::Arc;

use crate::domain::Timestamp;
use crate::model::{ModelError, ModelKind, ServingSlot};
use crate::scoring::{HealthModel, ModelSlot};
use crate::store::{Store, StoreError, StoredModel};
use crate::uplift::{UpliftModel, UpliftSlot};

/// `source` of models trained by this service.
pub const SOURCE_TRAINED: &str = "trained";
/// `source` of the model shipped with the service.
pub const SOURCE_BASELINE: &str = "baseline";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no model version {0:?}")]
    UnknownVersion(String),
    #[error("no earlier active {0} model to roll back to")]
    NothingToRollBackTo(ModelKind),
    #[error("model {version} cannot be loaded: {source}")]
    Unloadable {
        version: String,
        #[source]
        source: ModelError,
    },
    #[error("model {version} is a {found} model, not a {expected} model")]
    WrongKind {
        version: String,
        expected: ModelKind,
        found: ModelKind,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The serving slot of every model kind, shared by the services of one process.
#[derive(Debug, Clone, Default)]
pub struct ServingModels {
    pub health: Arc<ModelSlot>,
    /// Empty until an uplift model is promoted: recommendations then use the prior.
    pub uplift: Arc<UpliftSlot>,
}

/// A model kind as the registry serves it: its kind, its serving slot in a process and how
/// its artifact loads. Activation, rollback and following promotions are written once over it.
pub trait ServedModel: Send + Sync + Sized + 'static {
    const KIND: ModelKind;
    /// This kind's slot among a process's serving models.
    fn slot(serving: &ServingModels) -> &ServingSlot<Self>;
    fn load(stored: &StoredModel) -> Result<Self, ModelError>;
    fn version(&self) -> &str;
}

impl ServedModel for HealthModel {
    const KIND: ModelKind = ModelKind::Health;

    fn slot(serving: &ServingModels) -> &ServingSlot<Self> {
        &serving.health
    }

    fn load(stored: &StoredModel) -> Result<Self, ModelError> {
        let model = HealthModel::from_artifact_json(&stored.artifact)?;
        Ok(if stored.source == SOURCE_BASELINE {
            model.as_baseline()
        } else {
            model
        })
    }

    fn version(&self) -> &str {
        &self.version
    }
}

impl ServedModel for UpliftModel {
    const KIND: ModelKind = ModelKind::Uplift;

    fn slot(serving: &ServingModels) -> &ServingSlot<Self> {
        &serving.uplift
    }

    fn load(stored: &StoredModel) -> Result<Self, ModelError> {
        UpliftModel::from_artifact_json(&stored.artifact)
    }

    fn version(&self) -> &str {
        UpliftModel::version(self)
    }
}

/// A new version name: the kind and the creation time to the millisecond, so versions sort
/// by age and read as dates.
pub fn new_version(kind: ModelKind, created_at: Timestamp) -> String {
    let (seconds, nanos) = created_at.to_seconds_nanos();
    let at = chrono::DateTime::from_timestamp(seconds, nanos).unwrap_or_default();
    format!("{kind}-{}", at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Makes `version`, of whatever kind, the active model of its kind, as of `now`.
pub async fn promote(
    store: &dyn Store,
    serving: &ServingModels,
    version: &str,
    now: Timestamp,
) -> Result<StoredModel, RegistryError> {
    let stored = store
        .model(version)
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(version.to_owned()))?;
    match stored.kind {
        ModelKind::Health => activate::<HealthModel>(store, &serving.health, version, now).await,
        ModelKind::Uplift => activate::<UpliftModel>(store, &serving.uplift, version, now).await,
    }
}

/// Makes model `version` of kind `M` the active one: checks that its artifact loads, records
/// it in the store as activated at `now`, then swaps it into `slot`.
pub async fn activate<M: ServedModel>(
    store: &dyn Store,
    slot: &ServingSlot<M>,
    version: &str,
    now: Timestamp,
) -> Result<StoredModel, RegistryError> {
    let stored = store
        .model(version)
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(version.to_owned()))?;
    if stored.kind != M::KIND {
        return Err(RegistryError::WrongKind {
            version: version.to_owned(),
            expected: M::KIND,
            found: stored.kind,
        });
    }
    let loaded = M::load(&stored).map_err(|source| RegistryError::Unloadable {
        version: version.to_owned(),
        source,
    })?;
    let _turn = slot.activation().lock().await;
    let activated = store
        .activate_model(version, now)
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(version.to_owned()))?;
    install(slot, loaded);
    tracing::info!(%version, kind = %M::KIND, "model activated");
    Ok(activated)
}

/// Serves `model` from `slot`, and says so in the metrics.
fn install<M: ServedModel>(slot: &ServingSlot<M>, model: M) {
    let before = slot.current();
    crate::telemetry::metrics::model_serving(
        M::KIND.as_str(),
        before.as_ref().map(|model| model.version()),
        model.version(),
    );
    slot.replace(Arc::new(model));
}

/// Makes the previously active model of `kind` active again, as of `now`.
pub async fn roll_back(
    store: &dyn Store,
    serving: &ServingModels,
    kind: ModelKind,
    now: Timestamp,
) -> Result<StoredModel, RegistryError> {
    let previous = store
        .previously_active_model(kind)
        .await?
        .ok_or(RegistryError::NothingToRollBackTo(kind))?;
    promote(store, serving, &previous.version, now).await
}

/// Loads the store's active model of kind `M` into `slot` (what replicas do on start-up and
/// on a promotion elsewhere). Returns the version now serving, if any: `None` is normal for
/// an uplift model not trained yet (decisions then use the documented prior).
pub async fn load_active<M: ServedModel>(
    store: &dyn Store,
    slot: &ServingSlot<M>,
) -> Result<Option<String>, RegistryError> {
    // Read and installed in one turn: an activation here in between would otherwise be
    // overwritten by the older version read before it (until the next notice or poll).
    let _turn = slot.activation().lock().await;
    let Some(active) = store.active_model(M::KIND).await? else {
        return Ok(None);
    };
    if slot
        .current()
        .is_some_and(|serving| serving.version() == active.version)
    {
        return Ok(Some(active.version));
    }
    let loaded = M::load(&active).map_err(|source| RegistryError::Unloadable {
        version: active.version.clone(),
        source,
    })?;
    install(slot, loaded);
    Ok(Some(active.version))
}

/// What re-reading the registry for one kind changed in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub before: Option<String>,
    pub now: Option<String>,
}

/// [`load_active`] for the slot of `kind` among `serving`, with the version it replaced.
pub async fn reload(
    store: &dyn Store,
    serving: &ServingModels,
    kind: ModelKind,
) -> Result<Reloaded, RegistryError> {
    async fn reload_slot<M: ServedModel>(
        store: &dyn Store,
        serving: &ServingModels,
    ) -> Result<Reloaded, RegistryError> {
        let slot = M::slot(serving);
        let before = slot.current().map(|model| model.version().to_owned());
        let now = load_active(store, slot).await?;
        Ok(Reloaded { before, now })
    }
    match kind {
        ModelKind::Health => reload_slot::<HealthModel>(store, serving).await,
        ModelKind::Uplift => reload_slot::<UpliftModel>(store, serving).await,
    }
}

/// The shipped baseline: trained on simulated data (see `models/health-baseline.card.json`),
/// so a fresh server scores at once, until a model trained on real data replaces it.
pub const BASELINE_ARTIFACT: &str = include_str!("../models/health-baseline.json");

/// Loads the active health model, or, when the store has none, registers and activates the
/// shipped baseline (as of `now`). Returns the version now serving.
pub async fn load_active_or_baseline(
    store: &dyn Store,
    slot: &ModelSlot,
    now: Timestamp,
) -> Result<String, RegistryError> {
    if let Some(version) = load_active(store, slot).await? {
        return Ok(version);
    }
    let baseline = crate::model::ModelArtifact::from_json(BASELINE_ARTIFACT).map_err(|source| {
        RegistryError::Unloadable {
            version: "baseline".into(),
            source,
        }
    })?;
    if store.model(&baseline.version).await?.is_none() {
        let registered = store
            .insert_model(&StoredModel {
                version: baseline.version.clone(),
                kind: ModelKind::Health,
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
    match store.active_model(ModelKind::Health).await? {
        Some(_) => {}
        None => {
            activate(store, slot, &baseline.version, now).await?;
        }
    }
    load_active(store, slot)
        .await?
        .ok_or_else(|| RegistryError::UnknownVersion(baseline.version))
}
