//! From split rows to a sealed-ready artifact: learn the program mix from the training
//! recoveries, fit every candidate learner on the training rows, measure each on the hold-out
//! (each failure weighted by its inverse propensity) and keep the simplest whose Qini
//! coefficient is within two standard errors of the best (see [`choose`]); the others within
//! them widen the kept model's intervals.

use super::artifact::{UPLIFT_ARTIFACT_SCHEMA_VERSION, UpliftArtifact, UpliftCandidate};
use super::evaluation::{self, UpliftMetrics};
use super::learner::{self, RetentionModels, UpliftLearner};
use super::mix::ProgramMix;
use super::model::UpliftModel;
use super::propensity;
use super::rows::{UpliftRow, UpliftSplit};
use super::treatment::{TREATMENT_SCHEMA_VERSION, Treatments};
use crate::domain::Timestamp;
use crate::model::{ModelError, ModelKind, ValidTrainParams};

/// What to fit, and what to call the model.
#[derive(Debug, Clone)]
pub struct UpliftTraining {
    /// The candidates, simplest first: the first wins a tie.
    pub learners: Vec<UpliftLearner>,
    /// Bootstrap replicates of the kept learner, for the uplift's interval (0: none).
    pub replicates: usize,
    pub params: ValidTrainParams,
    pub horizon_days: u32,
    pub version: String,
    pub created_at: Timestamp,
    /// Looked at before each candidate and each replicate is fitted.
    pub cancellation: crate::model::Cancellation,
}

/// A trained model and how its hold-out was weighted.
#[derive(Debug, Clone)]
pub struct Trained {
    pub artifact: UpliftArtifact,
    /// Each hold-out row's inverse-propensity weight, to judge other models on the same rows
    /// the same way.
    pub holdout_weights: Vec<f64>,
    /// One line per candidate: its hold-out Qini, or why it could not be fitted.
    pub notes: Vec<String>,
}

/// Trains every candidate on `split.train` and keeps one by `split.holdout` ([`choose`]). Both need
/// recovered and not-recovered failures, and the training rows of each group both outcomes.
pub fn train(split: &UpliftSplit, training: &UpliftTraining) -> Result<Trained, ModelError> {
    let (Some(first), Some(last)) = (split.train.first(), split.train.last()) else {
        return Err(ModelError::EmptyDataset);
    };
    let program_mix = ProgramMix::learn(
        split
            .train
            .iter()
            .filter_map(|row| Some((row.segment, row.treatment.as_ref()?)))
            .map(|(segment, t)| (segment, t.action, &t.quality)),
    );
    // An input for each action the training cases took: the program's own actions.
    let treatments = Treatments::of(
        split
            .train
            .iter()
            .filter_map(|row| Some(row.treatment.as_ref()?.action)),
    );
    let holdout_weights = propensity::inverse_propensity_weights(&split.holdout, &training.params)?;
    let artifact_of = |learner: UpliftLearner, models: RetentionModels| UpliftArtifact {
        artifact_schema: UPLIFT_ARTIFACT_SCHEMA_VERSION,
        kind: ModelKind::Uplift,
        version: training.version.clone(),
        learner,
        features: split.spec.clone(),
        treatment_schema: TREATMENT_SCHEMA_VERSION,
        treatment_names: treatments.names(),
        treatments: treatments.clone(),
        horizon_days: training.horizon_days,
        models,
        replicates: Vec::new(),
        alternatives: Vec::new(),
        calibration_error: 0.0,
        program_mix: program_mix.clone(),
        metrics: UpliftMetrics::default(),
        candidates: Vec::new(),
        trained_from: first.failed_at,
        trained_to: last.failed_at,
        holdout_from: split.holdout_from,
        holdout: split.describe(),
        training_rows: split.train.len() as u64,
        training_treated: split.train.iter().filter(|r| r.treated()).count() as u64,
        holdout_rows: split.holdout.len() as u64,
        created_at: training.created_at,
        checksum: String::new(),
    };
    let mut notes = Vec::new();
    let mut fitted: Vec<(UpliftArtifact, Vec<f64>)> = Vec::new();
    let mut last_error = None;
    for &learner in &training.learners {
        training.cancellation.check()?;
        let models = match learner::fit(
            learner,
            &split.train,
            &program_mix,
            &treatments,
            &training.params,
        ) {
            Ok(models) => models,
            Err(error) => {
                notes.push(format!("{}: not fitted: {error}", learner.name()));
                last_error = Some(error);
                continue;
            }
        };
        let mut candidate = artifact_of(learner, models);
        let scores = scores(&UpliftModel::from_artifact(&candidate), &split.holdout);
        candidate.metrics = metrics_of(&scores, &split.holdout, &holdout_weights)?;
        notes.push(format!(
            "{}: hold-out Qini coefficient {:.4} (unweighted {:.4})",
            learner.name(),
            candidate.metrics.qini_coefficient,
            candidate.metrics.unweighted_qini_coefficient
        ));
        fitted.push((candidate, scores));
    }
    let Choice {
        kept: chosen,
        alike,
    } = choose(&fitted, &split.holdout, &holdout_weights, &mut notes)?
        .ok_or_else(|| last_error.unwrap_or(ModelError::EmptyDataset))?;
    let alternatives: Vec<RetentionModels> = alike
        .iter()
        .filter(|&&i| i != chosen)
        .map(|&i| fitted[i].0.models.clone())
        .collect();
    let candidates = fitted
        .iter()
        .map(|(a, _)| UpliftCandidate {
            learner: a.learner,
            metrics: a.metrics.clone(),
        })
        .collect();
    let (mut artifact, kept_scores) = fitted.swap_remove(chosen);
    artifact.candidates = candidates;
    artifact.alternatives = alternatives;
    artifact.calibration_error = calibration_error(
        &UpliftModel::from_artifact(&artifact),
        &kept_scores,
        &split.holdout,
        &holdout_weights,
    );
    notes.push(format!(
        "hold-out calibration: the {} model's uplift is off by {:.4} beyond chance (in tenths by predicted uplift and by risk); its intervals widen by that",
        artifact.learner.name(),
        artifact.calibration_error
    ));
    artifact.replicates = replicates(
        &artifact.models,
        artifact.learner,
        &split.train,
        &program_mix,
        &treatments,
        training,
    )?;
    if training.replicates > 0 {
        notes.push(format!(
            "{} bootstrap replicates of the {} model for the uplift's interval",
            artifact.replicates.len(),
            artifact.learner.name()
        ));
    }
    Ok(Trained {
        artifact,
        holdout_weights,
        notes,
    })
}

