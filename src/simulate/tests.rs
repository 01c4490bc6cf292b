//! The simulator's contract: reproducible, independent per customer, valid and ordered in
//! time, an oracle that is exactly what the records imply — and a world with the shape
//! docs/domain.md describes, measured on a few thousand customers with a fixed seed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::*;
use crate::domain::{ChurnStatus, RecordKind, Segment, TimestampBounds};

fn generate(customers: usize, seed: u64) -> Vec<SimulatedCustomer> {
    simulate(SimulationParams { customers, seed }).collect()
}

/// The population the shape tests measure: large enough that every band below holds
/// hundreds of cases, small enough for a debug build.
const SHAPE_CUSTOMERS: usize = 5_000;
const SHAPE_SEED: u64 = 20_240_101;

fn population() -> &'static [SimulatedCustomer] {
    static POPULATION: OnceLock<Vec<SimulatedCustomer>> = OnceLock::new();
    POPULATION.get_or_init(|| generate(SHAPE_CUSTOMERS, SHAPE_SEED))
}

/// Each churn oracle row with the state the records showed at its snapshot.
fn snapshots() -> &'static [(ChurnOracle, ObservedState)] {
    static ROWS: OnceLock<Vec<(ChurnOracle, ObservedState)>> = OnceLock::new();
    ROWS.get_or_init(|| {
        population()
            .iter()
            .flat_map(|c| {
                c.churn_oracle.iter().map(|row| {
                    let state = ObservedState::from_records(&c.records, row.as_of)
                        .expect("every customer has a profile");
                    (row.clone(), state)
                })
            })
            .collect()
    })
}

fn rate(rows: &[&(ChurnOracle, ObservedState)]) -> f64 {
    rows.iter().filter(|(o, _)| o.churned).count() as f64 / rows.len().max(1) as f64
}

fn churn_rate_where(keep: impl Fn(&ObservedState) -> bool) -> (f64, usize) {
    let rows: Vec<_> = snapshots().iter().filter(|(_, s)| keep(s)).collect();
    (rate(&rows), rows.len())
}

fn event_times(record: &Record) -> Vec<Timestamp> {
    match record {
        Record::Customer(c) => vec![c.updated_at],
        Record::UsageEvent(e) => vec![e.occurred_at],
        Record::Interaction(i) => vec![i.occurred_at],
        Record::Survey(s) => vec![s.answered_at],
        Record::RecoveryCase(c) => [
            Some(c.opened_at),
            c.first_response_at,
            c.resolved_at,
            Some(c.updated_at),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Record::ChurnOutcome(o) => [o.churned_at, Some(o.observed_at)]
            .into_iter()
            .flatten()
            .collect(),
    }
}

/// The time a record is ordered by within its kind.
fn order_time(record: &Record) -> Timestamp {
    match record {
        Record::RecoveryCase(c) => c.opened_at,
        other => event_times(other)[0],
    }
}

#[test]
fn snapshots_are_a_horizon_apart_and_their_horizons_end_by_the_end() {
    let dates = snapshot_dates();
    assert_eq!(dates.len(), 6);
    assert_eq!(dates[0].to_string(), "2024-06-29T00:00:00.000000Z");
    for pair in dates.windows(2) {
        assert_eq!(days_between(pair[0], pair[1]), HORIZON_DAYS as f64);
    }
    let last = *dates.last().expect("snapshots");
    assert!(add_days(last, HORIZON_DAYS) <= END);
    assert!(add_days(last, 2 * HORIZON_DAYS) > END);
}

#[test]
fn the_same_seed_generates_identical_customers() {
    assert_eq!(generate(25, 42), generate(25, 42));
}

#[test]
fn a_different_seed_generates_different_customers() {
    let (a, b) = (generate(25, 42), generate(25, 43));
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differing, 25);
}

#[test]
fn a_customer_is_the_same_however_many_are_generated() {
    let few = generate(10, 9);
    let many: Vec<SimulatedCustomer> = simulate(SimulationParams {
        customers: 1_000,
        seed: 9,
    })
    .skip(5)
    .take(5)
    .collect();
    assert_eq!(&few[5..10], &many[..]);
    assert_eq!(few[7], simulate_customer(9, 7));
}

#[test]
fn ids_are_deterministic_unique_and_name_their_customer() {
    let customers = generate(50, 3);
    let mut seen = std::collections::HashSet::new();
    for (index, customer) in customers.iter().enumerate() {
        let id = customer_id(index);
        for record in &customer.records {
            assert_eq!(record.customer_id().as_str(), id);
            if record.kind() != RecordKind::ChurnOutcome {
                assert!(seen.insert((record.kind(), record.id().to_owned())));
            }
        }
    }
    assert_eq!(customers[0].records[0].id(), "sim-c0000000");
    assert!(
        customers[0]
            .records
            .iter()
            .any(|r| r.id() == "sim-c0000000-u0001")
    );
}

