//! The retention models an uplift is the difference of — P(retained | customer, recovered with
//! an action at a quality) and P(retained | customer, not recovered) — and the three ways of
//! learning them, each over either churn learner (logistic regression or boosted trees):
//!
//! - **S-learner**: one model of every failure, reading the customer's features, the treatment
//!   inputs and a recovered flag. It learns the customer's risk from every failure; with the
//!   logistic learner the effect of recovering is the same shift of the logit for everyone,
//!   so its uplift differs between customers only as their risk does.
//! - **T-learner**: one model of the recovered failures (features and treatment inputs) and
//!   one of the others (features). Effects may differ freely between customers, at the price
//!   of the difference of two models' errors.
//! - **DR-learner** (doubly robust, Kennedy 2020, in residual form): the S-learner, corrected.
//!   Each training failure gets a doubly-robust estimate of what recovering did for that
//!   customer — the S-learner's uplift plus its residual weighted by the inverse propensity —
//!   from models fitted on the other half of the customers (cross-fitting, so no row judges a
//!   model that saw it); a regression of how far that estimate lies from the S-learner's own
//!   uplift on the features is the correction. It learns the differences between customers'
//!   effects the S-learner cannot express (with the logistic learner, any beyond their risk)
//!   where the data show them, and where they do not, the regression — ridge with its strength
//!   chosen by cross-validation, or early-stopped trees — shrinks it to a constant: the
//!   doubly-robust correction of the average effect. Actions and qualities are told apart by
//!   the S-learner's model, shifted by the correction.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::mix::ProgramMix;
use super::propensity;
use super::rows::UpliftRow;
use super::treatment::{Quality, Treatments};
use crate::domain::{RecoveryAction, Segment};
use crate::model::{
    Dataset, FittedModel, Learner, ModelError, Regression, TreeParams, ValidTrainParams,
    fit_regression,
};

/// How the retention models are learnt from the failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaLearner {
    SLearner,
    TLearner,
    DrLearner,
}

impl MetaLearner {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SLearner => "s_learner",
            Self::TLearner => "t_learner",
            Self::DrLearner => "dr_learner",
        }
    }
}

/// A meta-learner over a churn learner: one candidate of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpliftLearner {
    pub meta: MetaLearner,
    pub base: Learner,
}

impl UpliftLearner {
    /// Every candidate a training run fits, simplest first: the linear learners before the
    /// trees, and within each the S-learner, then the DR-learner (the S-learner with a
    /// correction shrunk to a constant unless the data show more), then the T-learner (two
    /// free models).
    pub const ALL: [Self; 6] = [
        Self::new(MetaLearner::SLearner, Learner::Logistic),
        Self::new(MetaLearner::DrLearner, Learner::Logistic),
        Self::new(MetaLearner::TLearner, Learner::Logistic),
        Self::new(MetaLearner::SLearner, Learner::Trees),
        Self::new(MetaLearner::DrLearner, Learner::Trees),
        Self::new(MetaLearner::TLearner, Learner::Trees),
    ];

    pub const fn new(meta: MetaLearner, base: Learner) -> Self {
        Self { meta, base }
    }

    /// How reports and the API call it, e.g. `dr_learner/trees`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.meta.as_str(), self.base.name())
    }

    /// The learner a name of [`Self::name`] names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The fitted retention models. Treatment inputs (the artifact's [`Treatments`]) follow the
/// features wherever a model reads them.
///
/// Externally tagged, as [`FittedModel`] (a booster cannot be read through serde's buffer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionModels {
    /// The S-learner's one model: features, treatment inputs, then the recovered flag.
    Joint(FittedModel),
    /// The T-learner's two models.
    Separate {
        /// Features and treatment inputs.
        recovered: FittedModel,
        /// Features.
        not_recovered: FittedModel,
    },
    /// The DR-learner: the S-learner's model, and the correction of its uplift.
    DoublyRobust {
        joint: FittedModel,
        correction: Regression,
    },
}

impl RetentionModels {
    /// P(retained | not recovered) for `features`.
    pub fn if_not(&self, treatments: &Treatments, features: &[f64]) -> f64 {
        match self {
            Self::Joint(model) | Self::DoublyRobust { joint: model, .. } => {
                let mut inputs = features.to_vec();
                inputs.extend(std::iter::repeat_n(0.0, treatments.width() + 1));
                model.probability(&inputs)
            }
            Self::Separate { not_recovered, .. } => not_recovered.probability(features),
        }
    }

    /// P(retained | recovered with `action` at `quality`) as the outcome models alone say it
    /// (for the DR-learner, before its [`Self::correction`]).
    pub fn outcome_if_recovered(
        &self,
        treatments: &Treatments,
        features: &[f64],
        action: RecoveryAction,
        quality: &Quality,
    ) -> f64 {
        let mut inputs = Vec::with_capacity(features.len() + treatments.width() + 1);
        inputs.extend_from_slice(features);
        treatments.encode(action, quality, &mut inputs);
        match self {
            Self::Joint(model) | Self::DoublyRobust { joint: model, .. } => {
                inputs.push(1.0);
                model.probability(&inputs)
            }
            Self::Separate { recovered, .. } => recovered.probability(&inputs),
        }
    }

