//! The churn model: training a logistic regression (argmin's L-BFGS) on standardized features,
//! scoring with it, measuring it on a hold-out, and the checksummed artifact it is stored as.
//!
//! Everything here is synchronous, CPU-bound and free of I/O: callers run training on a blocking
//! thread and decide where artifacts live.
//!
//! - [`Dataset`]: a feature matrix with churn labels, shape-checked once.
//! - [`TrainParams`] → [`ValidTrainParams`]: solver settings, checked apart from fitting.
//! - [`train_logistic`] → [`LogisticModel`]: the fit, and P(churn) with per-feature contributions.
//! - [`train_trees`] → [`TreeModel`]: gradient-boosted trees (forust), calibrated.
//! - [`FittedModel`]: either, as training, artifacts and scoring handle them.
//! - [`regression`]: a real-valued target in either learner's family (the uplift effect).
//! - [`ModelKind`]: what a model predicts (health, uplift), named once.
//! - [`holdout`]: seeded, stratified draws of customers for a hold-out.
//! - [`metrics`]: ROC-AUC, PR-AUC, Brier, log-loss and calibration on a hold-out.
//! - [`qini`]: the Qini curve, Qini coefficient and uplift@k of an uplift model on a hold-out.
//! - [`artifact`]: the JSON artifact, with the refusals that keep a wrong model from loading.
//! - [`Cancellation`]: a training given up between fits.

pub mod artifact;
mod cancel;
mod dataset;
mod error;
pub mod holdout;
mod kind;
mod learner;
mod logistic;
pub mod metrics;
mod params;
pub mod qini;
pub mod regression;
mod slot;
mod trees;

pub use artifact::{ARTIFACT_SCHEMA_VERSION, LearnerMetrics, ModelArtifact};
pub use cancel::Cancellation;
pub use dataset::Dataset;
pub use error::ModelError;
pub use kind::ModelKind;
pub use learner::{FittedModel, Learner};
pub use logistic::{LogisticFit, LogisticModel, Scaler, train_logistic, train_logistic_with};
pub use metrics::{CalibrationBin, Metrics};
pub use params::{TrainParams, ValidTrainParams};
pub use regression::{Regression, fit_regression};
pub use slot::ServingSlot;
pub use trees::{TreeModel, TreeParams, TreeRegression, train_trees};
