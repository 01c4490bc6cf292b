//! The stored form of a trained model: JSON, checksummed, and refused on load unless it fits
//! the features this build computes.
//!
//! The checksum is SHA-256 over the canonical JSON (keys sorted, no whitespace) of every field
//! but `checksum` itself, so a reformatted file still loads and a changed digit does not.
//! Floats round-trip bit-exactly (serde_json's `float_roundtrip`), which the checksum relies on.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FittedModel, LogisticModel, Metrics, ModelError, ModelKind, Scaler};
use crate::domain::Timestamp;
use crate::features::FeatureSpec;

/// The layout of [`ModelArtifact`]. Bump it when a field changes meaning or is removed, and
/// teach [`ModelArtifact::from_json`] to read the old one: stored models must keep loading.
/// Layout 1 (33 built-in features by name, a logistic model) is read as a spec of those
/// built-in features and a logistic learner.
pub const ARTIFACT_SCHEMA_VERSION: u32 = 2;

/// A trained model with everything needed to trust it: what it reads, how it was trained,
/// and how it did on the hold-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// [`ARTIFACT_SCHEMA_VERSION`] when written; read first so an unknown layout is refused by
    /// name instead of failing on some field.
    pub artifact_schema: u32,
    /// Always [`ModelKind::Health`].
    pub kind: ModelKind,
    /// The registry's version string, shown to callers with every score.
    pub version: String,
    /// Every feature the model reads, in input order: name, computation, wording, range.
    pub features: FeatureSpec,
    /// Days after `as_of` within which churn was counted: the probability's horizon.
    pub horizon_days: u32,
    /// The fitted learner.
    pub model: FittedModel,
    /// Hold-out metrics at training time.
    pub metrics: Metrics,
    /// Every learner fitted in the run, with its metrics on the same hold-out rows; the
    /// model above is the one the run chose.
    #[serde(default)]
    pub candidates: Vec<LearnerMetrics>,
    /// How the hold-out rows were chosen, in words (e.g. "the rows at the last as-of time").
    #[serde(default)]
    pub holdout: String,
    /// The span of the training rows' `as_of` times (RFC 3339).
    #[serde(with = "rfc3339")]
    pub trained_from: Timestamp,
    #[serde(with = "rfc3339")]
    pub trained_to: Timestamp,
    pub training_rows: u64,
    pub holdout_rows: u64,
    /// Churned rows among the training rows (the hold-out's are in `metrics`).
    pub positives: u64,
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// SHA-256 (hex) of the canonical JSON of every other field; filled by [`Self::to_json`].
    #[serde(default)]
    pub checksum: String,
}

/// One learner of a training run and how it did on the hold-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerMetrics {
    pub learner: String,
    pub metrics: Metrics,
}

/// Layout 1: a logistic model over the built-in features of one feature schema.
#[derive(Debug, Deserialize)]
struct ArtifactV1 {
    kind: ModelKind,
    version: String,
    feature_schema: u32,
    feature_names: Vec<String>,
    horizon_days: u32,
    scaler: Scaler,
    coefficients: Vec<f64>,
    intercept: f64,
    metrics: Metrics,
    #[serde(with = "rfc3339")]
    trained_from: Timestamp,
    #[serde(with = "rfc3339")]
    trained_to: Timestamp,
    training_rows: u64,
    holdout_rows: u64,
    positives: u64,
    #[serde(with = "rfc3339")]
    created_at: Timestamp,
}

/// The only feature schema layout 1 was written with: the 33 built-in features.
const V1_FEATURE_SCHEMA: u32 = 1;

impl ArtifactV1 {
    fn upgrade(self, checksum: String) -> Result<ModelArtifact, ModelError> {
        if self.feature_schema != V1_FEATURE_SCHEMA {
            return Err(ModelError::FeatureSchemaMismatch {
                expected: V1_FEATURE_SCHEMA,
                found: self.feature_schema,
            });
        }
        check_model_lengths(&self.scaler, &self.coefficients, self.feature_names.len())?;
        Ok(ModelArtifact {
            artifact_schema: ARTIFACT_SCHEMA_VERSION,
            kind: self.kind,
            version: self.version,
            features: FeatureSpec::built_in(&self.feature_names),
            horizon_days: self.horizon_days,
            model: FittedModel::Logistic(LogisticModel {
                scaler: self.scaler,
                coefficients: self.coefficients,
                intercept: self.intercept,
            }),
            metrics: self.metrics,
            candidates: Vec::new(),
            holdout: "the rows at the last as-of time".into(),
            trained_from: self.trained_from,
            trained_to: self.trained_to,
            training_rows: self.training_rows,
            holdout_rows: self.holdout_rows,
            positives: self.positives,
            created_at: self.created_at,
            checksum,
        })
    }
}

