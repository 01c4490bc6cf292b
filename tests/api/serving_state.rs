//! The serving state against the tables it mirrors, on each backend: for random histories,
//! sent in random orders and batches, a customer read through their serving state equals the
//! same customer read from every table — field for field, in the same order — and so scores
//! exactly alike as of any moment under any feature spec; and a customer stored before serving
//! states were kept is read from the tables until their state is completed online.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rescue::api::RecordParser;
use rescue::domain::{CustomerId, Record, Timestamp};
use rescue::features::{Computation, Feature, FeatureSpec, Wording};
use rescue::proto::v1::{self as proto, record::Kind};
use rescue::store::{Backend, CustomerRecords, Store};

use crate::fixtures;
use crate::helpers::{TestDatabase, on_every_backend};

on_every_backend!(
    the_serving_state_reads_back_as_the_tables_for_random_histories,
    a_customer_stored_before_serving_states_is_completed_online,
    a_state_written_by_many_batches_is_compacted_into_one_log_row,
    a_state_another_process_changed_is_never_served_as_it_was,
);

const DAY: i64 = 86_400;

/// One record of a generated history. Ids come from small ranges, so re-sends (identical or
/// changed: duplicates, conflicts, newer and older versions) are common; times fall on a few
/// hours of each day, so records at the same moment are too.
#[derive(Debug, Clone)]
enum Step {
    Profile {
        day: u16,
        value: u16,
        tenure: u8,
        score: Option<u8>,
    },
    Usage {
        id: u8,
        day: u16,
        hour: u8,
        activity: u8,
        quarters: u8,
    },
    Contact {
        id: u8,
        day: u16,
        hour: u8,
        failure: bool,
        tag: u8,
        wait: u16,
    },
    Survey {
        id: u8,
        day: u16,
        hour: u8,
        csat: Option<u8>,
        nps: Option<u8>,
    },
    Case {
        id: u8,
        opened: u16,
        later: u16,
        resurvey: Option<u8>,
    },
    Churn {
        day: u16,
        churned: bool,
    },
}

const HISTORY_DAYS: u16 = 730;

fn step() -> impl Strategy<Value = Step> {
    let day = 0..HISTORY_DAYS;
    let hour = 0u8..3;
    prop_oneof![
        1 => (0u16..HISTORY_DAYS, any::<u16>(), 1u8..60, proptest::option::of(0u8..100)).prop_map(
            |(day, value, tenure, score)| Step::Profile {
                day,
                value,
                tenure,
                score
            }
        ),
        6 => (0u8..40, day.clone(), hour.clone(), 0u8..3, any::<u8>()).prop_map(
            |(id, day, hour, activity, quarters)| Step::Usage {
                id,
                day,
                hour,
                activity,
                quarters
            }
        ),
        2 => (0u8..12, day.clone(), hour.clone(), any::<bool>(), 0u8..3, 0u16..3_600).prop_map(
            |(id, day, hour, failure, tag, wait)| Step::Contact {
                id,
                day,
                hour,
                failure,
                tag,
                wait
            }
        ),
        2 => (
            0u8..10,
            day.clone(),
            hour,
            proptest::option::of(1u8..=5),
            proptest::option::of(0u8..=10)
        )
            .prop_map(|(id, day, hour, csat, nps)| Step::Survey {
                id,
                day,
                hour,
                csat,
                nps
            }),
        1 => (0u8..4, day.clone(), 0u16..60, proptest::option::of(1u8..=7)).prop_map(
            |(id, opened, later, resurvey)| Step::Case {
                id,
                opened,
                later,
                resurvey
            }
        ),
        1 => (day, any::<bool>()).prop_map(|(day, churned)| Step::Churn { day, churned }),
    ]
}

/// A history, the order it is sent in (a permutation of its records after the first
/// profile), the sizes of the batches it is cut into, and moments to score it at.
#[derive(Debug, Clone)]
struct Scenario {
    steps: Vec<Step>,
    batch_sizes: Vec<usize>,
    as_of_days: Vec<u16>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(step(), 0..80).prop_shuffle(),
        proptest::collection::vec(1usize..30, 1..8),
        proptest::collection::vec(0..HISTORY_DAYS + 60, 1..6),
    )
        .prop_map(|(steps, batch_sizes, as_of_days)| Scenario {
            steps,
            batch_sizes,
            as_of_days,
        })
}

fn time(day: u16, hour: u8) -> Option<prost_types::Timestamp> {
    fixtures::at((i64::from(day) - i64::from(HISTORY_DAYS)) * DAY + i64::from(hour) * 8 * 3_600)
}

const ACTIVITIES: [&str; 3] = ["login", "report.export", "api.call"];
const TAGS: [proto::IssueTag; 3] = [
    proto::IssueTag::Billing,
    proto::IssueTag::Technical,
    proto::IssueTag::Delivery,
];

