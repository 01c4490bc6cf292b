//! The stored form of a trained uplift model: JSON, sealed and checked exactly like the health
//! model's artifact (the same checksum and refusals, from [`crate::model::artifact`]), and
//! refused on load unless it fits the features and treatment inputs this build computes.

use serde::{Deserialize, Serialize};

use super::evaluation::UpliftMetrics;
use super::learner::Learner;
use super::mix::ProgramMix;
use super::treatment::{TREATMENT_NAMES, TREATMENT_SCHEMA_VERSION};
use crate::domain::Timestamp;
use crate::features::{FEATURE_NAMES, FEATURE_SCHEMA_VERSION};
use crate::model::artifact::{
    check_feature_names, check_model_finite, check_model_lengths, checked_json, rfc3339,
    to_checksummed_json,
};
use crate::model::{LogisticModel, ModelError, ModelKind};

/// The layout of [`UpliftArtifact`]. Bump it when a field changes meaning or is removed.
pub const UPLIFT_ARTIFACT_SCHEMA_VERSION: u32 = 1;

/// A trained uplift model with what it expects as input, how it was trained and how it did on
/// its hold-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftArtifact {
    /// [`UPLIFT_ARTIFACT_SCHEMA_VERSION`] when written; read first so an unknown layout is
    /// refused by name.
    pub artifact_schema: u32,
    /// Always [`ModelKind::Uplift`]: a health artifact is not an uplift model.
    pub kind: ModelKind,
    /// The registry's version string, shown with every recommendation.
    pub version: String,
    pub learner: Learner,
    /// The customer features both models read first, and their schema.
    pub feature_schema: u32,
    pub feature_names: Vec<String>,
    /// The treatment inputs the recovered model reads after the features, and their schema.
    pub treatment_schema: u32,
    pub treatment_names: Vec<String>,
    /// Days after a failure within which churn counts: the retention's horizon.
    pub horizon_days: u32,
    /// P(retained | features, treatment inputs): the failure was recovered.
    pub recovered_model: LogisticModel,
    /// P(retained | features): the failure was not recovered.
    pub not_recovered_model: LogisticModel,
    /// How the program's recoveries went in the training rows: the expected quality of a
    /// recovery decided now.
    pub program_mix: ProgramMix,
    /// On the hold-out, at the time of training.
    pub metrics: UpliftMetrics,
    /// The failure times of the training rows.
    #[serde(with = "rfc3339")]
    pub trained_from: Timestamp,
    #[serde(with = "rfc3339")]
    pub trained_to: Timestamp,
    /// Where a time split's hold-out starts: every failure at or after it is held out.
    /// `None` when customers were held out instead (see `holdout`).
    #[serde(with = "rfc3339::option", default)]
    pub holdout_from: Option<Timestamp>,
    /// How the hold-out was drawn, in words (empty in artifacts from before it was recorded,
    /// all split by time).
    #[serde(default)]
    pub holdout: String,
    pub training_rows: u64,
    pub training_treated: u64,
    pub holdout_rows: u64,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// SHA-256 (hex) of the canonical JSON of every other field; filled by [`Self::to_json`].
    #[serde(default)]
    pub checksum: String,
}

impl UpliftArtifact {
    /// Pretty JSON with the checksum filled in (and stored in `self.checksum`). Refuses
    /// non-finite numbers, which JSON cannot carry.
    pub fn to_json(&mut self) -> Result<String, ModelError> {
        self.check_finite()?;
        let (json, checksum) = to_checksummed_json(&*self)?;
        self.checksum = checksum;
        Ok(json)
    }