impl ModelArtifact {
    /// Pretty JSON with the checksum filled in (and stored in `self.checksum`). Refuses
    /// non-finite numbers, which JSON cannot carry.
    pub fn to_json(&mut self) -> Result<String, ModelError> {
        self.check_finite()?;
        let (json, checksum) = to_checksummed_json(&*self)?;
        self.checksum = checksum;
        Ok(json)
    }

    /// Parses and checks an artifact of any layout this build reads: the layout, the
    /// checksum, then that this build computes every feature it reads and that the learner
    /// has one input per feature. Each refusal names what is wrong.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let (value, recorded) =
            checked_json(text, ModelKind::Health, &[1, ARTIFACT_SCHEMA_VERSION])?;
        // Read from the text, not the checked value: the tree booster keys maps by number,
        // which serde_json reads from JSON text but not from a `Value`'s string keys.
        let artifact = if value.get("artifact_schema").and_then(Value::as_u64) == Some(1) {
            serde_json::from_str::<ArtifactV1>(text)?.upgrade(recorded)?
        } else {
            let mut artifact: Self = serde_json::from_str(text)?;
            artifact.checksum = recorded;
            artifact
        };
        artifact
            .features
            .check()
            .map_err(ModelError::UnusableFeatures)?;
        artifact.model.check_inputs(artifact.features.len())?;
        Ok(artifact)
    }

    fn check_finite(&self) -> Result<(), ModelError> {
        self.model.check_finite()?;
        let m = &self.metrics;
        for (field, value) in [
            ("metrics", m.roc_auc),
            ("metrics", m.pr_auc),
            ("metrics", m.brier),
            ("metrics", m.log_loss),
            ("metrics", m.expected_calibration_error),
        ] {
            if !value.is_finite() {
                return Err(ModelError::ArtifactNonFinite { field, value });
            }
        }
        Ok(())
    }
}

/// `artifact` as pretty JSON with its `checksum` field filled in, and that checksum. Shared
/// by every model kind, so all artifacts are sealed the same way.
pub(crate) fn to_checksummed_json<T: Serialize>(
    artifact: &T,
) -> Result<(String, String), ModelError> {
    let mut value = serde_json::to_value(artifact)?;
    let checksum = checksum_of(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("checksum".into(), Value::String(checksum.clone()));
    }
    Ok((serde_json::to_string_pretty(&value)?, checksum))
}

/// Parses an artifact and checks, in this order, its `artifact_schema` against `supported`,
/// its checksum and that it is a model of `kind`. Returns the JSON without its `checksum`
/// field, and the checksum, for the caller to deserialize and check its own fields.
pub(crate) fn checked_json(
    text: &str,
    kind: ModelKind,
    supported: &[u32],
) -> Result<(Value, String), ModelError> {
    let mut value: Value = serde_json::from_str(text)?;
    let schema = value.get("artifact_schema").and_then(Value::as_u64).ok_or(
        ModelError::ArtifactMissingField {
            field: "artifact_schema",
        },
    )?;
    if !supported.iter().any(|&s| u64::from(s) == schema) {
        return Err(ModelError::UnknownArtifactSchema {
            found: schema,
            supported: supported.iter().copied().max().unwrap_or_default(),
        });
    }
    let recorded = value
        .get("checksum")
        .and_then(Value::as_str)
        .ok_or(ModelError::ArtifactMissingField { field: "checksum" })?
        .to_owned();
    let computed = checksum_of(&mut value);
    if recorded != computed {
        return Err(ModelError::ChecksumMismatch { recorded, computed });
    }
    let found = value.get("kind").and_then(Value::as_str);
    if found != Some(kind.as_str()) {
        return Err(ModelError::ArtifactKindMismatch {
            expected: kind,
            found: found.unwrap_or_default().to_owned(),
        });
    }
    Ok((value, recorded))
}

/// Refuses a logistic model whose coefficients or scaler do not have one entry per feature.
pub(crate) fn check_model_lengths(
    scaler: &Scaler,
    coefficients: &[f64],
    features: usize,
) -> Result<(), ModelError> {
    for (part, found) in [
        ("coefficients", coefficients.len()),
        ("scaler means", scaler.mean.len()),
        ("scaler scales", scaler.scale.len()),
    ] {
        if found != features {
            return Err(ModelError::ArtifactLengthMismatch {
                part,
                features,
                found,
            });
        }
    }
    Ok(())
}

