//! How the health model trains: the features chosen from the data at the last as-of time,
//! point-in-time rows at every as-of time (a snapshot holds out customers, a grid the last
//! time), every learner fitted and the one with the best hold-out ROC-AUC kept, and the
//! active model judged on the same rows in its own features.

use std::sync::Arc;

use super::rows::{Holdout, RowBuilder, SplitRows};
use super::{
    DEFAULT_AS_OF_COUNT, DEFAULT_PROMOTION_MARGIN, Fitted, NewVersion, Trainable, TrainingError,
    TrainingPlan, adaptive_as_of_grid, default_as_of_grid, latest_observation, read_customers,
};
use crate::domain::Timestamp;
use crate::features::SpecBuilder;
use crate::model::{
    ARTIFACT_SCHEMA_VERSION, Cancellation, Dataset, FittedModel, Learner, LearnerMetrics, Metrics,
    ModelArtifact, ModelError, ModelKind, ValidTrainParams,
};
use crate::scoring::HealthModel;
use crate::store::Store;

/// The rows of one health training run, with how they were drawn.
#[derive(Debug)]
pub struct HealthRows {
    split: SplitRows,
    as_of: Vec<Timestamp>,
}

/// The new model's hold-out, as the active model reads it.
#[derive(Debug)]
pub struct HealthHoldout {
    /// The hold-out rows in the active model's features, when it could compute them.
    in_active_features: Option<ndarray::Array2<f64>>,
    labels: Vec<bool>,
}

impl Trainable for HealthModel {
    type Artifact = ModelArtifact;
    type Metrics = Metrics;
    type Rows = HealthRows;
    type Holdout = HealthHoldout;
    const GATE_METRIC: &'static str = "ROC-AUC";
    const DEFAULT_PROMOTION_MARGIN: f64 = DEFAULT_PROMOTION_MARGIN;

    async fn read_rows(
        store: &Arc<dyn Store>,
        plan: &TrainingPlan,
        active: Option<&Self>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<HealthRows, TrainingError> {
        // The grid the plan names, or the default one, whose last time does not depend on
        // the data's start: the first pass over the customers both chooses the features at
        // that time and finds when the earliest customer joined, to drop default times
        // before it.
        let (grid, default_grid) = match plan.as_of.clone() {
            grid if !grid.is_empty() => (grid, None),
            _ => {
                let latest = latest_observation(store.as_ref()).await?;
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

        let mut rows = RowBuilder::new(as_of.clone(), plan.horizon_days)?
            .with_spec(spec)
            .comparing(active.map(|model| model.features.clone()));
        progress(format!(
            "building rows at {} as-of time(s) from {} to {} (hold-out: {})",
            as_of.len(),
            as_of[0],
            last,
            rows.holdout().describe()
        ));
        let customers = read_customers(store.as_ref(), progress, |c| rows.add(c)).await?;
        let split = rows.finish()?.without_constant_features()?;
        progress(format!(
            "{customers} customers: {} training rows, {} hold-out rows, {} features",
            split.train.rows(),
            split.holdout.rows(),
            split.spec.len()
        ));
        Ok(HealthRows { split, as_of })
    }

    fn fit(
        rows: HealthRows,
        plan: &TrainingPlan,
        version: NewVersion,
    ) -> Result<Fitted<Self>, TrainingError> {
        let HealthRows { split, as_of } = rows;
        let params = plan.params.clone().check()?;
        let FittedLearners {
            chosen,
            metrics,
            candidates,
            split,
        } = fit_every_learner(split, &params, &plan.cancellation)?;
        let mut notes: Vec<String> = candidates
            .iter()
            .map(|candidate| {
                format!(
                    "{}: hold-out ROC-AUC {:.4}, Brier {:.4}, ECE {:.4}",
                    candidate.learner,
                    candidate.metrics.roc_auc,
                    candidate.metrics.brier,
                    candidate.metrics.expected_calibration_error
                )
            })
            .collect();
        notes.push(format!("kept the {} model", chosen.learner().name()));
        let last = as_of[as_of.len() - 1];
        let trained_to = match split.holdout_kind {
            Holdout::LastAsOf => as_of[as_of.len() - 2],
            Holdout::Customers { .. } => last,
        };
        let artifact = ModelArtifact {
            artifact_schema: ARTIFACT_SCHEMA_VERSION,
            kind: ModelKind::Health,
            version: version.version,
            features: split.spec.clone(),
            horizon_days: plan.horizon_days,
            model: chosen,
            metrics: metrics.clone(),
            candidates,
            holdout: split.holdout_kind.describe(),
            trained_from: as_of[0],
            trained_to,
            training_rows: split.train.rows() as u64,
            holdout_rows: split.holdout.rows() as u64,
            positives: split.train.positives() as u64,
            created_at: version.created_at,
            checksum: String::new(),
        };
        Ok(Fitted {
            artifact,
            metrics,
            holdout: HealthHoldout {
                in_active_features: split.compared_holdout,
                labels: split.holdout.labels,
            },
            notes,
        })
    }

    fn judge(active: &Self, holdout: &HealthHoldout) -> Result<Option<Metrics>, TrainingError> {
        let Some(rows) = &holdout.in_active_features else {
            return Ok(None);
        };
        let scores: Vec<f64> = rows
            .rows()
            .into_iter()
            .map(|row| active.probability(&row.to_vec()))
            .collect();
        Ok(Some(Metrics::evaluate(&scores, &holdout.labels)?))
    }

    fn gate_value(metrics: &Metrics) -> f64 {
        metrics.roc_auc
    }

    fn seal(artifact: &mut ModelArtifact) -> Result<String, ModelError> {
        artifact.to_json()
    }
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
    cancellation: &Cancellation,
) -> Result<FittedLearners, TrainingError> {
    let fit = |learner: Learner, rows: &Dataset| -> Result<FittedModel, TrainingError> {
        Ok(FittedModel::fit(learner, rows, params)?)
    };
    let mut best: Option<(Learner, Metrics)> = None;
    let mut candidates = Vec::new();
    for learner in Learner::ALL {
        cancellation.check()?;
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