    /// Parses and checks an artifact: schema version, checksum, kind, then that this build
    /// computes every feature it reads (by name: a built-in feature added since it was trained
    /// does not matter) and its treatment inputs. Each refusal names what is wrong.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let (value, recorded) =
            checked_json(text, ModelKind::Uplift, &[UPLIFT_ARTIFACT_SCHEMA_VERSION])?;
        let mut artifact: Self = serde_json::from_value(value)?;
        artifact.checksum = recorded;
        if artifact.feature_schema != FEATURE_SCHEMA_VERSION {
            return Err(ModelError::FeatureSchemaMismatch {
                expected: FEATURE_SCHEMA_VERSION,
                found: artifact.feature_schema,
            });
        }
        artifact.feature_columns()?;
        check_feature_names(
            artifact.treatment_schema,
            &artifact.treatment_names,
            TREATMENT_NAMES,
            TREATMENT_SCHEMA_VERSION,
        )?;
        let features = artifact.feature_names.len();
        let recovered = &artifact.recovered_model;
        check_model_lengths(
            &recovered.scaler,
            &recovered.coefficients,
            features + TREATMENT_NAMES.len(),
        )?;
        let not_recovered = &artifact.not_recovered_model;
        check_model_lengths(&not_recovered.scaler, &not_recovered.coefficients, features)?;
        Ok(artifact)
    }

    /// Where each feature the model reads sits among this build's built-in features, in the
    /// model's input order; refuses a feature this build does not compute, by name.
    pub fn feature_columns(&self) -> Result<Vec<usize>, ModelError> {
        self.feature_names
            .iter()
            .map(|name| {
                FEATURE_NAMES.iter().position(|n| n == name).ok_or_else(|| {
                    ModelError::UnusableFeatures(format!(
                        "this build does not compute the feature {name:?}"
                    ))
                })
            })
            .collect()
    }

    fn check_finite(&self) -> Result<(), ModelError> {
        for model in [&self.recovered_model, &self.not_recovered_model] {
            check_model_finite(&model.scaler, &model.coefficients, model.intercept)?;
        }
        let numbers = self
            .program_mix
            .values()
            .map(|value| ("program mix", value))
            .chain(self.metrics.values().map(|value| ("metrics", value)));
        for (field, value) in numbers {
            if !value.is_finite() {
                return Err(ModelError::ArtifactNonFinite { field, value });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RecoveryAction;
    use crate::model::Scaler;
    use crate::uplift::mix::{ActionShare, QualityShare};

    fn logistic(inputs: usize, intercept: f64) -> LogisticModel {
        LogisticModel {
            scaler: Scaler {
                mean: vec![0.5; inputs],
                scale: vec![2.0; inputs],
            },
            coefficients: (0..inputs).map(|j| (j as f64 * 0.7).sin() / 3.0).collect(),
            intercept,
        }
    }

    fn artifact() -> UpliftArtifact {
        let features = FEATURE_NAMES.len();
        UpliftArtifact {
            artifact_schema: UPLIFT_ARTIFACT_SCHEMA_VERSION,
            kind: ModelKind::Uplift,
            version: "uplift-1".into(),
            learner: Learner::TLearner,
            feature_schema: FEATURE_SCHEMA_VERSION,
            feature_names: FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            treatment_schema: TREATMENT_SCHEMA_VERSION,
            treatment_names: TREATMENT_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            horizon_days: 90,
            recovered_model: logistic(features + TREATMENT_NAMES.len(), 2.3),
            not_recovered_model: logistic(features, 2.0),
            program_mix: ProgramMix {
                qualities: vec![QualityShare {
                    resurvey_score: Some(6),
                    share: 1.0,
                    cares: Some([5.5, 6.0, 6.5, 5.0, 6.0]),
                }],
                segments: Vec::new(),
                actions: vec![ActionShare {
                    action: RecoveryAction::Refund,
                    share: 1.0,
                }],
            },
            metrics: UpliftMetrics::default(),
            trained_from: Timestamp::from_unix_micros(1_735_689_600_000_000),
            trained_to: Timestamp::from_unix_micros(1_750_000_000_000_000),
            holdout_from: Some(Timestamp::from_unix_micros(1_760_000_000_000_000)),
            holdout: String::new(),
            training_rows: 1_000,
            training_treated: 480,
            holdout_rows: 400,
            created_at: Timestamp::from_unix_micros(1_767_225_600_000_001),
            checksum: String::new(),
        }
    }

    #[test]
    fn round_trip_is_exact_and_loads_as_a_model() {
        let mut original = artifact();
        let text = original.to_json().expect("serializes");
        let loaded = UpliftArtifact::from_json(&text).expect("loads");
        assert_eq!(loaded, original);
        let model = crate::uplift::UpliftModel::from_artifact_json(&text).expect("a model");
        assert_eq!(model.version(), "uplift-1");
    }

    #[test]
    fn a_changed_digit_is_a_checksum_mismatch() {
        let text = artifact().to_json().expect("serializes");
        let tampered = text.replacen("\"intercept\": 2.3", "\"intercept\": 2.4", 1);
        assert_ne!(tampered, text, "the test must actually change the file");
        assert!(matches!(
            UpliftArtifact::from_json(&tampered),
            Err(ModelError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn a_health_artifact_is_not_an_uplift_model() {
        let mut other = artifact();
        other.kind = ModelKind::Health;
        let text = other.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::ArtifactKindMismatch { found, .. }) if found == "health"
        ));
    }

    #[test]
    fn other_treatment_inputs_or_model_widths_are_refused() {
        let mut renamed = artifact();
        renamed.treatment_names[0] = "action_hug".into();
        let text = renamed.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::FeatureNamesMismatch { position: 0, .. })
        ));
        let mut narrow = artifact();
        narrow.recovered_model = logistic(FEATURE_NAMES.len(), 2.3);
        let text = narrow.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::ArtifactLengthMismatch { .. })
        ));
    }

    /// A model trained when the build had fewer built-in features (here: without the first)
    /// still loads and reads its own features from today's vector; a feature this build does
    /// not compute is refused by name.
    #[test]
    fn a_model_reads_the_features_it_names_whatever_the_build_added_since() {
        let mut older = artifact();
        older.feature_names.remove(0);
        let width = older.feature_names.len();
        older.recovered_model = logistic(width + TREATMENT_NAMES.len(), 2.3);
        older.not_recovered_model = logistic(width, 1.1);
        let text = older.to_json().expect("serializes");
        let loaded = UpliftArtifact::from_json(&text).expect("loads");
        assert_eq!(
            loaded.feature_columns().expect("known"),
            (1..FEATURE_NAMES.len()).collect::<Vec<_>>()
        );
        let model = crate::uplift::UpliftModel::from_artifact(&loaded);
        let today: Vec<f64> = (0..FEATURE_NAMES.len()).map(|j| j as f64 * 0.1).collect();
        let retention = model.retention(
            &today,
            RecoveryAction::Refund,
            crate::uplift::ExpectedQuality::Rating(5),
        );
        assert!(
            (retention.if_not - older.not_recovered_model.probability(&today[1..])).abs() < 1e-12
        );

        let mut unknown = artifact();
        unknown.feature_names[3] = "moon_phase".into();
        let text = unknown.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::UnusableFeatures(reason)) if reason.contains("moon_phase")
        ));
    }

    #[test]
    fn non_finite_numbers_are_refused_on_save() {
        let mut broken = artifact();
        broken.not_recovered_model.intercept = f64::NAN;
        assert!(matches!(
            broken.to_json(),
            Err(ModelError::ArtifactNonFinite { .. })
        ));
        let mut broken = artifact();
        broken.program_mix.qualities[0].share = f64::INFINITY;
        assert!(matches!(
            broken.to_json(),
            Err(ModelError::ArtifactNonFinite {
                field: "program mix",
                ..
            })
        ));
    }
}