fn with_kind(mut record: proto::Record, edit: impl FnOnce(&mut Kind)) -> proto::Record {
    if let Some(kind) = record.kind.as_mut() {
        edit(kind);
    }
    record
}

fn proto_record(step: &Step, customer: &str) -> proto::Record {
    match *step {
        Step::Profile {
            day,
            value,
            tenure,
            score,
        } => with_kind(fixtures::customer(customer), |kind| {
            if let Kind::Customer(c) = kind {
                c.updated_at = time(day, 0);
                c.annual_value = f64::from(value) + 0.25;
                // Before the history starts, so before every version.
                c.customer_since =
                    fixtures::at(-(i64::from(HISTORY_DAYS) + 100 + i64::from(tenure) * 30) * DAY);
                if let Some(score) = score {
                    c.attributes.insert(
                        "credit_score".into(),
                        proto::AttributeValue {
                            value: Some(proto::attribute_value::Value::Number(f64::from(score))),
                        },
                    );
                }
            }
        }),
        Step::Usage {
            id,
            day,
            hour,
            activity,
            quarters,
        } => with_kind(
            fixtures::usage_event(&format!("{customer}-u{id}"), customer),
            |kind| {
                if let Kind::UsageEvent(u) = kind {
                    u.occurred_at = time(day, hour);
                    u.activity = ACTIVITIES[usize::from(activity)].into();
                    // Quarters and thirds: sums that depend on the order they are added in.
                    u.quantity = f64::from(quarters) / 4.0 + f64::from(quarters % 3) / 3.0;
                }
            },
        ),
        Step::Contact {
            id,
            day,
            hour,
            failure,
            tag,
            wait,
        } => with_kind(
            fixtures::interaction(&format!("{customer}-i{id}"), customer),
            |kind| {
                if let Kind::Interaction(i) = kind {
                    i.occurred_at = time(day, hour);
                    i.failure = failure;
                    i.tag = TAGS[usize::from(tag)].into();
                    i.wait_seconds = f64::from(wait) / 7.0;
                }
            },
        ),
        Step::Survey {
            id,
            day,
            hour,
            csat,
            nps,
        } => with_kind(
            fixtures::survey(&format!("{customer}-s{id}"), customer),
            |kind| {
                if let Kind::Survey(s) = kind {
                    s.answered_at = time(day, hour);
                    s.csat = csat.map(u32::from);
                    s.nps = nps.map(u32::from);
                    // A survey answers at least one question.
                    s.recovery_rating = (csat.is_none() && nps.is_none()).then_some(4);
                }
            },
        ),
        Step::Case {
            id,
            opened,
            later,
            resurvey,
        } => with_kind(
            fixtures::recovery_case(&format!("{customer}-r{id}"), customer, 0),
            |kind| {
                if let Kind::RecoveryCase(r) = kind {
                    r.opened_at = time(opened, 0);
                    r.first_response_at = time(opened, 1);
                    r.updated_at = time(opened.saturating_add(later), 2);
                    r.resurvey_score = resurvey.map(u32::from);
                }
            },
        ),
        Step::Churn { day, churned } => with_kind(fixtures::churn_outcome(customer, 0), |kind| {
            if let Kind::ChurnOutcome(o) = kind {
                o.observed_at = time(day, 2);
                if churned {
                    o.status = proto::ChurnStatus::Churned.into();
                    o.churned_at = time(day, 1);
                }
            }
        }),
    }
}

/// The history's records in sending order: a first profile, then the steps as shuffled.
fn records(scenario: &Scenario, customer: &str) -> Vec<Record> {
    let parser =
        RecordParser::received_at(Timestamp::now(), rescue::domain::Vocabulary::built_in());
    let first = Step::Profile {
        day: 0,
        value: 500,
        tenure: 0,
        score: None,
    };
    std::iter::once(&first)
        .chain(scenario.steps.iter())
        .map(|s| proto_record(s, customer))
        .map(|r| parser.record(r).expect("generated records are valid"))
        .collect()
}

/// Every kind of feature computation, over what the generated histories hold: a spec other
/// than the built-in one, as a promoted model of another kind would bring.
fn every_kind_of_feature() -> FeatureSpec {
    let feature = |name: &str, computation| Feature {
        name: name.into(),
        computation,
        wording: Wording::Value {
            template: "{value}".into(),
        },
        range: None,
    };
    let mut spec = FeatureSpec::every_built_in();
    spec.features.extend([
        feature(
            "credit_score",
            Computation::AttributeNumber {
                attribute: "credit_score".into(),
                fill: 50.0,
            },
        ),
        feature(
            "credit_score_missing",
            Computation::AttributeMissing {
                attribute: "credit_score".into(),
            },
        ),
        feature(
            "exports_30d",
            Computation::ActivityAmount {
                activity: "report.export".into(),
                days: 30,
            },
        ),
        feature(
            "api_days_since",
            Computation::ActivityDaysSince {
                activity: "api.call".into(),
            },
        ),
        feature(
            "technical_contacts_90d",
            Computation::ContactsByTag {
                tag: "technical".into(),
                days: 90,
            },
        ),
    ]);
    spec
}

