//! A loaded uplift model: a customer's retention if a failure is recovered — with an action,
//! at an expected quality — and if it is not; and the slot the serving model lives in.

use super::artifact::UpliftArtifact;
use super::learner::{RetentionModels, UpliftLearner, program_outcome_if_recovered};
use super::mix::{ExpectedQuality, ProgramMix};
use super::treatment::Treatments;
use crate::domain::{RecoveryAction, Segment, Timestamp};
use crate::features::{FeatureSpec, History};
use crate::model::ModelError;

/// A customer's probability of still being a customer at the end of the horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub if_recovered: f64,
    pub if_not: f64,
    /// The uplift's [`INTERVAL_LEVEL`] interval, when the estimate has one (a model trained
    /// with bootstrap replicates).
    pub interval: Option<UpliftInterval>,
}

impl Retention {
    /// What recovering buys: `if_recovered − if_not`.
    pub fn uplift(&self) -> f64 {
        self.if_recovered - self.if_not
    }
}

/// Where the uplift lies with [`INTERVAL_LEVEL`] confidence: the spread of the bootstrap
/// replicates' uplifts (their 5th and 95th percentiles), widened to the estimates of the
/// alternative learners the hold-out could not tell from the kept one, and then by the error
/// the hold-out showed beyond chance (its calibration error, as a normal error of that
/// spread, added in quadrature on each side).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpliftInterval {
    pub low: f64,
    pub high: f64,
}

/// The share of the replicates' uplifts an interval spans.
pub const INTERVAL_LEVEL: f64 = 0.9;

/// The normal quantile of a two-sided [`INTERVAL_LEVEL`] interval: how many standard errors
/// the calibration error adds on each side.
const INTERVAL_NORMAL_QUANTILE: f64 = 1.644_853_626_951_472_2;

/// A loaded, checked uplift model.
#[derive(Debug, Clone)]
pub struct UpliftModel {
    version: String,
    horizon_days: u32,
    learner: UpliftLearner,
    /// The customer features every retention model reads first.
    features: FeatureSpec,
    /// The treatment inputs the recovered models read after the features.
    treatments: Treatments,
    models: RetentionModels,
    /// The same learner fitted on bootstrap draws of the training customers: the spread of
    /// their answers is the interval. Empty for models trained without them.
    replicates: Vec<RetentionModels>,
    /// Other learners the hold-out could not tell from this one: the interval spans their
    /// estimates too.
    alternatives: Vec<RetentionModels>,
    /// The hold-out's error beyond chance: the interval widens by it.
    calibration_error: f64,
    mix: ProgramMix,
    /// Recovered training failures.
    training_treated: u64,
}

/// Fewer recovered training failures than this with an action, and the model has not seen
/// enough of it to say what it does: recommendations value it by the prior instead.
pub const MIN_ACTION_CASES: u64 = 30;

impl UpliftModel {
    /// Loads an artifact, refusing one that is corrupt or does not match this build.
    pub fn from_artifact_json(json: &str) -> Result<Self, ModelError> {
        Ok(Self::from_artifact(&UpliftArtifact::from_json(json)?))
    }

    /// A model from an artifact checked by [`UpliftArtifact::from_json`] (or just trained).
    pub fn from_artifact(artifact: &UpliftArtifact) -> Self {
        Self {
            version: artifact.version.clone(),
            horizon_days: artifact.horizon_days,
            learner: artifact.learner,
            features: artifact.features.clone(),
            treatments: artifact.treatments.clone(),
            models: artifact.models.clone(),
            replicates: artifact.replicates.clone(),
            alternatives: artifact.alternatives.clone(),
            calibration_error: artifact.calibration_error,
            mix: artifact.program_mix.clone(),
            training_treated: artifact.training_treated,
        }
    }

    /// The model's features of `history` as of `as_of` (for a failure: just after it).
    pub fn features(&self, history: &History, as_of: Timestamp) -> Vec<f64> {
        self.features.compute(history, as_of).0
    }

