//! The recovery program's funnel over stored decisions: eligible -> decided to invest ->
//! attempted -> recovered -> retained, the spend, the cost, and the retention the program
//! bought, measured against the holdout group; overall, per segment and per tag.
//!
//! Rules (also in the `Program.RecoveryFunnel` contract):
//! - The unit is a trigger: of several decisions about one customer's trigger, the latest
//!   counts (decisions without a trigger count per customer).
//! - Attempted: invested, and a recovery case of the customer names the trigger (for a
//!   decision without a trigger: any case of the customer opened within
//!   [`ATTEMPT_WINDOW_DAYS`] after its `as_of`). Recovered: attempted and re-surveyed at or
//!   above the program's threshold. Retained: recovered and the case says the customer was kept.
//! - Uplift: 90-day retention after `as_of`, from churn outcomes, of invested triggers minus
//!   that of holdout triggers that would have been invested in; triggers whose 90 days are not
//!   observed yet are left out of both. Revenue kept = uplift × the annual value of the
//!   invested customers with a known outcome; ROI = (revenue kept − cost) / cost.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{ChurnOutcome, CustomerId, IssueTag, RecoveryCase, Segment, Timestamp};

use crate::domain::MICROS_PER_DAY;
/// How long after a trigger-less decision a case of the customer still counts as its attempt.
pub const ATTEMPT_WINDOW_DAYS: i64 = 30;
/// The retention horizon the program is measured over (the churn model's, docs/domain.md).
pub const RETENTION_DAYS: i64 = 90;
/// The group name of decisions without a tag.
pub const UNTAGGED: &str = "untagged";

/// What the funnel reads of a stored decision.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelDecision {
    pub customer_id: CustomerId,
    pub as_of: Timestamp,
    pub decided_at: Timestamp,
    pub trigger_interaction_id: Option<String>,
    pub trigger_survey_id: Option<String>,
    pub segment: Segment,
    pub tag: Option<IssueTag>,
    pub eligible: bool,
    pub holdout: bool,
    pub invest: bool,
    pub would_invest: bool,
    pub customer_value: f64,
}

/// Everything the funnel is computed from: the decisions of a window and the recovery cases
/// and churn outcomes of their customers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunnelInput {
    pub decisions: Vec<FunnelDecision>,
    pub cases: Vec<RecoveryCase>,
    pub churn: Vec<ChurnOutcome>,
}

/// The funnel of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunnelCounts {
    pub decided: u64,
    pub eligible: u64,
    pub invested: u64,
    pub attempted: u64,
    pub recovered: u64,
    pub retained: u64,
    pub holdout: u64,
    pub holdout_would_invest: u64,
    pub mean_spend_change_pct: Option<f64>,
    pub cost: f64,
    pub invested_retention: Option<f64>,
    pub holdout_retention: Option<f64>,
    pub measured_uplift: Option<f64>,
    pub revenue_kept: Option<f64>,
    pub roi: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Funnel {
    pub total: FunnelCounts,
    pub by_segment: BTreeMap<String, FunnelCounts>,
    pub by_tag: BTreeMap<String, FunnelCounts>,
}

/// Sums for one group, turned into [`FunnelCounts`] at the end.
#[derive(Debug, Default)]
struct Tally {
    counts: FunnelCounts,
    spend_sum: f64,
    spend_n: u64,
    invested_known: u64,
    invested_kept: u64,
    invested_known_value: f64,
    holdout_known: u64,
    holdout_kept: u64,
}

/// What happened to one unit.
#[derive(Debug, Clone, Copy)]
struct Unit<'a> {
    decision: &'a FunnelDecision,
    case: Option<&'a RecoveryCase>,
    /// Still a customer 90 days after `as_of`; `None` while unknown.
    retained_90d: Option<bool>,
}

impl Tally {
    fn add(&mut self, unit: &Unit<'_>, recovered_at_or_above: u8) {
        let d = unit.decision;
        let c = &mut self.counts;
        c.decided += 1;
        if !d.eligible {
            return;
        }
        c.eligible += 1;
        if d.holdout {
            c.holdout += 1;
            if d.would_invest {
                c.holdout_would_invest += 1;
                if let Some(kept) = unit.retained_90d {
                    self.holdout_known += 1;
                    self.holdout_kept += u64::from(kept);
                }
            }
        }
        if !d.invest {
            return;
        }
        c.invested += 1;
        if let Some(kept) = unit.retained_90d {
            self.invested_known += 1;
            self.invested_kept += u64::from(kept);
            self.invested_known_value += d.customer_value;
        }
        let Some(case) = unit.case else { return };
        c.attempted += 1;
        c.cost += case.cost.get();
        if let Some(spend) = case.spend_change_pct {
            self.spend_sum += spend.get();
            self.spend_n += 1;
        }
        if case
            .resurvey_score
            .is_some_and(|s| s.get() >= recovered_at_or_above)
        {
            c.recovered += 1;
            if case.retained == Some(true) {
                c.retained += 1;
            }
        }
    }

