//! Training models from stored data, written once for every model kind by [`train`]: check
//! the plan, read the rows, fit off the async threads, register the new version, judge the
//! active model on the same hold-out rows, and the promotion gate. What a kind does its own
//! way — which rows, which fit, which metric the gate compares — is its [`Trainable`] impl:
//! the health model's in [`health`] (point-in-time rows at a grid of as-of times or a
//! snapshot, every learner fitted, the best kept), the recovery uplift model's in [`uplift`].

mod health;
mod rows;
mod uplift;

use std::future::Future;
use std::sync::Arc;

use crate::domain::{CustomerId, Timestamp};
use crate::model::{ModelError, ModelKind, TrainParams};
use crate::registry::{self, ServedModel, ServingModels};
use crate::scoring::HealthModel;
use crate::store::{CustomerRecords, ModelStatus, Store, StoreError, StoredModel};
use crate::uplift::UpliftModel;

/// Customers read per store round trip: large enough to amortise the queries, small enough
/// that a page of histories stays a few megabytes.
const PAGE_CUSTOMERS: usize = 1_000;
/// The default grid: this many as-of times, one horizon apart, ending one horizon before the
/// latest churn observation (the last time whose labels are all known).
pub const DEFAULT_AS_OF_COUNT: usize = 4;
/// The default churn horizon (docs/domain.md: churn within 90 days).
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
/// A new model is promoted unless its hold-out ROC-AUC is worse than the active model's by
/// more than this; noise between two fits on the same data stays well under it.
pub const DEFAULT_PROMOTION_MARGIN: f64 = 0.005;

pub use rows::{Holdout, RowBuilder, SNAPSHOT_HOLDOUT_SHARE, SplitRows};
pub use uplift::{DEFAULT_MIN_OUTCOMES, DEFAULT_UPLIFT_PROMOTION_MARGIN};

use crate::domain::MICROS_PER_DAY;

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("not enough data to train: {0}")]
    NotEnoughData(String),
    #[error("invalid training request: {0}")]
    Invalid(String),
    #[error("the training task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// What to train and how to judge it.
#[derive(Debug, Clone)]
pub struct TrainingPlan {
    pub horizon_days: u32,
    /// Health: as-of times, ascending; rows at the last one are the hold-out. Empty: the
    /// default grid. Uplift: at most one time, where the hold-out starts; empty: where the
    /// newest share of the failures starts.
    pub as_of: Vec<Timestamp>,
    pub auto_promote: bool,
    /// How much worse than the active model's the new model's hold-out metric may be and still
    /// be promoted: ROC-AUC for health, the Qini coefficient for uplift.
    pub promotion_margin: f64,
    pub params: TrainParams,
    /// Uplift: the fewest recovered, and the fewest unrecovered, training failures with a
    /// known outcome; fewer is [`TrainingError::NotEnoughData`].
    pub min_outcomes: usize,
    /// Looked at between fits and before the model is registered.
    pub cancellation: crate::model::Cancellation,
}

impl Default for TrainingPlan {
    fn default() -> Self {
        Self {
            horizon_days: DEFAULT_HORIZON_DAYS,
            as_of: Vec::new(),
            auto_promote: true,
            promotion_margin: DEFAULT_PROMOTION_MARGIN,
            params: TrainParams::default(),
            min_outcomes: DEFAULT_MIN_OUTCOMES,
            cancellation: Default::default(),
        }
    }
}

/// What a training run of a model of kind `M` produced and decided.
#[derive(Debug)]
pub struct TrainingReport<M: Trainable> {
    pub model: StoredModel,
    pub artifact: M::Artifact,
    /// The model that was active before, with its metrics on the same hold-out.
    pub active_on_same_holdout: Option<(String, M::Metrics)>,
    pub promoted: bool,
    pub decision: String,
}

/// The default promotion margin of `kind` (see [`TrainingPlan::promotion_margin`]).
pub fn default_promotion_margin(kind: ModelKind) -> f64 {
    match kind {
        ModelKind::Health => HealthModel::DEFAULT_PROMOTION_MARGIN,
        ModelKind::Uplift => UpliftModel::DEFAULT_PROMOTION_MARGIN,
    }
}

/// What training a model kind does its own way; [`train`] does the rest, once for every kind.
pub trait Trainable: ServedModel {
    /// The sealed artifact a fit produces.
    type Artifact: std::fmt::Debug + Send + 'static;
    /// The hold-out metrics, of the new model and of the active one on the same rows.
    type Metrics: Clone + std::fmt::Debug + Send + 'static;
    /// Everything read from the store that the fit needs.
    type Rows: std::fmt::Debug + Send + 'static;
    /// The hold-out rows, as another model of the kind is judged on them.
    type Holdout: std::fmt::Debug + Send + 'static;
    /// The hold-out metric the gate compares, as reports name it.
    const GATE_METRIC: &'static str;
    /// How much worse than the active model's that metric may be by default.
    const DEFAULT_PROMOTION_MARGIN: f64;

