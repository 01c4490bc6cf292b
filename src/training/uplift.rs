//! How the recovery uplift model trains: the features chosen from the data, one row per
//! failure with a known outcome, split by time (or by customer when failures bunch in time),
//! every candidate learner fitted on the training rows and the one with the best hold-out
//! Qini kept, and the new and active models' hold-out Qini metrics, each failure weighted by
//! its inverse propensity.

use std::sync::Arc;

use super::{
    Fitted, NewVersion, Trainable, TrainingError, TrainingPlan, latest_observation, read_customers,
};
use crate::features::SpecBuilder;
use crate::model::{ModelError, ValidTrainParams};
use crate::store::Store;
use crate::uplift::learner::UpliftLearner;
use crate::uplift::rows::{CUSTOMER_HOLDOUT_SEED, DEFAULT_HOLDOUT_SHARE};
use crate::uplift::train::{self, Trained, UpliftTraining};
use crate::uplift::{
    HoldoutStart, UpliftArtifact, UpliftMetrics, UpliftModel, UpliftRow, UpliftRows, UpliftSplit,
};

/// Recovered and unrecovered training failures with a known outcome each needed by default:
/// with fewer, the retention models of a few dozen churners each say more about noise than
/// about recovery, and the documented prior is the better guess.
pub const DEFAULT_MIN_OUTCOMES: usize = 200;

/// A new uplift model is promoted unless its hold-out Qini coefficient is worse than the
/// active uplift model's on the same hold-out rows by more than this. Qini coefficients are
/// shares of the hold-out (see [`crate::model::qini`]); two fits on the same data differ by
/// far less, while a model that lost most of its ranking power loses more.
pub const DEFAULT_UPLIFT_PROMOTION_MARGIN: f64 = 0.002;

/// The failures of one uplift training run, split, with the fit's settings.
#[derive(Debug)]
pub struct UpliftTrainingRows {
    split: UpliftSplit,
    params: ValidTrainParams,
}

/// The new model's hold-out, with each row's inverse-propensity weight, so another model is
/// judged on the same rows the same way.
#[derive(Debug)]
pub struct UpliftHoldout {
    rows: Vec<UpliftRow>,
    weights: Vec<f64>,
}

impl Trainable for UpliftModel {
    type Artifact = UpliftArtifact;
    type Metrics = UpliftMetrics;
    type Rows = UpliftTrainingRows;
    type Holdout = UpliftHoldout;
    const GATE_METRIC: &'static str = "Qini coefficient";
    const DEFAULT_PROMOTION_MARGIN: f64 = DEFAULT_UPLIFT_PROMOTION_MARGIN;

