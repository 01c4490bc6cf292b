//! The stored form of a trained uplift model: JSON, sealed and checked exactly like the health
//! model's artifact (the same checksum and refusals, from [`crate::model::artifact`]), and
//! refused on load unless this build computes its features and treatment inputs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::evaluation::UpliftMetrics;
use super::learner::{MetaLearner, RetentionModels, UpliftLearner};
use super::mix::ProgramMix;
use super::treatment::Treatments;
use crate::domain::Timestamp;
use crate::features::{FEATURE_SCHEMA_VERSION, FeatureSpec};
use crate::model::artifact::{checked_json, rfc3339, to_checksummed_json};
use crate::model::{FittedModel, Learner, LogisticModel, ModelError, ModelKind};

/// The layout of [`UpliftArtifact`]. Bump it when a field changes meaning or is removed.
///
/// Layout 1 (two logistic models over the built-in features by name) is read as a spec of
/// those features and a T-learner-shaped pair of logistic models, which is what it was.
pub const UPLIFT_ARTIFACT_SCHEMA_VERSION: u32 = 2;

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
    /// The learner the run chose.
    pub learner: UpliftLearner,
    /// The customer features every retention model reads first: name, computation, wording,
    /// range.
    pub features: FeatureSpec,
    /// The treatment inputs the recovered models read after the features, and their schema.
    pub treatment_schema: u32,
    pub treatment_names: Vec<String>,
    /// What `treatment_names` name, read from them on load (they are what is stored).
    #[serde(skip)]
    pub treatments: Treatments,
    /// Days after a failure within which churn counts: the retention's horizon.
    pub horizon_days: u32,
    /// The fitted retention models.
    pub models: RetentionModels,
    /// The same learner fitted on bootstrap draws of the training customers: the spread of
    /// their uplifts is each answer's interval. Empty when trained without them.
    #[serde(default)]
    pub replicates: Vec<RetentionModels>,
    /// The other learners of the run whose hold-out Qini coefficient could not be told from
    /// the best one's: each answer's interval also spans their estimates. Empty when the
    /// kept learner stood alone, and in artifacts written before.
    #[serde(default)]
    pub alternatives: Vec<RetentionModels>,
    /// How far the kept model's uplift was off on the hold-out beyond chance (see
    /// [`super::evaluation::calibration_error`]): each answer's interval widens by it. 0 in
    /// artifacts written before.
    #[serde(default)]
    pub calibration_error: f64,
    /// How the program's recoveries went in the training rows: the expected quality of a
    /// recovery decided now.
    pub program_mix: ProgramMix,
    /// On the hold-out, at the time of training.
    pub metrics: UpliftMetrics,
    /// Every learner fitted in the run, with its metrics on the same hold-out rows; the one
    /// above is the one with the highest Qini coefficient.
    #[serde(default)]
    pub candidates: Vec<UpliftCandidate>,
    /// The failure times of the training rows.
    #[serde(with = "rfc3339")]
    pub trained_from: Timestamp,
    #[serde(with = "rfc3339")]
    pub trained_to: Timestamp,
    /// Where a time split's hold-out starts: every failure at or after it is held out.
    /// `None` when customers were held out instead (see `holdout`).
    #[serde(with = "rfc3339::option", default)]
    pub holdout_from: Option<Timestamp>,
    /// How the hold-out was drawn, in words.
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

/// One learner of a training run and how it did on the run's hold-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftCandidate {
    pub learner: UpliftLearner,
    pub metrics: UpliftMetrics,
}

/// Layout 1: logistic retention models over built-in features of one feature schema.
#[derive(Debug, Deserialize)]
struct ArtifactV1 {
    kind: ModelKind,
    version: String,
    learner: MetaLearner,
    feature_schema: u32,
    feature_names: Vec<String>,
    treatment_schema: u32,
    treatment_names: Vec<String>,
    horizon_days: u32,
    recovered_model: LogisticModel,
    not_recovered_model: LogisticModel,
    program_mix: ProgramMix,
    metrics: UpliftMetrics,
    #[serde(with = "rfc3339")]
    trained_from: Timestamp,
    #[serde(with = "rfc3339")]
    trained_to: Timestamp,
    #[serde(with = "rfc3339::option", default)]
    holdout_from: Option<Timestamp>,
    #[serde(default)]
    holdout: String,
    training_rows: u64,
    training_treated: u64,
    holdout_rows: u64,
    #[serde(with = "rfc3339")]
    created_at: Timestamp,
}

