//! Health scores: the active churn model applied to a customer's point-in-time features,
//! turned into a 0–100 health score, a band, and the drivers in plain words.
//!
//! The active model lives in a [`ModelSlot`]. A request takes the slot's current model once
//! and uses it to the end, so a promotion swaps models between requests and no response ever
//! mixes two versions.

use crate::domain::{CustomerId, Timestamp};
use crate::features::{self, FEATURE_NAMES, FEATURE_SCHEMA_VERSION, History};
use crate::model::artifact::ModelArtifact;
use crate::model::{LogisticModel, ModelError};

/// Drivers listed with a score: enough to explain it, few enough to read at a glance.
pub const MAX_DRIVERS: usize = 5;
/// Of those, at most this many are reasons that lower the risk; the rest raise it.
const MAX_PROTECTIVE_DRIVERS: usize = 2;

/// A loaded, checked churn model, ready to score.
#[derive(Debug, Clone)]
pub struct HealthModel {
    pub version: String,
    pub horizon_days: u32,
    model: LogisticModel,
}

impl HealthModel {
    /// Loads an artifact, refusing one that does not match this build's features.
    pub fn from_artifact_json(json: &str) -> Result<Self, ModelError> {
        let artifact = ModelArtifact::from_json(json, FEATURE_NAMES, FEATURE_SCHEMA_VERSION)?;
        Ok(Self::from_artifact(&artifact))
    }

    pub fn from_artifact(artifact: &ModelArtifact) -> Self {
        Self {
            version: artifact.version.clone(),
            horizon_days: artifact.horizon_days,
            model: artifact.model(),
        }
    }

    /// P(churn within the horizon) for a feature vector.
    pub fn probability(&self, features: &[f64]) -> f64 {
        self.model.probability(features)
    }

    /// Scores `history` as of `as_of`.
    pub fn score(&self, history: &History, as_of: Timestamp, bands: &Bands) -> HealthScore {
        let features = features::compute(history, as_of);
        let contributions = self.model.contributions(&features.0);
        let probability = self.model.probability_from_contributions(&contributions);
        let health = 100.0 * (1.0 - probability);
        HealthScore {
            customer_id: history.customer.customer_id.clone(),
            probability,
            health,
            band: bands.band(health),
            drivers: drivers(&features.0, &contributions),
            model_version: self.version.clone(),
            horizon_days: self.horizon_days,
            as_of,
        }
    }
}

/// The strongest risk-raising reasons first, then the strongest protective ones. Only the
/// chosen features are put into words: scoring is a hot path.
fn drivers(values: &[f64], contributions: &[f64]) -> Vec<Driver> {
    // Ranked on the stack, by the contributions themselves: nothing to allocate per score.
    let mut ranked = [(0.0, 0); FEATURE_NAMES.len()];
    let features = contributions.len().min(values.len()).min(ranked.len());
    for (slot, (index, &contribution)) in ranked.iter_mut().zip(contributions.iter().enumerate()) {
        *slot = (contribution, index);
    }
    let ranked = &mut ranked[..features];
    // Descending: the strongest risks first, the strongest protective reasons last.
    ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let describe = |&(contribution, index): &(f64, usize)| {
        features::describe(index, values[index]).map(|description| Driver {
            feature: FEATURE_NAMES[index],
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
    pub feature: &'static str,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Healthy,
    Watch,
    AtRisk,
    Critical,
}

/// Health-score thresholds of the bands: at or above `healthy` is healthy, at or above
/// `watch` is watch, at or above `at_risk` is at risk, below is critical.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
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