    async fn read_rows(
        store: &Arc<dyn Store>,
        plan: &TrainingPlan,
        _active: Option<&Self>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<UpliftTrainingRows, TrainingError> {
        if plan.min_outcomes == 0 {
            return Err(TrainingError::Invalid(
                "min_outcomes must be at least 1".into(),
            ));
        }
        let holdout = match plan.as_of.as_slice() {
            [] => HoldoutStart::NewestShareOrCustomers {
                share: DEFAULT_HOLDOUT_SHARE,
                seed: CUSTOMER_HOLDOUT_SEED,
            },
            [at] => HoldoutStart::At(*at),
            _ => {
                return Err(TrainingError::Invalid(
                    "an uplift model takes at most one as-of time: where its hold-out starts"
                        .into(),
                ));
            }
        };
        let params = plan.params.clone().check()?;
        // The features are chosen from what the customers hold at the latest observation, as
        // the health model's are.
        let latest = latest_observation(store.as_ref()).await?;
        let mut chosen = SpecBuilder::default();
        read_customers(store.as_ref(), progress, |c| chosen.add(&c.history, latest)).await?;
        let spec = chosen.finish();
        progress(format!(
            "{} candidate features from the data; building one row per failure with a known {}-day outcome",
            spec.len(),
            plan.horizon_days
        ));
        let mut rows = UpliftRows::new(plan.horizon_days, spec);
        let customers = read_customers(store.as_ref(), progress, |c| {
            rows.add(&c.history, c.churn.as_ref())
        })
        .await?;
        let unlabelled = rows.unlabelled();
        let split = rows.split(holdout).without_constant_features();
        let (train_treated, train_control) = groups(&split.train);
        let (holdout_treated, holdout_control) = groups(&split.holdout);
        progress(format!(
            "{customers} customers: {} training rows ({train_treated} recovered), {} hold-out rows ({holdout_treated} recovered), {} between them left out, {unlabelled} failures too recent to have an outcome; hold-out: {}",
            split.train.len(),
            split.holdout.len(),
            split.embargoed,
            split.describe()
        ));
        if split.train.is_empty() && !split.holdout.is_empty() {
            return Err(TrainingError::NotEnoughData(format!(
                "the hold-out ({}) takes all {} failures with a known outcome and {} more lie within a horizon before it, so none is left to train on: give an earlier --as-of, or none to let training choose",
                split.describe(),
                split.holdout.len(),
                split.embargoed
            )));
        }
        if train_treated < plan.min_outcomes || train_control < plan.min_outcomes {
            return Err(TrainingError::NotEnoughData(format!(
                "{train_treated} recovered and {train_control} unrecovered failures with a known outcome to train on (hold-out: {}); at least {} of each are needed (min_outcomes): store more recovery cases and outcomes, or lower min_outcomes",
                split.describe(),
                plan.min_outcomes
            )));
        }
        if holdout_treated == 0 || holdout_control == 0 {
            return Err(TrainingError::NotEnoughData(format!(
                "the hold-out ({}) needs recovered and unrecovered failures ({holdout_treated} recovered, {holdout_control} not)",
                split.describe()
            )));
        }
        for (group, treated) in [("recovered", true), ("unrecovered", false)] {
            let outcomes = split.train.iter().filter(|r| r.treated() == treated);
            let retained = outcomes.clone().filter(|r| r.retained).count();
            let total = outcomes.count();
            if retained == 0 || retained == total {
                return Err(TrainingError::NotEnoughData(format!(
                    "the {group} training failures need both retained and churned customers ({retained} of {total} retained)"
                )));
            }
        }
        progress(format!(
            "fitting {} learners on {} rows of {} features",
            UpliftLearner::ALL.len(),
            split.train.len(),
            split.spec.len()
        ));
        Ok(UpliftTrainingRows { split, params })
    }

    fn fit(
        rows: UpliftTrainingRows,
        plan: &TrainingPlan,
        version: NewVersion,
    ) -> Result<Fitted<Self>, TrainingError> {
        let UpliftTrainingRows { split, params } = rows;
        let training = UpliftTraining {
            learners: UpliftLearner::ALL.to_vec(),
            replicates: train::DEFAULT_REPLICATES,
            params,
            horizon_days: plan.horizon_days,
            version: version.version,
            created_at: version.created_at,
            cancellation: plan.cancellation.clone(),
        };
        let Trained {
            artifact,
            holdout_weights,
            mut notes,
        } = train::train(&split, &training)?;
        let metrics = artifact.metrics.clone();
        notes.push(format!(
            "hold-out Qini coefficient {:.4}, uplift@10% {}",
            metrics.qini_coefficient,
            metrics
                .uplift_at
                .first()
                .and_then(|u| u.uplift)
                .map_or("undefined".to_owned(), |u| format!("{u:.4}"))
        ));
        Ok(Fitted {
            artifact,
            metrics,
            holdout: UpliftHoldout {
                rows: split.holdout,
                weights: holdout_weights,
            },
            notes,
        })
    }

    fn judge(
        active: &Self,
        holdout: &UpliftHoldout,
    ) -> Result<Option<UpliftMetrics>, TrainingError> {
        Ok(Some(train::evaluate(
            active,
            &holdout.rows,
            &holdout.weights,
        )?))
    }

    fn gate_value(metrics: &UpliftMetrics) -> f64 {
        metrics.qini_coefficient
    }

    fn seal(artifact: &mut UpliftArtifact) -> Result<String, ModelError> {
        artifact.to_json()
    }
}

/// Recovered and unrecovered rows.
fn groups(rows: &[UpliftRow]) -> (usize, usize) {
    let treated = rows.iter().filter(|r| r.treated()).count();
    (treated, rows.len() - treated)
}
