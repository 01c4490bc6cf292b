//! Issue acceptance 2: whether the uplift learners find effects that differ between customers
//! where they do, and invent none where they do not — on the covariates of a real table.
//!
//! Each synthetic customer is a row of the public churn table in `tests/data` (drawn with
//! replacement), stored as a customer whose attributes are the row's columns, with one
//! service failure, recovered for about half of them, and a churn outcome drawn from a known
//! retention: a base that depends on a few of the columns, plus the effect of recovery. The
//! training path is the real one: the features are chosen from the stored records, the rows
//! built and split as training builds and splits them, every learner fitted and one kept.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rescue::domain::{
    AttributeName, AttributeValue, Attributes, BuiltInAction, BuiltInTag, CaresRatings, CaseId,
    Channel, ChurnOutcome, ChurnStatus, Customer, CustomerId, Interaction, InteractionId, IssueTag,
    MICROS_PER_DAY, Money, PlanTier, Rating, Record, RecoveryAction, RecoveryCase, RecoveryTrigger,
    Resolution, Segment, Timestamp, WaitSeconds,
};
use rescue::features::SpecBuilder;
use rescue::model::TrainParams;
use rescue::store::CustomerRecords;
use rescue::uplift::train::{self, UpliftTraining};
use rescue::uplift::{HoldoutStart, UpliftLearner, UpliftModel, UpliftRows};

use crate::helpers::spearman;

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iranian_churn.csv");
const CUSTOMERS: usize = 16_000;
const HORIZON_DAYS: u32 = 90;

fn day(d: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_700_000_000_000_000 + d * MICROS_PER_DAY)
}

