//! Training rows of the uplift model: one per service failure of a stored customer, with the
//! customer's features right after it, the recovery it got (if any) and whether the customer
//! was still there when the horizon ended; and the split of those rows by time or by customer.

use crate::domain::{
    ChurnOutcome, CustomerId, InteractionId, IssueTag, RecoveryAction, Segment, Timestamp,
};
use crate::features::{self, FeatureSpec, History};
use crate::model::holdout::stratified_customers;

use super::treatment::Quality;

use crate::domain::MICROS_PER_DAY;

/// By default the newest 30% of the labelled failures are the hold-out: the Qini coefficient
/// compares treated and control customers among the best-ranked few, so it needs a large
/// hold-out to be more than noise, while the rest (less the embargo) still trains the model.
pub const DEFAULT_HOLDOUT_SHARE: f64 = 0.3;
/// The seed of a customer split's draw: fixed, so the same data gives the same split.
pub const CUSTOMER_HOLDOUT_SEED: u64 = 42;

/// The recovery a failure got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Treatment {
    pub action: RecoveryAction,
    pub quality: Quality,
}

/// One eligible failure: a customer's interaction flagged as a failure.
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftRow {
    pub customer_id: CustomerId,
    pub failure_id: InteractionId,
    pub failed_at: Timestamp,
    /// What the failure was about: the protocol's actions depend on it.
    pub tag: IssueTag,
    /// The customer's annual value: what keeping them is worth.
    pub annual_value: f64,
    /// The customer's segment: the program's recovery quality may differ by it.
    pub segment: Segment,
    /// The run's features ([`UpliftRows::new`]) one microsecond after the failure: the
    /// failure itself counts, nothing later does — in particular not the recovery.
    pub features: Vec<f64>,
    /// The recovery case opened for this failure (its `trigger_interaction_id`), if any.
    pub treatment: Option<Treatment>,
    /// The customer did not churn within the horizon after the failure.
    pub retained: bool,
}

impl UpliftRow {
    pub fn treated(&self) -> bool {
        self.treatment.is_some()
    }
}

/// Rows of every failure whose outcome is known, fed one customer at a time so any source
/// (the store's pages, the simulator) builds exactly the rows training uses.
#[derive(Debug)]
pub struct UpliftRows {
    horizon_days: u32,
    spec: FeatureSpec,
    rows: Vec<UpliftRow>,
    customers: usize,
    unlabelled: usize,
}

impl UpliftRows {
    /// Rows of `spec`'s features (e.g. the ones [`features::SpecBuilder`] chose from the
    /// customers) for outcomes `horizon_days` after each failure.
    pub fn new(horizon_days: u32, spec: FeatureSpec) -> Self {
        Self {
            horizon_days,
            spec,
            rows: Vec::new(),
            customers: 0,
            unlabelled: 0,
        }
    }

    /// Adds a row per failure in `history` whose horizon has been observed (by `churn`, the
    /// customer's churn outcome).
    pub fn add(&mut self, history: &History, churn: Option<&ChurnOutcome>) {
        self.customers += 1;
        for failure in history.interactions.iter().filter(|i| i.failure) {
            let just_after = Timestamp::from_unix_micros(failure.occurred_at.unix_micros() + 1);
            let Some(churned) =
                features::churn_label(churn, just_after, i64::from(self.horizon_days))
            else {
                self.unlabelled += 1;
                continue;
            };
            let treatment = history
                .recovery_cases
                .iter()
                .filter(|case| {
                    case.trigger_interaction_id.as_ref() == Some(&failure.interaction_id)
                })
                .min_by_key(|case| case.opened_at)
                .map(|case| Treatment {
                    action: case.action,
                    quality: Quality::of_case(case),
                });
            self.rows.push(UpliftRow {
                customer_id: history.customer.customer_id.clone(),
                failure_id: failure.interaction_id.clone(),
                failed_at: failure.occurred_at,
                tag: failure.tag,
                annual_value: history.customer.annual_value.get(),
                segment: history.customer.segment,
                features: self.features_after(history, failure, just_after),
                treatment,
                retained: !churned,
            });
        }
    }

