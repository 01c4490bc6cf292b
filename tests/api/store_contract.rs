//! The contract every store backend must keep, run against each one.

use rescue::api::RecordParser;
use rescue::domain::{Record, RecordKind, Timestamp};
use rescue::proto::v1 as proto;
use rescue::store::Outcome;

use crate::fixtures;
use crate::helpers::{TestDatabase, on_every_backend};

on_every_backend!(
    a_new_record_of_each_kind_is_accepted_and_counted,
    an_identical_resend_is_a_duplicate,
    rows_fingerprinted_otherwise_are_judged_by_what_they_hold,
    an_immutable_record_with_new_content_is_a_conflict,
    a_newer_version_wins_and_an_older_one_is_superseded,
    a_different_version_with_the_same_time_is_a_conflict,
    records_naming_an_unknown_customer_are_rejected,
    a_customer_and_its_records_in_one_batch_are_all_accepted,
    an_id_repeated_in_one_batch_is_stored_once,
    the_newest_of_several_versions_in_one_batch_wins,
    a_batch_larger_than_one_statement_is_written_whole,
    data_survives_reopening_the_store,
    a_customer_reads_back_with_every_field_of_its_history,
    every_version_of_a_profile_and_a_case_is_kept_in_order,
    customer_pages_cover_every_customer_once_in_id_order,
    audit_events_read_back_newest_first_filtered_and_paged,
);

fn parse(records: Vec<proto::Record>) -> Vec<Record> {
    let parser =
        RecordParser::received_at(Timestamp::now(), rescue::domain::Vocabulary::built_in());
    records
        .into_iter()
        .map(|r| parser.record(r).expect("fixtures are valid"))
        .collect()
}

fn one_of_each(customer: &str) -> Vec<Record> {
    parse(vec![
        fixtures::customer(customer),
        fixtures::usage_event(&format!("{customer}-u"), customer),
        fixtures::interaction(&format!("{customer}-i"), customer),
        fixtures::survey(&format!("{customer}-s"), customer),
        fixtures::churn_outcome(customer, 60),
        fixtures::recovery_case(&format!("{customer}-r"), customer, 0),
    ])
}

