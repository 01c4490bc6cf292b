//! `RecordRecoveryOutcome`: the unary path, with whole-request validation.

use rescue::proto::v1::{self as proto, RecordRecoveryOutcomeRequest};
use tonic::Code;
use tonic_types::StatusExt;

use crate::fixtures;
use crate::helpers::{TestApp, TestDatabase, on_every_backend, spawn_app};

on_every_backend!(
    an_outcome_updates_the_stored_case_as_a_newer_version,
    an_outcome_for_an_unknown_case_is_not_found,
    an_outcome_older_than_the_stored_case_is_refused,
);

async fn app_with_a_case(database: &TestDatabase) -> TestApp {
    let app = spawn_app(database).await;
    let verdict = app
        .ingest(
            vec![
                fixtures::customer("c-1"),
                fixtures::recovery_case("case-1", "c-1", 0),
            ],
            10,
        )
        .await;
    assert_eq!(verdict.accepted, 2);
    app
}

fn request(case_id: &str, recorded_at: i64) -> RecordRecoveryOutcomeRequest {
    RecordRecoveryOutcomeRequest {
        case_id: case_id.into(),
        recorded_at: fixtures::at(recorded_at),
        resurvey_score: Some(6),
        retained: Some(true),
        spend_change_pct: Some(12.5),
        resolved_at: fixtures::at(20_000),
    }
}

async fn an_outcome_updates_the_stored_case_as_a_newer_version(database: TestDatabase) {
    let app = app_with_a_case(&database).await;
    let case = app
        .ingest_client()
        .await
        .record_recovery_outcome(request("case-1", 86_400))
        .await
        .expect("recorded")
        .into_inner()
        .recovery_case
        .expect("the stored case");
    assert_eq!(
        (case.resurvey_score, case.retained, case.spend_change_pct),
        (Some(6), Some(true), Some(12.5))
    );
    assert_eq!(case.updated_at, fixtures::at(86_400));
    // A client that lost the reply sends the same outcome again: it succeeds, unchanged.
    let again = app
        .ingest_client()
        .await
        .record_recovery_outcome(request("case-1", 86_400))
        .await
        .expect("the same outcome again")
        .into_inner()
        .recovery_case
        .expect("the stored case");
    assert_eq!(again, case);
    assert_eq!(case.resolved_at, fixtures::at(20_000));
    assert_eq!(
        case.cares.and_then(|c| c.empathy),
        Some(7),
        "untouched facts are kept"
    );

    // The case as first sent is now an older version.
    let verdict = app
        .ingest(vec![fixtures::recovery_case("case-1", "c-1", 0)], 10)
        .await;
    assert_eq!(verdict.superseded, 1);
    // And the stored case is exactly what the reply returned.
    let verdict = app
        .ingest(
            vec![proto::Record {
                kind: Some(proto::record::Kind::RecoveryCase(case)),
            }],
            10,
        )
        .await;
    assert_eq!(verdict.duplicate, 1);
    app.stop().await;
}

async fn an_outcome_for_an_unknown_case_is_not_found(database: TestDatabase) {
    let app = app_with_a_case(&database).await;
    let status = app
        .ingest_client()
        .await
        .record_recovery_outcome(request("no-such-case", 86_400))
        .await
        .expect_err("unknown case");
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("no-such-case"),
        "{}",
        status.message()
    );
    app.stop().await;
}

async fn an_outcome_older_than_the_stored_case_is_refused(database: TestDatabase) {
    let app = app_with_a_case(&database).await;
    let status = app
        .ingest_client()
        .await
        .record_recovery_outcome(request("case-1", 14_400))
        .await
        .expect_err("not newer than the case");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("field details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["recorded_at"]);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_outcome_gets_invalid_argument_naming_every_bad_field() {
    let database = TestDatabase::sqlite();
    let app = app_with_a_case(&database).await;
    let malformed = RecordRecoveryOutcomeRequest {
        case_id: String::new(),
        recorded_at: None,
        resurvey_score: Some(9),
        retained: None,
        spend_change_pct: Some(f64::NAN),
        resolved_at: None,
    };
    let status = app
        .ingest_client()
        .await
        .record_recovery_outcome(malformed)
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations;
    let mut fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "case_id",
            "recorded_at",
            "resurvey_score",
            "spend_change_pct"
        ]
    );
    assert!(violations.iter().all(|v| !v.description.is_empty()));

    let nothing = RecordRecoveryOutcomeRequest {
        resurvey_score: None,
        retained: None,
        spend_change_pct: None,
        resolved_at: None,
        ..request("case-1", 86_400)
    };
    let status = app
        .ingest_client()
        .await
        .record_recovery_outcome(nothing)
        .await
        .expect_err("no facts");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at least one of"),
        "{}",
        status.message()
    );
    app.stop().await;
}
