//! Training models from stored data. The health model: point-in-time rows at a grid of as-of
//! times, a split by time (train on older rows, hold out the newest), a fit off the async
//! threads, hold-out metrics for the new model and for the active one on the same rows, and
//! the promotion gate. The recovery uplift model goes the same way in [`uplift`].

mod uplift;

use std::sync::Arc;

use ndarray::Array2;

use crate::domain::{CustomerId, Timestamp};
use crate::features::{self, FEATURE_NAMES, FEATURE_SCHEMA_VERSION};
use crate::model::artifact::HEALTH_MODEL_KIND;
use crate::model::{Dataset, Metrics, ModelArtifact, ModelError, TrainParams, train_logistic};
use crate::registry;
use crate::scoring::{HealthModel, ModelSlot};
use crate::store::{CustomerRecords, Store, StoreError, StoredModel};

/// Customers read per store round trip: large enough to amortise the queries, small enough
/// that a page of histories stays a few megabytes.
const PAGE_CUSTOMERS: usize = 1_000;
/// The default grid: this many as-of times, one horizon apart, ending one horizon before the
/// latest churn observation (the last time whose labels are all known).
pub const DEFAULT_AS_OF_COUNT: usize = 4;
/// The default churn horizon (DOMAIN.md: churn within 90 days).
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
/// A new model is promoted unless its hold-out ROC-AUC is worse than the active model's by
/// more than this; noise between two fits on the same data stays well under it.
pub const DEFAULT_PROMOTION_MARGIN: f64 = 0.005;

pub use uplift::{
    DEFAULT_MIN_OUTCOMES, DEFAULT_UPLIFT_PROMOTION_MARGIN, UpliftTrainingReport, train_uplift_model,
};

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

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
        }
    }
}

/// What a training run produced and decided.
#[derive(Debug, Clone)]
pub struct TrainingReport {
    pub model: StoredModel,
    pub artifact: ModelArtifact,
    /// The model that was active before, with its metrics on the same hold-out.
    pub active_on_same_holdout: Option<(String, Metrics)>,
    pub promoted: bool,
    pub decision: String,
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

/// Point-in-time rows at a grid of as-of times, split by time: rows at the last as-of time
/// are the hold-out. Fed one customer at a time, so any source (the store's pages, the
/// simulator) builds exactly the rows training uses.
#[derive(Debug)]
pub struct RowBuilder {
    as_of: Vec<Timestamp>,
    horizon_days: u32,
    train_features: Vec<f64>,
    train_labels: Vec<bool>,
    holdout_features: Vec<f64>,
    holdout_labels: Vec<bool>,
    holdout_customers: Vec<CustomerId>,
    customers: usize,
}

impl RowBuilder {
    /// `as_of` must be ascending with at least two times.
    pub fn new(as_of: Vec<Timestamp>, horizon_days: u32) -> Result<Self, TrainingError> {
        if as_of.len() < 2 || as_of.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TrainingError::Invalid(
                "at least two ascending as-of times are needed".into(),
            ));
        }
        Ok(Self {
            as_of,
            horizon_days,
            train_features: Vec::new(),
            train_labels: Vec::new(),
            holdout_features: Vec::new(),
            holdout_labels: Vec::new(),
            holdout_customers: Vec::new(),
            customers: 0,
        })
    }

    /// Adds a row per as-of time at which the customer had joined and their label is known.
    pub fn add(&mut self, customer: &CustomerRecords) {
        self.customers += 1;
        let holdout_at = self.as_of[self.as_of.len() - 1];
        for &at in &self.as_of {
            if customer.history.customer.customer_since > at {
                continue;
            }
            let Some(label) =
                features::churn_label(customer.churn.as_ref(), at, i64::from(self.horizon_days))
            else {
                continue;
            };
            let features = features::compute(&customer.history, at).0;
            if at == holdout_at {
                self.holdout_features.extend(features);
                self.holdout_labels.push(label);
                self.holdout_customers
                    .push(customer.history.customer.customer_id.clone());
            } else {
                self.train_features.extend(features);
                self.train_labels.push(label);
            }
        }
    }

    pub fn customers(&self) -> usize {
        self.customers
    }

    /// Rows so far, training and hold-out.
    pub fn rows(&self) -> usize {
        self.train_labels.len() + self.holdout_labels.len()
    }

    /// The training and hold-out sets, and the customer of each hold-out row.
    pub fn finish(self) -> Result<SplitRows, TrainingError> {
        for (name, labels) in [
            ("training", &self.train_labels),
            ("hold-out", &self.holdout_labels),
        ] {
            let positives = labels.iter().filter(|l| **l).count();
            if positives == 0 || positives == labels.len() {
                return Err(TrainingError::NotEnoughData(format!(
                    "the {name} rows need both churned and retained customers ({positives} of {} churned)",
                    labels.len()
                )));
            }
        }
        Ok(SplitRows {
            train: dataset(self.train_features, self.train_labels)?,
            holdout: dataset(self.holdout_features, self.holdout_labels)?,
            holdout_customers: self.holdout_customers,
        })
    }
}