/// The table's rows, by column name (the label column left out).
fn table() -> Vec<BTreeMap<String, f64>> {
    let mut reader = csv::Reader::from_path(TABLE).expect("the development table");
    let headers: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(|h| {
            h.split_whitespace()
                .collect::<Vec<_>>()
                .join("_")
                .to_lowercase()
        })
        .collect();
    reader
        .records()
        .map(|row| {
            let row = row.expect("a row");
            headers
                .iter()
                .zip(row.iter())
                .filter(|(name, _)| *name != "churn")
                .map(|(name, cell)| (name.clone(), cell.parse().expect("a number")))
                .collect()
        })
        .collect()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Retention without recovery: complaints and failed calls lower it, use raises it.
fn base_retention(row: &BTreeMap<String, f64>) -> f64 {
    sigmoid(
        1.2 - 1.5 * row["complains"] - 0.06 * row["call_failure"]
            + 0.00008 * row["seconds_of_use"].min(10_000.0)
            + 0.02 * row["subscription_length"],
    )
}

/// A world of customers, each a table row with recovery's `effect` on its retention; and
/// each customer's true effect.
fn world(
    effect: impl Fn(&BTreeMap<String, f64>) -> f64,
) -> (Vec<CustomerRecords>, HashMap<String, f64>) {
    let rows = table();
    let mut rng = StdRng::seed_from_u64(11);
    let mut customers = Vec::with_capacity(CUSTOMERS);
    let mut effects = HashMap::new();
    for i in 0..CUSTOMERS {
        let row = &rows[rng.gen_range(0..rows.len())];
        let id = format!("c-{i}");
        let failed_at = day(rng.gen_range(0..360));
        let treated = rng.gen_bool(0.5);
        let lift = effect(row);
        let retention = (base_retention(row) + if treated { lift } else { 0.0 }).clamp(0.0, 1.0);
        let retained = rng.gen_bool(retention);
        effects.insert(id.clone(), lift);
        let customer_id = CustomerId::parse(id.clone()).expect("id");
        let attributes = row
            .iter()
            .map(|(name, value)| {
                (
                    AttributeName::parse(name.clone()).expect("a name"),
                    AttributeValue::number(*value).expect("a number"),
                )
            })
            .collect();
        let failure = Interaction {
            interaction_id: InteractionId::parse(format!("{id}-f")).expect("id"),
            customer_id: customer_id.clone(),
            occurred_at: failed_at,
            channel: Channel::Phone,
            tag: IssueTag::from(BuiltInTag::Technical),
            failure: true,
            resolution: Resolution::Unresolved,
            wait_seconds: WaitSeconds::parse(300.0).expect("wait"),
            first_contact_resolution: false,
            repeat_contact: false,
        };
        let mut records = vec![
            Record::Customer(Customer {
                customer_id: customer_id.clone(),
                segment: Segment::Consumer,
                plan: PlanTier::Standard,
                persona: None,
                region: None,
                annual_value: Money::parse(row["customer_value"].max(1.0)).expect("money"),
                customer_since: day(-30 * row["subscription_length"] as i64),
                updated_at: day(-400),
                attributes: Attributes::new(attributes).expect("attributes"),
            }),
            Record::Interaction(failure.clone()),
            Record::ChurnOutcome(ChurnOutcome {
                customer_id: customer_id.clone(),
                status: if retained {
                    ChurnStatus::Active
                } else {
                    ChurnStatus::Churned
                },
                churned_at: (!retained).then(|| {
                    Timestamp::from_unix_micros(failed_at.unix_micros() + 30 * MICROS_PER_DAY)
                }),
                observed_at: day(600),
            }),
        ];
        if treated {
            records.push(Record::RecoveryCase(RecoveryCase {
                case_id: CaseId::parse(format!("{id}-r")).expect("id"),
                customer_id: customer_id.clone(),
                trigger: RecoveryTrigger::Proactive,
                tag: IssueTag::from(BuiltInTag::Technical),
                action: RecoveryAction::from(BuiltInAction::Callback),
                cost: Money::parse(20.0).expect("money"),
                trigger_interaction_id: Some(failure.interaction_id.clone()),
                trigger_survey_id: None,
                opened_at: failed_at,
                first_response_at: None,
                resolved_at: None,
                cares: CaresRatings::default(),
                resurvey_score: Rating::parse(6).ok(),
                retained: None,
                spend_change_pct: None,
                updated_at: failed_at,
            }));
        }
        customers.push(CustomerRecords::from_records(records).expect("a profile"));
    }
    (customers, effects)
}

/// What the trained model predicts for every hold-out failure: its uplift, its retention
/// without recovery, and the true effect.
struct Predictions {
    learner: String,
    uplift: Vec<f64>,
    /// Whether each failure's 90% interval holds its true effect.
    covered: Vec<bool>,
    if_not: Vec<f64>,
    truth: Vec<f64>,
}

fn train_on(effect: impl Fn(&BTreeMap<String, f64>) -> f64) -> Predictions {
    let (customers, effects) = world(effect);
    let latest = day(600);
    let mut chosen = SpecBuilder::default();
    for c in &customers {
        chosen.add(&c.history, latest);
    }
    let mut rows = UpliftRows::new(HORIZON_DAYS, chosen.finish());
    for c in &customers {
        rows.add(&c.history, c.churn.as_ref());
    }
    let split = rows
        .split(HoldoutStart::Customers {
            share: 0.3,
            seed: 42,
        })
        .without_constant_features();
    let trained = train::train(
        &split,
        &UpliftTraining {
            learners: UpliftLearner::ALL.to_vec(),
            replicates: train::DEFAULT_REPLICATES,
            params: TrainParams::default().check().expect("default parameters"),
            horizon_days: HORIZON_DAYS,
            version: "uplift-test".into(),
            cancellation: Default::default(),
            created_at: latest,
        },
    )
    .expect("training");
    eprintln!("{}", trained.notes.join("\n"));
    let model = UpliftModel::from_artifact(&trained.artifact);
    let retention: Vec<_> = split
        .holdout
        .iter()
        .map(|r| model.program_retention(&r.features, r.segment))
        .collect();
    Predictions {
        learner: trained.artifact.learner.name(),
        uplift: retention.iter().map(|r| r.uplift()).collect(),
        covered: retention
            .iter()
            .zip(&split.holdout)
            .map(|(r, row)| {
                let interval = r.interval.expect("an interval");
                (interval.low..=interval.high).contains(&effects[row.customer_id.as_str()])
            })
            .collect(),
        if_not: retention.iter().map(|r| r.if_not).collect(),
        truth: split
            .holdout
            .iter()
            .map(|r| effects[r.customer_id.as_str()])
            .collect(),
    }
}

fn coverage(covered: &[bool]) -> f64 {
    covered.iter().filter(|c| **c).count() as f64 / covered.len() as f64
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn sd(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}

/// Recovery adds 8 points of retention to everyone: the kept model's predicted uplift is about
/// that on average, and varies between customers by less than half of it — no learner may
/// sell noise as differences. (Some spread remains by design: the logistic learners' effect
/// is a shift of the logit, which moves a probability near 0.5 further than one near 1.)
#[test]
fn a_constant_effect_is_predicted_as_one() {
    let p = train_on(|_| 0.08);
    let (average, spread) = (mean(&p.uplift), sd(&p.uplift));
    eprintln!(
        "constant effect 0.08: kept {}, predicted uplift {average:.4} ± {spread:.4}; the 90% interval covers the true effect for {:.3}",
        p.learner,
        coverage(&p.covered)
    );
    assert!((average - 0.08).abs() < 0.03, "average {average:.4}");
    assert!(
        spread < 0.5 * average,
        "spread {spread:.4} around {average:.4}"
    );
}

/// Recovery adds 20 points of retention for active customers (`status` 1, three in four)
/// and nothing for the others, whatever their risk: the kept model's uplift follows the
/// effect, not the risk.
#[test]
fn an_effect_that_differs_by_customer_is_found_and_is_not_the_risk() {
    let p = train_on(|row| if row["status"] == 1.0 { 0.2 } else { 0.0 });
    let with_truth = spearman(&p.uplift, &p.truth);
    let with_risk = spearman(&p.uplift, &p.if_not);
    eprintln!(
        "effect by status: kept {}, Spearman of the predicted uplift with the true effect {with_truth:.3}, with its own retention without recovery {with_risk:.3}; the 90% interval covers the true effect for {:.3}",
        p.learner,
        coverage(&p.covered)
    );
    assert!(
        with_truth >= 0.6,
        "Spearman with the true effect {with_truth:.3}"
    );
    assert!(
        with_risk.abs() < 0.9,
        "Spearman with the risk {with_risk:.3}"
    );
}
