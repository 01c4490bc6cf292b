//! A loaded uplift model: a customer's retention if a failure is recovered — with an action,
//! at an expected quality — and if it is not; and the slot the serving model lives in.

use super::artifact::UpliftArtifact;
use super::mix::ProgramMix;
use super::treatment::{self, Quality, TREATMENT_NAMES};
use crate::domain::{RecoveryAction, Segment};
use crate::features::FEATURE_NAMES;
use crate::model::{LogisticModel, ModelError};

/// The quality a recovery decided now is expected to have: it is only known afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedQuality {
    /// The program's own mix, learnt from its past recoveries of customers of this segment
    /// (of all customers when it had too few): each re-survey score with its share, averaged
    /// over.
    ProgramMix,
    /// A 1–7 rating (clamped to that range), e.g. the team's typical quality.
    Rating(u8),
}

/// A customer's probability of still being a customer at the end of the horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub if_recovered: f64,
    pub if_not: f64,
}

impl Retention {
    /// What recovering buys: `if_recovered − if_not`.
    pub fn uplift(&self) -> f64 {
        self.if_recovered - self.if_not
    }
}

/// A loaded, checked uplift model.
#[derive(Debug, Clone)]
pub struct UpliftModel {
    version: String,
    horizon_days: u32,
    recovered: LogisticModel,
    not_recovered: LogisticModel,
    mix: ProgramMix,
    /// Recovered training failures.
    training_treated: u64,
    /// Where each feature the models read sits among this build's built-in features (the
    /// artifact may predate features added since).
    columns: Vec<usize>,
}

/// Fewer recovered training failures than this with an action, and the model has not seen
/// enough of it to say what it does: recommendations value it by the prior instead.
pub const MIN_ACTION_CASES: u64 = 30;

impl UpliftModel {
    /// Loads an artifact, refusing one that is corrupt or does not match this build.
    pub fn from_artifact_json(json: &str) -> Result<Self, ModelError> {
        Ok(Self::from_artifact(&UpliftArtifact::from_json(json)?))
    }

