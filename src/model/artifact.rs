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

use super::{LogisticModel, Metrics, ModelError, Scaler};
use crate::domain::Timestamp;

/// The layout of [`ModelArtifact`]. Bump it when a field changes meaning or is removed, and
/// teach [`ModelArtifact::from_json`] to read (or refuse) the old one.
pub const ARTIFACT_SCHEMA_VERSION: u32 = 1;

/// The model kind of the churn / health model.
pub const HEALTH_MODEL_KIND: &str = "health";

/// A trained model with everything needed to trust it: what it expects as input, how it was
/// trained, and how it did on the hold-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// [`ARTIFACT_SCHEMA_VERSION`] when written; read first so an unknown layout is refused by
    /// name instead of failing on some field.
    pub artifact_schema: u32,
    /// Which model this is, e.g. [`HEALTH_MODEL_KIND`].
    pub kind: String,
    /// The registry's version string, shown to callers with every score.
    pub version: String,
    /// The feature schema the coefficients were fitted to; a build computing another schema
    /// would feed the coefficients the wrong numbers.
    pub feature_schema: u32,
    /// The features in coefficient order, checked against the build's on load.
    pub feature_names: Vec<String>,
    /// Days after `as_of` within which churn was counted: the probability's horizon.
    pub horizon_days: u32,
    pub scaler: Scaler,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// Hold-out metrics at training time.
    pub metrics: Metrics,
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

impl ModelArtifact {
    /// The scoring model inside the artifact.
    pub fn model(&self) -> LogisticModel {
        LogisticModel {
            scaler: self.scaler.clone(),
            coefficients: self.coefficients.clone(),
            intercept: self.intercept,
        }
    }

    /// Pretty JSON with the checksum filled in (and stored in `self.checksum`). Refuses
    /// non-finite numbers, which JSON cannot carry.
    pub fn to_json(&mut self) -> Result<String, ModelError> {
        self.check_finite()?;
        let (json, checksum) = to_checksummed_json(&*self)?;
        self.checksum = checksum;
        Ok(json)
    }

    /// Parses and checks an artifact: schema version, checksum, then that it fits this build's
    /// features (schema, names in order, lengths). Each refusal names what is wrong.
    pub fn from_json(
        text: &str,
        expected_feature_names: &[&str],
        expected_feature_schema: u32,
    ) -> Result<Self, ModelError> {
        let (value, recorded) = checked_json(text, ARTIFACT_SCHEMA_VERSION)?;
        let mut artifact: Self = serde_json::from_value(value)?;
        artifact.checksum = recorded;
        artifact.check_features(expected_feature_names, expected_feature_schema)?;
        Ok(artifact)
    }

    fn check_features(&self, names: &[&str], schema: u32) -> Result<(), ModelError> {
        check_feature_names(self.feature_schema, &self.feature_names, names, schema)?;
        check_model_lengths(&self.scaler, &self.coefficients, names.len())
    }

    fn check_finite(&self) -> Result<(), ModelError> {
        check_model_finite(&self.scaler, &self.coefficients, self.intercept)?;
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

/// Parses an artifact and checks, in this order, its `artifact_schema` against `supported`
/// and its checksum. Returns the JSON without its `checksum` field, and the checksum, for the
/// caller to deserialize and check its own fields.
pub(crate) fn checked_json(text: &str, supported: u32) -> Result<(Value, String), ModelError> {
    let mut value: Value = serde_json::from_str(text)?;
    let schema = value.get("artifact_schema").and_then(Value::as_u64).ok_or(
        ModelError::ArtifactMissingField {
            field: "artifact_schema",
        },
    )?;
    if schema != u64::from(supported) {
        return Err(ModelError::UnknownArtifactSchema {
            found: schema,
            supported,
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
    Ok((value, recorded))
}

/// Refuses an artifact fitted to another feature schema, or to features other than `names`
/// in that order, naming the first position that differs.
pub(crate) fn check_feature_names(
    found_schema: u32,
    found_names: &[String],
    names: &[&str],
    schema: u32,
) -> Result<(), ModelError> {
    if found_schema != schema {
        return Err(ModelError::FeatureSchemaMismatch {
            expected: schema,
            found: found_schema,
        });
    }
    let longest = names.len().max(found_names.len());
    if let Some(position) =
        (0..longest).find(|&i| names.get(i).copied() != found_names.get(i).map(String::as_str))
    {
        return Err(ModelError::FeatureNamesMismatch {
            position,
            expected: names.get(position).map(|name| (*name).to_owned()),
            found: found_names.get(position).cloned(),
        });
    }
    Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::CalibrationBin;

    const NAMES: [&str; 3] = ["tenure_days", "tickets_90d", "csat_mean"];
    const SCHEMA: u32 = 4;

    fn artifact() -> ModelArtifact {
        ModelArtifact {
            artifact_schema: ARTIFACT_SCHEMA_VERSION,
            kind: HEALTH_MODEL_KIND.into(),
            version: "health-2026-01-05-1".into(),
            feature_schema: SCHEMA,
            feature_names: NAMES.iter().map(|name| (*name).to_owned()).collect(),
            horizon_days: 90,
            scaler: Scaler {
                mean: vec![412.123_456_789_012_3, 1.0 / 3.0, 4.1],
                scale: vec![210.5, 0.1 + 0.2, 1.0],
            },
            // Values whose shortest decimal form is long: a lossy parser changes the last bit.
            coefficients: vec![-0.123_456_789_012_345_67, 2.0f64.sqrt(), 1e-300],
            intercept: -std::f64::consts::E,
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
        ModelArtifact::from_json(text, &NAMES, SCHEMA)
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let mut original = artifact();
        let text = original.to_json().expect("serializes");
        assert_eq!(original.checksum.len(), 64);
        let loaded = load(&text).expect("loads");
        assert_eq!(loaded, original);
        for (a, b) in loaded.coefficients.iter().zip(&original.coefficients) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_eq!(loaded.intercept.to_bits(), original.intercept.to_bits());
        assert_eq!(loaded.model().coefficients, original.coefficients);
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
    fn another_feature_schema_is_refused() {
        let text = artifact().to_json().expect("serializes");
        assert!(matches!(
            ModelArtifact::from_json(&text, &NAMES, SCHEMA + 1),
            Err(ModelError::FeatureSchemaMismatch {
                expected: 5,
                found: 4
            })
        ));
    }

    #[test]
    fn renamed_reordered_or_missing_features_are_refused_with_the_position() {
        let text = artifact().to_json().expect("serializes");
        let swapped = ["tenure_days", "csat_mean", "tickets_90d"];
        match ModelArtifact::from_json(&text, &swapped, SCHEMA) {
            Err(ModelError::FeatureNamesMismatch {
                position,
                expected,
                found,
            }) => {
                assert_eq!(position, 1);
                assert_eq!(expected.as_deref(), Some("csat_mean"));
                assert_eq!(found.as_deref(), Some("tickets_90d"));
            }
            other => panic!("expected a feature-name refusal, got {other:?}"),
        }
        let extra = ["tenure_days", "tickets_90d", "csat_mean", "nps_last"];
        assert!(matches!(
            ModelArtifact::from_json(&text, &extra, SCHEMA),
            Err(ModelError::FeatureNamesMismatch {
                position: 3,
                found: None,
                ..
            })
        ));
    }

    #[test]
    fn coefficient_or_scaler_lengths_that_do_not_match_the_features_are_refused() {
        let mut short = artifact();
        short.coefficients.pop();
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
        long_scaler.scaler.scale.push(1.0);
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
        broken.coefficients[0] = f64::NAN;
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
