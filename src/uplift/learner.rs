//! The retention models an uplift is the difference of — P(retained | customer, recovered with
//! an action at a quality) and P(retained | customer, not recovered) — and the four ways of
//! learning them, over either churn learner (logistic regression or boosted trees):
//!
//! - **Interaction learner** (logistic only): the S-learner with an effect term per feature,
//!   shrunk by a penalty cross-validation chooses — see [`fit_interacting`].
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
    Dataset, FittedModel, Learner, LogisticFit, LogisticModel, ModelError, Regression, TrainParams,
    TreeParams, ValidTrainParams, fit_regression, train_logistic_with,
};

/// How the retention models are learnt from the failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaLearner {
    SLearner,
    /// The S-learner with effect terms: see [`fit_interacting`].
    InteractionLearner,
    TLearner,
    DrLearner,
}

impl MetaLearner {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SLearner => "s_learner",
            Self::InteractionLearner => "interaction_learner",
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
    /// free models). The interaction learner leads: its cross-validation on the training
    /// customers has already chosen how far effects may differ, and it is the S-learner
    /// unless they do.
    pub const ALL: [Self; 7] = [
        Self::new(MetaLearner::InteractionLearner, Learner::Logistic),
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
    /// The interaction learner's one model: features, treatment inputs, the recovered flag,
    /// then the recovered flag times each feature.
    Interacting {
        model: FittedModel,
        /// The effect terms' L2 penalty per training row that cross-validation chose.
        effect_penalty: f64,
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
            Self::Interacting { model, .. } => {
                let mut inputs = features.to_vec();
                inputs.extend(std::iter::repeat_n(
                    0.0,
                    treatments.width() + 1 + features.len(),
                ));
                model.probability(&inputs)
            }
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
            Self::Interacting { model, .. } => {
                inputs.push(1.0);
                inputs.extend_from_slice(features);
                model.probability(&inputs)
            }
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
            Self::Interacting { model, .. } => model.check_inputs(treated + 1 + features),
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
            Self::Interacting {
                model,
                effect_penalty,
            } => {
                if !effect_penalty.is_finite() {
                    return Err(ModelError::ArtifactNonFinite {
                        field: "effect penalty",
                        value: *effect_penalty,
                    });
                }
                model.check_finite()
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
        MetaLearner::InteractionLearner => fit_interacting(base, rows, treatments, params),
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

/// Fits `learner` on `rows` as `like` was fitted: the same learner with the complexity its
/// cross-validation chose (the interaction learner's effect penalty) instead of choosing it
/// anew. Bootstrap replicates are fitted so, to show how the estimate moves with the sample.
pub fn refit_like(
    like: &RetentionModels,
    learner: UpliftLearner,
    rows: &[UpliftRow],
    mix: &ProgramMix,
    treatments: &Treatments,
    params: &ValidTrainParams,
) -> Result<RetentionModels, ModelError> {
    match like {
        RetentionModels::Interacting { effect_penalty, .. } => interacting(
            &interacting_dataset(rows.iter(), treatments)?,
            treatments,
            params,
            *effect_penalty,
        ),
        _ => fit(learner, rows, mix, treatments, params),
    }
}

/// Effect-term penalties tried, per training row, strongest first (each fit starts from the
/// one before). A standardized input's information per row is about P·(1 − P) ≤ 0.25 on the
/// logit scale, so 0.2 about halves an effect term, 0.01 leaves nearly all of it and 100
/// almost none: the S-learner.
const EFFECT_PENALTY_GRID: [f64; 8] = [100.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001];
/// Folds of the cross-validation that chooses the effect penalty; customers, not failures,
/// are split.
const EFFECT_PENALTY_FOLDS: u64 = 3;

/// The interaction learner (Lo's "true lift model", 2002, penalised): the S-learner's one
/// model with an effect term for each feature — the recovered flag times the feature — so
/// recovering may shift each customer's logit by its own amount, by what they are and did.
/// Main effects keep the S-learner's light penalty; the effect terms get a penalty of their
/// own, chosen by cross-validated log-loss over the customers: where the data show no
/// effect that differs between customers it shrinks them away and the model is the
/// S-learner, where they do it keeps as much as predicts outcomes better on customers it did
/// not see. Only the logistic learner has a penalty to choose; trees model interactions
/// anyway (the S-learner over trees).
fn fit_interacting(
    base: Learner,
    rows: &[UpliftRow],
    treatments: &Treatments,
    params: &ValidTrainParams,
) -> Result<RetentionModels, ModelError> {
    if base != Learner::Logistic {
        return Err(ModelError::InvalidParameter {
            name: "learner",
            reason: "the interaction learner is fitted over the logistic learner only".into(),
        });
    }
    let data = interacting_dataset(rows.iter(), treatments)?;
    let params = &converged(params)?;
    let penalty = cross_validated_effect_penalty(&data, rows, treatments, params)?;
    interacting(&data, treatments, params, penalty)
}

/// The effect penalty of [`EFFECT_PENALTY_GRID`] with the least log-loss summed over
/// [`EFFECT_PENALTY_FOLDS`] folds of the customers (the stronger of equals).
fn cross_validated_effect_penalty(
    data: &Dataset,
    rows: &[UpliftRow],
    treatments: &Treatments,
    params: &ValidTrainParams,
) -> Result<f64, ModelError> {
    let folds: Vec<u64> = rows
        .iter()
        .map(|row| customer_fold(row, EFFECT_PENALTY_FOLDS))
        .collect();
    let mut losses = vec![0.0; EFFECT_PENALTY_GRID.len()];
    for fold in 0..EFFECT_PENALTY_FOLDS {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..rows.len()).partition(|&i| folds[i] != fold);
        let (train, test) = (data.select(&train)?, data.select(&test)?);
        let mut previous: Option<LogisticModel> = None;
        for (loss, &penalty) in losses.iter_mut().zip(&EFFECT_PENALTY_GRID) {
            let model =
                fit_with_effect_penalty(&train, treatments, params, penalty, previous.as_ref())?;
            *loss += log_loss_sum(&model, &test);
            previous = Some(model);
        }
    }
    let (best, _) =
        losses
            .iter()
            .enumerate()
            .fold((0, f64::INFINITY), |(kept, least), (i, &loss)| {
                if loss < least {
                    (i, loss)
                } else {
                    (kept, least)
                }
            });
    Ok(EFFECT_PENALTY_GRID[best])
}

/// The interaction learner's inputs of `rows`.
fn interacting_dataset<'r>(
    rows: impl Iterator<Item = &'r UpliftRow>,
    treatments: &Treatments,
) -> Result<Dataset, ModelError> {
    dataset(&rows.collect::<Vec<_>>(), Inputs::Interacting(treatments))
}

/// The interaction learner's model of `data` at `effect_penalty`.
fn interacting(
    data: &Dataset,
    treatments: &Treatments,
    params: &ValidTrainParams,
    effect_penalty: f64,
) -> Result<RetentionModels, ModelError> {
    let model = fit_with_effect_penalty(data, treatments, params, effect_penalty, None)?;
    Ok(RetentionModels::Interacting {
        model: FittedModel::Logistic(model),
        effect_penalty,
    })
}

/// Gradient tolerance of the fits whose log-losses cross-validation compares: at the usual
/// tolerance (scikit-learn's 1e-4) a solve stops a few units of summed loss from its optimum,
/// as much as the effect terms change it, and the comparison would measure where each solve
/// stopped.
const CROSS_VALIDATION_TOLERANCE: f64 = 3e-5;

/// `params`, solved to [`CROSS_VALIDATION_TOLERANCE`] (or tighter, if they already are).
fn converged(params: &ValidTrainParams) -> Result<ValidTrainParams, ModelError> {
    TrainParams {
        l2_penalty: params.l2_penalty(),
        max_iterations: params.max_iterations().max(1_000),
        gradient_tolerance: params.gradient_tolerance().min(CROSS_VALIDATION_TOLERANCE),
    }
    .check()
}

/// The interaction learner's logistic model of `data` (interacting inputs) with `effect_penalty`
/// per row on the effect terms, started from `start` when given.
fn fit_with_effect_penalty(
    data: &Dataset,
    treatments: &Treatments,
    params: &ValidTrainParams,
    effect_penalty: f64,
    start: Option<&LogisticModel>,
) -> Result<LogisticModel, ModelError> {
    let columns = data.features.ncols();
    let effects_from = columns - (columns - treatments.width() - 1) / 2;
    // Over the summed loss, as the main effects' penalty is.
    let effect = effect_penalty * data.rows() as f64;
    let penalties: Vec<f64> = (0..columns)
        .map(|j| {
            if j >= effects_from {
                effect
            } else {
                params.l2_penalty()
            }
        })
        .collect();
    let fit = LogisticFit {
        column_penalties: &penalties,
        start,
    };
    train_logistic_with(data, params, &fit)
}

/// The summed log-loss of `model` on `data`.
fn log_loss_sum(model: &LogisticModel, data: &Dataset) -> f64 {
    model
        .predict_all(data.features.view())
        .iter()
        .zip(&data.labels)
        .map(|(&p, &label)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            -if label { p.ln() } else { (1.0 - p).ln() }
        })
        .sum()
}

/// Which of `folds` parts of the customers `row`'s customer is in: by a seeded hash of the id,
/// so a customer's failures stay together and the same rows give the same parts.
fn customer_fold(row: &UpliftRow, folds: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (CROSS_FIT_SEED, row.customer_id.as_str()).hash(&mut hasher);
    hasher.finish() % folds
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
    let half = |row: &UpliftRow| customer_fold(row, 2);
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
    /// Features, treatment inputs, the flag, then the flag times each feature.
    Interacting(&'t Treatments),
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
pub fn feature_matrix(rows: &[&UpliftRow]) -> Result<Array2<f64>, ModelError> {
    Ok(dataset(rows, Inputs::Features)?.features)
}

fn dataset(rows: &[&UpliftRow], inputs: Inputs<'_>) -> Result<Dataset, ModelError> {
    let features = rows.first().map_or(0, |r| r.features.len());
    let width = match inputs {
        Inputs::Features => features,
        Inputs::Treatment(treatments) => features + treatments.width(),
        Inputs::TreatmentAndFlag(treatments) => features + treatments.width() + 1,
        Inputs::Interacting(treatments) => 2 * features + treatments.width() + 1,
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
            (Inputs::Interacting(treatments), Some(t)) => {
                treatments.encode(t.action, &t.quality, &mut values);
                values.push(1.0);
                values.extend_from_slice(&row.features);
            }
            (Inputs::Interacting(treatments), None) => values.extend(std::iter::repeat_n(
                0.0,
                treatments.width() + 1 + row.features.len(),
            )),
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
    use crate::domain::{CustomerId, InteractionId, IssueTag, Timestamp};
    use crate::uplift::rows::Treatment;
    use rand::{Rng, SeedableRng};

    /// `n` failures of customers with two standard-normal features, recovered at random half
    /// the time, retained with logit `0.5 + 0.8·x₁`, plus `shift(x₀)` when recovered.
    fn failures(n: usize, shift: impl Fn(f64) -> f64, seed: u64) -> Vec<UpliftRow> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = rand_distr::StandardNormal;
        let action = RecoveryAction::named("apology").expect("a name");
        (0..n)
            .map(|i| {
                let (x0, x1): (f64, f64) = (rng.sample(normal), rng.sample(normal));
                let treated = rng.gen_bool(0.5);
                let logit = 0.5 + 0.8 * x1 + if treated { shift(x0) } else { 0.0 };
                UpliftRow {
                    customer_id: CustomerId::parse(format!("c{i}")).expect("an id"),
                    failure_id: InteractionId::parse(format!("f{i}")).expect("an id"),
                    failed_at: Timestamp::from_unix_micros(0),
                    tag: IssueTag::named("late_delivery").expect("a name"),
                    annual_value: 100.0,
                    segment: Segment::Consumer,
                    features: vec![x0, x1],
                    treatment: treated.then_some(Treatment {
                        action,
                        quality: Quality {
                            resurvey: Some(5),
                            cares: None,
                        },
                    }),
                    retained: rng.gen_bool(1.0 / (1.0 + (-logit).exp())),
                }
            })
            .collect()
    }

    /// The interaction learner fitted on `rows`: its change of the retention logit by
    /// recovering (with an apology rated 5/7) at `x₀ = −1` and `+1`.
    fn logit_shifts(rows: &[UpliftRow]) -> [f64; 2] {
        let action = RecoveryAction::named("apology").expect("a name");
        let treatments = Treatments::of(std::iter::once(action));
        let params = crate::model::TrainParams::default().check().expect("valid");
        let learner = UpliftLearner::new(MetaLearner::InteractionLearner, Learner::Logistic);
        let models =
            fit(learner, rows, &ProgramMix::default(), &treatments, &params).expect("fits");
        assert!(matches!(models, RetentionModels::Interacting { .. }));
        let logit = |p: f64| (p / (1.0 - p)).ln();
        let quality = Quality {
            resurvey: Some(5),
            cares: None,
        };
        [-1.0, 1.0].map(|x0| {
            let features = [x0, 0.0];
            logit(models.outcome_if_recovered(&treatments, &features, action, &quality))
                - logit(models.if_not(&treatments, &features))
        })
    }

    #[test]
    fn the_interaction_learner_finds_an_effect_that_grows_with_a_feature() {
        let [low, high] = logit_shifts(&failures(8_000, |x0| 0.2 + 0.6 * x0, 5));
        assert!(
            (high - low - 1.2).abs() < 0.4,
            "shift {low:.3} at x0 = -1, {high:.3} at +1; the truth -0.4 and 0.8"
        );
    }

    #[test]
    fn the_interaction_learner_keeps_an_effect_the_same_for_everyone_when_it_is() {
        let [low, high] = logit_shifts(&failures(8_000, |_| 0.6, 5));
        assert!(
            (high - low).abs() < 0.15 && (low - 0.6).abs() < 0.2,
            "shift {low:.3} at x0 = -1, {high:.3} at +1; the truth 0.6 for both"
        );
    }

    #[test]
    fn every_learner_has_a_name_that_reads_back() {
        for learner in UpliftLearner::ALL {
            assert_eq!(UpliftLearner::parse(&learner.name()), Some(learner));
        }
        assert_eq!(
            UpliftLearner::ALL.map(|l| l.name()),
            [
                "interaction_learner/logistic",
                "s_learner/logistic",
                "dr_learner/logistic",
                "t_learner/logistic",
                "s_learner/trees",
                "dr_learner/trees",
                "t_learner/trees",
            ],
            "the names the API shows, in the order a run prefers them"
        );
        assert_eq!(UpliftLearner::parse("s_learner"), None);
    }
}