    /// The spec's features of `history` just after `failure`, without the recovery of that
    /// failure itself: a case opened at the very moment of the failure (a campaign logged in
    /// one go) would otherwise be read as what the customer was like before it, and the model
    /// would learn the treatment from the features.
    fn features_after(
        &self,
        history: &History,
        failure: &crate::domain::Interaction,
        just_after: Timestamp,
    ) -> Vec<f64> {
        let own = |case: &crate::domain::RecoveryCase| {
            case.trigger_interaction_id.as_ref() == Some(&failure.interaction_id)
                && case.opened_at < just_after
        };
        if !history.recovery_cases.iter().any(own) {
            return self.spec.compute(history, just_after).0;
        }
        let mut before = history.clone();
        before.recovery_cases.retain(|case| !own(case));
        self.spec.compute(&before, just_after).0
    }

    pub fn customers(&self) -> usize {
        self.customers
    }

    /// Labelled rows so far.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Failures left out because their horizon has not been observed yet.
    pub fn unlabelled(&self) -> usize {
        self.unlabelled
    }

    /// Splits the rows as `holdout` says (see [`UpliftSplit`]).
    pub fn split(mut self, holdout: HoldoutStart) -> UpliftSplit {
        self.rows.sort_by(|a, b| {
            (a.failed_at, &a.customer_id, &a.failure_id).cmp(&(
                b.failed_at,
                &b.customer_id,
                &b.failure_id,
            ))
        });
        let holdout_from = match holdout {
            HoldoutStart::At(at) => Some(at),
            HoldoutStart::NewestShare(share) => self.newest_share_start(share),
            HoldoutStart::Customers { share, seed } => return self.split_by_customer(share, seed),
            HoldoutStart::NewestShareOrCustomers { share, seed } => {
                let from = self.newest_share_start(share);
                let trains = from.map_or(0, |from| self.training_rows_before(from));
                // The time split is kept unless it leaves under half the training rows it
                // means to: failures bunched on a few dates (a campaign) put most of them in
                // the hold-out or the embargo, and a customer split is the honest test.
                let intended = (self.rows.len() as f64 * (1.0 - share.clamp(0.0, 1.0))) as usize;
                if trains * 2 < intended {
                    return self.split_by_customer(share, seed);
                }
                from
            }
        };
        let Some(holdout_from) = holdout_from else {
            return UpliftSplit {
                spec: self.spec,
                ..UpliftSplit::default()
            };
        };
        let horizon = i64::from(self.horizon_days) * MICROS_PER_DAY;
        let mut split = UpliftSplit {
            holdout_from: Some(holdout_from),
            spec: self.spec,
            ..UpliftSplit::default()
        };
        for row in self.rows {
            if row.failed_at >= holdout_from {
                split.holdout.push(row);
            } else if row.failed_at.unix_micros() + horizon <= holdout_from.unix_micros() {
                split.train.push(row);
            } else {
                split.embargoed += 1;
            }
        }
        split
    }

    /// The failure time that leaves `share` of the (sorted) rows at or after it.
    fn newest_share_start(&self, share: f64) -> Option<Timestamp> {
        let first = ((self.rows.len() as f64) * (1.0 - share.clamp(0.0, 1.0))) as usize;
        self.rows.get(first).map(|row| row.failed_at)
    }

    /// Rows whose whole horizon ends by `from`: what a time split there would train on.
    fn training_rows_before(&self, from: Timestamp) -> usize {
        let horizon = i64::from(self.horizon_days) * MICROS_PER_DAY;
        self.rows
            .iter()
            .filter(|row| row.failed_at.unix_micros() + horizon <= from.unix_micros())
            .count()
    }

