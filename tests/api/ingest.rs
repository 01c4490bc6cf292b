//! The Ingest service end to end: verdicts per record, and what ends up in the database.

use std::collections::BTreeMap;

use rescue::domain::RecordKind;
use rescue::proto::v1::{self as proto, record::Kind};

use crate::fixtures::{self, malformed};
use crate::helpers::{TestDatabase, on_every_backend, spawn_app};

on_every_backend!(
    a_mixed_stream_stores_exactly_the_good_records_and_a_resend_changes_nothing,
    every_kind_of_malformed_input_is_rejected_with_its_field_and_reason,
    versioned_records_keep_the_newest_version,
    an_event_resent_with_other_content_is_rejected_as_a_conflict,
);

fn kind_of(record: &proto::Record) -> Option<RecordKind> {
    Some(match record.kind.as_ref()? {
        Kind::Customer(_) => RecordKind::Customer,
        Kind::UsageEvent(_) => RecordKind::UsageEvent,
        Kind::Interaction(_) => RecordKind::Interaction,
        Kind::Survey(_) => RecordKind::Survey,
        Kind::ChurnOutcome(_) => RecordKind::ChurnOutcome,
        Kind::RecoveryCase(_) => RecordKind::RecoveryCase,
    })
}

/// 10,000 records of every kind: each tenth is a new customer followed by nine records about
/// it. 50 of them, spread through the stream, are replaced by malformed ones.
fn mixed_stream() -> (
    Vec<proto::Record>,
    BTreeMap<u64, (&'static str, &'static str)>,
) {
    let mut records = Vec::with_capacity(10_000);
    let mut bad = BTreeMap::new();
    let mut malformed_sorts = Vec::new();
    for i in 0..10_000_usize {
        let customer = format!("c-{}", i / 10);
        let id = format!("r-{i}");
        let record = match i % 10 {
            0 => fixtures::customer(&customer),
            1..=4 => fixtures::usage_event(&id, &customer),
            5 | 6 => fixtures::interaction(&id, &customer),
            7 => fixtures::survey(&id, &customer),
            8 => fixtures::recovery_case(&id, &customer, 0),
            _ => fixtures::churn_outcome(&customer, 60),
        };
        // Never a customer: its nine followers would then be rejected too.
        let k = i / 200;
        if i % 200 == 1 + k % 9 {
            if malformed_sorts.is_empty() {
                malformed_sorts = malformed(&format!("bad-{i}"), &customer);
            }
            let sort = malformed_sorts.swap_remove(k % malformed_sorts.len());
            bad.insert(i as u64, (sort.field, sort.reason_mentions));
            records.push(sort.record);
        } else {
            records.push(record);
        }
    }
    (records, bad)
}

async fn a_mixed_stream_stores_exactly_the_good_records_and_a_resend_changes_nothing(
    database: TestDatabase,
) {
    let app = spawn_app(&database).await;
    let (records, bad) = mixed_stream();
    assert_eq!(records.len(), 10_000);
    assert_eq!(bad.len(), 50);
    let mut expected_counts: BTreeMap<RecordKind, u64> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        if !bad.contains_key(&(index as u64)) {
            *expected_counts
                .entry(kind_of(record).expect("good records have a kind"))
                .or_default() += 1;
        }
    }

    let first = app.ingest(records.clone(), 250).await;
    assert_eq!(
        (
            first.accepted,
            first.duplicate,
            first.superseded,
            first.rejected
        ),
        (9_950, 0, 0, 50)
    );
    assert!(!first.rejections_truncated);
    let reported: BTreeMap<u64, &proto::RejectedRecord> =
        first.rejections.iter().map(|r| (r.index, r)).collect();
    assert_eq!(
        reported.keys().copied().collect::<Vec<_>>(),
        bad.keys().copied().collect::<Vec<_>>()
    );
    for (index, (field, mentions)) in &bad {
        let rejection = reported[index];
        assert_eq!(rejection.field, *field, "record {index}: {rejection:?}");
        assert!(
            rejection.reason.contains(mentions),
            "record {index}: {rejection:?}"
        );
    }
    let stored = app.store.counts().await.expect("counts");
    assert_eq!(stored.0, expected_counts);
    assert_eq!(stored.total(), 9_950);

    let again = app.ingest(records, 1_000).await;
    assert_eq!(
        (
            again.accepted,
            again.duplicate,
            again.superseded,
            again.rejected
        ),
        (0, 9_950, 0, 50)
    );
    assert_eq!(app.store.counts().await.expect("counts").0, expected_counts);
    app.stop().await;
}

async fn every_kind_of_malformed_input_is_rejected_with_its_field_and_reason(
    database: TestDatabase,
) {
    let app = spawn_app(&database).await;
    let setup = app.ingest(vec![fixtures::customer("c-1")], 1).await;
    assert_eq!(setup.accepted, 1);
    for sort in malformed("bad", "c-1") {
        let verdict = app.ingest(vec![sort.record], 1).await;
        assert_eq!(
            (verdict.accepted, verdict.rejected),
            (0, 1),
            "{}",
            sort.field
        );
        let rejection = &verdict.rejections[0];
        assert_eq!(rejection.index, 0);
        assert_eq!(rejection.field, sort.field, "{rejection:?}");
        assert!(
            rejection.reason.contains(sort.reason_mentions),
            "{rejection:?}"
        );
    }
    assert_eq!(app.store.counts().await.expect("counts").total(), 1);
    app.stop().await;
}