/// Which fitted candidate to keep: the first (the simplest, as listed) whose hold-out Qini
/// coefficient is within [`SELECTION_STANDARD_ERRORS`] standard errors of the best one's —
/// the spread of their difference over bootstrap draws of the hold-out. A Qini coefficient on
/// a few thousand failures moves by about as much as recovery's effect on it, so the best of
/// several is partly the luckiest; a more complex learner is kept only when it beats every
/// simpler one by more than that luck.
fn choose(
    fitted: &[(UpliftArtifact, Vec<f64>)],
    holdout: &[UpliftRow],
    weights: &[f64],
    notes: &mut Vec<String>,
) -> Result<Option<Choice>, ModelError> {
    let qini = |i: usize| fitted[i].0.metrics.qini_coefficient;
    let Some(best) =
        (0..fitted.len()).reduce(|kept, i| if qini(i) > qini(kept) { i } else { kept })
    else {
        return Ok(None);
    };
    let treated: Vec<bool> = holdout.iter().map(UpliftRow::treated).collect();
    let retained: Vec<bool> = holdout.iter().map(|r| r.retained).collect();
    let mut alike = Vec::new();
    let mut spreads = Vec::new();
    for i in 0..fitted.len() {
        let spread = if i == best {
            0.0
        } else {
            evaluation::qini_difference_spread(
                &fitted[best].1,
                &fitted[i].1,
                &treated,
                &retained,
                weights,
                BOOTSTRAP_SEED,
            )?
        };
        if qini(best) - qini(i) <= SELECTION_STANDARD_ERRORS * spread {
            alike.push(i);
            spreads.push(spread);
        }
    }
    let (kept, spread) = (alike[0], spreads[0]);
    notes.push(if kept == best {
        format!(
            "kept the {} model: the best Qini coefficient, by more than {SELECTION_STANDARD_ERRORS} standard errors over every simpler learner",
            fitted[best].0.learner.name()
        )
    } else {
        format!(
            "kept the {} model: its Qini coefficient is within {SELECTION_STANDARD_ERRORS} standard errors ({spread:.4} each) of the best, the {} model's",
            fitted[kept].0.learner.name(),
            fitted[best].0.learner.name()
        )
    });
    if alike.len() > 1 {
        notes.push(format!(
            "the hold-out cannot tell {} from the best: their estimates widen the uplift's interval",
            alike
                .iter()
                .filter(|&&i| i != kept)
                .map(|&i| fitted[i].0.learner.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Some(Choice { kept, alike }))
}

/// What [`choose`] found: the candidate kept, and every candidate (the kept one among them)
/// whose Qini coefficient is within [`SELECTION_STANDARD_ERRORS`] of the best one's.
struct Choice {
    kept: usize,
    alike: Vec<usize>,
}

/// How many standard errors of their difference a learner's Qini coefficient must beat a
/// simpler one's by to be kept instead: two, about 95% confidence that it ranks better and
/// is not just luckier on this hold-out.
pub const SELECTION_STANDARD_ERRORS: f64 = 2.0;

/// [`evaluation::calibration_error`] of `model`, whose uplift `scores` of `holdout` these are,
/// along its own ranking and along its retention without recovery (risk, the axis along which
/// a shift of the logit spreads an effect).
fn calibration_error(
    model: &UpliftModel,
    scores: &[f64],
    holdout: &[UpliftRow],
    weights: &[f64],
) -> f64 {
    let risk: Vec<f64> = holdout
        .iter()
        .map(|row| model.program_point(&row.features, row.segment).if_not)
        .collect();
    let treated: Vec<bool> = holdout.iter().map(UpliftRow::treated).collect();
    let retained: Vec<bool> = holdout.iter().map(|r| r.retained).collect();
    evaluation::calibration_error(&[scores, &risk], scores, &treated, &retained, weights)
}

/// Bootstrap replicates fitted by default: the interval's ends are their 5th and 95th
/// percentiles, which twenty already place (between the first two and the last two), at
/// twenty times one fit's cost.
pub const DEFAULT_REPLICATES: usize = 20;

/// `learner` fitted on `training.replicates` bootstrap draws of the training customers (every
/// failure of a customer drawn k times counts k times): customers, not failures, are drawn,
/// as their failures share what they are like.
fn replicates(
    like: &RetentionModels,
    learner: UpliftLearner,
    rows: &[UpliftRow],
    mix: &ProgramMix,
    treatments: &Treatments,
    training: &UpliftTraining,
) -> Result<Vec<RetentionModels>, ModelError> {
    use rand::{Rng, SeedableRng};
    let mut by_customer: std::collections::BTreeMap<&str, Vec<&UpliftRow>> = Default::default();
    for row in rows {
        by_customer
            .entry(row.customer_id.as_str())
            .or_default()
            .push(row);
    }
    let customers: Vec<&Vec<&UpliftRow>> = by_customer.values().collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(BOOTSTRAP_SEED ^ 0x5e91_1ca7);
    let mut fitted = Vec::with_capacity(training.replicates);
    for _ in 0..training.replicates {
        training.cancellation.check()?;
        let draw: Vec<UpliftRow> = (0..customers.len())
            .flat_map(|_| customers[rng.gen_range(0..customers.len())].iter())
            .map(|row| (*row).clone())
            .collect();
        fitted.push(learner::refit_like(
            like,
            learner,
            &draw,
            mix,
            treatments,
            &training.params,
        )?);
    }
    Ok(fitted)
}

/// The seed of the bootstrap draws that compare candidates: fixed, so the same rows give the
/// same choice.
const BOOTSTRAP_SEED: u64 = 0xb007_5eed;

/// Each row's predicted uplift if recovered the way the program usually recovers (see
/// [`UpliftModel::program_point`]): how the model ranks failures.
pub fn scores(model: &UpliftModel, rows: &[UpliftRow]) -> Vec<f64> {
    rows.iter()
        .map(|row| model.program_point(&row.features, row.segment).uplift())
        .collect()
}

/// `model`'s metrics on `rows`, weighted by `weights` (see [`propensity`]).
pub fn evaluate(
    model: &UpliftModel,
    rows: &[UpliftRow],
    weights: &[f64],
) -> Result<UpliftMetrics, ModelError> {
    metrics_of(&scores(model, rows), rows, weights)
}

fn metrics_of(
    scores: &[f64],
    rows: &[UpliftRow],
    weights: &[f64],
) -> Result<UpliftMetrics, ModelError> {
    let treated: Vec<bool> = rows.iter().map(UpliftRow::treated).collect();
    let retained: Vec<bool> = rows.iter().map(|r| r.retained).collect();
    UpliftMetrics::evaluate(scores, &treated, &retained, weights)
}