/// The customer as the store serves them (from their serving state, cached or not).
async fn read_served(store: &dyn Store, id: &CustomerId) -> Option<CustomerRecords> {
    let served = store.customer_records(id).await.expect("serving read");
    served.map(Arc::unwrap_or_clone)
}

/// Usage event `id` of a generated history, on day 600 + `id`.
fn usage_on_day(id: u8, kind: u8) -> Step {
    Step::Usage {
        id,
        day: 600 + u16::from(id),
        hour: kind,
        activity: kind,
        quarters: id,
    }
}

/// Waits until `customer`'s state is compacted into one log row (compaction runs in the
/// background after a read).
async fn wait_until_compacted(database: &TestDatabase, customer: &str) {
    let rows = format!("SELECT count(*) FROM serving_log WHERE customer_id = '{customer}'");
    let mut waited = 0;
    while database.count(&rows).await != 1 {
        waited += 1;
        assert!(waited < 200, "the state was not compacted");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Customer ids unique across the cases run against one database.
static CASES: AtomicUsize = AtomicUsize::new(0);

async fn check(store: &dyn Store, scenario: &Scenario) -> Result<(), TestCaseError> {
    let customer = format!("pt-{:05}", CASES.fetch_add(1, Ordering::Relaxed));
    let records = records(scenario, &customer);
    let id = CustomerId::parse(customer).expect("a valid id");
    let mut rest = records.as_slice();
    for &size in scenario.batch_sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (batch, later) = rest.split_at(size.min(rest.len()));
        store.write_batch(batch).await.expect("write a batch");
        rest = later;
        // Read between batches too, so a state held decoded from an earlier read is checked
        // against what was written since.
        if !rest.is_empty() {
            let from_tables = store
                .customer_records_from_tables(&id)
                .await
                .expect("table read");
            prop_assert_eq!(read_served(store, &id).await, from_tables);
        }
    }
    let served = read_served(store, &id).await;
    let from_tables = store
        .customer_records_from_tables(&id)
        .await
        .expect("table read");
    prop_assert!(served.is_some());
    prop_assert_eq!(&served, &from_tables);
    let (served, from_tables) = (served.expect("some"), from_tables.expect("some"));
    for spec in [FeatureSpec::every_built_in(), every_kind_of_feature()] {
        for &day in &scenario.as_of_days {
            let as_of = Timestamp::from_unix_micros(
                (fixtures::BASE_SECONDS + (i64::from(day) - i64::from(HISTORY_DAYS)) * DAY)
                    * 1_000_000,
            );
            let bits = |records: &rescue::store::CustomerRecords| -> Vec<u64> {
                spec.compute(&records.history, as_of)
                    .0
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            };
            prop_assert_eq!(bits(&served), bits(&from_tables), "as of {}", as_of);
        }
    }
    Ok(())
}

async fn the_serving_state_reads_back_as_the_tables_for_random_histories(database: TestDatabase) {
    let store = database.open_store().await;
    let handle = tokio::runtime::Handle::current();
    // The runner is synchronous; each case runs on this test's runtime.
    let cases = match store.backend() {
        Backend::Sqlite => 64,
        Backend::Postgres => 32,
    };
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&scenario(), |scenario| {
                handle.block_on(check(store.as_ref(), &scenario))
            })
            .expect("the serving state equals the tables");
    });
}