    /// Reads what the fit needs. `active` is the serving model of the kind, if it loads: a
    /// kind that judges it in its own inputs prepares them here.
    fn read_rows(
        store: &Arc<dyn Store>,
        plan: &TrainingPlan,
        active: Option<&Self>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> impl Future<Output = Result<Self::Rows, TrainingError>> + Send;

    /// Fits and measures on the hold-out; runs on a blocking thread.
    fn fit(
        rows: Self::Rows,
        plan: &TrainingPlan,
        version: NewVersion,
    ) -> Result<Fitted<Self>, TrainingError>;

    /// `active`'s metrics on the new model's hold-out; `None` when it cannot read those rows.
    fn judge(
        active: &Self,
        holdout: &Self::Holdout,
    ) -> Result<Option<Self::Metrics>, TrainingError>;

    /// The value of [`Self::GATE_METRIC`] in `metrics`.
    fn gate_value(metrics: &Self::Metrics) -> f64;

    /// The artifact as sealed JSON (its checksum filled in).
    fn seal(artifact: &mut Self::Artifact) -> Result<String, ModelError>;
}

/// The name and time of the version being trained.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub version: String,
    pub created_at: Timestamp,
}

/// What a fit produced.
#[derive(Debug)]
pub struct Fitted<M: Trainable> {
    pub artifact: M::Artifact,
    pub metrics: M::Metrics,
    pub holdout: M::Holdout,
    /// What the fit found worth reporting as progress, in order.
    pub notes: Vec<String>,
}

/// The default grid for the data: [`default_as_of_grid`] without the times before the
/// earliest customer joined (no customer has a row there). One time left is a snapshot.
pub fn adaptive_as_of_grid(
    latest_observation: Timestamp,
    earliest_customer: Option<Timestamp>,
    horizon_days: u32,
    count: usize,
) -> Result<Vec<Timestamp>, TrainingError> {
    let grid: Vec<Timestamp> = default_as_of_grid(latest_observation, horizon_days, count)
        .into_iter()
        .filter(|at| earliest_customer.is_none_or(|earliest| *at >= earliest))
        .collect();
    if grid.is_empty() {
        return Err(TrainingError::NotEnoughData(format!(
            "the latest churn observation ({latest_observation}) is less than one horizon ({horizon_days} days) after the earliest customer joined, so no churn label is known yet; \
             store outcomes observed at least a horizon after the customers' profiles, or train with a shorter --horizon-days"
        )));
    }
    Ok(grid)
}

/// `count` as-of times one horizon apart, the last one horizon before `latest_observation`.
pub fn default_as_of_grid(
    latest_observation: Timestamp,
    horizon_days: u32,
    count: usize,
) -> Vec<Timestamp> {
    let step = i64::from(horizon_days) * MICROS_PER_DAY;
    let last = latest_observation.unix_micros() - step;
    (0..count as i64)
        .rev()
        .map(|k| Timestamp::from_unix_micros(last - k * step))
        .collect()
}

/// Reads every customer, page by page, into `add`; returns how many there were.
/// The latest churn observation stored: where the labels end. Refuses a store without any,
/// which no model kind can learn from.
async fn latest_observation(store: &dyn Store) -> Result<Timestamp, TrainingError> {
    store.latest_churn_observation().await?.ok_or_else(|| {
        TrainingError::NotEnoughData(
            "no churn outcomes are stored: store each customer's churn outcome (`rescue-client backfill churn_outcomes` or `rescue-client import`) first".into(),
        )
    })
}

async fn read_customers(
    store: &dyn Store,
    progress: &(dyn Fn(String) + Send + Sync),
    mut add: impl FnMut(&CustomerRecords) + Send,
) -> Result<usize, TrainingError> {
    let mut after: Option<CustomerId> = None;
    let mut customers = 0usize;
    loop {
        let page = store.customer_page(after.as_ref(), PAGE_CUSTOMERS).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.history.customer.customer_id.clone());
        for customer in &page {
            add(customer);
            customers += 1;
        }
        if customers.is_multiple_of(PAGE_CUSTOMERS * 10) {
            progress(format!("read {customers} customers"));
        }
    }
    Ok(customers)
}

