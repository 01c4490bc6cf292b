//! Health scores: the active churn model applied to a customer's point-in-time features,
//! turned into a 0–100 health score, a band, and the drivers in plain words.
//!
//! The active model lives in a [`ModelSlot`]. A request takes the slot's current model once
//! and uses it to the end, so a promotion swaps models between requests and no response ever
//! mixes two versions.

use crate::domain::{CustomerId, Timestamp};
use crate::features::{FeatureSpec, History};
use crate::model::artifact::ModelArtifact;
use crate::model::{FittedModel, ModelError};

/// Drivers listed with a score: enough to explain it, few enough to read at a glance.
pub const MAX_DRIVERS: usize = 5;
/// Of those, at most this many are reasons that lower the risk; the rest raise it.
const MAX_PROTECTIVE_DRIVERS: usize = 2;

/// A loaded, checked churn model, ready to score.
#[derive(Debug, Clone)]
pub struct HealthModel {
    pub version: String,
    pub horizon_days: u32,
    /// The features the model reads, computed as its artifact specifies.
    pub features: FeatureSpec,
    model: FittedModel,
    /// The shipped baseline, trained on simulated customers: every score says so.
    pub baseline: bool,
    /// The newest as-of time of the training rows: scores far past it are flagged.
    pub trained_to: Timestamp,
}

/// Without any usage, contact or survey in this many days before `as_of`, a model that reads
/// them scores the customer on the profile alone, and says so.
const QUIET_DAYS: i64 = 90;

impl HealthModel {
    /// Loads an artifact, refusing one this build cannot compute or whose checksum fails.
    pub fn from_artifact_json(json: &str) -> Result<Self, ModelError> {
        let artifact = ModelArtifact::from_json(json)?;
        Ok(Self::from_artifact(artifact))
    }

    pub fn from_artifact(artifact: ModelArtifact) -> Self {
        Self::new(
            artifact.version,
            artifact.horizon_days,
            artifact.features,
            artifact.model,
            artifact.trained_to,
        )
    }

    /// A model that reads `features` into `model`, trained on rows up to `trained_to`.
    pub fn new(
        version: String,
        horizon_days: u32,
        features: FeatureSpec,
        model: FittedModel,
        trained_to: Timestamp,
    ) -> Self {
        Self {
            version,
            horizon_days,
            features,
            model,
            baseline: false,
            trained_to,
        }
    }

    /// Marks the model as the shipped, simulated-data baseline.
    pub fn as_baseline(self) -> Self {
        Self {
            baseline: true,
            ..self
        }
    }

    /// P(churn within the horizon) for a vector of this model's features.
    pub fn probability(&self, features: &[f64]) -> f64 {
        self.model.probability(features)
    }

    /// Scores `history` as of `as_of`.
    pub fn score(&self, history: &History, as_of: Timestamp, bands: &Bands) -> HealthScore {
        let (values, held) = self.features.compute_checked(history, as_of);
        let (contributions, probability) = self.model.explain(&values.0);
        let health = 100.0 * (1.0 - probability);
        HealthScore {
            warnings: self.warnings(history, as_of, &held),
            customer_id: history.customer.customer_id.clone(),
            probability,
            health,
            band: bands.band(health),
            drivers: drivers(&self.features, &values.0, &contributions),
            model_version: self.version.clone(),
            horizon_days: self.horizon_days,
            as_of,
        }
    }
}

impl HealthModel {
    /// Why this score may not deserve trust, in words; empty when nothing stands out.
    fn warnings(&self, history: &History, as_of: Timestamp, held: &[usize]) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.baseline {
            warnings.push(
                "scored by the shipped baseline model, trained on simulated customers, not yours: train a model on your own data (rescue-client train)".to_owned(),
            );
        }
        let horizon = i64::from(self.horizon_days);
        if as_of > self.trained_to.plus_days(horizon) {
            warnings.push(format!(
                "as of {as_of}, more than a horizon ({horizon} days) after the newest training rows ({}): the model has not seen customers this recent; retrain it",
                self.trained_to
            ));
        }
        let since = as_of.plus_days(-QUIET_DAYS);
        let recent = |at: Timestamp| since <= at && at < as_of;
        let quiet = !history.usage.iter().any(|e| recent(e.occurred_at))
            && !history.interactions.iter().any(|i| recent(i.occurred_at))
            && !history.surveys.iter().any(|s| recent(s.answered_at));
        if quiet && self.features.reads_activity() {
            warnings.push(format!(
                "no usage, contact or survey in the {QUIET_DAYS} days before {as_of}: the score rests on what is known of the customer otherwise"
            ));
        }
        if !held.is_empty() {
            let names: Vec<&str> = held
                .iter()
                .map(|&i| self.features.features[i].name.as_str())
                .collect();
            warnings.push(format!(
                "{} outside the range seen in training, held at its edge: {}",
                if names.len() == 1 {
                    "1 feature lay".to_owned()
                } else {
                    format!("{} features lay", names.len())
                },
                names.join(", ")
            ));
        }
        warnings
    }
}

