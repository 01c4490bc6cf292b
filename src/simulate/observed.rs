//! What could be seen of a customer at a moment, and the true churn probability it implies.
//!
//! The simulator decides churn from this and nothing else, so the oracle's `p_churn` is a
//! function of stored records read strictly before the snapshot: a model with the right
//! features can, in principle, learn it exactly.

use super::calibration as cal;
use super::days_between;
use crate::domain::{
    Customer, Interaction, PlanTier, Record, RecoveryCase, Resolution, Segment, Survey, Timestamp,
    UsageEvent,
};

/// The usage activity counting days on which the customer used the product (0–7 a week).
pub const ACTIVE_DAYS: &str = "active_days";

/// Point-in-time facts about one customer, read from records strictly before `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedState {
    pub segment: Segment,
    pub plan: PlanTier,
    pub tenure_days: f64,
    pub annual_value: f64,
    /// Active days reported in the last 30 days.
    pub active_days_30d: f64,
    /// Active days reported in the 60 days before those 30.
    pub active_days_prior_60d: f64,
    /// Days since the last reported activity; the tenure when there was none.
    pub days_since_activity: f64,
    /// Failures in the last 90 days, each weighted by its age and by how much of its risk a
    /// resolved recovery removed: what drives the failure part of the risk.
    pub failure_load: f64,
    pub failures_90d: u32,
    /// Failures in the last 90 days not (yet) followed by a recovery rated 4/7 or better.
    pub unrecovered_failures_90d: u32,
    pub contacts_90d: u32,
    pub unresolved_90d: u32,
    pub repeat_contacts_90d: u32,
    pub mean_wait_minutes_90d: Option<f64>,
    pub first_contact_resolution_90d: Option<f64>,
    pub latest_csat: Option<f64>,
    pub mean_csat_180d: Option<f64>,
    /// Latest CSAT minus the mean of the earlier ones in 180 days, when there are both.
    pub csat_trend: Option<f64>,
    pub latest_nps: Option<u8>,
    /// The best re-survey score of the recoveries resolved in the last 90 days.
    pub best_recovery_score: Option<u8>,
    /// How well recoveries work for this customer ([`cal::channel_receptiveness`]).
    pub receptiveness: f64,
}

/// The customer's records by kind, as the generator holds them.
#[derive(Debug, Clone, Copy)]
pub struct HistoryView<'a> {
    pub customer: &'a Customer,
    pub usage: &'a [UsageEvent],
    pub interactions: &'a [Interaction],
    pub surveys: &'a [Survey],
    pub cases: &'a [RecoveryCase],
}