    fn finish(self) -> FunnelCounts {
        let rate = |kept: u64, known: u64| (known > 0).then(|| kept as f64 / known as f64);
        let mut counts = self.counts;
        counts.mean_spend_change_pct =
            (self.spend_n > 0).then(|| self.spend_sum / self.spend_n as f64);
        counts.invested_retention = rate(self.invested_kept, self.invested_known);
        counts.holdout_retention = rate(self.holdout_kept, self.holdout_known);
        counts.measured_uplift = counts
            .invested_retention
            .zip(counts.holdout_retention)
            .map(|(invested, held)| invested - held);
        counts.revenue_kept = counts
            .measured_uplift
            .map(|uplift| uplift * self.invested_known_value);
        counts.roi = counts
            .revenue_kept
            .filter(|_| counts.cost > 0.0)
            .map(|kept| (kept - counts.cost) / counts.cost);
        counts
    }
}

/// Computes the funnel; `decisions` may come in any order.
pub fn compute(input: &FunnelInput, recovered_at_or_above: u8) -> Funnel {
    let mut latest: HashMap<(&str, Option<&str>, Option<&str>), &FunnelDecision> = HashMap::new();
    for d in &input.decisions {
        let key = (
            d.customer_id.as_str(),
            d.trigger_interaction_id.as_deref(),
            d.trigger_survey_id.as_deref(),
        );
        let slot = latest.entry(key).or_insert(d);
        if (d.as_of, d.decided_at) > (slot.as_of, slot.decided_at) {
            *slot = d;
        }
    }
    let mut cases: HashMap<&str, Vec<&RecoveryCase>> = HashMap::new();
    for case in &input.cases {
        cases
            .entry(case.customer_id.as_str())
            .or_default()
            .push(case);
    }
    for list in cases.values_mut() {
        list.sort_by_key(|c| (c.opened_at, c.case_id.as_str().to_owned()));
    }
    let churn: HashMap<&str, &ChurnOutcome> = input
        .churn
        .iter()
        .map(|o| (o.customer_id.as_str(), o))
        .collect();

    let mut total = Tally::default();
    let mut by_segment: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_tag: BTreeMap<String, Tally> = BTreeMap::new();
    for decision in latest.into_values() {
        let customer = decision.customer_id.as_str();
        let unit = Unit {
            decision,
            case: cases
                .get(customer)
                .and_then(|list| linked_case(decision, list)),
            retained_90d: churn
                .get(customer)
                .and_then(|o| retained_90d(o, decision.as_of)),
        };
        total.add(&unit, recovered_at_or_above);
        by_segment
            .entry(decision.segment.as_str().to_owned())
            .or_default()
            .add(&unit, recovered_at_or_above);
        by_tag
            .entry(decision.tag.map_or(UNTAGGED, |tag| tag.as_str()).to_owned())
            .or_default()
            .add(&unit, recovered_at_or_above);
    }
    Funnel {
        total: total.finish(),
        by_segment: by_segment
            .into_iter()
            .map(|(k, t)| (k, t.finish()))
            .collect(),
        by_tag: by_tag.into_iter().map(|(k, t)| (k, t.finish())).collect(),
    }
}

/// The recovery case that attempted the decision's trigger, the earliest if several did.
fn linked_case<'a>(
    decision: &FunnelDecision,
    cases: &[&'a RecoveryCase],
) -> Option<&'a RecoveryCase> {
    let window_end = Timestamp::from_unix_micros(
        decision.as_of.unix_micros() + ATTEMPT_WINDOW_DAYS * MICROS_PER_DAY,
    );
    cases.iter().copied().find(|case| {
        match (
            &decision.trigger_interaction_id,
            &decision.trigger_survey_id,
        ) {
            (Some(id), _) => case
                .trigger_interaction_id
                .as_ref()
                .is_some_and(|c| c.as_str() == id),
            (None, Some(id)) => case
                .trigger_survey_id
                .as_ref()
                .is_some_and(|c| c.as_str() == id),
            (None, None) => case.opened_at >= decision.as_of && case.opened_at < window_end,
        }
    })
}

/// Whether the customer was still a customer [`RETENTION_DAYS`] after `as_of`, if known.
fn retained_90d(outcome: &ChurnOutcome, as_of: Timestamp) -> Option<bool> {
    let end = Timestamp::from_unix_micros(as_of.unix_micros() + RETENTION_DAYS * MICROS_PER_DAY);
    match outcome.churned_at {
        // Gone before the decision: no outcome to measure.
        Some(churned) if churned <= as_of => None,
        Some(churned) if churned <= end => Some(false),
        _ if outcome.observed_at >= end => Some(true),
        _ => None,
    }
}