impl ArtifactV1 {
    fn upgrade(self, checksum: String) -> Result<UpliftArtifact, ModelError> {
        if self.feature_schema != FEATURE_SCHEMA_VERSION {
            return Err(ModelError::FeatureSchemaMismatch {
                expected: FEATURE_SCHEMA_VERSION,
                found: self.feature_schema,
            });
        }
        Ok(UpliftArtifact {
            artifact_schema: UPLIFT_ARTIFACT_SCHEMA_VERSION,
            kind: self.kind,
            version: self.version,
            // Layout 1's S-learner was stored already split into its two models.
            learner: UpliftLearner::new(self.learner, Learner::Logistic),
            features: FeatureSpec::built_in(&self.feature_names),
            treatment_schema: self.treatment_schema,
            treatment_names: self.treatment_names,
            treatments: Treatments::default(),
            horizon_days: self.horizon_days,
            models: RetentionModels::Separate {
                recovered: FittedModel::Logistic(self.recovered_model),
                not_recovered: FittedModel::Logistic(self.not_recovered_model),
            },
            replicates: Vec::new(),
            alternatives: Vec::new(),
            calibration_error: 0.0,
            program_mix: self.program_mix,
            metrics: self.metrics,
            candidates: Vec::new(),
            trained_from: self.trained_from,
            trained_to: self.trained_to,
            holdout_from: self.holdout_from,
            holdout: self.holdout,
            training_rows: self.training_rows,
            training_treated: self.training_treated,
            holdout_rows: self.holdout_rows,
            created_at: self.created_at,
            checksum,
        })
    }
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

