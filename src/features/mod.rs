//! Point-in-time features: one pure function from a customer's history and a moment `as_of`
//! to a named, versioned feature vector, used identically for training and for serving.
//!
//! Only data strictly before `as_of` counts, so a training row never sees its own future and a
//! score computed now equals the score that will be recomputed later for the same moment.
//! Missing data is a value, not an error: a customer without surveys gets neutral values and
//! an indicator that says so, and the model learns what absence means.

mod describe;
mod spec;
mod window;

use crate::domain::{
    ChurnStatus, Customer, Interaction, PlanTier, RecoveryCase, Resolution, Segment, Survey,
    Timestamp, UsageEvent,
};

pub use describe::describe;
pub use spec::{Computation, Feature, FeatureSpec, SpecBuilder, Wording};
use window::{Window, days_between};

/// Bumped whenever a feature is added, removed, reordered or redefined: a model trained on
/// one schema cannot score vectors of another.
pub const FEATURE_SCHEMA_VERSION: u32 = 1;

/// Day counts are capped here: beyond a year, "how long ago" carries no more information and
/// an uncapped value would dominate the scaling.
pub const MAX_DAYS: f64 = 365.0;

/// Everything stored about one customer that the features read.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The newest profile.
    pub customer: Customer,
    pub usage: Vec<UsageEvent>,
    pub interactions: Vec<Interaction>,
    pub surveys: Vec<Survey>,
    /// The newest version of each recovery case.
    pub recovery_cases: Vec<RecoveryCase>,
    /// Every version of the profile, oldest first; empty when only the newest is known (an
    /// inline snapshot), which then stands for every moment.
    pub profile_versions: Vec<Customer>,
    /// Every version of every recovery case, by case and then oldest first; empty when only
    /// the newest versions are known.
    pub case_versions: Vec<RecoveryCase>,
}

impl History {
    pub fn new(customer: Customer) -> Self {
        Self {
            customer,
            usage: Vec::new(),
            interactions: Vec::new(),
            surveys: Vec::new(),
            recovery_cases: Vec::new(),
            profile_versions: Vec::new(),
            case_versions: Vec::new(),
        }
    }

    /// Puts every list in one order, whichever way the history was loaded: by time, then by
    /// id (records at the same moment), and versions by case and time. Features sum in
    /// record order, so this is what makes two reads of one history score exactly alike.
    pub fn sort_canonically(&mut self) {
        self.usage
            .sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        self.interactions.sort_by(|a, b| {
            (a.occurred_at, &a.interaction_id).cmp(&(b.occurred_at, &b.interaction_id))
        });
        self.surveys
            .sort_by(|a, b| (a.answered_at, &a.survey_id).cmp(&(b.answered_at, &b.survey_id)));
        self.recovery_cases
            .sort_by(|a, b| (a.opened_at, &a.case_id).cmp(&(b.opened_at, &b.case_id)));
        self.profile_versions.sort_by_key(|p| p.updated_at);
        self.case_versions
            .sort_by(|a, b| (&a.case_id, a.updated_at).cmp(&(&b.case_id, b.updated_at)));
    }

    /// The profile as it stood at `as_of`: the newest version produced before it, or, for a
    /// moment before the first version, that first version (it is all there is to know of
    /// the customer then).
    pub fn profile_at(&self, as_of: Timestamp) -> &Customer {
        self.profile_versions
            .iter()
            .take_while(|p| p.updated_at < as_of)
            .last()
            .or_else(|| self.profile_versions.first())
            .unwrap_or(&self.customer)
    }

    /// Each recovery case as it stood at `as_of`: its newest version recorded before it, or
    /// its first version when all were recorded later. What a version says of later events
    /// is still read only as far as it was known then ([`compute`] checks the times).
    pub fn cases_at(&self, as_of: Timestamp) -> Vec<&RecoveryCase> {
        if self.case_versions.is_empty() {
            return self.recovery_cases.iter().collect();
        }
        let mut cases: Vec<&RecoveryCase> = Vec::new();
        for version in &self.case_versions {
            match cases.last_mut() {
                Some(current) if current.case_id == version.case_id => {
                    if version.updated_at < as_of {
                        *current = version;
                    }
                }
                _ => cases.push(version),
            }
        }
        cases
    }
}