#[test]
fn every_time_is_within_the_world_and_ordered_sensibly() {
    let bounds = TimestampBounds::received_at(END);
    for customer in generate(300, 11) {
        let records = &customer.records;
        let Record::Customer(profile) = &records[0] else {
            panic!("the profile comes first");
        };
        let Some(Record::ChurnOutcome(outcome)) = records.last() else {
            panic!("the churn outcome comes last");
        };
        assert!(profile.customer_since <= END);
        assert!(bounds.check(profile.customer_since).is_ok());
        let first = profile.customer_since.max(START);
        let last = outcome.churned_at.unwrap_or(END);
        assert_eq!(
            outcome.status == ChurnStatus::Churned,
            outcome.churned_at.is_some()
        );
        assert_eq!(outcome.observed_at, END);
        for record in records {
            for at in event_times(record) {
                assert!(
                    first <= at && at <= END,
                    "{at} outside the world in {record:?}"
                );
                assert!(bounds.check(at).is_ok());
            }
            if !matches!(record, Record::RecoveryCase(_) | Record::ChurnOutcome(_)) {
                assert!(order_time(record) <= last, "after leaving: {record:?}");
            }
        }
        // Kinds in the documented order, each in time order.
        let kinds: Vec<RecordKind> = records.iter().map(Record::kind).collect();
        let rank = |k: &RecordKind| match k {
            RecordKind::Customer => 0,
            RecordKind::UsageEvent => 1,
            RecordKind::Interaction => 2,
            RecordKind::Survey => 3,
            RecordKind::RecoveryCase => 4,
            RecordKind::ChurnOutcome => 5,
        };
        assert!(kinds.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));
        for pair in records.windows(2) {
            if pair[0].kind() == pair[1].kind() {
                assert!(order_time(&pair[0]) <= order_time(&pair[1]), "{pair:?}");
            }
        }
        check_causes_precede_effects(records);
    }
}

/// A survey follows its interaction; a case follows its failure; a case progresses forward.
fn check_causes_precede_effects(records: &[Record]) {
    let interactions: BTreeMap<&str, Timestamp> = records
        .iter()
        .filter_map(|r| match r {
            Record::Interaction(i) => Some((i.interaction_id.as_str(), i.occurred_at)),
            _ => None,
        })
        .collect();
    for record in records {
        match record {
            Record::Survey(s) => {
                if let Some(id) = &s.interaction_id {
                    assert!(interactions[id.as_str()] < s.answered_at);
                }
            }
            Record::RecoveryCase(c) => {
                let failure = c
                    .trigger_interaction_id
                    .as_ref()
                    .expect("names its failure");
                assert!(interactions[failure.as_str()] < c.opened_at);
                assert!(c.first_response_at.is_none_or(|at| at >= c.opened_at));
                assert!(
                    c.resolved_at
                        .is_none_or(|at| Some(at) >= c.first_response_at)
                );
                assert!(c.updated_at >= c.resolved_at.unwrap_or(c.opened_at));
                assert_eq!(c.resolved_at.is_some(), c.resurvey_score.is_some());
                assert_eq!(
                    c.retained.is_some(),
                    c.spend_change_pct.is_some() || c.resurvey_score.is_none()
                );
            }
            _ => {}
        }
    }
}

#[test]
fn every_oracle_probability_is_a_probability() {
    for customer in population() {
        for row in &customer.churn_oracle {
            assert!((0.0..=1.0).contains(&row.p_churn), "{row:?}");
        }
        for row in &customer.recovery_oracle {
            assert!((0.0..=1.0).contains(&row.p_retain_if_recovered), "{row:?}");
            assert!((0.0..=1.0).contains(&row.p_retain_if_not), "{row:?}");
            // Recovering never makes retention worse.
            assert!(
                row.p_retain_if_recovered >= row.p_retain_if_not - 1e-12,
                "{row:?}"
            );
        }
    }
}

#[test]
fn the_oracle_churn_probability_is_what_the_records_before_the_snapshot_imply() {
    for (row, state) in snapshots().iter().take(5_000) {
        let p = churn_probability(state);
        assert!((p - row.p_churn).abs() < 1e-12, "{row:?}: records say {p}");
    }
}