    /// A seeded `share` of the customers, stratified by whether their first failure was
    /// recovered and whether they were retained, holds out every failure of theirs; the rest
    /// train. The customers are disjoint, so no embargo is needed.
    fn split_by_customer(self, share: f64, seed: u64) -> UpliftSplit {
        let held = stratified_customers(
            self.rows
                .iter()
                .map(|row| (&row.customer_id, (row.treated(), row.retained))),
            share,
            seed,
        );
        let mut split = UpliftSplit {
            customers: Some((share, seed)),
            spec: self.spec,
            ..UpliftSplit::default()
        };
        for row in self.rows {
            if held.contains(&row.customer_id) {
                split.holdout.push(row);
            } else {
                split.train.push(row);
            }
        }
        split
    }
}

/// Which failures are held out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HoldoutStart {
    /// Those from the failure time that leaves this share of the labelled failures at or
    /// after it.
    NewestShare(f64),
    /// Those at or after this time.
    At(Timestamp),
    /// Those of a seeded, stratified share of the customers.
    Customers { share: f64, seed: u64 },
    /// [`Self::NewestShare`], unless that leaves under half the training rows it means to
    /// (failures bunched in time, as in a campaign): then [`Self::Customers`].
    NewestShareOrCustomers { share: f64, seed: u64 },
}

/// Rows split for training and evaluation. Split by time, the hold-out is every failure at or
/// after `holdout_from`; training rows are the failures whose whole horizon ended by then, so
/// no training label was still unknown when the hold-out began — as for a model deployed at
/// that moment. Failures in between (the embargo) are used by neither. Split by customer
/// (`customers`), the hold-out is every failure of the held-out customers.
#[derive(Debug, Default)]
pub struct UpliftSplit {
    /// In failure-time order.
    pub train: Vec<UpliftRow>,
    /// In failure-time order.
    pub holdout: Vec<UpliftRow>,
    /// Where a time split's hold-out starts; `None` for a customer split or no rows.
    pub holdout_from: Option<Timestamp>,
    /// The share and seed of a customer split.
    pub customers: Option<(f64, u64)>,
    pub embargoed: usize,
    /// The features of every row.
    pub spec: FeatureSpec,
}

impl UpliftSplit {
    /// Drops the features constant over the training rows (a constant column teaches nothing,
    /// and only lets another value at serving time swing the answer) from the spec and every
    /// row, and records each kept feature's training range.
    pub fn without_constant_features(mut self) -> Self {
        let values: Vec<f64> = self
            .train
            .iter()
            .flat_map(|r| r.features.iter().copied())
            .collect();
        let (mut spec, kept) = self.spec.without_constant_columns(&values);
        for row in self.train.iter_mut().chain(self.holdout.iter_mut()) {
            row.features = kept.iter().map(|&j| row.features[j]).collect();
        }
        let kept_values: Vec<f64> = self
            .train
            .iter()
            .flat_map(|r| r.features.iter().copied())
            .collect();
        spec.record_ranges(&kept_values);
        self.spec = spec;
        self
    }

    /// How the hold-out was drawn, in words.
    pub fn describe(&self) -> String {
        match (self.customers, self.holdout_from) {
            (Some((share, seed)), _) => format!(
                "every failure of a stratified {:.0}% of the customers (seed {seed})",
                share * 100.0
            ),
            (None, Some(from)) => format!("the failures from {from} on"),
            (None, None) => "no failures".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BuiltInAction, BuiltInTag};
    use crate::domain::{
        CaresRatings, CaseId, Channel, ChurnOutcome, ChurnStatus, Customer, Interaction, Money,
        PlanTier, Rating, RecoveryCase, RecoveryTrigger, Resolution, Segment, WaitSeconds,
    };

    fn day(d: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000 + d * MICROS_PER_DAY)
    }

    fn customer(id: &str) -> Customer {
        Customer {
            customer_id: CustomerId::parse(id.into()).expect("id"),
            segment: Segment::SmallBusiness,
            plan: PlanTier::Standard,
            persona: None,
            region: None,
            annual_value: Money::parse(1_200.0).expect("money"),
            customer_since: day(-400),
            updated_at: day(-400),
            attributes: Default::default(),
        }
    }