fn within(at: Timestamp, as_of: Timestamp, days: f64) -> bool {
    at < as_of && days_between(at, as_of) <= days
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The re-survey score of the recovery of `failure` if it was resolved before `as_of`.
fn recovery_score(cases: &[RecoveryCase], failure: &Interaction, as_of: Timestamp) -> Option<u8> {
    cases
        .iter()
        .filter(|c| c.trigger_interaction_id.as_ref() == Some(&failure.interaction_id))
        .filter(|c| c.resolved_at.is_some_and(|at| at < as_of))
        .find_map(|c| c.resurvey_score.map(|s| s.get()))
}

impl ObservedState {
    /// What `history` shows strictly before `as_of`.
    pub fn at(history: HistoryView<'_>, as_of: Timestamp) -> Self {
        let customer = history.customer;
        let channel = match customer.attributes.get(cal::ACQUISITION_CHANNEL) {
            Some(crate::domain::AttributeValue::Category(channel)) => Some(channel.as_str()),
            _ => None,
        };
        let tenure_days = days_between(customer.customer_since, as_of).max(0.0);
        let (active_days_30d, active_days_prior_60d, last_active) =
            usage_before(history.usage, as_of);
        let days_since_activity = last_active.map_or(tenure_days, |at| days_between(at, as_of));

        let mut state = Self {
            segment: customer.segment,
            plan: customer.plan,
            tenure_days,
            annual_value: customer.annual_value.get(),
            active_days_30d,
            active_days_prior_60d,
            days_since_activity,
            failure_load: 0.0,
            failures_90d: 0,
            unrecovered_failures_90d: 0,
            contacts_90d: 0,
            unresolved_90d: 0,
            repeat_contacts_90d: 0,
            mean_wait_minutes_90d: None,
            first_contact_resolution_90d: None,
            latest_csat: None,
            mean_csat_180d: None,
            csat_trend: None,
            latest_nps: None,
            best_recovery_score: None,
            receptiveness: cal::channel_receptiveness(channel),
        };
        state.read_service(history, as_of);
        state.read_surveys(history.surveys, as_of);
        state.best_recovery_score = history
            .cases
            .iter()
            .filter_map(|c| Some((c.resolved_at?, c.resurvey_score?.get())))
            .filter(|(at, _)| within(*at, as_of, 90.0))
            .map(|(_, score)| score)
            .max();
        state
    }

    /// What `records` (one customer's, in any order) show strictly before `as_of`; `None`
    /// without a customer profile.
    pub fn from_records(records: &[Record], as_of: Timestamp) -> Option<Self> {
        let mut customer = None;
        let (mut usage, mut interactions, mut surveys, mut cases) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for record in records {
            match record {
                Record::Customer(c) => customer = Some(c),
                Record::UsageEvent(e) => usage.push(e.clone()),
                Record::Interaction(i) => interactions.push(i.clone()),
                Record::Survey(s) => surveys.push(s.clone()),
                Record::RecoveryCase(c) => cases.push(c.clone()),
                Record::ChurnOutcome(_) => {}
            }
        }
        surveys.sort_by_key(|s| s.answered_at);
        let view = HistoryView {
            customer: customer?,
            usage: &usage,
            interactions: &interactions,
            surveys: &surveys,
            cases: &cases,
        };
        Some(Self::at(view, as_of))
    }

    fn read_service(&mut self, history: HistoryView<'_>, as_of: Timestamp) {
        let recent: Vec<&Interaction> = history
            .interactions
            .iter()
            .filter(|i| within(i.occurred_at, as_of, 90.0))
            .collect();
        for failure in recent.iter().filter(|i| i.failure) {
            let age = days_between(failure.occurred_at, as_of);
            let weight = if age <= 30.0 {
                1.0
            } else {
                cal::OLDER_FAILURE_WEIGHT
            };
            let score = recovery_score(history.cases, failure, as_of);
            let repeat = history.interactions.iter().any(|other| {
                other.failure
                    && other.occurred_at < failure.occurred_at
                    && days_between(other.occurred_at, failure.occurred_at) <= 90.0
            });
            let removed = score.map_or(0.0, |s| {
                cal::risk_removed_for(s, self.receptiveness, repeat)
            });
            self.failure_load += weight * (1.0 - removed);
            self.failures_90d += 1;
            if score.is_none_or(|s| s < 4) {
                self.unrecovered_failures_90d += 1;
            }
        }
        self.contacts_90d = recent.len() as u32;
        self.unresolved_90d = recent
            .iter()
            .filter(|i| i.resolution != Resolution::Resolved)
            .count() as u32;
        self.repeat_contacts_90d = recent.iter().filter(|i| i.repeat_contact).count() as u32;
        let waits: Vec<f64> = recent.iter().map(|i| i.wait_seconds.get() / 60.0).collect();
        self.mean_wait_minutes_90d = mean(&waits);
        let fcr: Vec<f64> = recent
            .iter()
            .map(|i| f64::from(u8::from(i.first_contact_resolution)))
            .collect();
        self.first_contact_resolution_90d = mean(&fcr);
    }

    /// `surveys` must be in answer order.
    fn read_surveys(&mut self, surveys: &[Survey], as_of: Timestamp) {
        let csat: Vec<f64> = surveys
            .iter()
            .filter(|s| within(s.answered_at, as_of, 180.0))
            .filter_map(|s| s.csat.map(|c| f64::from(c.get())))
            .collect();
        self.latest_csat = csat.last().copied();
        self.mean_csat_180d = mean(&csat);
        if let Some((latest, earlier)) = csat.split_last() {
            self.csat_trend = mean(earlier).map(|m| latest - m);
        }
        self.latest_nps = surveys
            .iter()
            .rev()
            .filter(|s| within(s.answered_at, as_of, 180.0))
            .find_map(|s| s.nps.map(|n| n.get()));
    }

    /// This state as it would be had the newest failure been recovered with a re-survey
    /// score of `score` at once: the counterfactual behind the recovery oracle.
    pub fn with_fresh_failure_recovered(&self, score: u8) -> Self {
        let mut state = self.clone();
        // The fresh failure is among the 90 days' failures: another one makes it a repeat.
        let repeat = state.failures_90d >= 2;
        let removed = cal::risk_removed_for(score, state.receptiveness, repeat);
        state.failure_load = (state.failure_load - removed).max(0.0);
        state.best_recovery_score = state.best_recovery_score.max(Some(score));
        if score >= 4 {
            state.unrecovered_failures_90d = state.unrecovered_failures_90d.saturating_sub(1);
        }
        state
    }

    /// The logit of the true 90-day churn probability: additive in the observable facts,
    /// mildly non-linear (tenure, silence and the failure steps).
    pub fn churn_logit(&self) -> f64 {
        cal::CHURN_BASE_LOGIT
            + self.profile_logit()
            + self.usage_logit()
            + failure_logit(self.failure_load)
            + self.service_logit()
            + self.attitude_logit()
    }

    fn profile_logit(&self) -> f64 {
        let years = self.tenure_days / 365.0;
        let new_customer = if self.tenure_days < cal::NEW_CUSTOMER_DAYS {
            cal::NEW_CUSTOMER
        } else {
            0.0
        };
        cal::segment_logit(self.segment)
            + cal::plan_logit(self.plan)
            + cal::TENURE_LOG_YEARS * years.ln_1p()
            + new_customer
            + cal::LOG_VALUE * (self.annual_value.max(1.0) / cal::VALUE_PIVOT).ln()
    }

    fn usage_logit(&self) -> f64 {
        let share = (self.active_days_30d / 30.0).min(1.0);
        let trend = ((self.active_days_30d + 1.0) / (self.active_days_prior_60d / 2.0 + 1.0))
            .ln()
            .clamp(cal::USAGE_TREND_RANGE.0, cal::USAGE_TREND_RANGE.1);
        let silent_weeks = ((self.days_since_activity - 7.0) / 7.0).max(0.0);
        cal::ACTIVE_SHARE_30D * (share - cal::ACTIVE_SHARE_PIVOT)
            + cal::USAGE_TREND * trend
            + cal::SILENCE_LOG_WEEKS * silent_weeks.ln_1p()
    }

    fn service_logit(&self) -> f64 {
        let wait = self.mean_wait_minutes_90d.map_or(0.0, |minutes| {
            cal::WAIT_MINUTE * (minutes.min(30.0) - cal::WAIT_PIVOT_MINUTES).max(0.0)
        });
        let fcr = self
            .first_contact_resolution_90d
            .map_or(0.0, |rate| cal::FCR_RATE * (rate - cal::FCR_PIVOT));
        cal::UNRESOLVED_ISSUE * f64::from(self.unresolved_90d.min(3))
            + cal::REPEAT_CONTACT * f64::from(self.repeat_contacts_90d.min(4))
            + wait
            + fcr
    }

    fn attitude_logit(&self) -> f64 {
        let latest = self
            .latest_csat
            .map_or(0.0, |c| cal::LATEST_CSAT * (c - cal::CSAT_PIVOT));
        let mean = self
            .mean_csat_180d
            .map_or(0.0, |c| cal::MEAN_CSAT * (c - cal::CSAT_PIVOT));
        let trend = self.csat_trend.map_or(0.0, |t| cal::ATTITUDE_TREND * t);
        let nps = match self.latest_nps {
            Some(0..=6) => cal::NPS_DETRACTOR,
            Some(9..) => cal::NPS_PROMOTER,
            _ => 0.0,
        };
        let recovery = match self.best_recovery_score {
            Some(6..) => cal::GREAT_RECOVERY,
            _ => 0.0,
        };
        latest + mean + trend + nps + recovery
    }
}

/// Active days in the last 30 days, in the 60 before them, and the last active moment.
fn usage_before(usage: &[UsageEvent], as_of: Timestamp) -> (f64, f64, Option<Timestamp>) {
    let mut last_30 = 0.0;
    let mut prior_60 = 0.0;
    let mut last_active = None;
    for event in usage
        .iter()
        .filter(|e| e.activity == ACTIVE_DAYS && e.occurred_at < as_of)
    {
        let age = days_between(event.occurred_at, as_of);
        if age <= 30.0 {
            last_30 += event.quantity.get();
        } else if age <= 90.0 {
            prior_60 += event.quantity.get();
        }
        if event.quantity.get() > 0.0 && last_active.is_none_or(|at| event.occurred_at > at) {
            last_active = Some(event.occurred_at);
        }
    }
    (last_30, prior_60, last_active)
}

/// The failure steps: the second unrecovered failure adds more than the first, further ones
/// less (see [`cal::FIRST_FAILURE`]).
fn failure_logit(load: f64) -> f64 {
    cal::FIRST_FAILURE * load.min(1.0)
        + cal::SECOND_FAILURE * (load - 1.0).clamp(0.0, 1.0)
        + cal::FURTHER_FAILURE * (load - 2.0).max(0.0)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The true probability that a customer in `state` churns within the next 90 days.
pub fn churn_probability(state: &ObservedState) -> f64 {
    sigmoid(state.churn_logit())
}