#[test]
fn churners_leave_within_the_horizon_after_the_snapshot_that_decided_it() {
    for customer in population() {
        let Some(Record::ChurnOutcome(outcome)) = customer.records.last() else {
            panic!("the churn outcome comes last");
        };
        let decided: Vec<&ChurnOracle> =
            customer.churn_oracle.iter().filter(|r| r.churned).collect();
        assert!(decided.len() <= 1);
        match (decided.first(), outcome.churned_at) {
            (Some(row), Some(at)) => {
                assert!(row.as_of < at && at <= add_days(row.as_of, HORIZON_DAYS));
                assert_eq!(customer.churn_oracle.last(), Some(*row));
            }
            (None, None) => {}
            other => panic!("oracle and outcome disagree: {other:?}"),
        }
    }
}

#[test]
fn overall_churn_is_that_of_a_subscription_business_and_the_oracle_is_calibrated() {
    let rows: Vec<_> = snapshots().iter().collect();
    let observed = rate(&rows);
    let predicted = rows.iter().map(|(o, _)| o.p_churn).sum::<f64>() / rows.len() as f64;
    let standard_error = (observed * (1.0 - observed) / rows.len() as f64).sqrt();
    println!(
        "90-day churn {observed:.4}, oracle mean {predicted:.4}, {} rows",
        rows.len()
    );
    assert!(
        (0.04..=0.08).contains(&observed),
        "90-day churn {observed:.4}"
    );
    assert!(
        (observed - predicted).abs() < 3.0 * standard_error,
        "observed {observed:.4}, oracle mean {predicted:.4}"
    );
}

#[test]
fn churn_climbs_steeply_with_unrecovered_recent_failures() {
    let (none, n0) = churn_rate_where(|s| s.unrecovered_failures_90d == 0);
    let (one, n1) = churn_rate_where(|s| s.unrecovered_failures_90d == 1);
    let (more, n2) = churn_rate_where(|s| s.unrecovered_failures_90d >= 2);
    println!("unrecovered failures 0: {none:.4} ({n0}), 1: {one:.4} ({n1}), 2+: {more:.4} ({n2})");
    assert!(n1 >= 300 && n2 >= 100, "too few rows: {n1}, {n2}");
    assert!(none < one && one < more, "{none:.4} {one:.4} {more:.4}");
    assert!(one >= 1.8 * none, "one failure: {one:.4} vs none {none:.4}");
    // The second failure adds more than the first (Zendesk: 50% → 80% leave).
    assert!(more - one > one - none, "{none:.4} {one:.4} {more:.4}");
}

#[test]
fn a_recovery_rated_6_or_more_retains_clearly_more_than_one_under_4() {
    let mut bands: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for customer in population() {
        for record in &customer.records {
            let Record::RecoveryCase(case) = record else {
                continue;
            };
            let (Some(score), Some(retained)) = (case.resurvey_score, case.retained) else {
                continue;
            };
            let band = match score.get() {
                1..=3 => "under 4",
                4..=5 => "4-5",
                _ => "6+",
            };
            let entry = bands.entry(band).or_default();
            entry.0 += u32::from(retained);
            entry.1 += 1;
        }
    }
    let retention = |band: &str| {
        let (kept, all) = bands.get(band).copied().unwrap_or_default();
        (f64::from(kept) / f64::from(all.max(1)), all)
    };
    let (poor, n_poor) = retention("under 4");
    let (middle, n_middle) = retention("4-5");
    let (great, n_great) = retention("6+");
    println!(
        "retained after recovery: under 4 {poor:.4} ({n_poor}), 4-5 {middle:.4} ({n_middle}), 6+ {great:.4} ({n_great})"
    );
    assert!(n_poor >= 200 && n_great >= 200, "{bands:?}");
    assert!(great - poor >= 0.04, "6+: {great:.4}, under 4: {poor:.4}");
    assert!(middle > poor, "4-5: {middle:.4}, under 4: {poor:.4}");
}

#[test]
fn the_uplift_of_recovery_starts_at_4_and_is_largest_from_6() {
    let mut uplift: BTreeMap<u8, (f64, u32)> = BTreeMap::new();
    for row in population().iter().flat_map(|c| &c.recovery_oracle) {
        let entry = uplift.entry(row.quality).or_default();
        entry.0 += row.p_retain_if_recovered - row.p_retain_if_not;
        entry.1 += 1;
    }
    let mean = |q: u8| uplift.get(&q).map_or(0.0, |(sum, n)| sum / f64::from(*n));
    println!(
        "mean uplift by quality: {:?}",
        (1..=7).map(mean).collect::<Vec<_>>()
    );
    assert!(mean(3) < mean(4) && mean(4) < mean(6));
    assert!(mean(6) > 3.0 * mean(3));
}