    fn contact(id: &str, customer: &str, at: Timestamp, failure: bool) -> Interaction {
        Interaction {
            interaction_id: InteractionId::parse(id.into()).expect("id"),
            customer_id: CustomerId::parse(customer.into()).expect("id"),
            occurred_at: at,
            channel: Channel::Phone,
            tag: IssueTag::from(BuiltInTag::Billing),
            failure,
            resolution: Resolution::Unresolved,
            wait_seconds: WaitSeconds::parse(600.0).expect("wait"),
            first_contact_resolution: false,
            repeat_contact: false,
        }
    }

    fn case_for(failure: &Interaction, score: u32) -> RecoveryCase {
        RecoveryCase {
            case_id: CaseId::parse(format!("r-{}", failure.interaction_id.as_str())).expect("id"),
            customer_id: failure.customer_id.clone(),
            trigger: RecoveryTrigger::Complaint,
            tag: failure.tag,
            action: RecoveryAction::from(BuiltInAction::Refund),
            cost: Money::parse(20.0).expect("money"),
            trigger_interaction_id: Some(failure.interaction_id.clone()),
            trigger_survey_id: None,
            opened_at: failure.occurred_at,
            first_response_at: None,
            resolved_at: None,
            cares: CaresRatings::default(),
            resurvey_score: Rating::parse(score).ok(),
            retained: None,
            spend_change_pct: None,
            updated_at: failure.occurred_at,
        }
    }

    /// A customer failed at days 0 (recovered), 10 (not) and 100 (not), and an ordinary
    /// contact at day 5; churned at day 50, or still active when observed at day 150.
    fn records(id: &str, churned_on: Option<i64>) -> (History, ChurnOutcome) {
        let mut history = History::new(customer(id));
        let failures = [
            contact(&format!("{id}-a"), id, day(0), true),
            contact(&format!("{id}-b"), id, day(10), true),
            contact(&format!("{id}-c"), id, day(100), true),
        ];
        history.recovery_cases.push(case_for(&failures[0], 6));
        history.interactions.extend(failures);
        history
            .interactions
            .push(contact(&format!("{id}-x"), id, day(5), false));
        let churn = ChurnOutcome {
            customer_id: CustomerId::parse(id.into()).expect("id"),
            status: if churned_on.is_some() {
                ChurnStatus::Churned
            } else {
                ChurnStatus::Active
            },
            churned_at: churned_on.map(day),
            observed_at: day(150),
        };
        (history, churn)
    }

    fn add(rows: &mut UpliftRows, id: &str, churned_on: Option<i64>) {
        let (history, churn) = records(id, churned_on);
        rows.add(&history, Some(&churn));
    }

    #[test]
    fn each_observed_failure_is_a_row_with_its_recovery_and_outcome() {
        let mut rows = UpliftRows::new(90, FeatureSpec::every_built_in());
        add(&mut rows, "c-1", None);
        // Day 100's horizon ends at day 190, after the observation at day 150.
        assert_eq!((rows.rows(), rows.unlabelled()), (2, 1));
        add(&mut rows, "c-2", Some(50));
        assert_eq!(rows.customers(), 2);
        let split = rows.split(HoldoutStart::At(day(10)));
        // Day 0's horizon ends at day 90, after the hold-out starts: embargoed.
        assert_eq!(split.embargoed, 2);
        assert!(split.train.is_empty());
        assert_eq!(split.holdout.len(), 2);
        let row = &split.holdout[0];
        assert_eq!(row.failure_id.as_str(), "c-1-b");
        assert!(row.retained && !row.treated());
        assert!(!split.holdout[1].retained);
        assert_eq!(
            row.features,
            features::compute(
                &records("c-1", None).0,
                Timestamp::from_unix_micros(day(10).unix_micros() + 1)
            )
            .0
        );
    }

    #[test]
    fn a_failure_is_treated_when_a_case_names_it_as_its_trigger() {
        let mut rows = UpliftRows::new(90, FeatureSpec::every_built_in());
        add(&mut rows, "c-1", None);
        let split = rows.split(HoldoutStart::At(day(200)));
        assert_eq!(split.train.len(), 2);
        let treatment = split.train[0].treatment.expect("recovered");
        assert_eq!(
            treatment.action,
            RecoveryAction::from(BuiltInAction::Refund)
        );
        assert_eq!(treatment.quality.resurvey, Some(6));
        assert!(split.train[1].treatment.is_none());
    }