fn rejected_field(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Rejected(violation) => &violation.field,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn a_new_record_of_each_kind_is_accepted_and_counted(database: TestDatabase) {
    let store = database.open_store().await;
    let outcomes = store.write_batch(&one_of_each("c-1")).await.expect("write");
    assert_eq!(outcomes, vec![Outcome::Accepted; 6]);
    let counts = store.counts().await.expect("counts");
    for kind in RecordKind::ALL {
        assert_eq!(counts.get(kind), 1, "{kind:?}");
    }
}

async fn an_identical_resend_is_a_duplicate(database: TestDatabase) {
    let store = database.open_store().await;
    store.write_batch(&one_of_each("c-1")).await.expect("write");
    let outcomes = store.write_batch(&one_of_each("c-1")).await.expect("write");
    assert_eq!(outcomes, vec![Outcome::Duplicate; 6]);
    assert_eq!(store.counts().await.expect("counts").total(), 6);
}

/// Stored fingerprints of another scheme (here: numbers that match nothing) do not decide:
/// a resend is judged by what the stored row holds.
async fn rows_fingerprinted_otherwise_are_judged_by_what_they_hold(database: TestDatabase) {
    let store = database.open_store().await;
    store.write_batch(&one_of_each("c-1")).await.expect("write");
    for table in [
        "customers",
        "usage_events",
        "interactions",
        "surveys",
        "churn_outcomes",
        "recovery_cases",
    ] {
        database
            .execute(&format!("UPDATE {table} SET fingerprint = 12345"))
            .await;
    }
    let outcomes = store.write_batch(&one_of_each("c-1")).await.expect("write");
    assert_eq!(outcomes, vec![Outcome::Duplicate; 6]);
    let changed = parse(vec![fixtures::usage_event_of("c-1-u", "c-1", 99.0)]);
    let outcomes = store.write_batch(&changed).await.expect("write");
    assert_eq!(rejected_field(&outcomes[0]), "usage_event.event_id");
    let mut changed_case = parse(vec![fixtures::recovery_case("c-1-r", "c-1", 0)]);
    if let Record::RecoveryCase(case) = &mut changed_case[0] {
        case.retained = Some(!case.retained.unwrap_or(false));
    }
    let outcomes = store.write_batch(&changed_case).await.expect("write");
    assert_eq!(rejected_field(&outcomes[0]), "recovery_case.case_id");
    assert_eq!(store.counts().await.expect("counts").total(), 6);
}

async fn an_immutable_record_with_new_content_is_a_conflict(database: TestDatabase) {
    let store = database.open_store().await;
    store.write_batch(&one_of_each("c-1")).await.expect("write");
    let changed = parse(vec![fixtures::usage_event_of("c-1-u", "c-1", 99.0)]);
    let outcomes = store.write_batch(&changed).await.expect("write");
    assert_eq!(rejected_field(&outcomes[0]), "usage_event.event_id");
}

async fn a_newer_version_wins_and_an_older_one_is_superseded(database: TestDatabase) {
    let store = database.open_store().await;
    let old = parse(vec![fixtures::customer_version("c-1", 10, 100.0)]);
    let new = parse(vec![fixtures::customer_version("c-1", 20, 200.0)]);
    assert_eq!(
        store.write_batch(&old).await.expect("write"),
        vec![Outcome::Accepted]
    );
    assert_eq!(
        store.write_batch(&new).await.expect("write"),
        vec![Outcome::Accepted]
    );
    assert_eq!(
        store.write_batch(&old).await.expect("write"),
        vec![Outcome::Superseded]
    );
    // What is stored is the newer version: re-sending it is a duplicate.
    assert_eq!(
        store.write_batch(&new).await.expect("write"),
        vec![Outcome::Duplicate]
    );
    assert_eq!(
        store
            .counts()
            .await
            .expect("counts")
            .get(RecordKind::Customer),
        1
    );
}

async fn a_different_version_with_the_same_time_is_a_conflict(database: TestDatabase) {
    let store = database.open_store().await;
    let first = parse(vec![
        fixtures::customer("c-1"),
        fixtures::recovery_case("r-1", "c-1", 5),
    ]);
    store.write_batch(&first).await.expect("write");
    let mut changed_case = parse(vec![fixtures::recovery_case("r-1", "c-1", 5)]);
    if let Record::RecoveryCase(case) = &mut changed_case[0] {
        case.retained = Some(true);
    }
    let outcomes = store.write_batch(&changed_case).await.expect("write");
    assert_eq!(rejected_field(&outcomes[0]), "recovery_case.case_id");
}

async fn records_naming_an_unknown_customer_are_rejected(database: TestDatabase) {
    let store = database.open_store().await;
    let mut records = one_of_each("ghost");
    records.remove(0);
    let outcomes = store.write_batch(&records).await.expect("write");
    for outcome in &outcomes {
        assert!(
            rejected_field(outcome).ends_with(".customer_id"),
            "{outcome:?}"
        );
    }
    assert_eq!(store.counts().await.expect("counts").total(), 0);
}

async fn a_customer_and_its_records_in_one_batch_are_all_accepted(database: TestDatabase) {
    let store = database.open_store().await;
    // The customer comes last in the batch and is still written first.
    let mut records = one_of_each("c-1");
    records.rotate_left(1);
    let outcomes = store.write_batch(&records).await.expect("write");
    assert_eq!(outcomes, vec![Outcome::Accepted; 6]);
}

async fn an_id_repeated_in_one_batch_is_stored_once(database: TestDatabase) {
    let store = database.open_store().await;
    let records = parse(vec![
        fixtures::customer("c-1"),
        fixtures::usage_event_of("u-1", "c-1", 1.0),
        fixtures::usage_event_of("u-1", "c-1", 1.0),
        fixtures::usage_event_of("u-1", "c-1", 2.0),
    ]);
    let outcomes = store.write_batch(&records).await.expect("write");
    assert_eq!(
        outcomes[..3],
        [Outcome::Accepted, Outcome::Accepted, Outcome::Duplicate]
    );
    assert_eq!(rejected_field(&outcomes[3]), "usage_event.event_id");
    assert_eq!(
        store
            .counts()
            .await
            .expect("counts")
            .get(RecordKind::UsageEvent),
        1
    );
}

async fn the_newest_of_several_versions_in_one_batch_wins(database: TestDatabase) {
    let store = database.open_store().await;
    let records = parse(vec![
        fixtures::customer_version("c-1", 10, 100.0),
        fixtures::customer_version("c-1", 30, 300.0),
        fixtures::customer_version("c-1", 20, 200.0),
    ]);
    let outcomes = store.write_batch(&records).await.expect("write");
    assert_eq!(
        outcomes,
        vec![Outcome::Superseded, Outcome::Accepted, Outcome::Superseded]
    );
    let newest = parse(vec![fixtures::customer_version("c-1", 30, 300.0)]);
    assert_eq!(
        store.write_batch(&newest).await.expect("write"),
        vec![Outcome::Duplicate]
    );
}

async fn a_batch_larger_than_one_statement_is_written_whole(database: TestDatabase) {
    let store = database.open_store().await;
    let mut records = vec![fixtures::customer("c-1")];
    // More rows than SQLite's parameter limit allows in one statement.
    records.extend((0..12_000).map(|i| fixtures::usage_event(&format!("u-{i}"), "c-1")));
    let outcomes = store.write_batch(&parse(records)).await.expect("write");
    assert!(outcomes.iter().all(|o| *o == Outcome::Accepted));
    assert_eq!(
        store
            .counts()
            .await
            .expect("counts")
            .get(RecordKind::UsageEvent),
        12_000
    );
}

async fn data_survives_reopening_the_store(database: TestDatabase) {
    let store = database.open_store().await;
    store.write_batch(&one_of_each("c-1")).await.expect("write");
    drop(store);
    let reopened = database.open_store().await;
    assert_eq!(reopened.counts().await.expect("counts").total(), 6);
    let outcomes = reopened
        .write_batch(&one_of_each("c-1"))
        .await
        .expect("write");
    assert_eq!(outcomes, vec![Outcome::Duplicate; 6]);
}

async fn a_customer_reads_back_with_every_field_of_its_history(database: TestDatabase) {
    let store = database.open_store().await;
    let mut written = one_of_each("c-1");
    written.push(parse(vec![fixtures::usage_event_of("c-1-u2", "c-1", 0.5)]).remove(0));
    store.write_batch(&written).await.expect("write");
    store.write_batch(&one_of_each("c-2")).await.expect("write");

    let read = store
        .customer_records(&rescue::domain::CustomerId::parse("c-1".into()).expect("id"))
        .await
        .expect("read")
        .expect("c-1 is stored");
    let mut expected = written.clone();
    let mut history = match expected.remove(0) {
        Record::Customer(customer) => rescue::features::History::new(customer),
        other => panic!("customer first, got {other:?}"),
    };
    let mut churn = None;
    for record in expected {
        match record {
            Record::UsageEvent(r) => history.usage.push(r),
            Record::Interaction(r) => history.interactions.push(r),
            Record::Survey(r) => history.surveys.push(r),
            Record::RecoveryCase(r) => history.recovery_cases.push(r),
            Record::ChurnOutcome(r) => churn = Some(r),
            Record::Customer(_) => panic!("one customer"),
        }
    }
    history.usage.sort_by_key(|e| e.occurred_at);
    // Each versioned record written once is its only version.
    history.profile_versions = vec![history.customer.clone()];
    history.case_versions = history.recovery_cases.clone();
    assert_eq!(read.history, history);
    assert_eq!(read.churn, churn);

    let unknown = rescue::domain::CustomerId::parse("nobody".into()).expect("id");
    assert_eq!(store.customer_records(&unknown).await.expect("read"), None);
}

/// Every version of a profile and of a recovery case is kept, oldest first, while the
/// newest is the one re-sends are judged against.
async fn every_version_of_a_profile_and_a_case_is_kept_in_order(database: TestDatabase) {
    use rescue::domain::{Customer, RecoveryCase};
    let store = database.open_store().await;
    let records = one_of_each("c-1");
    let customer: Customer = records
        .iter()
        .find_map(|r| match r {
            Record::Customer(c) => Some(c.clone()),
            _ => None,
        })
        .expect("a customer");
    let case: RecoveryCase = records
        .iter()
        .find_map(|r| match r {
            Record::RecoveryCase(c) => Some(c.clone()),
            _ => None,
        })
        .expect("a case");
    let later = |at: Timestamp, seconds: i64| {
        Timestamp::from_unix_micros(at.unix_micros() + seconds * 1_000_000)
    };
    let newer_profile = Customer {
        updated_at: later(customer.updated_at, 3_600),
        ..customer.clone()
    };
    let newer_case = RecoveryCase {
        updated_at: later(case.updated_at, 7_200),
        resurvey_score: rescue::domain::Rating::parse(6).ok(),
        ..case.clone()
    };
    // Newest first, in one batch and then another, with an identical re-send between.
    store
        .write_batch(&[
            Record::Customer(newer_profile.clone()),
            Record::RecoveryCase(newer_case.clone()),
        ])
        .await
        .expect("write");
    store
        .write_batch(&[
            Record::Customer(customer.clone()),
            Record::RecoveryCase(case.clone()),
        ])
        .await
        .expect("write");
    store
        .write_batch(&[Record::Customer(newer_profile.clone())])
        .await
        .expect("write");
    let read = store
        .customer_records(&customer.customer_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(read.history.customer, newer_profile);
    assert_eq!(read.history.recovery_cases, vec![newer_case.clone()]);
    // The older versions arrived after the newer ones: superseded, so not kept either.
    assert_eq!(read.history.profile_versions, vec![newer_profile.clone()]);

    let newest = Customer {
        updated_at: later(customer.updated_at, 10_800),
        ..customer.clone()
    };
    store
        .write_batch(&[Record::Customer(newest.clone())])
        .await
        .expect("write");
    let read = store
        .customer_records(&customer.customer_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        read.history.profile_versions,
        vec![newer_profile, newest.clone()]
    );
    assert_eq!(
        read.history
            .profile_at(later(customer.updated_at, 3_601))
            .updated_at,
        later(customer.updated_at, 3_600)
    );
    assert_eq!(
        read.history.profile_at(later(customer.updated_at, 20_000)),
        &newest
    );
    assert_eq!(read.history.case_versions, vec![newer_case]);
}

async fn customer_pages_cover_every_customer_once_in_id_order(database: TestDatabase) {
    let store = database.open_store().await;
    let mut records = Vec::new();
    for i in 0..25 {
        records.extend(one_of_each(&format!("c-{i:02}")));
    }
    store.write_batch(&records).await.expect("write");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.customer_page(after.as_ref(), 10).await.expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        for customer in &page {
            assert_eq!(customer.history.usage.len(), 1);
            assert_eq!(customer.history.recovery_cases.len(), 1);
            assert!(customer.churn.is_some());
        }
        after = page.last().map(|c| c.history.customer.customer_id.clone());
        seen.extend(
            page.into_iter()
                .map(|c| c.history.customer.customer_id.into_string()),
        );
    }
    let expected: Vec<String> = (0..25).map(|i| format!("c-{i:02}")).collect();
    assert_eq!(seen, expected);
}

async fn audit_events_read_back_newest_first_filtered_and_paged(database: TestDatabase) {
    use rescue::store::{AuditEvent, AuditQuery};
    let store = database.open_store().await;
    let event = |i: i64, caller: &str, method: &str| AuditEvent {
        event_id: format!("{i:032x}"),
        at: Timestamp::from_unix_micros(1_767_225_600_000_000 + i * 1_000_000),
        caller: caller.into(),
        method: method.into(),
        target: format!("target {i}"),
        changed: format!("changed {i}"),
        code: "Ok".into(),
        message: String::new(),
    };
    let written: Vec<AuditEvent> = (0..5)
        .map(|i| {
            event(
                i,
                if i % 2 == 0 { "key:a" } else { "key:b" },
                "PromoteModel",
            )
        })
        .chain([event(5, "key:a", "ReloadProgram")])
        .collect();
    for e in &written {
        store.insert_audit_event(e).await.expect("append");
    }
    let all = store
        .audit_events(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("read");
    let newest_first: Vec<AuditEvent> = written.iter().rev().cloned().collect();
    assert_eq!(all, newest_first, "every field back, newest first");
    let by_a = store
        .audit_events(&AuditQuery {
            caller: Some("key:a".into()),
            method: Some("PromoteModel".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("filtered");
    let ids: Vec<&str> = by_a.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            written[4].event_id.as_str(),
            &written[2].event_id,
            &written[0].event_id
        ]
    );
    let after_third = store
        .audit_events(&AuditQuery {
            before: Some((all[2].at, all[2].event_id.clone())),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .expect("a page");
    assert_eq!(after_third, all[3..5].to_vec());
}