async fn a_state_written_by_many_batches_is_compacted_into_one_log_row(database: TestDatabase) {
    let store = database.open_store().await;
    let usage = |id: u8| usage_on_day(id, id % 3);
    let scenario = Scenario {
        steps: (1..=20).map(usage).collect(),
        batch_sizes: vec![],
        as_of_days: vec![],
    };
    let all = records(&scenario, "busy-1");
    for batch in all.chunks(1) {
        store.write_batch(batch).await.expect("write");
    }
    let rows = "SELECT count(*) FROM serving_log WHERE customer_id = 'busy-1'";
    assert_eq!(database.count(rows).await, 21, "one log row per batch");

    let id = CustomerId::parse("busy-1".to_owned()).expect("id");
    let reference = store.customer_records_from_tables(&id).await.expect("read");
    assert_eq!(read_served(store.as_ref(), &id).await, reference);
    // The read compacts the state in the background.
    let mut waited = 0;
    while database.count(rows).await != 1 {
        waited += 1;
        assert!(waited < 200, "the state was not compacted");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(read_served(store.as_ref(), &id).await, reference);

    // Writes after the compaction append to it; the state still reads as the tables.
    let later = records(
        &Scenario {
            steps: vec![usage(21), usage(22)],
            ..scenario.clone()
        },
        "busy-1",
    );
    store.write_batch(&later[1..]).await.expect("write");
    let reference = store.customer_records_from_tables(&id).await.expect("read");
    assert_eq!(reference.as_ref().map(|r| r.history.usage.len()), Some(22));
    assert_eq!(database.count(rows).await, 2);
    assert_eq!(read_served(store.as_ref(), &id).await, reference);
    let page = store.customer_page(None, 10).await.expect("page");
    assert_eq!(page.into_iter().next(), reference, "pages read the log too");
}

async fn a_customer_stored_before_serving_states_is_completed_online(database: TestDatabase) {
    let store = database.open_store().await;
    let scenario = Scenario {
        steps: vec![
            Step::Usage {
                id: 1,
                day: 700,
                hour: 0,
                activity: 0,
                quarters: 9,
            },
            Step::Survey {
                id: 1,
                day: 710,
                hour: 1,
                csat: Some(2),
                nps: Some(4),
            },
        ],
        batch_sizes: vec![10],
        as_of_days: vec![],
    };
    let first = records(&scenario, "legacy-1");
    store.write_batch(&first).await.expect("write");
    let id = CustomerId::parse("legacy-1".to_owned()).expect("id");
    let reference = store.customer_records_from_tables(&id).await.expect("read");

    // As a database upgraded from a build without serving states holds it: no state row.
    database.execute("DELETE FROM serving_state").await;
    assert_eq!(
        read_served(store.as_ref(), &id).await,
        reference,
        "without a state the tables are read"
    );

    // A write before completion leaves an incomplete row, which is not trusted.
    let later = records(
        &Scenario {
            steps: vec![Step::Usage {
                id: 2,
                day: 720,
                hour: 2,
                activity: 1,
                quarters: 3,
            }],
            ..scenario.clone()
        },
        "legacy-1",
    );
    store.write_batch(&later[1..]).await.expect("write");
    let reference = store.customer_records_from_tables(&id).await.expect("read");
    assert_eq!(reference.as_ref().map(|r| r.history.usage.len()), Some(2));
    assert_eq!(read_served(store.as_ref(), &id).await, reference);

    let completion = store
        .complete_serving_states(None, 100)
        .await
        .expect("complete");
    assert_eq!((completion.examined, completion.completed), (1, 1));
    assert_eq!(completion.last, Some(id.clone()));
    let again = store
        .complete_serving_states(None, 100)
        .await
        .expect("complete");
    assert_eq!(again.examined, 0, "nothing is left to complete");

    // The completed state is trusted now, and its emptied tables would show otherwise.
    database.execute("DELETE FROM usage_events").await;
    let served = read_served(store.as_ref(), &id).await;
    assert_eq!(served, reference, "read from the completed state");
    let page = store.customer_page(None, 10).await.expect("page");
    assert_eq!(page.into_iter().next(), reference, "pages read states too");
}

/// A state held decoded by one process is served again only while the stored one is the
/// same: here another process appends to it and then compacts it back into one log row
/// (which, on SQLite, may take the `seq` of a row it deleted).
async fn a_state_another_process_changed_is_never_served_as_it_was(database: TestDatabase) {
    let (serving, other) = (database.open_store().await, database.open_store().await);
    let scenario = Scenario {
        steps: (1..=12).map(|id| usage_on_day(id, 1)).collect(),
        batch_sizes: vec![],
        as_of_days: vec![],
    };
    let all = records(&scenario, "shared-1");
    let id = CustomerId::parse("shared-1".to_owned()).expect("id");
    other.write_batch(&all[..2]).await.expect("write");
    let first = read_served(serving.as_ref(), &id).await;
    assert_eq!(first.as_ref().map(|r| r.history.usage.len()), Some(1));
    assert_eq!(
        read_served(serving.as_ref(), &id).await,
        first,
        "held and unchanged"
    );

    // The other process writes a batch at a time, then reads, which compacts the state.
    for record in &all[2..] {
        other
            .write_batch(std::slice::from_ref(record))
            .await
            .expect("write");
    }
    let reference = other.customer_records_from_tables(&id).await.expect("read");
    assert_eq!(read_served(other.as_ref(), &id).await, reference);
    wait_until_compacted(&database, "shared-1").await;
    assert_eq!(reference.as_ref().map(|r| r.history.usage.len()), Some(12));
    assert_eq!(read_served(serving.as_ref(), &id).await, reference);
}