/// The features, in vector order. Names are stable identifiers stored in model artifacts.
pub const FEATURE_NAMES: &[&str] = &[
    // Who the customer is.
    "segment_consumer",
    "segment_small_business",
    "segment_mid_market",
    "segment_enterprise",
    "plan_tier",
    "log_annual_value",
    "tenure_years",
    // What they did: product usage.
    "log_usage_7d",
    "log_usage_30d",
    "log_usage_90d",
    "days_since_last_activity",
    "no_activity_90d",
    "usage_trend",
    // What they did: service history.
    "failures_30d",
    "failures_90d",
    "repeat_failures_90d",
    "unresolved_issues_90d",
    "repeat_contacts_90d",
    "mean_wait_minutes_90d",
    "first_contact_resolution_rate_90d",
    "no_contacts_90d",
    "days_since_last_failure",
    // How they feel.
    "latest_csat",
    "mean_csat_180d",
    "no_csat_180d",
    "csat_trend",
    "nps_detractor",
    "nps_promoter",
    "no_nps",
    "days_since_last_survey",
    // Recoveries of recent failures.
    "recovery_cases_90d",
    "mean_recovery_rating_90d",
    "no_recovery_90d",
];

/// The first this many of [`FEATURE_NAMES`] describe who the customer is; the rest read what
/// they did and how they feel.
pub const PROFILE_FEATURES: usize = 7;

/// Feature values in [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector(pub Vec<f64>);

impl FeatureVector {
    pub fn get(&self, name: &str) -> Option<f64> {
        FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.0.get(i).copied())
    }
}

fn flag(condition: bool) -> f64 {
    if condition { 1.0 } else { 0.0 }
}

/// The sum and the count of `values`, added in the order given.
fn sum_count(values: impl Iterator<Item = f64>) -> (f64, usize) {
    values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = sum_count(values);
    (count > 0).then(|| sum / count as f64)
}

/// The features of `history` as of `as_of`, reading only what happened before it.
///
/// Records are read where they lie, through iterators, in the order given: nothing is
/// copied, collected or sorted (serving computes this for every request), and sums taken in
/// record order give the same values whichever way the history was loaded.
pub fn compute(history: &History, as_of: Timestamp) -> FeatureVector {
    let customer = history.profile_at(as_of);
    let last = |days: i64| Window::before(as_of, days);
    let (last_7, last_30, last_90, last_180) = (last(7), last(30), last(90), last(180));
    let prior_60 = Window::between(as_of, 90, 30);

    let usage = || history.usage.iter().filter(|e| e.occurred_at < as_of);
    let usage_in = |window: Window| -> f64 {
        usage()
            .filter(|e| window.contains(e.occurred_at))
            .map(|e| e.quantity.get())
            .sum()
    };
    let recent_usage = usage_in(last_30);
    let usage_90 = usage_in(last_90);
    // The 60 days before the last 30, per 30 days.
    let prior_usage = usage_in(prior_60) / 2.0;
    let usage_trend = if prior_usage > 0.0 {
        ((recent_usage - prior_usage) / prior_usage).clamp(-1.0, 3.0)
    } else {
        0.0
    };
    let last_activity = usage()
        .filter(|e| e.quantity.get() > 0.0)
        .map(|e| e.occurred_at)
        .max();

    let contacts = || {
        history
            .interactions
            .iter()
            .filter(|i| i.occurred_at < as_of)
    };
    let contacts_90 = || contacts().filter(|i| last_90.contains(i.occurred_at));
    let failures_in = |window: Window| {
        contacts()
            .filter(|i| i.failure && window.contains(i.occurred_at))
            .count() as f64
    };
    let failures_90 = failures_in(last_90);
    let last_failure = contacts()
        .filter(|i| i.failure)
        .map(|i| i.occurred_at)
        .max();

    // The latest answer is the one answered last; of answers given at the same moment, the
    // one listed last (`max_by_key` keeps the last of equal keys).
    let surveys = || history.surveys.iter().filter(|s| s.answered_at < as_of);
    let csat_180 = || {
        surveys()
            .filter(|s| last_180.contains(s.answered_at))
            .filter_map(|s| s.csat.map(|c| (s.answered_at, f64::from(c.get()))))
    };
    let latest_csat = csat_180().max_by_key(|(at, _)| *at).map(|(_, csat)| csat);
    // Ratings are small whole numbers, so their sums are exact in any order.
    let (csat_sum, csat_count) = sum_count(csat_180().map(|(_, csat)| csat));
    let mean_csat = (csat_count > 0).then(|| csat_sum / csat_count as f64);
    let csat_trend = match latest_csat {
        Some(latest) if csat_count > 1 => latest - (csat_sum - latest) / (csat_count - 1) as f64,
        _ => 0.0,
    };
    let latest_nps = surveys()
        .filter_map(|s| s.nps.map(|n| (s.answered_at, n.get())))
        .max_by_key(|(at, _)| *at)
        .map(|(_, nps)| nps);
    let last_survey = surveys().map(|s| s.answered_at).max();

    let cases = history.cases_at(as_of);
    let recoveries_90 = || {
        cases
            .iter()
            .copied()
            .filter(|c| c.opened_at < as_of && last_90.contains(c.opened_at))
    };
    let recovery_rating = mean(recoveries_90().filter_map(|c| recovery_rating_before(c, as_of)));

    let days_since =
        |at: Option<Timestamp>| at.map_or(MAX_DAYS, |at| days_between(at, as_of).min(MAX_DAYS));
    let tenure_days = days_between(customer.customer_since, as_of).max(0.0);

    let values = vec![
        flag(customer.segment == Segment::Consumer),
        flag(customer.segment == Segment::SmallBusiness),
        flag(customer.segment == Segment::MidMarket),
        flag(customer.segment == Segment::Enterprise),
        plan_rank(customer.plan),
        customer.annual_value.get().ln_1p(),
        tenure_days / 365.0,
        usage_in(last_7).ln_1p(),
        recent_usage.ln_1p(),
        usage_90.ln_1p(),
        days_since(last_activity),
        flag(usage_90 <= 0.0),
        usage_trend,
        failures_in(last_30),
        failures_90,
        flag(failures_90 >= 2.0),
        contacts_90()
            .filter(|i| matches!(i.resolution, Resolution::Unresolved | Resolution::Escalated))
            .count() as f64,
        contacts_90().filter(|i| i.repeat_contact).count() as f64,
        mean(contacts_90().map(|i| i.wait_seconds.get() / 60.0)).unwrap_or(0.0),
        mean(contacts_90().map(|i| flag(i.first_contact_resolution))).unwrap_or(1.0),
        flag(contacts_90().next().is_none()),
        days_since(last_failure),
        latest_csat.unwrap_or(0.0),
        mean_csat.unwrap_or(0.0),
        flag(mean_csat.is_none()),
        csat_trend,
        flag(latest_nps.is_some_and(|n| n <= 6)),
        flag(latest_nps.is_some_and(|n| n >= 9)),
        flag(latest_nps.is_none()),
        days_since(last_survey),
        recoveries_90().count() as f64,
        recovery_rating.unwrap_or(0.0),
        flag(recovery_rating.is_none()),
    ];
    debug_assert_eq!(values.len(), FEATURE_NAMES.len());
    FeatureVector(values)
}