    /// What the DR-learner adds to the outcome models' retention if recovered; 0 for the
    /// others.
    pub fn correction(&self, features: &[f64]) -> f64 {
        match self {
            Self::DoublyRobust { correction, .. } => correction.predict(features),
            _ => 0.0,
        }
    }

    /// Refuses models whose inputs do not match `features` customer features.
    pub(crate) fn check_inputs(
        &self,
        features: usize,
        treatments: &Treatments,
    ) -> Result<(), ModelError> {
        let treated = features + treatments.width();
        match self {
            Self::Joint(model) => model.check_inputs(treated + 1),
            Self::Separate {
                recovered,
                not_recovered,
            } => {
                recovered.check_inputs(treated)?;
                not_recovered.check_inputs(features)
            }
            Self::DoublyRobust { joint, correction } => {
                joint.check_inputs(treated + 1)?;
                if correction.inputs() != features {
                    return Err(ModelError::ArtifactLengthMismatch {
                        part: "correction inputs",
                        features,
                        found: correction.inputs(),
                    });
                }
                Ok(())
            }
        }
    }

    /// JSON carries no NaN or infinity.
    pub(crate) fn check_finite(&self) -> Result<(), ModelError> {
        match self {
            Self::Joint(model) => model.check_finite(),
            Self::Separate {
                recovered,
                not_recovered,
            } => {
                recovered.check_finite()?;
                not_recovered.check_finite()
            }
            Self::DoublyRobust { joint, correction } => {
                joint.check_finite()?;
                correction.check_finite()
            }
        }
    }
}

/// P(retained | recovered the way the program recovers `segment`) by the outcome models:
/// its actions at its quality mix.
pub fn program_outcome_if_recovered(
    models: &RetentionModels,
    treatments: &Treatments,
    mix: &ProgramMix,
    features: &[f64],
    segment: Segment,
) -> f64 {
    mix.over_program(segment, |action, quality| {
        models.outcome_if_recovered(treatments, features, action, quality)
    })
}

/// The seed of the DR-learner's cross-fitting halves: fixed, so the same rows give the same
/// model.
const CROSS_FIT_SEED: u64 = 0xc405_5f17;

/// Fits the retention models on `rows` (which need recovered and not-recovered failures,
/// each with retained and churned customers). `mix` is the program's, learnt from the same
/// rows: the DR-learner's effect is of recovering the way it does. `treatments` are the
/// inputs the recovered models read after the features.
pub fn fit(
    learner: UpliftLearner,
    rows: &[UpliftRow],
    mix: &ProgramMix,
    treatments: &Treatments,
    params: &ValidTrainParams,
) -> Result<RetentionModels, ModelError> {
    let with_flag = Inputs::TreatmentAndFlag(treatments);
    let (treated, control): (Vec<&UpliftRow>, Vec<&UpliftRow>) =
        rows.iter().partition(|r| r.treated());
    let base = learner.base;
    match learner.meta {
        MetaLearner::SLearner => {
            let all: Vec<&UpliftRow> = rows.iter().collect();
            Ok(RetentionModels::Joint(fit_outcome(
                base, &all, with_flag, params,
            )?))
        }
        MetaLearner::TLearner => Ok(RetentionModels::Separate {
            recovered: fit_outcome(base, &treated, Inputs::Treatment(treatments), params)?,
            not_recovered: fit_outcome(base, &control, Inputs::Features, params)?,
        }),
        MetaLearner::DrLearner => {
            let all: Vec<&UpliftRow> = rows.iter().collect();
            let joint = RetentionModels::Joint(fit_outcome(base, &all, with_flag, params)?);
            let targets: Vec<f64> = doubly_robust_estimates(base, rows, mix, treatments, params)?
                .into_iter()
                .zip(rows)
                .map(|(estimate, row)| estimate - program_uplift(&joint, treatments, mix, row))
                .collect();
            let features = feature_matrix(&all)?;
            let correction =
                fit_regression(base, features.view(), &targets, &TreeParams::default())?;
            let RetentionModels::Joint(joint) = joint else {
                unreachable!("fitted as a joint model above")
            };
            Ok(RetentionModels::DoublyRobust { joint, correction })
        }
    }
}

/// The uplift of recovering `row`'s customer the way the program does, by `models`.
fn program_uplift(
    models: &RetentionModels,
    treatments: &Treatments,
    mix: &ProgramMix,
    row: &UpliftRow,
) -> f64 {
    program_outcome_if_recovered(models, treatments, mix, &row.features, row.segment)
        - models.if_not(treatments, &row.features)
}

