//! The one error type of the model layer.

use thiserror::Error;

/// Why a model could not be trained, evaluated, saved or loaded.
///
/// Parameter errors ([`ModelError::InvalidParameter`]) are raised by
/// [`TrainParams::check`](super::TrainParams::check), before any data is touched; the rest come
/// from the data, the solver or an artifact.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("the training was cancelled: its caller went away")]
    Cancelled,

    #[error("invalid training parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },

    #[error("feature matrix has {rows} rows but there are {labels} labels")]
    ShapeMismatch { rows: usize, labels: usize },

    #[error("dataset is empty: it needs at least one row and one feature")]
    EmptyDataset,

    #[error("feature value at row {row}, column {column} is not finite ({value})")]
    NonFiniteFeature {
        row: usize,
        column: usize,
        value: f64,
    },

    #[error("all {rows} labels are {label}: both churned and retained rows are needed")]
    SingleClass { rows: usize, label: bool },

    #[error("expected {expected} features, got {actual}")]
    FeatureCountMismatch { expected: usize, actual: usize },

    #[error("logistic regression did not fit: {0}")]
    Fit(String),

    #[error("{count} scores but {labels} labels")]
    MetricLengthMismatch { count: usize, labels: usize },

    #[error("score {value} at index {index} is not a probability in [0, 1]")]
    InvalidScore { index: usize, value: f64 },

    #[error(
        "{metric} needs at least one positive and one negative label ({positives} of {rows} are positive)"
    )]
    MetricNeedsBothClasses {
        metric: &'static str,
        rows: usize,
        positives: usize,
    },

    #[error("calibration needs at least one bin")]
    NoCalibrationBins,

    #[error(
        "{metric} needs at least one treated and one control unit ({treated} of {rows} are treated)"
    )]
    MetricNeedsBothGroups {
        metric: &'static str,
        rows: usize,
        treated: usize,
    },

    #[error("uplift score {value} at index {index} is not a finite number")]
    NonFiniteUpliftScore { index: usize, value: f64 },

    #[error("model artifact is not valid JSON for this schema: {0}")]
    ArtifactFormat(#[from] serde_json::Error),

    #[error("model artifact is of kind {found:?}, expected \"{expected}\"")]
    ArtifactKindMismatch {
        expected: super::ModelKind,
        found: String,
    },

    #[error("model artifact has no {field}")]
    ArtifactMissingField { field: &'static str },

    #[error(
        "model artifact schema version {found} is not supported (this build reads version {supported})"
    )]
    UnknownArtifactSchema { found: u64, supported: u32 },

    #[error(
        "model artifact checksum mismatch (file is corrupt or was edited): recorded {recorded}, computed {computed}"
    )]
    ChecksumMismatch { recorded: String, computed: String },

    #[error(
        "model artifact was trained on feature schema {found}, this build computes schema {expected}"
    )]
    FeatureSchemaMismatch { expected: u32, found: u32 },

    #[error(
        "model artifact feature names differ from this build's at position {position}: expected {expected:?}, found {found:?}"
    )]
    FeatureNamesMismatch {
        position: usize,
        expected: Option<String>,
        found: Option<String>,
    },

    #[error("model artifact has {found} {part} for {features} features")]
    ArtifactLengthMismatch {
        part: &'static str,
        features: usize,
        found: usize,
    },

    #[error("model artifact {field} is not finite: {value}")]
    ArtifactNonFinite { field: &'static str, value: f64 },

    #[error("model artifact features cannot be computed: {0}")]
    UnusableFeatures(String),

    #[error("the tree learner failed: {0}")]
    Trees(String),
}