    /// Parses and checks an artifact of any layout this build reads: layout, checksum, kind,
    /// then that this build computes every feature it reads and its treatment inputs, and that
    /// each model has one input per feature and treatment input. Each refusal names what is
    /// wrong.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let artifact = Self::read(text)?;
        artifact
            .features
            .check()
            .map_err(ModelError::UnusableFeatures)?;
        for models in std::iter::once(&artifact.models)
            .chain(&artifact.replicates)
            .chain(&artifact.alternatives)
        {
            models.check_inputs(artifact.features.len(), &artifact.treatments)?;
        }
        Ok(artifact)
    }

    /// Parses an artifact of any layout, checking its layout, checksum and kind but not that
    /// this build can serve it: for listing every stored version.
    pub fn read(text: &str) -> Result<Self, ModelError> {
        let (value, recorded) = checked_json(
            text,
            ModelKind::Uplift,
            &[1, UPLIFT_ARTIFACT_SCHEMA_VERSION],
        )?;
        let mut artifact = if value.get("artifact_schema").and_then(Value::as_u64) == Some(1) {
            serde_json::from_value::<ArtifactV1>(value)?.upgrade(recorded)?
        } else {
            // From the text, not the checked value: the tree booster keys maps by number, which
            // serde_json reads from JSON text but not from a `Value`'s string keys.
            let mut artifact: Self = serde_json::from_str(text)?;
            artifact.checksum = recorded;
            artifact
        };
        artifact.treatments =
            Treatments::from_names(artifact.treatment_schema, &artifact.treatment_names)?;
        Ok(artifact)
    }

    fn check_finite(&self) -> Result<(), ModelError> {
        for models in std::iter::once(&self.models)
            .chain(&self.replicates)
            .chain(&self.alternatives)
        {
            models.check_finite()?;
        }
        let numbers = self
            .program_mix
            .values()
            .map(|value| ("program mix", value))
            .chain(
                std::iter::once(&self.metrics)
                    .chain(self.candidates.iter().map(|c| &c.metrics))
                    .flat_map(UpliftMetrics::values)
                    .map(|value| ("metrics", value)),
            )
            .chain(std::iter::once((
                "calibration error",
                self.calibration_error,
            )));
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
    use crate::domain::BuiltInAction;
    use crate::domain::{RecoveryAction, Segment};
    use crate::features::FEATURE_NAMES;
    use crate::model::Scaler;
    use crate::uplift::ExpectedQuality;
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

    fn built_in_names() -> Vec<String> {
        FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect()
    }

    fn artifact() -> UpliftArtifact {
        let features = FEATURE_NAMES.len();
        UpliftArtifact {
            artifact_schema: UPLIFT_ARTIFACT_SCHEMA_VERSION,
            kind: ModelKind::Uplift,
            version: "uplift-1".into(),
            learner: UpliftLearner::new(MetaLearner::TLearner, Learner::Logistic),
            features: FeatureSpec::every_built_in(),
            treatment_schema: 1,
            treatment_names: Treatments::built_in().names(),
            treatments: Treatments::built_in(),
            horizon_days: 90,
            models: RetentionModels::Separate {
                recovered: FittedModel::Logistic(logistic(
                    features + Treatments::built_in().width(),
                    2.3,
                )),
                not_recovered: FittedModel::Logistic(logistic(features, 2.0)),
            },
            replicates: Vec::new(),
            alternatives: Vec::new(),
            calibration_error: 0.0,
            program_mix: ProgramMix {
                qualities: vec![QualityShare {
                    resurvey_score: Some(6),
                    share: 1.0,
                    cares: Some([5.5, 6.0, 6.5, 5.0, 6.0]),
                }],
                segments: Vec::new(),
                actions: vec![ActionShare {
                    action: RecoveryAction::from(BuiltInAction::Refund),
                    share: 1.0,
                }],
            },
            metrics: UpliftMetrics::default(),
            candidates: Vec::new(),
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
        original.candidates = vec![UpliftCandidate {
            learner: original.learner,
            metrics: UpliftMetrics::default(),
        }];
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
    fn an_interacting_model_and_its_alternatives_read_back_and_are_checked() {
        let features = FEATURE_NAMES.len();
        let treated = features + Treatments::built_in().width();
        let interacting = RetentionModels::Interacting {
            model: FittedModel::Logistic(logistic(treated + 1 + features, 2.1)),
            effect_penalty: 0.3,
        };
        let mut original = artifact();
        original.learner = UpliftLearner::new(MetaLearner::InteractionLearner, Learner::Logistic);
        original.models = interacting.clone();
        original.alternatives = vec![artifact().models];
        let text = original.to_json().expect("serializes");
        let read = UpliftArtifact::from_json(&text).expect("reads back");
        assert_eq!(read.models, interacting);
        assert_eq!(read.alternatives, original.alternatives);
        let mut narrow = original.clone();
        narrow.alternatives = vec![RetentionModels::Interacting {
            model: FittedModel::Logistic(logistic(treated + 1, 2.1)),
            effect_penalty: 0.3,
        }];
        let text = narrow.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::ArtifactLengthMismatch { .. })
        ));
        let mut infinite = original;
        infinite.models = RetentionModels::Interacting {
            model: FittedModel::Logistic(logistic(treated + 1 + features, 2.1)),
            effect_penalty: f64::INFINITY,
        };
        assert!(matches!(
            infinite.to_json(),
            Err(ModelError::ArtifactNonFinite { .. })
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
    fn other_treatment_inputs_model_widths_or_features_are_refused() {
        let mut renamed = artifact();
        renamed.treatment_names[8] = "resurvey".into();
        let text = renamed.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::FeatureNamesMismatch { position: 8, .. })
        ));
        let mut narrow = artifact();
        narrow.models = RetentionModels::Separate {
            recovered: FittedModel::Logistic(logistic(FEATURE_NAMES.len(), 2.3)),
            not_recovered: FittedModel::Logistic(logistic(FEATURE_NAMES.len(), 2.0)),
        };
        let text = narrow.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::ArtifactLengthMismatch { .. })
        ));
        let mut unknown = artifact();
        let mut names = built_in_names();
        names[3] = "moon_phase".into();
        unknown.features = FeatureSpec::built_in(&names);
        let text = unknown.to_json().expect("serializes");
        assert!(matches!(
            UpliftArtifact::from_json(&text),
            Err(ModelError::UnusableFeatures(reason)) if reason.contains("moon_phase")
        ));
    }

    /// Layout 1 — two logistic models over built-in features named one by one — loads as the
    /// same two models over a spec of those features, and predicts exactly as it did.
    #[test]
    fn a_layout_1_artifact_loads_and_predicts_as_before() {
        let names: Vec<String> = built_in_names().into_iter().skip(1).collect();
        let width = names.len();
        let (recovered, not_recovered) = (
            logistic(width + Treatments::built_in().width(), 2.3),
            logistic(width, 1.1),
        );
        let v1 = serde_json::json!({
            "artifact_schema": 1,
            "kind": "uplift",
            "version": "uplift-old",
            "learner": "s_learner",
            "feature_schema": FEATURE_SCHEMA_VERSION,
            "feature_names": names,
            "treatment_schema": 1,
            "treatment_names": Treatments::built_in().names(),
            "horizon_days": 90,
            "recovered_model": recovered,
            "not_recovered_model": not_recovered,
            "program_mix": artifact().program_mix,
            "metrics": UpliftMetrics::default(),
            "trained_from": "2025-01-01T00:00:00Z",
            "trained_to": "2025-06-01T00:00:00Z",
            "training_rows": 1000,
            "training_treated": 480,
            "holdout_rows": 400,
            "created_at": "2026-01-01T00:00:00Z",
        });
        let (text, _) = to_checksummed_json(&v1).expect("sealed");
        let loaded = UpliftArtifact::from_json(&text).expect("layout 1 loads");
        assert_eq!(loaded.artifact_schema, UPLIFT_ARTIFACT_SCHEMA_VERSION);
        assert_eq!(loaded.learner.name(), "s_learner/logistic");
        assert_eq!(loaded.features.len(), width);
        let model = crate::uplift::UpliftModel::from_artifact(&loaded);
        let features: Vec<f64> = (0..width).map(|j| j as f64 * 0.1).collect();
        let retention = model.retention(
            &features,
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Refund),
            ExpectedQuality::Rating(5),
        );
        assert!((retention.if_not - not_recovered.probability(&features)).abs() < 1e-12);
    }

    #[test]
    fn non_finite_numbers_are_refused_on_save() {
        let mut broken = artifact();
        broken.models = RetentionModels::Separate {
            recovered: FittedModel::Logistic(logistic(
                FEATURE_NAMES.len() + Treatments::built_in().width(),
                2.3,
            )),
            not_recovered: FittedModel::Logistic(logistic(FEATURE_NAMES.len(), f64::NAN)),
        };
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