/// Free is 0, premium 3: tiers are ordered, so one number keeps the model small.
fn plan_rank(plan: PlanTier) -> f64 {
    match plan {
        PlanTier::Free => 0.0,
        PlanTier::Basic => 1.0,
        PlanTier::Standard => 2.0,
        PlanTier::Premium => 3.0,
    }
}

/// How well a recovery went, as far as was known before `as_of`. A case's version may have
/// been recorded after `as_of` (when none was before), so each fact is read only if it could
/// have been known then: the re-survey if the version was recorded before `as_of`, else the
/// C.A.R.E.S. ratings if the case was resolved (and so rated) before `as_of`.
fn recovery_rating_before(case: &RecoveryCase, as_of: Timestamp) -> Option<f64> {
    if case.updated_at < as_of
        && let Some(score) = case.resurvey_score
    {
        return Some(f64::from(score.get()));
    }
    if case.resolved_at.is_none_or(|resolved| resolved >= as_of) {
        return None;
    }
    let cares = case.cares;
    mean(
        [
            cares.communication,
            cares.accountability,
            cares.responsiveness,
            cares.empathy,
            cares.solution,
        ]
        .into_iter()
        .flatten()
        .map(|r| f64::from(r.get())),
    )
}

/// Whether the customer churned within `horizon_days` after `as_of`: `None` when the outcome
/// is not known yet (still active but not observed that long), or the customer had already
/// left before `as_of`.
pub fn churn_label(
    outcome: Option<&crate::domain::ChurnOutcome>,
    as_of: Timestamp,
    horizon_days: i64,
) -> Option<bool> {
    let outcome = outcome?;
    let horizon_end = Window::after(as_of, horizon_days).end();
    match (outcome.status, outcome.churned_at) {
        (ChurnStatus::Churned, Some(churned_at)) if churned_at < as_of => None,
        (ChurnStatus::Churned, Some(churned_at)) => Some(churned_at < horizon_end),
        _ if outcome.observed_at >= horizon_end => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