    #[test]
    fn the_newest_share_starts_the_hold_out_and_the_embargo_keeps_labels_apart() {
        let mut rows = UpliftRows::new(5, FeatureSpec::every_built_in());
        for i in 0..10 {
            add(&mut rows, &format!("c-{i}"), None);
        }
        // 30 rows at days 0, 10 and 100. The newest half starts among day 10's rows, so the
        // hold-out starts at day 10 and holds all of them; day 0's 5-day horizon ended by then.
        let split = rows.split(HoldoutStart::NewestShare(0.5));
        assert_eq!(split.holdout_from, Some(day(10)));
        assert_eq!((split.train.len(), split.holdout.len()), (10, 20));
        assert_eq!(split.embargoed, 0);
        assert!(split.train.iter().all(|r| r.failed_at == day(0)));
        assert!(
            UpliftRows::new(90, FeatureSpec::every_built_in())
                .split(HoldoutStart::NewestShare(0.3))
                .holdout_from
                .is_none()
        );
    }

    /// One failure on the campaign's day, recovered or not; churned by day 50 or not.
    fn campaign_customer(i: usize) -> (History, ChurnOutcome) {
        let id = format!("k-{i}");
        let mut history = History::new(customer(&id));
        let failure = contact(&format!("{id}-f"), &id, day(0), true);
        if i.is_multiple_of(2) {
            history.recovery_cases.push(case_for(&failure, 8));
        }
        history.interactions.push(failure);
        let churned = i.is_multiple_of(3);
        let churn = ChurnOutcome {
            customer_id: CustomerId::parse(id).expect("id"),
            status: if churned {
                ChurnStatus::Churned
            } else {
                ChurnStatus::Active
            },
            churned_at: churned.then(|| day(50)),
            observed_at: day(150),
        };
        (history, churn)
    }

    #[test]
    fn failures_on_one_day_are_held_out_by_customer_and_spread_ones_by_time() {
        let adaptive = HoldoutStart::NewestShareOrCustomers {
            share: 0.3,
            seed: 42,
        };
        let mut campaign = UpliftRows::new(90, FeatureSpec::every_built_in());
        for i in 0..600 {
            let (history, churn) = campaign_customer(i);
            campaign.add(&history, Some(&churn));
        }
        let split = campaign.split(adaptive);
        assert_eq!(split.customers, Some((0.3, 42)));
        assert_eq!(split.holdout_from, None);
        assert_eq!((split.train.len(), split.holdout.len()), (420, 180));
        assert!(
            split.describe().contains("30% of the customers"),
            "{}",
            split.describe()
        );
        // Stratified: each (recovered, retained) group keeps its share in the hold-out.
        for treated in [true, false] {
            for retained in [true, false] {
                let count = |rows: &[UpliftRow]| {
                    rows.iter()
                        .filter(|r| r.treated() == treated && r.retained == retained)
                        .count()
                };
                let (held, all) = (
                    count(&split.holdout),
                    count(&split.holdout) + count(&split.train),
                );
                assert!(
                    (held as f64 - 0.3 * all as f64).abs() <= 1.0,
                    "{held} of {all}"
                );
            }
        }
        let held: std::collections::HashSet<_> =
            split.holdout.iter().map(|r| &r.customer_id).collect();
        assert!(split.train.iter().all(|r| !held.contains(&r.customer_id)));

        // Failures spread over time keep the time split.
        let mut spread = UpliftRows::new(5, FeatureSpec::every_built_in());
        for i in 0..10 {
            add(&mut spread, &format!("c-{i}"), None);
        }
        let split = spread.split(HoldoutStart::NewestShareOrCustomers {
            share: 0.5,
            seed: 42,
        });
        assert_eq!(split.holdout_from, Some(day(10)));
        assert_eq!(split.customers, None);
    }
}