/// Trains a model of kind `M` on everything stored, registers it, and promotes it through the
/// gate (or not), swapping it into its slot among `serving` on promotion. `requested_at`
/// names and dates the new version (and its activation).
pub async fn train<M: Trainable>(
    store: &Arc<dyn Store>,
    serving: &ServingModels,
    plan: TrainingPlan,
    requested_at: Timestamp,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<TrainingReport<M>, TrainingError> {
    let started = std::time::Instant::now();
    let trained = run::<M>(store, serving, plan, requested_at, progress).await;
    let outcome = match &trained {
        Ok(report) if report.promoted => "promoted",
        Ok(_) => "candidate",
        Err(TrainingError::Model(crate::model::ModelError::Cancelled)) => "cancelled",
        Err(_) => "failed",
    };
    crate::telemetry::metrics::trained(M::KIND.as_str(), outcome, started.elapsed().as_secs_f64());
    trained
}

/// [`train`]'s steps.
async fn run<M: Trainable>(
    store: &Arc<dyn Store>,
    serving: &ServingModels,
    plan: TrainingPlan,
    requested_at: Timestamp,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<TrainingReport<M>, TrainingError> {
    check_plan(&plan)?;
    // The active model, to be judged on the same hold-out rows. One that no longer loads
    // (another feature schema) is not compared: the new model is then promoted on its own.
    let active = match store.active_model(M::KIND).await? {
        Some(stored) => M::load(&stored).ok().map(|model| (stored.version, model)),
        None => None,
    };
    let rows = M::read_rows(store, &plan, active.as_ref().map(|(_, m)| m), progress).await?;
    let cancellation = plan.cancellation.clone();
    cancellation.check()?;
    let created_at = requested_at;
    let version = NewVersion {
        version: registry::new_version(M::KIND, created_at),
        created_at,
    };
    let name = version.version.clone();
    let auto_promote = plan.auto_promote;
    let margin = plan.promotion_margin;
    let Fitted {
        mut artifact,
        metrics,
        holdout,
        notes,
    } = tokio::task::spawn_blocking(move || M::fit(rows, &plan, version))
        .await
        .map_err(|e| TrainingError::Task(e.to_string()))??;
    notes.into_iter().for_each(progress);
    cancellation.check()?;

    let stored = StoredModel {
        version: name,
        kind: M::KIND,
        status: ModelStatus::Candidate,
        source: registry::SOURCE_TRAINED.to_owned(),
        artifact: M::seal(&mut artifact)?,
        created_at,
        activated_at: None,
    };
    store.insert_model(&stored).await?;

    let active = match active {
        Some((version, model)) => M::judge(&model, &holdout)?.map(|metrics| (version, metrics)),
        None => None,
    };
    let (promote, decision) = gate(
        auto_promote,
        M::GATE_METRIC,
        M::gate_value(&metrics),
        active.as_ref().map(|(v, m)| (v.as_str(), M::gate_value(m))),
        margin,
    );
    let model = if promote {
        registry::activate(
            store.as_ref(),
            M::slot(serving),
            &stored.version,
            created_at,
        )
        .await?
    } else {
        stored
    };
    progress(decision.clone());
    Ok(TrainingReport {
        model,
        artifact,
        active_on_same_holdout: active,
        promoted: promote,
        decision,
    })
}

/// Checks what every kind of training needs from a plan.
fn check_plan(plan: &TrainingPlan) -> Result<(), TrainingError> {
    if plan.horizon_days == 0 || plan.horizon_days > 730 {
        return Err(TrainingError::Invalid(format!(
            "horizon_days must be 1–730, got {}",
            plan.horizon_days
        )));
    }
    if !(0.0..=1.0).contains(&plan.promotion_margin) {
        return Err(TrainingError::Invalid(format!(
            "promotion margin must be 0–1, got {}",
            plan.promotion_margin
        )));
    }
    Ok(())
}

/// The promotion gate: promote when asked to and the new model's hold-out `metric` is not
/// worse than the active model's, on the same rows, by more than `margin`.
fn gate(
    auto_promote: bool,
    metric: &str,
    new: f64,
    active: Option<(&str, f64)>,
    margin: f64,
) -> (bool, String) {
    match (active, auto_promote) {
        (_, false) => (
            false,
            "kept as a candidate: automatic promotion was not requested".to_owned(),
        ),
        (None, true) => (true, "promoted: no comparable model was active".to_owned()),
        (Some((version, active)), true) if new >= active - margin => (
            true,
            format!(
                "promoted: hold-out {metric} {new:.4} vs {active:.4} for the active {version} (margin {margin})"
            ),
        ),
        (Some((version, active)), true) => (
            false,
            format!(
                "kept as a candidate: hold-out {metric} {new:.4} is worse than {active:.4} for the active {version} by more than {margin}"
            ),
        ),
    }
}