    /// A model from an artifact checked by [`UpliftArtifact::from_json`] (or just trained):
    /// every feature it names is one this build computes.
    pub fn from_artifact(artifact: &UpliftArtifact) -> Self {
        // A name this build lacks (refused by `from_json`) would read as 0.
        let columns = artifact
            .feature_names
            .iter()
            .map(|name| {
                FEATURE_NAMES
                    .iter()
                    .position(|n| n == name)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        Self {
            columns,
            version: artifact.version.clone(),
            horizon_days: artifact.horizon_days,
            recovered: artifact.recovered_model.clone(),
            not_recovered: artifact.not_recovered_model.clone(),
            mix: artifact.program_mix.clone(),
            training_treated: artifact.training_treated,
        }
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

    /// Days after the failure the retention is measured at.
    pub fn horizon_days(&self) -> u32 {
        self.horizon_days
    }

    pub fn program_mix(&self) -> &ProgramMix {
        &self.mix
    }

    /// Retention with and without recovering with `action` at `quality`, for `features` (the
    /// customer's [`crate::features::compute`] right after the failure). Both are NaN when
    /// `features` is not a vector of this build's features (a caller bug made visible).
    pub fn retention(
        &self,
        features: &[f64],
        action: RecoveryAction,
        quality: ExpectedQuality,
    ) -> Retention {
        let if_recovered = match quality {
            ExpectedQuality::Rating(score) => {
                self.if_recovered(features, action, &self.mix.quality_at(score))
            }
            ExpectedQuality::ProgramMix => self
                .mix
                .qualities_for(segment_of(features))
                .iter()
                .map(|q| q.share * self.if_recovered(features, action, &q.quality()))
                .sum(),
        };
        Retention {
            if_recovered,
            if_not: self.if_not(features),
        }
    }

    /// Retention if recovered the way the program usually recovers — its action mix at its
    /// quality mix — and if not. This is what ranks failures when no action is chosen yet,
    /// e.g. on the hold-out.
    pub fn program_retention(&self, features: &[f64]) -> Retention {
        let if_recovered = self
            .mix
            .actions
            .iter()
            .map(|a| {
                a.share
                    * self
                        .retention(features, a.action, ExpectedQuality::ProgramMix)
                        .if_recovered
            })
            .sum();
        Retention {
            if_recovered,
            if_not: self.if_not(features),
        }
    }

    fn if_recovered(&self, features: &[f64], action: RecoveryAction, quality: &Quality) -> f64 {
        let Some(mut inputs) = self.model_features(features) else {
            return f64::NAN;
        };
        treatment::encode(action, quality, &mut inputs);
        self.recovered.probability(&inputs)
    }

    fn if_not(&self, features: &[f64]) -> f64 {
        self.model_features(features)
            .map_or(f64::NAN, |inputs| self.not_recovered.probability(&inputs))
    }

    /// The model's features, in its order, from this build's feature vector; `None` when
    /// `features` is not one.
    fn model_features(&self, features: &[f64]) -> Option<Vec<f64>> {
        if features.len() != FEATURE_NAMES.len() {
            return None;
        }
        let mut inputs = Vec::with_capacity(self.columns.len() + TREATMENT_NAMES.len());
        inputs.extend(
            self.columns
                .iter()
                .map(|&column| features.get(column).copied().unwrap_or(0.0)),
        );
        Some(inputs)
    }
}

/// The customer's segment, as the features' one-hot columns say.
fn segment_of(features: &[f64]) -> Option<Segment> {
    [
        ("segment_consumer", Segment::Consumer),
        ("segment_small_business", Segment::SmallBusiness),
        ("segment_mid_market", Segment::MidMarket),
        ("segment_enterprise", Segment::Enterprise),
    ]
    .into_iter()
    .find(|(name, _)| {
        FEATURE_NAMES
            .iter()
            .position(|n| n == name)
            .and_then(|i| features.get(i))
            == Some(&1.0)
    })
    .map(|(_, segment)| segment)
}

/// The uplift model currently serving; empty until one is promoted (decisions then use the
/// documented prior).
pub type UpliftSlot = crate::model::ServingSlot<UpliftModel>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scaler;
    use crate::uplift::mix::{ActionShare, QualityShare};
    use std::sync::Arc;

    fn sigmoid(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    /// Retention logit 1 without a recovery; with one, 1 + 0.2 per re-survey point (the
    /// input after the eight action columns) — nothing else matters.
    fn model() -> UpliftModel {
        let features = FEATURE_NAMES.len();
        let width = features + TREATMENT_NAMES.len();
        let plain = |n: usize| Scaler {
            mean: vec![0.0; n],
            scale: vec![1.0; n],
        };
        let mut coefficients = vec![0.0; width];
        coefficients[features + 8] = 0.2;
        UpliftModel {
            version: "uplift-t".into(),
            horizon_days: 90,
            recovered: LogisticModel {
                scaler: plain(width),
                coefficients,
                intercept: 1.0,
            },
            not_recovered: LogisticModel {
                scaler: plain(features),
                coefficients: vec![0.0; features],
                intercept: 1.0,
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
                        action: RecoveryAction::Apology,
                        share: 0.95,
                    },
                    ActionShare {
                        action: RecoveryAction::Refund,
                        share: 0.05,
                    },
                ],
            },
            training_treated: 400,
            columns: (0..features).collect(),
        }
    }

    #[test]
    fn an_action_with_few_training_recoveries_is_not_known() {
        let model = model();
        assert_eq!(model.training_cases(RecoveryAction::Apology), 380);
        assert!(model.knows(RecoveryAction::Apology));
        assert_eq!(model.training_cases(RecoveryAction::Refund), 20);
        assert!(
            !model.knows(RecoveryAction::Refund),
            "20 < {MIN_ACTION_CASES}"
        );
        assert_eq!(model.training_cases(RecoveryAction::StoreCredit), 0);
        assert!(!model.knows(RecoveryAction::StoreCredit));
    }

    #[test]
    fn retention_at_a_rating_and_at_the_program_mix() {
        let model = model();
        let features = vec![0.0; FEATURE_NAMES.len()];
        let at_six = model.retention(
            &features,
            RecoveryAction::Refund,
            ExpectedQuality::Rating(6),
        );
        assert!((at_six.if_recovered - sigmoid(1.0 + 1.2)).abs() < 1e-12);
        assert!((at_six.if_not - sigmoid(1.0)).abs() < 1e-12);
        assert!((at_six.uplift() - (sigmoid(2.2) - sigmoid(1.0))).abs() < 1e-12);
        // A rating past the scale is the top of it.
        let at_nine = model.retention(
            &features,
            RecoveryAction::Refund,
            ExpectedQuality::Rating(9),
        );
        assert!((at_nine.if_recovered - sigmoid(1.0 + 1.4)).abs() < 1e-12);
        let mixed = model.retention(
            &features,
            RecoveryAction::Refund,
            ExpectedQuality::ProgramMix,
        );
        let expected = 0.25 * sigmoid(1.4) + 0.75 * sigmoid(2.2);
        assert!((mixed.if_recovered - expected).abs() < 1e-12);
        let program = model.program_retention(&features);
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
        let mut enterprise = vec![0.0; FEATURE_NAMES.len()];
        let column = FEATURE_NAMES
            .iter()
            .position(|n| *n == "segment_enterprise")
            .expect("a segment column");
        enterprise[column] = 1.0;
        let retention = model.retention(
            &enterprise,
            RecoveryAction::Refund,
            ExpectedQuality::ProgramMix,
        );
        assert!((retention.if_recovered - sigmoid(1.0 + 1.4)).abs() < 1e-12);
        // Other segments keep the program's mix.
        let consumer = vec![0.0; FEATURE_NAMES.len()];
        let retention = model.retention(
            &consumer,
            RecoveryAction::Refund,
            ExpectedQuality::ProgramMix,
        );
        let expected = 0.25 * sigmoid(1.4) + 0.75 * sigmoid(2.2);
        assert!((retention.if_recovered - expected).abs() < 1e-12);
    }

    #[test]
    fn a_vector_of_other_features_gives_nan_not_a_plausible_answer() {
        let retention = model().retention(
            &[1.0, 2.0],
            RecoveryAction::Refund,
            ExpectedQuality::ProgramMix,
        );
        assert!(retention.if_recovered.is_nan() && retention.if_not.is_nan());
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