/// Rows split by time.
#[derive(Debug)]
pub struct SplitRows {
    pub train: Dataset,
    pub holdout: Dataset,
    /// The customer of each hold-out row, in row order.
    pub holdout_customers: Vec<CustomerId>,
}

fn dataset(features: Vec<f64>, labels: Vec<bool>) -> Result<Dataset, TrainingError> {
    let shape = (labels.len(), FEATURE_NAMES.len());
    let matrix = Array2::from_shape_vec(shape, features)
        .map_err(|e| TrainingError::Invalid(format!("feature matrix: {e}")))?;
    Ok(Dataset::new(matrix, labels)?)
}

/// Reads every customer, page by page, into `add`; returns how many there were.
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

/// Trains a health model on everything stored, registers it, and promotes it through the gate
/// (or not). `slot` is the serving slot to swap on promotion.
pub async fn train_health_model(
    store: &Arc<dyn Store>,
    slot: &ModelSlot,
    plan: TrainingPlan,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<TrainingReport, TrainingError> {
    check_plan(&plan)?;
    let params = plan.params.clone().check()?;
    let as_of = if plan.as_of.is_empty() {
        let latest = store
            .latest_churn_observation()
            .await?
            .ok_or_else(|| TrainingError::NotEnoughData("no churn outcomes are stored".into()))?;
        default_as_of_grid(latest, plan.horizon_days, DEFAULT_AS_OF_COUNT)
    } else {
        plan.as_of.clone()
    };
    let mut rows = RowBuilder::new(as_of.clone(), plan.horizon_days)?;
    progress(format!(
        "building rows at {} as-of times from {} to {} (hold-out: the last)",
        as_of.len(),
        as_of[0],
        as_of[as_of.len() - 1]
    ));
    let customers = read_customers(store.as_ref(), progress, |c| rows.add(c)).await?;
    let SplitRows { train, holdout, .. } = rows.finish()?;
    progress(format!(
        "{customers} customers: {} training rows, {} hold-out rows",
        train.rows(),
        holdout.rows()
    ));
    progress(format!(
        "fitting on {} rows × {} features",
        train.rows(),
        train.feature_count()
    ));
    let (model, train, holdout) = tokio::task::spawn_blocking(move || {
        train_logistic(&train, &params).map(|model| (model, train, holdout))
    })
    .await
    .map_err(|e| TrainingError::Task(e.to_string()))??;

    let scores = model.predict_all(holdout.features.view());
    let metrics = Metrics::evaluate(&scores, &holdout.labels)?;
    progress(format!(
        "hold-out ROC-AUC {:.4}, Brier {:.4}",
        metrics.roc_auc, metrics.brier
    ));

    let created_at = Timestamp::now();
    let mut artifact = ModelArtifact {
        artifact_schema: crate::model::ARTIFACT_SCHEMA_VERSION,
        kind: HEALTH_MODEL_KIND.to_owned(),
        version: registry::new_version(HEALTH_MODEL_KIND, created_at),
        feature_schema: FEATURE_SCHEMA_VERSION,
        feature_names: FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
        horizon_days: plan.horizon_days,
        scaler: model.scaler.clone(),
        coefficients: model.coefficients.clone(),
        intercept: model.intercept,
        metrics: metrics.clone(),
        trained_from: as_of[0],
        trained_to: as_of[as_of.len() - 2],
        training_rows: train.rows() as u64,
        holdout_rows: holdout.rows() as u64,
        positives: train.positives() as u64,
        created_at,
        checksum: String::new(),
    };
    let json = artifact.to_json()?;
    let stored = StoredModel {
        version: artifact.version.clone(),
        kind: HEALTH_MODEL_KIND.to_owned(),
        status: crate::store::ModelStatus::Candidate,
        source: registry::SOURCE_TRAINED.to_owned(),
        artifact: json,
        created_at,
        activated_at: None,
    };
    store.insert_model(&stored).await?;

    // The active model, judged on exactly the new model's hold-out rows.
    let active = match store.active_model(HEALTH_MODEL_KIND).await? {
        Some(active) => match HealthModel::from_artifact_json(&active.artifact) {
            Ok(loaded) => {
                let scores: Vec<f64> = holdout
                    .features
                    .rows()
                    .into_iter()
                    .map(|row| loaded.probability(&row.to_vec()))
                    .collect();
                Some((active.version, Metrics::evaluate(&scores, &holdout.labels)?))
            }
            // A model of another feature schema cannot score these rows.
            Err(_) => None,
        },
        None => None,
    };
    let (promote, decision) = gate(
        plan.auto_promote,
        "ROC-AUC",
        metrics.roc_auc,
        active.as_ref().map(|(v, m)| (v.as_str(), m.roc_auc)),
        plan.promotion_margin,
    );
    let model = if promote {
        registry::activate(store.as_ref(), slot, &stored.version).await?
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