/// The strongest risk-raising reasons first, then the strongest protective ones. Only the
/// chosen features are put into words: scoring is a hot path.
fn drivers(spec: &FeatureSpec, values: &[f64], contributions: &[f64]) -> Vec<Driver> {
    let features = contributions.len().min(values.len()).min(spec.len());
    let mut ranked: Vec<(f64, usize)> = contributions[..features]
        .iter()
        .enumerate()
        .map(|(index, &contribution)| (contribution, index))
        .collect();
    // Descending: the strongest risks first, the strongest protective reasons last.
    ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let describe = |&(contribution, index): &(f64, usize)| {
        spec.describe(index, values[index])
            .map(|description| Driver {
                feature: spec.features[index].name.clone(),
                description,
                contribution,
            })
    };
    let lowering: Vec<Driver> = ranked
        .iter()
        .rev()
        .filter(|(contribution, _)| *contribution < 0.0)
        .filter_map(describe)
        .take(MAX_PROTECTIVE_DRIVERS)
        .collect();
    let mut chosen = Vec::with_capacity(MAX_DRIVERS);
    chosen.extend(
        ranked
            .iter()
            .filter(|(contribution, _)| *contribution > 0.0)
            .filter_map(describe)
            .take(MAX_DRIVERS - lowering.len()),
    );
    chosen.extend(lowering);
    chosen
}

/// One reason behind a score.
#[derive(Debug, Clone, PartialEq)]
pub struct Driver {
    pub feature: String,
    pub description: String,
    /// Share of the churn log-odds against an average customer; positive raises the risk.
    pub contribution: f64,
}

/// A customer's health as of a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthScore {
    pub customer_id: CustomerId,
    pub probability: f64,
    pub health: f64,
    pub band: Band,
    pub drivers: Vec<Driver>,
    pub model_version: String,
    pub horizon_days: u32,
    pub as_of: Timestamp,
    /// Why the score may not deserve trust (a baseline model, an as-of time far past the
    /// training data, no recent data, features beyond the training range).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Healthy,
    Watch,
    AtRisk,
    Critical,
}

impl Band {
    pub const fn as_str(self) -> &'static str {
        match self {
            Band::Healthy => "healthy",
            Band::Watch => "watch",
            Band::AtRisk => "at_risk",
            Band::Critical => "critical",
        }
    }
}

/// Health-score thresholds of the bands: at or above `healthy` is healthy, at or above
/// `watch` is watch, at or above `at_risk` is at risk, below is critical.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub healthy: f64,
    pub watch: f64,
    pub at_risk: f64,
}

impl Default for Bands {
    /// With churn around 5–8% per 90 days, an ordinary customer scores in the nineties:
    /// 90 means twice the usual risk, 60 means a coin flip is not far off.
    fn default() -> Self {
        Self {
            healthy: 90.0,
            watch: 80.0,
            at_risk: 60.0,
        }
    }
}

impl Bands {
    /// Thresholds must lie in 0–100 and descend.
    pub fn check(self) -> Result<Self, String> {
        let Self {
            healthy,
            watch,
            at_risk,
        } = self;
        let within = |v: f64| (0.0..=100.0).contains(&v);
        if !(within(healthy) && within(watch) && within(at_risk)) {
            return Err(format!(
                "band thresholds must be within 0–100, got {healthy}, {watch}, {at_risk}"
            ));
        }
        if !(healthy > watch && watch > at_risk) {
            return Err(format!(
                "band thresholds must descend (healthy > watch > at_risk), got {healthy}, {watch}, {at_risk}"
            ));
        }
        Ok(self)
    }

    pub fn band(&self, health: f64) -> Band {
        if health >= self.healthy {
            Band::Healthy
        } else if health >= self.watch {
            Band::Watch
        } else if health >= self.at_risk {
            Band::AtRisk
        } else {
            Band::Critical
        }
    }
}

/// The health model currently serving.
pub type ModelSlot = crate::model::ServingSlot<HealthModel>;

#[cfg(test)]
mod tests;