/// Refuses a logistic model with a non-finite number, which JSON cannot carry.
pub(crate) fn check_model_finite(
    scaler: &Scaler,
    coefficients: &[f64],
    intercept: f64,
) -> Result<(), ModelError> {
    let fields = [
        ("coefficients", coefficients),
        ("scaler mean", &scaler.mean[..]),
        ("scaler scale", &scaler.scale[..]),
        ("intercept", std::slice::from_ref(&intercept)),
    ];
    for (field, values) in fields {
        if let Some(value) = values.iter().find(|value| !value.is_finite()) {
            return Err(ModelError::ArtifactNonFinite {
                field,
                value: *value,
            });
        }
    }
    Ok(())
}

/// Removes `checksum` from `value` and hashes the canonical JSON of the rest.
fn checksum_of(value: &mut Value) -> String {
    if let Value::Object(map) = value {
        map.remove("checksum");
    }
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// JSON with object keys sorted and no whitespace, whatever map order serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Timestamps as RFC 3339 with microseconds, the precision [`Timestamp`] keeps.
pub(crate) mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::domain::Timestamp;

    pub fn serialize<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(at)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        let at = chrono::DateTime::parse_from_rfc3339(&text)
            .map_err(|err| D::Error::custom(format!("`{text}` is not an RFC 3339 time: {err}")))?;
        Timestamp::from_seconds_nanos(at.timestamp(), at.timestamp_subsec_nanos() as i32)
            .ok_or_else(|| D::Error::custom(format!("`{text}` is out of range")))
    }

    /// An optional time: absent or `null` is `None`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use crate::domain::Timestamp;

        pub fn serialize<S: Serializer>(
            at: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            #[derive(Deserialize)]
            struct Time(#[serde(with = "super")] Timestamp);
            Ok(Option::<Time>::deserialize(deserializer)?.map(|Time(at)| at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::CalibrationBin;

    const NAMES: [&str; 3] = ["tenure_years", "failures_90d", "latest_csat"];

    fn logistic(artifact: &ModelArtifact) -> &LogisticModel {
        match &artifact.model {
            FittedModel::Logistic(model) => model,
            other => panic!("not a logistic model: {other:?}"),
        }
    }

    fn logistic_mut(artifact: &mut ModelArtifact) -> &mut LogisticModel {
        match &mut artifact.model {
            FittedModel::Logistic(model) => model,
            other => panic!("not a logistic model: {other:?}"),
        }
    }

    fn artifact() -> ModelArtifact {
        let names: Vec<String> = NAMES.iter().map(|name| (*name).to_owned()).collect();
        ModelArtifact {
            artifact_schema: ARTIFACT_SCHEMA_VERSION,
            kind: ModelKind::Health,
            version: "health-2026-01-05-1".into(),
            features: FeatureSpec::built_in(&names),
            horizon_days: 90,
            model: FittedModel::Logistic(LogisticModel {
                scaler: Scaler {
                    mean: vec![412.123_456_789_012_3, 1.0 / 3.0, 4.1],
                    scale: vec![210.5, 0.1 + 0.2, 1.0],
                },
                // Values whose shortest decimal form is long: a lossy parser changes the last bit.
                coefficients: vec![-0.123_456_789_012_345_67, 2.0f64.sqrt(), 1e-300],
                intercept: -std::f64::consts::E,
            }),
            candidates: Vec::new(),
            holdout: "the rows at the last as-of time".into(),
            metrics: Metrics {
                roc_auc: 0.812_345_678_901_234_5,
                pr_auc: 0.31,
                brier: 0.061,
                log_loss: 0.22,
                calibration: vec![CalibrationBin {
                    lower: 0.0,
                    upper: 0.1,
                    count: 900,
                    mean_predicted: 0.04,
                    observed_rate: 0.041,
                }],
                expected_calibration_error: 0.003,
                rows: 1000,
                positives: 70,
            },
            trained_from: Timestamp::from_unix_micros(1_735_689_600_000_000),
            trained_to: Timestamp::from_unix_micros(1_767_225_599_123_456),
            training_rows: 4000,
            holdout_rows: 1000,
            positives: 280,
            created_at: Timestamp::from_unix_micros(1_767_225_600_000_001),
            checksum: String::new(),
        }
    }

    fn load(text: &str) -> Result<ModelArtifact, ModelError> {
        ModelArtifact::from_json(text)
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let mut original = artifact();
        let text = original.to_json().expect("serializes");
        assert_eq!(original.checksum.len(), 64);
        let loaded = load(&text).expect("loads");
        assert_eq!(loaded, original);
        let (loaded, original) = (logistic(&loaded), logistic(&original));
        for (a, b) in loaded.coefficients.iter().zip(&original.coefficients) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_eq!(loaded.intercept.to_bits(), original.intercept.to_bits());
    }

    #[test]
    fn reformatting_keeps_the_checksum_valid() {
        let text = artifact().to_json().expect("serializes");
        let value: Value = serde_json::from_str(&text).expect("json");
        let compact = serde_json::to_string(&value).expect("json");
        assert!(load(&compact).is_ok());
    }

    #[test]
    fn a_changed_digit_is_a_checksum_mismatch() {
        let text = artifact().to_json().expect("serializes");
        let tampered = text.replacen(
            "\"intercept\": -2.718281828459045",
            "\"intercept\": -2.718281828459046",
            1,
        );
        assert_ne!(tampered, text, "the test must actually change the file");
        assert!(matches!(
            load(&tampered),
            Err(ModelError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn a_missing_checksum_is_refused() {
        let mut value = serde_json::to_value(artifact()).expect("json");
        if let Value::Object(map) = &mut value {
            map.remove("checksum");
        }
        assert!(matches!(
            load(&value.to_string()),
            Err(ModelError::ArtifactMissingField { field: "checksum" })
        ));
    }

    #[test]
    fn an_unknown_artifact_schema_is_refused_by_version() {
        let mut future = artifact();
        future.artifact_schema = ARTIFACT_SCHEMA_VERSION + 1;
        let text = future.to_json().expect("serializes");
        assert!(matches!(
            load(&text),
            Err(ModelError::UnknownArtifactSchema { found, .. }) if found == u64::from(ARTIFACT_SCHEMA_VERSION + 1)
        ));
    }

    #[test]
    fn a_feature_this_build_does_not_compute_is_refused_by_name() {
        let mut unknown = artifact();
        unknown.features.features[1].computation = crate::features::Computation::BuiltIn {
            name: "tickets_90d".into(),
        };
        let text = unknown.to_json().expect("serializes");
        match load(&text) {
            Err(ModelError::UnusableFeatures(reason)) => assert!(reason.contains("tickets_90d")),
            other => panic!("expected a feature refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_layout_1_artifact_loads_as_built_in_features_and_a_logistic_model() {
        let mut value = serde_json::to_value(artifact()).expect("json");
        let map = value.as_object_mut().expect("an object");
        let model = map.remove("model").expect("a model");
        let spec = map.remove("features").expect("features");
        map.remove("candidates");
        map.remove("holdout");
        map.insert("artifact_schema".into(), 1.into());
        map.insert("feature_schema".into(), 1.into());
        let names: Vec<Value> = spec["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| f["name"].clone())
            .collect();
        map.insert("feature_names".into(), Value::Array(names));
        for key in ["scaler", "coefficients", "intercept"] {
            map.insert(key.into(), model["logistic"][key].clone());
        }
        let (text, _) = to_checksummed_json(&value).expect("sealed");
        let loaded = load(&text).expect("a layout-1 artifact loads");
        assert_eq!(loaded.features, artifact().features);
        assert_eq!(loaded.model, artifact().model);
        let names: Vec<&str> = loaded.features.names().collect();
        assert_eq!(names, NAMES);
    }

    #[test]
    fn coefficient_or_scaler_lengths_that_do_not_match_the_features_are_refused() {
        let mut short = artifact();
        logistic_mut(&mut short).coefficients.pop();
        let text = short.to_json().expect("serializes");
        assert!(matches!(
            load(&text),
            Err(ModelError::ArtifactLengthMismatch {
                part: "coefficients",
                features: 3,
                found: 2
            })
        ));
        let mut long_scaler = artifact();
        logistic_mut(&mut long_scaler).scaler.scale.push(1.0);
        let text = long_scaler.to_json().expect("serializes");
        assert!(matches!(
            load(&text),
            Err(ModelError::ArtifactLengthMismatch {
                part: "scaler scales",
                found: 4,
                ..
            })
        ));
    }

    #[test]
    fn non_finite_numbers_are_refused_on_save() {
        let mut broken = artifact();
        logistic_mut(&mut broken).coefficients[0] = f64::NAN;
        assert!(matches!(
            broken.to_json(),
            Err(ModelError::ArtifactNonFinite {
                field: "coefficients",
                ..
            })
        ));
    }

    #[test]
    fn malformed_json_is_a_format_error() {
        assert!(matches!(
            load("{ not json"),
            Err(ModelError::ArtifactFormat(_))
        ));
    }
}