    /// About how many recovered training failures got `action`: its share of the program's
    /// recoveries times the recovered failures.
    pub fn training_cases(&self, action: RecoveryAction) -> u64 {
        let share: f64 = self
            .mix
            .actions
            .iter()
            .filter(|a| a.action == action)
            .map(|a| a.share)
            .sum();
        (share * self.training_treated as f64).round() as u64
    }

    /// Whether the model learned enough about `action` to value it ([`MIN_ACTION_CASES`]).
    pub fn knows(&self, action: RecoveryAction) -> bool {
        self.training_cases(action) >= MIN_ACTION_CASES
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn learner(&self) -> UpliftLearner {
        self.learner
    }

    /// Days after the failure the retention is measured at.
    pub fn horizon_days(&self) -> u32 {
        self.horizon_days
    }

    pub fn program_mix(&self) -> &ProgramMix {
        &self.mix
    }

    /// Retention with and without recovering with `action` at `quality`, for `features` (the
    /// customer's [`Self::features`] right after the failure) of a customer of `segment`, with
    /// the uplift's interval when the model has replicates. Both are NaN when `features` is not
    /// a vector of the model's features (a caller bug made visible).
    pub fn retention(
        &self,
        features: &[f64],
        segment: Segment,
        action: RecoveryAction,
        quality: ExpectedQuality,
    ) -> Retention {
        if features.len() != self.features.len() {
            return Retention::undefined();
        }
        let of = |models: &RetentionModels| {
            let outcome = self.mix.at_quality(segment, quality, |q| {
                models.outcome_if_recovered(&self.treatments, features, action, q)
            });
            Retention {
                if_recovered: corrected(models, outcome, features),
                if_not: models.if_not(&self.treatments, features),
                interval: None,
            }
        };
        let point = of(&self.models);
        Retention {
            interval: self.interval(point.uplift(), |models| of(models).uplift()),
            ..point
        }
    }

    /// Retention if recovered the way the program usually recovers — its action mix at its
    /// quality mix — and if not, with the uplift's interval when the model has replicates.
    /// This is what ranks failures when no action is chosen yet, e.g. on the hold-out.
    pub fn program_retention(&self, features: &[f64], segment: Segment) -> Retention {
        if features.len() != self.features.len() {
            return Retention::undefined();
        }
        let point = self.program_point(features, segment);
        Retention {
            interval: self.interval(point.uplift(), |models| {
                program_uplift(models, &self.treatments, &self.mix, features, segment)
            }),
            ..point
        }
    }

    /// [`Self::program_retention`] without the interval: what ranking needs, at a
    /// replicate's fraction of the cost.
    pub fn program_point(&self, features: &[f64], segment: Segment) -> Retention {
        if features.len() != self.features.len() {
            return Retention::undefined();
        }
        let outcome = program_outcome_if_recovered(
            &self.models,
            &self.treatments,
            &self.mix,
            features,
            segment,
        );
        Retention {
            if_recovered: corrected(&self.models, outcome, features),
            if_not: self.models.if_not(&self.treatments, features),
            interval: None,
        }
    }

    /// The 5th and 95th percentiles of `uplift` over the replicates, stretched to take in
    /// every alternative's, then widened around the kept model's `estimate` by the
    /// calibration error; `None` without replicates.
    fn interval(
        &self,
        estimate: f64,
        uplift: impl Fn(&RetentionModels) -> f64,
    ) -> Option<UpliftInterval> {
        if self.replicates.is_empty() {
            return None;
        }
        let mut uplifts: Vec<f64> = self.replicates.iter().map(&uplift).collect();
        uplifts.sort_by(f64::total_cmp);
        let tail = (1.0 - INTERVAL_LEVEL) / 2.0;
        let alternatives: Vec<f64> = self.alternatives.iter().map(&uplift).collect();
        let low = alternatives
            .iter()
            .copied()
            .fold(percentile(&uplifts, tail), f64::min);
        let high = alternatives
            .iter()
            .copied()
            .fold(percentile(&uplifts, 1.0 - tail), f64::max);
        let error = INTERVAL_NORMAL_QUANTILE * self.calibration_error;
        Some(UpliftInterval {
            low: estimate - (estimate - low).max(0.0).hypot(error),
            high: estimate + (high - estimate).max(0.0).hypot(error),
        })
    }
}

/// The outcome models' retention if recovered with the DR-learner's correction (none for the
/// other learners), kept a probability.
fn corrected(models: &RetentionModels, outcome: f64, features: &[f64]) -> f64 {
    (outcome + models.correction(features)).clamp(0.0, 1.0)
}

/// The uplift of recovering the way the program does, by `models`.
fn program_uplift(
    models: &RetentionModels,
    treatments: &Treatments,
    mix: &ProgramMix,
    features: &[f64],
    segment: Segment,
) -> f64 {
    let outcome = program_outcome_if_recovered(models, treatments, mix, features, segment);
    corrected(models, outcome, features) - models.if_not(treatments, features)
}

/// The `share` percentile of sorted `values`, linear between neighbours.
fn percentile(sorted: &[f64], share: f64) -> f64 {
    let position = share * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    sorted[below] + (position - below as f64) * (sorted[above] - sorted[below])
}

impl Retention {
    fn undefined() -> Self {
        Self {
            if_recovered: f64::NAN,
            if_not: f64::NAN,
            interval: None,
        }
    }
}

/// The uplift model currently serving; empty until one is promoted (decisions then use the
/// documented prior).
pub type UpliftSlot = crate::model::ServingSlot<UpliftModel>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BuiltInAction;
    use crate::features::FEATURE_NAMES;
    use crate::model::{FittedModel, Learner, LogisticModel, Scaler};
    use crate::uplift::learner::MetaLearner;
    use crate::uplift::mix::{ActionShare, QualityShare};
    use std::sync::Arc;