#[test]
fn about_half_of_failures_get_a_recovery_case_more_for_valuable_segments() {
    let rows: Vec<&RecoveryOracle> = population()
        .iter()
        .flat_map(|c| &c.recovery_oracle)
        .collect();
    let share = rows.iter().filter(|r| r.recovered).count() as f64 / rows.len() as f64;
    assert!((0.4..=0.6).contains(&share), "recovered share {share:.3}");

    let share_in = |segment: Segment| {
        let (recovered, all) = population()
            .iter()
            .filter(|c| matches!(&c.records[0], Record::Customer(p) if p.segment == segment))
            .flat_map(|c| &c.recovery_oracle)
            .fold((0, 0), |(r, n), row| (r + u32::from(row.recovered), n + 1));
        f64::from(recovered) / f64::from(all.max(1))
    };
    let (consumer, enterprise) = (share_in(Segment::Consumer), share_in(Segment::Enterprise));
    println!("recovered share {share:.3}: consumers {consumer:.3}, enterprises {enterprise:.3}");
    assert!(
        enterprise > consumer + 0.1,
        "{consumer:.3} vs {enterprise:.3}"
    );
}

#[test]
fn churners_usage_was_falling_before_their_snapshot() {
    let trend = |s: &ObservedState| {
        ((s.active_days_30d + 1.0) / (s.active_days_prior_60d / 2.0 + 1.0)).ln()
    };
    let mean_trend = |churned: bool| {
        let values: Vec<f64> = snapshots()
            .iter()
            .filter(|(o, _)| o.churned == churned)
            .map(|(_, s)| trend(s))
            .collect();
        values.iter().sum::<f64>() / values.len() as f64
    };
    let (churners, stayers) = (mean_trend(true), mean_trend(false));
    println!("usage trend: churners {churners:.4}, stayers {stayers:.4}");
    assert!(
        churners < stayers - 0.05,
        "churners {churners:.4}, stayers {stayers:.4}"
    );
}

#[test]
fn churners_latest_csat_was_lower() {
    let mean_csat = |churned: bool| {
        let values: Vec<f64> = snapshots()
            .iter()
            .filter(|(o, _)| o.churned == churned)
            .filter_map(|(_, s)| s.latest_csat)
            .collect();
        values.iter().sum::<f64>() / values.len() as f64
    };
    let (churners, stayers) = (mean_csat(true), mean_csat(false));
    println!("latest CSAT: churners {churners:.3}, stayers {stayers:.3}");
    assert!(
        churners < stayers - 0.2,
        "churners {churners:.3}, stayers {stayers:.3}"
    );
}

#[test]
fn consumers_and_small_businesses_churn_more_than_enterprises() {
    let by_segment = |segment: Segment| churn_rate_where(|s| s.segment == segment);
    let rates: Vec<(f64, usize)> = Segment::ALL.iter().map(|s| by_segment(*s)).collect();
    println!("churn by segment {:?}: {rates:?}", Segment::ALL);
    let (consumer, small, mid, enterprise) = (rates[0].0, rates[1].0, rates[2].0, rates[3].0);
    assert!(consumer > mid && small > mid, "{rates:?}");
    assert!(mid > enterprise, "{rates:?}");
    assert!(consumer > 2.0 * enterprise, "{rates:?}");
}

#[test]
fn spend_changes_follow_the_temkin_figures() {
    // (cuts, raises, retained cases) for very poor (1–2) and very good (6–7) recoveries.
    let mut poor = (0u32, 0u32, 0u32);
    let mut good = (0u32, 0u32, 0u32);
    for customer in population() {
        for record in &customer.records {
            let Record::RecoveryCase(case) = record else {
                continue;
            };
            let (Some(score), Some(true), Some(change)) =
                (case.resurvey_score, case.retained, case.spend_change_pct)
            else {
                continue;
            };
            let band = match score.get() {
                1..=2 => &mut poor,
                6..=7 => &mut good,
                _ => continue,
            };
            band.0 += u32::from(change.get() < 0.0);
            band.1 += u32::from(change.get() > 0.0);
            band.2 += 1;
        }
    }
    let share = |count: u32, all: u32| f64::from(count) / f64::from(all.max(1));
    println!("spend after poor {poor:?}, after good {good:?}");
    assert!(
        share(poor.0, poor.2) > 0.45 && share(poor.1, poor.2) < 0.1,
        "{poor:?}"
    );
    assert!(
        (share(good.0, good.2) - share(good.1, good.2)).abs() < 0.1,
        "{good:?}"
    );
}

#[test]
fn volume_is_modest_per_customer() {
    let records: usize = population().iter().map(|c| c.records.len()).sum();
    let per_customer = records as f64 / population().len() as f64;
    let mut by_kind: BTreeMap<RecordKind, usize> = BTreeMap::new();
    for record in population().iter().flat_map(|c| &c.records) {
        *by_kind.entry(record.kind()).or_default() += 1;
    }
    println!("records per customer {per_customer:.1}: {by_kind:?}");
    assert!((80.0..=200.0).contains(&per_customer), "{per_customer:.1}");
}
