//! The Scoring service end to end.

use std::collections::BTreeSet;

use rescue::proto::v1::{
    self as proto, CustomerSnapshot, ScoreCustomerRequest, ScoreCustomersRequest,
    score_customer_request::Subject, score_customers_response,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::fixtures;
use crate::helpers::{TestApp, TestDatabase, on_every_backend, spawn_app};

on_every_backend!(
    scores_by_id_and_by_snapshot_agree,
    events_after_as_of_never_change_a_score,
    a_later_profile_version_or_recovery_outcome_never_changes_an_earlier_score_or_row,
);

/// A customer with two recent failures, a repeat contact and a poor survey.
fn troubled_customer(id: &str) -> Vec<proto::Record> {
    vec![
        fixtures::customer(id),
        fixtures::usage_event(&format!("{id}-u1"), id),
        fixtures::interaction(&format!("{id}-i1"), id),
        fixtures::survey(&format!("{id}-s1"), id),
        fixtures::recovery_case(&format!("{id}-r1"), id, 0),
    ]
}

fn snapshot_of(records: &[proto::Record]) -> CustomerSnapshot {
    let mut snapshot = CustomerSnapshot::default();
    for record in records {
        match record.kind.clone() {
            Some(proto::record::Kind::Customer(c)) => snapshot.customer = Some(c),
            Some(proto::record::Kind::UsageEvent(e)) => snapshot.usage_events.push(e),
            Some(proto::record::Kind::Interaction(i)) => snapshot.interactions.push(i),
            Some(proto::record::Kind::Survey(s)) => snapshot.surveys.push(s),
            Some(proto::record::Kind::RecoveryCase(r)) => snapshot.recovery_cases.push(r),
            _ => {}
        }
    }
    snapshot
}

fn by_id(id: &str, as_of_offset: i64) -> ScoreCustomerRequest {
    ScoreCustomerRequest {
        subject: Some(Subject::CustomerId(id.into())),
        as_of: fixtures::at(as_of_offset),
    }
}

async fn app_with_model(database: &TestDatabase) -> TestApp {
    let app = spawn_app(database).await;
    app.install_model("health-test-1", -2.0).await;
    app
}

async fn scores_by_id_and_by_snapshot_agree(database: TestDatabase) {
    let app = app_with_model(&database).await;
    let records = troubled_customer("c-1");
    assert_eq!(app.ingest(records.clone(), 10).await.accepted, 5);
    let mut scoring = app.scoring_client().await;

    let stored = scoring
        .score_customer(by_id("c-1", 86_400))
        .await
        .expect("score by id")
        .into_inner();
    let inline = scoring
        .score_customer(ScoreCustomerRequest {
            subject: Some(Subject::Snapshot(snapshot_of(&records))),
            as_of: fixtures::at(86_400),
        })
        .await
        .expect("score by snapshot")
        .into_inner();
    assert_eq!(stored, inline);
    assert_eq!(stored.model_version, "health-test-1");
    assert!((stored.health_score - 100.0 * (1.0 - stored.churn_probability)).abs() < 1e-9);
    assert!(stored.churn_probability > 0.0 && stored.churn_probability < 1.0);
    assert_eq!(stored.horizon_days, 90);
    let first = &stored.drivers[0];
    assert_eq!(first.feature, "failures_30d", "{:?}", stored.drivers);
    assert_eq!(first.description, "1 service failure in the last 30 days");
    assert!(first.contribution > 0.0);
    app.stop().await;
}

async fn events_after_as_of_never_change_a_score(database: TestDatabase) {
    let app = app_with_model(&database).await;
    app.ingest(troubled_customer("c-1"), 10).await;
    let mut scoring = app.scoring_client().await;
    // Every fixture event happens within 5 hours of the base time.
    let as_of = 5 * 3_600;
    let before = scoring
        .score_customer(by_id("c-1", as_of))
        .await
        .expect("score")
        .into_inner();

    let later = vec![
        fixtures::interaction("c-1-late-i", "c-1"),
        fixtures::usage_event_of("c-1-late-u", "c-1", 40.0),
    ];
    let mut shifted = Vec::new();
    for mut record in later {
        match record.kind.as_mut() {
            Some(proto::record::Kind::Interaction(i)) => i.occurred_at = fixtures::at(as_of),
            Some(proto::record::Kind::UsageEvent(u)) => u.occurred_at = fixtures::at(as_of + 60),
            _ => {}
        }
        shifted.push(record);
    }
    assert_eq!(app.ingest(shifted, 10).await.accepted, 2);
    let after = scoring
        .score_customer(by_id("c-1", as_of))
        .await
        .expect("score")
        .into_inner();
    assert_eq!(before, after);
    let now = scoring
        .score_customer(by_id("c-1", as_of + 3_600))
        .await
        .expect("score")
        .into_inner();
    assert_ne!(
        before.churn_probability, now.churn_probability,
        "later scores do see them"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_customer_is_not_found_and_a_bad_snapshot_names_its_fields() {
    let database = TestDatabase::sqlite();
    let app = app_with_model(&database).await;
    let mut scoring = app.scoring_client().await;
    let status = scoring
        .score_customer(by_id("nobody", 0))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    let mut snapshot = snapshot_of(&troubled_customer("c-1"));
    snapshot.usage_events[0].quantity = -3.0;
    snapshot.interactions[0].customer_id = "c-2".into();
    snapshot.surveys[0].csat = Some(9);
    let status = scoring
        .score_customer(ScoreCustomerRequest {
            subject: Some(Subject::Snapshot(snapshot)),
            as_of: None,
        })
        .await
        .expect_err("invalid snapshot");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: BTreeSet<String> = status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    let expected: BTreeSet<String> = [
        "snapshot.usage_events[0].quantity",
        "snapshot.interactions[0].customer_id",
        "snapshot.surveys[0].csat",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(fields, expected);

    let status = scoring
        .score_customer(ScoreCustomerRequest::default())
        .await
        .expect_err("no subject");
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await;
}

/// A message over the server's size limit is RESOURCE_EXHAUSTED, gRPC's code for it, on a
/// unary call and on a stream alike; the connection serves on.
#[tokio::test]
async fn an_oversized_message_is_resource_exhausted() {
    let database = TestDatabase::sqlite();
    let app = app_with_model(&database).await;
    let mut snapshot = snapshot_of(&troubled_customer("c-1"));
    // About 6 MB of usage events, over the 4 MiB limit.
    let event = snapshot.usage_events[0].clone();
    snapshot.usage_events = (0..120_000)
        .map(|i| proto::UsageEvent {
            event_id: format!("u-{i}"),
            ..event.clone()
        })
        .collect();
    let mut scoring = app.scoring_client().await;
    let status = scoring
        .score_customer(ScoreCustomerRequest {
            subject: Some(Subject::Snapshot(snapshot.clone())),
            as_of: fixtures::at(0),
        })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    let records: Vec<proto::Record> = snapshot
        .usage_events
        .into_iter()
        .map(|e| proto::Record {
            kind: Some(proto::record::Kind::UsageEvent(e)),
        })
        .collect();
    let status = app
        .ingest_client()
        .await
        .ingest_records(tokio_stream::iter([proto::IngestRecordsRequest {
            records,
        }]))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let health = scoring
        .score_customer(ScoreCustomerRequest {
            subject: Some(Subject::Snapshot(snapshot_of(&troubled_customer("c-1")))),
            as_of: fixtures::at(0),
        })
        .await;
    assert!(health.is_ok(), "{health:?}");
    app.stop().await;
}

/// `as_of` (field 3, a Timestamp message) sent as a number: bytes no protobuf decoder accepts
/// as a `ScoreCustomerRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct AsOfOfTheWrongWireType {
    #[prost(uint64, tag = "3")]
    as_of: u64,
}

#[tokio::test]
async fn bytes_that_are_not_the_request_message_are_refused_and_the_connection_serves_on() {
    let database = TestDatabase::sqlite();
    let app = app_with_model(&database).await;
    let channel = app.channel().await;
    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.expect("ready");
    let status =
        raw
            .unary(
                tonic::Request::new(AsOfOfTheWrongWireType { as_of: 7 }),
                http::uri::PathAndQuery::from_static("/rescue.v1.Scoring/ScoreCustomer"),
                rescue::proto::codec::SliceCodec::<
                    AsOfOfTheWrongWireType,
                    proto::ScoreCustomerResponse,
                >::default(),
            )
            .await
            .expect_err("undecodable request");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("not a valid ScoreCustomerRequest message")
            && status.message().contains("wire type"),
        "{status:?}"
    );

    let mut scoring = proto::scoring_client::ScoringClient::new(channel);
    let mut snapshot = snapshot_of(&troubled_customer("c-1"));
    snapshot.usage_events.clear();
    let score = scoring
        .score_customer(ScoreCustomerRequest {
            subject: Some(Subject::Snapshot(snapshot)),
            as_of: fixtures::at(0),
        })
        .await
        .expect("the same connection scores on")
        .into_inner();
    assert_eq!(score.customer_id, "c-1");
    app.stop().await;
}

#[tokio::test]
async fn a_scoring_stream_answers_every_request_in_order_and_survives_bad_ones() {
    let database = TestDatabase::sqlite();
    let app = app_with_model(&database).await;
    app.ingest(troubled_customer("c-1"), 10).await;
    app.ingest(troubled_customer("c-2"), 10).await;
    let requests = vec![
        ScoreCustomersRequest {
            request_id: "a".into(),
            request: Some(by_id("c-1", 86_400)),
        },
        ScoreCustomersRequest {
            request_id: "b".into(),
            request: Some(by_id("ghost", 86_400)),
        },
        ScoreCustomersRequest {
            request_id: "c".into(),
            request: None,
        },
        ScoreCustomersRequest {
            request_id: "d".into(),
            request: Some(by_id("c-2", 86_400)),
        },
    ];
    let mut responses = app
        .scoring_client()
        .await
        .score_customers(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(response) = responses.message().await.expect("a response") {
        let outcome = match response.result.expect("a result") {
            score_customers_response::Result::Score(score) => {
                format!("score {}", score.customer_id)
            }
            score_customers_response::Result::Error(error) => format!("error {}", error.code),
        };
        seen.push(format!("{}: {outcome}", response.request_id));
    }
    assert_eq!(
        seen,
        ["a: score c-1", "b: error 5", "c: error 3", "d: score c-2"]
    );
    app.stop().await;
}

/// Scores and training rows as of a moment read the profile and the recovery cases as they
/// stood then: a profile version or a recovery outcome recorded later changes neither.
async fn a_later_profile_version_or_recovery_outcome_never_changes_an_earlier_score_or_row(
    database: TestDatabase,
) {
    // The shipped baseline reads the profile (value, plan) and the recovery ratings.
    let app = spawn_app(&database).await;
    app.ingest(troubled_customer("c-1"), 10).await;
    let mut scoring = app.scoring_client().await;
    let as_of = 5 * 3_600;
    let id = rescue::domain::CustomerId::parse("c-1".into()).expect("an id");
    let row = |records: std::sync::Arc<rescue::store::CustomerRecords>| {
        rescue::features::compute(
            &records.history,
            rescue::domain::Timestamp::from_unix_micros(
                fixtures::at(as_of).expect("a time").seconds * 1_000_000,
            ),
        )
    };
    let before = scoring
        .score_customer(by_id("c-1", as_of))
        .await
        .expect("score")
        .into_inner();
    let row_before = row(app
        .store
        .customer_records(&id)
        .await
        .expect("read")
        .expect("stored"));

    // After `as_of`: the customer becomes an enterprise worth far more, on another plan, and
    // the recovery is resolved (before `as_of`, as it is dated) and re-surveyed at 7.
    let mut richer = fixtures::customer_version("c-1", as_of + 600, 250_000.0);
    if let Some(proto::record::Kind::Customer(c)) = richer.kind.as_mut() {
        c.plan = proto::PlanTier::Premium.into();
        c.segment = proto::Segment::Enterprise.into();
    }
    assert_eq!(app.ingest(vec![richer], 10).await.accepted, 1);
    app.ingest_client()
        .await
        .record_recovery_outcome(proto::RecordRecoveryOutcomeRequest {
            case_id: "c-1-r1".into(),
            recorded_at: fixtures::at(as_of + 1_200),
            resurvey_score: Some(7),
            retained: Some(true),
            spend_change_pct: Some(20.0),
            resolved_at: fixtures::at(as_of - 600),
        })
        .await
        .expect("the outcome is recorded");

    let after = scoring
        .score_customer(by_id("c-1", as_of))
        .await
        .expect("score")
        .into_inner();
    assert_eq!(before, after, "the score as of {as_of} s changed");
    let row_after = row(app
        .store
        .customer_records(&id)
        .await
        .expect("read")
        .expect("stored"));
    assert_eq!(
        row_before, row_after,
        "the training row as of {as_of} s changed"
    );
    let now = scoring
        .score_customer(by_id("c-1", as_of + 3_600))
        .await
        .expect("score")
        .into_inner();
    assert_ne!(
        before.churn_probability, now.churn_probability,
        "later scores do see the new profile and the outcome"
    );
    app.stop().await;
}

/// Until a model is trained on the company's own data, every score says it came from the
/// shipped baseline, trained on simulated customers.
#[tokio::test]
async fn a_score_from_the_shipped_baseline_says_so() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    app.ingest(troubled_customer("c-1"), 10).await;
    let score = app
        .scoring_client()
        .await
        .score_customer(by_id("c-1", 5 * 3_600))
        .await
        .expect("score")
        .into_inner();
    assert!(
        score
            .warnings
            .iter()
            .any(|w| w.contains("baseline") && w.contains("simulated")),
        "{:?}",
        score.warnings
    );
    app.install_model("health-test-1", -2.0).await;
    let score = app
        .scoring_client()
        .await
        .score_customer(by_id("c-1", 5 * 3_600))
        .await
        .expect("score")
        .into_inner();
    assert!(
        !score.warnings.iter().any(|w| w.contains("baseline")),
        "{:?}",
        score.warnings
    );
    app.stop().await;
}
