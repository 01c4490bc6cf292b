//! Training models from stored data. The health model: point-in-time rows at a grid of as-of
//! times, a split by time (train on older rows, hold out the newest), a fit off the async
//! threads, hold-out metrics for the new model and for the active one on the same rows, and
//! the promotion gate. The recovery uplift model goes the same way in [`uplift`].

mod rows;
mod uplift;

use std::sync::Arc;

use crate::domain::{CustomerId, Timestamp};
use crate::features::SpecBuilder;
use crate::model::artifact::HEALTH_MODEL_KIND;
use crate::model::{
    Dataset, FittedModel, Learner, LearnerMetrics, Metrics, ModelArtifact, ModelError, TrainParams,
    TreeParams, ValidTrainParams, train_logistic, train_trees,
};
use crate::registry;
use crate::scoring::{HealthModel, ModelSlot};
use crate::store::{CustomerRecords, Store, StoreError, StoredModel};

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
pub use uplift::{
    DEFAULT_MIN_OUTCOMES, DEFAULT_UPLIFT_PROMOTION_MARGIN, UpliftTrainingReport, train_uplift_model,
};

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

/// Trains a health model on everything stored — every learner, on features chosen from the
/// data — registers the best on the hold-out, and promotes it through the gate (or not).
/// `slot` is the serving slot to swap on promotion.
pub async fn train_health_model(
    store: &Arc<dyn Store>,
    slot: &ModelSlot,
    plan: TrainingPlan,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<TrainingReport, TrainingError> {
    check_plan(&plan)?;
    let params = plan.params.clone().check()?;
    // The grid the plan names, or the default one, whose last time does not depend on the
    // data's start: the first pass over the customers both chooses the features at that time
    // and finds when the earliest customer joined, to drop default times before it.
    let (grid, default_grid) = match plan.as_of.clone() {
        grid if !grid.is_empty() => (grid, None),
        _ => {
            let latest = store.latest_churn_observation().await?.ok_or_else(|| {
                TrainingError::NotEnoughData(
                    "no churn outcomes are stored: store each customer's churn outcome (`rescue-client backfill churn_outcomes` or `rescue-client import`) first".into(),
                )
            })?;
            let grid = default_as_of_grid(latest, plan.horizon_days, DEFAULT_AS_OF_COUNT);
            (grid, Some(latest))
        }
    };
    let last = grid[grid.len() - 1];
    let mut chosen = SpecBuilder::default();
    let mut earliest: Option<Timestamp> = None;
    read_customers(store.as_ref(), progress, |c| {
        chosen.add(&c.history, last);
        let since = c.history.customer.customer_since;
        earliest = Some(earliest.map_or(since, |e| e.min(since)));
    })
    .await?;
    let as_of = match default_grid {
        Some(latest) => {
            adaptive_as_of_grid(latest, earliest, plan.horizon_days, DEFAULT_AS_OF_COUNT)?
        }
        None => grid,
    };
    let spec = chosen.finish();
    progress(format!("{} candidate features from the data", spec.len()));

    // The active model, to be judged on the same hold-out rows in its own features.
    let active = match store.active_model(HEALTH_MODEL_KIND).await? {
        Some(stored) => HealthModel::from_artifact_json(&stored.artifact)
            .ok()
            .map(|model| (stored.version, model)),
        None => None,
    };
    let rows = RowBuilder::new(as_of.clone(), plan.horizon_days)?
        .with_spec(spec)
        .comparing(active.as_ref().map(|(_, model)| model.features.clone()));
    let holdout_kind = rows.holdout();
    progress(format!(
        "building rows at {} as-of time(s) from {} to {} (hold-out: {})",
        as_of.len(),
        as_of[0],
        last,
        holdout_kind.describe()
    ));
    let mut rows = rows;
    let customers = read_customers(store.as_ref(), progress, |c| rows.add(c)).await?;
    let split = rows.finish()?.without_constant_features()?;
    progress(format!(
        "{customers} customers: {} training rows, {} hold-out rows, {} features",
        split.train.rows(),
        split.holdout.rows(),
        split.spec.len()
    ));

    let fitted = tokio::task::spawn_blocking(move || fit_every_learner(split, &params))
        .await
        .map_err(|e| TrainingError::Task(e.to_string()))??;
    let FittedLearners {
        chosen,
        metrics,
        candidates,
        split,
    } = fitted;
    for candidate in &candidates {
        progress(format!(
            "{}: hold-out ROC-AUC {:.4}, Brier {:.4}, ECE {:.4}",
            candidate.learner,
            candidate.metrics.roc_auc,
            candidate.metrics.brier,
            candidate.metrics.expected_calibration_error
        ));
    }
    progress(format!("kept the {} model", chosen.learner().name()));

    let created_at = Timestamp::now();
    let trained_to = match holdout_kind {
        Holdout::LastAsOf => as_of[as_of.len() - 2],
        Holdout::Customers { .. } => last,
    };
    let mut artifact = ModelArtifact {
        artifact_schema: crate::model::ARTIFACT_SCHEMA_VERSION,
        kind: HEALTH_MODEL_KIND.to_owned(),
        version: registry::new_version(HEALTH_MODEL_KIND, created_at),
        features: split.spec.clone(),
        horizon_days: plan.horizon_days,
        model: chosen,
        metrics: metrics.clone(),
        candidates,
        holdout: holdout_kind.describe(),
        trained_from: as_of[0],
        trained_to,
        training_rows: split.train.rows() as u64,
        holdout_rows: split.holdout.rows() as u64,
        positives: split.train.positives() as u64,
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
    let active = match (active, &split.compared_holdout) {
        (Some((version, model)), Some(rows)) => {
            let scores: Vec<f64> = rows
                .rows()
                .into_iter()
                .map(|row| model.probability(&row.to_vec()))
                .collect();
            Some((version, Metrics::evaluate(&scores, &split.holdout.labels)?))
        }
        _ => None,
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

/// The learners of one run, and the one kept.
#[derive(Debug)]
struct FittedLearners {
    chosen: FittedModel,
    metrics: Metrics,
    candidates: Vec<LearnerMetrics>,
    split: SplitRows,
}

/// Fits every learner on the training rows and keeps the one with the highest hold-out
/// ROC-AUC (the first listed on a tie: the simpler one), then fits that learner again on the
/// training and hold-out rows together: the hold-out has judged the learner, and the model
/// served learns from every labelled row (the newest ones, under a time split). Its reported
/// metrics are the hold-out's, of the fit that did not see it.
fn fit_every_learner(
    split: SplitRows,
    params: &ValidTrainParams,
) -> Result<FittedLearners, TrainingError> {
    let fit = |learner: Learner, rows: &Dataset| -> Result<FittedModel, TrainingError> {
        Ok(match learner {
            Learner::Logistic => FittedModel::Logistic(train_logistic(rows, params)?),
            Learner::Trees => {
                FittedModel::Trees(Box::new(train_trees(rows, &TreeParams::default())?))
            }
        })
    };
    let mut best: Option<(Learner, Metrics)> = None;
    let mut candidates = Vec::new();
    for learner in Learner::ALL {
        let model = fit(learner, &split.train)?;
        let scores = model.predict_all(split.holdout.features.view());
        let metrics = Metrics::evaluate(&scores, &split.holdout.labels)?;
        candidates.push(LearnerMetrics {
            learner: learner.name().to_owned(),
            metrics: metrics.clone(),
        });
        if best
            .as_ref()
            .is_none_or(|(_, kept)| metrics.roc_auc > kept.roc_auc)
        {
            best = Some((learner, metrics));
        }
    }
    let (learner, metrics) = best.ok_or_else(|| TrainingError::Invalid("no learner".into()))?;
    let every_row = Dataset::new(
        ndarray::concatenate(
            ndarray::Axis(0),
            &[split.train.features.view(), split.holdout.features.view()],
        )
        .map_err(|e| TrainingError::Invalid(format!("feature matrix: {e}")))?,
        split
            .train
            .labels
            .iter()
            .chain(&split.holdout.labels)
            .copied()
            .collect(),
    )?;
    Ok(FittedLearners {
        chosen: fit(learner, &every_row)?,
        metrics,
        candidates,
        split,
    })
}
