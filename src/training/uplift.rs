//! Training the recovery uplift model from stored data: one row per failure with a known
//! outcome, the split by time, the fit off the async threads, the hold-out Qini metrics of the
//! new model and of the active one on the same rows, and the promotion gate.

use std::sync::Arc;

use super::{TrainingError, TrainingPlan, check_plan, gate, read_customers};
use crate::domain::Timestamp;
use crate::registry;
use crate::store::{ModelStatus, Store, StoredModel};
use crate::uplift::rows::DEFAULT_HOLDOUT_SHARE;
use crate::uplift::train::{self, LEARNER, Trained, UpliftTraining};
use crate::uplift::{
    HoldoutStart, UPLIFT_MODEL_KIND, UpliftArtifact, UpliftMetrics, UpliftModel, UpliftRow,
    UpliftRows, UpliftSlot,
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

/// What an uplift training run produced and decided.
#[derive(Debug, Clone)]
pub struct UpliftTrainingReport {
    pub model: StoredModel,
    pub artifact: UpliftArtifact,
    /// The uplift model that was active before, with its metrics on the same hold-out.
    pub active_on_same_holdout: Option<(String, UpliftMetrics)>,
    pub promoted: bool,
    pub decision: String,
}

/// Trains an uplift model on every stored failure with a known outcome, registers it, and
/// promotes it through the gate (or not). `slot` is the serving slot to swap on promotion.
pub async fn train_uplift_model(
    store: &Arc<dyn Store>,
    slot: &UpliftSlot,
    plan: TrainingPlan,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<UpliftTrainingReport, TrainingError> {
    check_plan(&plan)?;
    if plan.min_outcomes == 0 {
        return Err(TrainingError::Invalid(
            "min_outcomes must be at least 1".into(),
        ));
    }
    let holdout = match plan.as_of.as_slice() {
        [] => HoldoutStart::NewestShare(DEFAULT_HOLDOUT_SHARE),
        [at] => HoldoutStart::At(*at),
        _ => {
            return Err(TrainingError::Invalid(
                "an uplift model takes at most one as-of time: where its hold-out starts".into(),
            ));
        }
    };
    let params = plan.params.clone().check()?;
    progress(format!(
        "building one row per failure with a known {}-day outcome",
        plan.horizon_days
    ));
    let mut rows = UpliftRows::new(plan.horizon_days);
    let customers = read_customers(store.as_ref(), progress, |c| {
        rows.add(&c.history, c.churn.as_ref())
    })
    .await?;
    let unlabelled = rows.unlabelled();
    let split = rows.split(holdout);
    let (train_treated, train_control) = groups(&split.train);
    let (holdout_treated, holdout_control) = groups(&split.holdout);
    progress(format!(
        "{customers} customers: {} training rows ({train_treated} recovered), {} hold-out rows ({holdout_treated} recovered), {} between them left out, {unlabelled} failures too recent to have an outcome",
        split.train.len(),
        split.holdout.len(),
        split.embargoed
    ));
    if train_treated < plan.min_outcomes || train_control < plan.min_outcomes {
        return Err(TrainingError::NotEnoughData(format!(
            "{train_treated} recovered and {train_control} unrecovered failures with a known outcome to train on; at least {} of each are needed (min_outcomes)",
            plan.min_outcomes
        )));
    }
    if holdout_treated == 0 || holdout_control == 0 {
        return Err(TrainingError::NotEnoughData(format!(
            "the hold-out needs recovered and unrecovered failures ({holdout_treated} recovered, {holdout_control} not)"
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

    let created_at = Timestamp::now();
    let training = UpliftTraining {
        learner: LEARNER,
        params,
        horizon_days: plan.horizon_days,
        version: registry::new_version(UPLIFT_MODEL_KIND, created_at),
        created_at,
    };
    progress(format!(
        "fitting the {} on {} rows",
        LEARNER.as_str(),
        split.train.len()
    ));
    let (trained, split) = tokio::task::spawn_blocking(move || {
        train::train(&split, &training).map(|trained| (trained, split))
    })
    .await
    .map_err(|e| TrainingError::Task(e.to_string()))??;
    let Trained {
        mut artifact,
        holdout_weights,
    } = trained;
    let metrics = artifact.metrics.clone();
    progress(format!(
        "hold-out Qini coefficient {:.4}, uplift@10% {}",
        metrics.qini_coefficient,
        metrics
            .uplift_at
            .first()
            .and_then(|u| u.uplift)
            .map_or("undefined".to_owned(), |u| format!("{u:.4}"))
    ));

    let json = artifact.to_json()?;
    let stored = StoredModel {
        version: artifact.version.clone(),
        kind: UPLIFT_MODEL_KIND.to_owned(),
        status: ModelStatus::Candidate,
        source: registry::SOURCE_TRAINED.to_owned(),
        artifact: json,
        created_at,
        activated_at: None,
    };
    store.insert_model(&stored).await?;

    // The active model, judged on exactly the new model's hold-out rows.
    let active = match store.active_model(UPLIFT_MODEL_KIND).await? {
        Some(active) => match UpliftModel::from_artifact_json(&active.artifact) {
            Ok(loaded) => Some((
                active.version,
                train::evaluate(&loaded, &split.holdout, &holdout_weights)?,
            )),
            // A model of another feature or treatment schema cannot score these rows.
            Err(_) => None,
        },
        None => None,
    };
    let (promote, decision) = gate(
        plan.auto_promote,
        "Qini coefficient",
        metrics.qini_coefficient,
        active
            .as_ref()
            .map(|(v, m)| (v.as_str(), m.qini_coefficient)),
        plan.promotion_margin,
    );
    let model = if promote {
        registry::activate_uplift(store.as_ref(), slot, &stored.version).await?
    } else {
        stored
    };
    progress(decision.clone());
    Ok(UpliftTrainingReport {
        model,
        artifact,
        active_on_same_holdout: active,
        promoted: promote,
        decision,
    })
}

/// Recovered and unrecovered rows.
fn groups(rows: &[UpliftRow]) -> (usize, usize) {
    let treated = rows.iter().filter(|r| r.treated()).count();
    (treated, rows.len() - treated)
}