async fn versioned_records_keep_the_newest_version(database: TestDatabase) {
    let app = spawn_app(&database).await;
    let v1 = fixtures::customer_version("c-1", 10, 1_000.0);
    let v2 = fixtures::customer_version("c-1", 20, 2_000.0);
    let v2_changed = fixtures::customer_version("c-1", 20, 2_500.0);
    let case_v1 = fixtures::recovery_case("case-1", "c-1", 10);
    let case_v2 = fixtures::recovery_case("case-1", "c-1", 20);

    let verdict = app.ingest(vec![v1.clone(), case_v1.clone()], 10).await;
    assert_eq!(verdict.accepted, 2);
    let verdict = app.ingest(vec![v2.clone(), case_v2.clone()], 10).await;
    assert_eq!(
        verdict.accepted, 2,
        "a newer version replaces the stored one"
    );
    let verdict = app.ingest(vec![v1, case_v1], 10).await;
    assert_eq!(
        (verdict.accepted, verdict.superseded),
        (0, 2),
        "an older version changes nothing"
    );
    let verdict = app.ingest(vec![v2, case_v2], 10).await;
    assert_eq!(verdict.duplicate, 2, "the newest version is what is stored");
    let verdict = app.ingest(vec![v2_changed], 10).await;
    assert_eq!(verdict.rejected, 1);
    assert_eq!(verdict.rejections[0].field, "customer.customer_id");
    assert!(
        verdict.rejections[0].reason.contains("conflict"),
        "{:?}",
        verdict.rejections[0]
    );

    let counts = app.store.counts().await.expect("counts");
    assert_eq!(
        (
            counts.get(RecordKind::Customer),
            counts.get(RecordKind::RecoveryCase)
        ),
        (1, 1)
    );
    app.stop().await;
}

async fn an_event_resent_with_other_content_is_rejected_as_a_conflict(database: TestDatabase) {
    let app = spawn_app(&database).await;
    let verdict = app
        .ingest(
            vec![
                fixtures::customer("c-1"),
                fixtures::usage_event_of("u-1", "c-1", 3.0),
            ],
            10,
        )
        .await;
    assert_eq!(verdict.accepted, 2);
    let verdict = app
        .ingest(vec![fixtures::usage_event_of("u-1", "c-1", 4.0)], 10)
        .await;
    assert_eq!(verdict.rejected, 1);
    assert_eq!(verdict.rejections[0].field, "usage_event.event_id");
    assert!(
        verdict.rejections[0].reason.contains("cannot change"),
        "{:?}",
        verdict.rejections[0]
    );
    assert_eq!(verdict.rejections[0].record_id, "u-1");
    app.stop().await;
}

/// Ids of 100 KB are refused, and the reply names each by its first 256 bytes only: a stream
/// of such records cannot build a reply many times its own size.
#[tokio::test]
async fn a_long_id_is_echoed_cut() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let long = "é".repeat(50_000);
    let records = (0..20)
        .map(|i| fixtures::usage_event(&format!("{i}{long}"), "c-1"))
        .collect();
    let verdict = app.ingest(records, 5).await;
    assert_eq!(verdict.rejected, 20);
    for rejection in &verdict.rejections {
        assert!(
            rejection.record_id.len() <= 256,
            "{}",
            rejection.record_id.len()
        );
        assert!(rejection.record_id.starts_with(char::is_numeric));
        assert_eq!(rejection.field, "usage_event.event_id");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_stream_in_flight_at_shutdown_is_finished_and_stored() {
    let database = TestDatabase::sqlite();
    let mut app = spawn_app(&database).await;
    let mut client = app.ingest_client().await;
    let (messages, receiver) = tokio::sync::mpsc::channel::<proto::IngestRecordsRequest>(4);
    let call = tokio::spawn(async move {
        client
            .ingest_records(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    let first = vec![
        fixtures::customer("c-1"),
        fixtures::usage_event("u-1", "c-1"),
    ];
    messages
        .send(proto::IngestRecordsRequest { records: first })
        .await
        .expect("send");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    app.begin_stop();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = vec![
        fixtures::usage_event("u-2", "c-1"),
        fixtures::survey("s-1", "c-1"),
    ];
    messages
        .send(proto::IngestRecordsRequest { records: second })
        .await
        .expect("send after shutdown began");
    drop(messages);

    let verdict = call
        .await
        .expect("client task")
        .expect("the stream completes")
        .into_inner();
    assert_eq!((verdict.accepted, verdict.rejected), (4, 0));
    let store = app.store.clone();
    app.stop().await;
    assert_eq!(store.counts().await.expect("counts").total(), 4);
}