    fn sigmoid(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    /// Retention logit 1 without a recovery; with one, 1 + 0.2 per re-survey point (the
    /// input after the eight action columns) — nothing else matters.
    fn model() -> UpliftModel {
        let features = FEATURE_NAMES.len();
        let width = features + Treatments::built_in().width();
        let plain = |n: usize| Scaler {
            mean: vec![0.0; n],
            scale: vec![1.0; n],
        };
        let mut coefficients = vec![0.0; width];
        coefficients[features + 8] = 0.2;
        UpliftModel {
            version: "uplift-t".into(),
            horizon_days: 90,
            learner: UpliftLearner::new(MetaLearner::TLearner, Learner::Logistic),
            features: FeatureSpec::every_built_in(),
            treatments: Treatments::built_in(),
            models: RetentionModels::Separate {
                recovered: FittedModel::Logistic(LogisticModel {
                    scaler: plain(width),
                    coefficients,
                    intercept: 1.0,
                }),
                not_recovered: FittedModel::Logistic(LogisticModel {
                    scaler: plain(features),
                    coefficients: vec![0.0; features],
                    intercept: 1.0,
                }),
            },
            mix: ProgramMix {
                qualities: vec![
                    QualityShare {
                        resurvey_score: Some(2),
                        share: 0.25,
                        cares: None,
                    },
                    QualityShare {
                        resurvey_score: Some(6),
                        share: 0.75,
                        cares: None,
                    },
                ],
                segments: Vec::new(),
                actions: vec![
                    ActionShare {
                        action: RecoveryAction::from(BuiltInAction::Apology),
                        share: 0.95,
                    },
                    ActionShare {
                        action: RecoveryAction::from(BuiltInAction::Refund),
                        share: 0.05,
                    },
                ],
            },
            replicates: Vec::new(),
            alternatives: Vec::new(),
            calibration_error: 0.0,
            training_treated: 400,
        }
    }

    #[test]
    fn an_action_with_few_training_recoveries_is_not_known() {
        let model = model();
        assert_eq!(
            model.training_cases(RecoveryAction::from(BuiltInAction::Apology)),
            380
        );
        assert!(model.knows(RecoveryAction::from(BuiltInAction::Apology)));
        assert_eq!(
            model.training_cases(RecoveryAction::from(BuiltInAction::Refund)),
            20
        );
        assert!(
            !model.knows(RecoveryAction::from(BuiltInAction::Refund)),
            "20 < {MIN_ACTION_CASES}"
        );
        assert_eq!(
            model.training_cases(RecoveryAction::from(BuiltInAction::StoreCredit)),
            0
        );
        assert!(!model.knows(RecoveryAction::from(BuiltInAction::StoreCredit)));
    }

    #[test]
    fn retention_at_a_rating_and_at_the_program_mix() {
        let model = model();
        let features = vec![0.0; FEATURE_NAMES.len()];
        let at_six = model.retention(
            &features,
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::Rating(6),
        );
        assert!((at_six.if_recovered - sigmoid(1.0 + 1.2)).abs() < 1e-12);
        assert!((at_six.if_not - sigmoid(1.0)).abs() < 1e-12);
        assert!((at_six.uplift() - (sigmoid(2.2) - sigmoid(1.0))).abs() < 1e-12);
        // A rating past the scale is the top of it.
        let at_nine = model.retention(
            &features,
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::Rating(9),
        );
        assert!((at_nine.if_recovered - sigmoid(1.0 + 1.4)).abs() < 1e-12);
        let mixed = model.retention(
            &features,
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::ProgramMix,
        );
        let expected = 0.25 * sigmoid(1.4) + 0.75 * sigmoid(2.2);
        assert!((mixed.if_recovered - expected).abs() < 1e-12);
        let program = model.program_retention(&features, Segment::Consumer);
        assert!((program.if_recovered - expected).abs() < 1e-12);
    }

    #[test]
    fn the_program_mix_is_the_customers_segments_when_it_has_one() {
        let mut model = model();
        model.mix.segments = vec![crate::uplift::mix::SegmentQualities {
            segment: Segment::Enterprise,
            qualities: vec![QualityShare {
                resurvey_score: Some(7),
                share: 1.0,
                cares: None,
            }],
        }];
        let features = vec![0.0; FEATURE_NAMES.len()];
        let retention = model.retention(
            &features,
            Segment::Enterprise,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::ProgramMix,
        );
        assert!((retention.if_recovered - sigmoid(1.0 + 1.4)).abs() < 1e-12);
        // Other segments keep the program's mix.
        let retention = model.retention(
            &features,
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::ProgramMix,
        );
        let expected = 0.25 * sigmoid(1.4) + 0.75 * sigmoid(2.2);
        assert!((retention.if_recovered - expected).abs() < 1e-12);
    }

    #[test]
    fn a_vector_of_other_features_gives_nan_not_a_plausible_answer() {
        let retention = model().retention(
            &[1.0, 2.0],
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::ProgramMix,
        );
        assert!(retention.if_recovered.is_nan() && retention.if_not.is_nan());
    }

    #[test]
    fn the_doubly_robust_correction_shifts_every_action_and_the_program_alike() {
        let features = FEATURE_NAMES.len();
        let width = features + Treatments::built_in().width() + 1;
        let mut coefficients = vec![0.0; width];
        // The recovered flag (the last input) adds 0.5 to the retention logit.
        coefficients[width - 1] = 0.5;
        let joint = FittedModel::Logistic(LogisticModel {
            scaler: Scaler {
                mean: vec![0.0; width],
                scale: vec![1.0; width],
            },
            coefficients,
            intercept: 1.0,
        });
        let mut s_learner = model();
        s_learner.models = RetentionModels::Joint(joint.clone());
        let mut dr_learner = s_learner.clone();
        dr_learner.models = RetentionModels::DoublyRobust {
            joint,
            correction: crate::model::Regression::Linear(
                crate::model::regression::LinearRegression {
                    scaler: Scaler {
                        mean: vec![0.0; features],
                        scale: vec![1.0; features],
                    },
                    coefficients: vec![0.0; features],
                    intercept: -0.02,
                },
            ),
        };
        let x = vec![0.0; features];
        let s = s_learner.program_retention(&x, Segment::Consumer);
        assert!((s.uplift() - (sigmoid(1.5) - sigmoid(1.0))).abs() < 1e-12);
        let dr = dr_learner.program_retention(&x, Segment::Consumer);
        assert!((dr.uplift() - (s.uplift() - 0.02)).abs() < 1e-12);
        assert_eq!(dr.if_not, s.if_not);
        let at = |m: &UpliftModel| {
            m.retention(
                &x,
                Segment::Consumer,
                RecoveryAction::from(BuiltInAction::Apology),
                ExpectedQuality::Rating(6),
            )
            .uplift()
        };
        assert!((at(&dr_learner) - (at(&s_learner) - 0.02)).abs() < 1e-12);
    }

    /// The model with its recovered model's re-survey coefficient set to `c`.
    fn with_resurvey_coefficient(c: f64) -> RetentionModels {
        let mut models = model().models;
        if let RetentionModels::Separate {
            recovered: FittedModel::Logistic(recovered),
            ..
        } = &mut models
        {
            recovered.coefficients[FEATURE_NAMES.len() + 8] = c;
        }
        models
    }

    #[test]
    fn the_interval_spans_the_replicates_and_stretches_to_the_alternatives() {
        let x = vec![0.0; FEATURE_NAMES.len()];
        let uplift_at = |c: f64| {
            let mut m = model();
            m.models = with_resurvey_coefficient(c);
            m.program_point(&x, Segment::Consumer).uplift()
        };
        let mut m = model();
        m.replicates = (0..21)
            .map(|i| with_resurvey_coefficient(0.15 + 0.005 * i as f64))
            .collect();
        let replicates_only = m
            .program_retention(&x, Segment::Consumer)
            .interval
            .expect("an interval");
        // The 5th and 95th percentiles of 21 evenly spaced replicates: the 2nd and the 20th.
        assert!((replicates_only.low - uplift_at(0.155)).abs() < 1e-12);
        assert!((replicates_only.high - uplift_at(0.245)).abs() < 1e-12);
        m.alternatives = vec![
            with_resurvey_coefficient(0.3),
            with_resurvey_coefficient(0.2),
        ];
        let widened = m
            .program_retention(&x, Segment::Consumer)
            .interval
            .expect("an interval");
        assert_eq!(widened.low, replicates_only.low, "0.2 is inside already");
        assert!((widened.high - uplift_at(0.3)).abs() < 1e-12);
        m.replicates.clear();
        assert_eq!(
            m.program_retention(&x, Segment::Consumer).interval,
            None,
            "alternatives alone are no interval"
        );
    }

    #[test]
    fn the_calibration_error_widens_each_side_in_quadrature() {
        let x = vec![0.0; FEATURE_NAMES.len()];
        let mut m = model();
        m.models = with_resurvey_coefficient(0.2);
        m.replicates = (0..21)
            .map(|i| with_resurvey_coefficient(0.15 + 0.005 * i as f64))
            .collect();
        let estimate = m.program_point(&x, Segment::Consumer).uplift();
        let calibrated = m.program_retention(&x, Segment::Consumer).interval.unwrap();
        m.calibration_error = 0.03;
        let widened = m.program_retention(&x, Segment::Consumer).interval.unwrap();
        let error = INTERVAL_NORMAL_QUANTILE * 0.03;
        let expected_low = estimate - (estimate - calibrated.low).hypot(error);
        let expected_high = estimate + (calibrated.high - estimate).hypot(error);
        assert!((widened.low - expected_low).abs() < 1e-12, "{widened:?}");
        assert!((widened.high - expected_high).abs() < 1e-12, "{widened:?}");
        assert!(widened.high - widened.low > 2.0 * error);
    }

    #[test]
    fn the_slot_serves_the_model_last_put_in() {
        let slot = UpliftSlot::default();
        assert!(slot.current().is_none());
        slot.replace(Arc::new(model()));
        let held = slot.current().expect("a model");
        let mut newer = model();
        newer.version = "uplift-u".into();
        slot.replace(Arc::new(newer));
        // A request that took the old model keeps it to the end.
        assert_eq!(held.version(), "uplift-t");
        assert_eq!(slot.current().expect("a model").version(), "uplift-u");
    }
}
