//! The recovery uplift model: how much a service recovery raises the chance that a customer
//! who was just failed is still a customer at the end of the horizon — retention if
//! recovered minus retention if not — per customer, per action and per expected quality.
//!
//! It learns from every eligible failure of the stored customers: those that got a recovery
//! case (with its action, re-survey score and C.A.R.E.S. ratings) and those that did not,
//! each labelled by whether the customer churned within the horizon after the failure.
//!
//! # Layout
//! - [`treatment`]: the action and quality of a recovery as model inputs.
//! - [`rows`]: one training row per failure, and the split by time.
//! - [`learner`]: the retention models and the S-, T- and DR-learners that fit them, each over
//!   the logistic or the tree learner.
//! - [`mix`]: the program's quality and action mix, the expected quality of a decision.
//! - [`train`]: rows to a trained, measured artifact: every learner fitted, the best kept.
//! - [`propensity`]: how likely each failure was to be recovered, to weight the metrics.
//! - [`evaluation`]: hold-out Qini metrics, and the net value an investment policy captures.
//! - [`artifact`]: the checksummed JSON artifact and its refusals.
//! - [`model`]: the loaded model that predicts retention, and its hot-swap slot.

pub mod artifact;
pub mod evaluation;
pub mod learner;
pub mod mix;
pub mod model;
pub mod propensity;
pub mod rows;
pub mod train;
pub mod treatment;

pub use artifact::UpliftArtifact;
pub use evaluation::UpliftMetrics;
pub use learner::{MetaLearner, UpliftLearner};
pub use mix::ExpectedQuality;
pub use model::{Retention, UpliftInterval, UpliftModel, UpliftSlot};
pub use rows::{HoldoutStart, UpliftRow, UpliftRows, UpliftSplit};