/// Each row's doubly-robust estimate of what recovering as the program does changed for it:
/// `τ(x) + T·(Y − μ₁(x, t))/e(x) − (1 − T)·(Y − μ₀(x))/(1 − e(x))`, with the S-learner's
/// outcome models μ (and their uplift τ) and the propensity e fitted on the other half of the
/// customers.
fn doubly_robust_estimates(
    base: Learner,
    rows: &[UpliftRow],
    mix: &ProgramMix,
    treatments: &Treatments,
    params: &ValidTrainParams,
) -> Result<Vec<f64>, ModelError> {
    let half = |row: &UpliftRow| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (CROSS_FIT_SEED, row.customer_id.as_str()).hash(&mut hasher);
        hasher.finish() % 2
    };
    let (low, high) = propensity::PROPENSITY_RANGE;
    let mut estimates = vec![0.0; rows.len()];
    for fold in 0..2 {
        let others: Vec<&UpliftRow> = rows.iter().filter(|r| half(r) != fold).collect();
        let outcomes = RetentionModels::Joint(fit_outcome(
            base,
            &others,
            Inputs::TreatmentAndFlag(treatments),
            params,
        )?);
        let propensity = propensity::fit(&others, params)?;
        for (row, estimate) in rows.iter().zip(estimates.iter_mut()) {
            if half(row) != fold {
                continue;
            }
            let if_not = outcomes.if_not(treatments, &row.features);
            let e = propensity.probability(&row.features).clamp(low, high);
            let outcome = f64::from(u8::from(row.retained));
            let correction = match &row.treatment {
                Some(t) => {
                    let fitted = outcomes.outcome_if_recovered(
                        treatments,
                        &row.features,
                        t.action,
                        &t.quality,
                    );
                    (outcome - fitted) / e
                }
                None => -(outcome - if_not) / (1.0 - e),
            };
            *estimate = program_uplift(&outcomes, treatments, mix, row) + correction;
        }
    }
    Ok(estimates)
}

/// What a fitted model reads: the features, then the treatment inputs, then the recovered flag.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Inputs<'t> {
    Features,
    Treatment(&'t Treatments),
    TreatmentAndFlag(&'t Treatments),
}

fn fit_outcome(
    base: Learner,
    rows: &[&UpliftRow],
    inputs: Inputs<'_>,
    params: &ValidTrainParams,
) -> Result<FittedModel, ModelError> {
    FittedModel::fit(base, &dataset(rows, inputs)?, params)
}

/// The rows' features, one row per failure.
pub(super) fn feature_matrix(rows: &[&UpliftRow]) -> Result<Array2<f64>, ModelError> {
    Ok(dataset(rows, Inputs::Features)?.features)
}

fn dataset(rows: &[&UpliftRow], inputs: Inputs<'_>) -> Result<Dataset, ModelError> {
    let features = rows.first().map_or(0, |r| r.features.len());
    let width = match inputs {
        Inputs::Features => features,
        Inputs::Treatment(treatments) => features + treatments.width(),
        Inputs::TreatmentAndFlag(treatments) => features + treatments.width() + 1,
    };
    let mut values = Vec::with_capacity(rows.len() * width);
    for row in rows {
        values.extend_from_slice(&row.features);
        match (inputs, &row.treatment) {
            (Inputs::Features, _) => {}
            (Inputs::Treatment(treatments), Some(t)) => {
                treatments.encode(t.action, &t.quality, &mut values)
            }
            (Inputs::Treatment(treatments), None) => {
                values.extend(std::iter::repeat_n(0.0, treatments.width()))
            }
            (Inputs::TreatmentAndFlag(treatments), Some(t)) => {
                treatments.encode(t.action, &t.quality, &mut values);
                values.push(1.0);
            }
            (Inputs::TreatmentAndFlag(treatments), None) => {
                values.extend(std::iter::repeat_n(0.0, treatments.width() + 1))
            }
        }
    }
    let matrix = Array2::from_shape_vec((rows.len(), width), values).map_err(|_| {
        ModelError::FeatureCountMismatch {
            expected: width,
            actual: values_width(rows),
        }
    })?;
    Dataset::new(matrix, rows.iter().map(|r| r.retained).collect())
}

/// The width of the first row whose width differs from the first's: what made a matrix
/// ragged.
fn values_width(rows: &[&UpliftRow]) -> usize {
    let first = rows.first().map_or(0, |r| r.features.len());
    rows.iter()
        .map(|r| r.features.len())
        .find(|&w| w != first)
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_learner_has_a_name_that_reads_back() {
        for learner in UpliftLearner::ALL {
            assert_eq!(UpliftLearner::parse(&learner.name()), Some(learner));
        }
        assert_eq!(
            UpliftLearner::ALL[4].name(),
            "dr_learner/trees",
            "the names the API shows"
        );
        assert_eq!(UpliftLearner::parse("s_learner"), None);
    }
}
