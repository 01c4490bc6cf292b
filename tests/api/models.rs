//! The Models service: registry operations, and model swaps under load.

use rescue::proto::v1::{
    GetModelRequest, ListModelsRequest, ModelKind, ModelStatus, PromoteModelRequest,
    RollbackModelRequest, ScoreCustomerRequest, score_customer_request::Subject,
};
use tonic::Code;

use crate::fixtures;
use crate::helpers::{TestApp, TestDatabase, on_every_backend, spawn_app};

on_every_backend!(
    promotion_under_load_fails_no_request_and_never_mixes_versions,
    promote_and_roll_back_move_the_active_version,
    training_streams_progress_then_a_registered_model_and_its_decision,
    a_promotion_on_one_replica_reaches_the_others,
);

/// The status a training stream ends with, for a request that must fail.
async fn training_failure(
    app: &TestApp,
    request: rescue::proto::v1::TrainRequest,
) -> tonic::Status {
    let mut events = app
        .models_client()
        .await
        .train(request)
        .await
        .expect("the stream opens")
        .into_inner();
    loop {
        match events.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("training was expected to fail"),
            Err(status) => break status,
        }
    }
}

fn health() -> i32 {
    ModelKind::Health.into()
}

async fn promotion_under_load_fails_no_request_and_never_mixes_versions(database: TestDatabase) {
    let app = spawn_app(&database).await;
    app.install_model("health-v1", -2.0).await;
    app.register_model("health-v2", -1.0).await;
    app.ingest(
        vec![
            fixtures::customer("c-1"),
            fixtures::interaction("c-1-i", "c-1"),
        ],
        10,
    )
    .await;

    let request = || ScoreCustomerRequest {
        subject: Some(Subject::CustomerId("c-1".into())),
        as_of: fixtures::at(86_400),
    };
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut scoring = app.scoring_client().await;
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..150 {
                let response = scoring
                    .score_customer(request())
                    .await
                    .map(|r| r.into_inner());
                answers.push(response.map(|r| (r.model_version, r.churn_probability)));
            }
            answers
        }));
    }
    let mut models = app.models_client().await;
    for version in ["health-v2", "health-v1", "health-v2"] {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        models
            .promote_model(PromoteModelRequest {
                version: version.into(),
            })
            .await
            .expect("promote");
    }
    let mut probability_of = std::collections::HashMap::new();
    let mut total = 0;
    for client in clients {
        for answer in client.await.expect("client task") {
            let (version, probability) = answer.expect("no request fails during promotions");
            assert!(
                version == "health-v1" || version == "health-v2",
                "{version}"
            );
            // Each version always gives the same answer: no response mixes two models.
            let first = *probability_of.entry(version.clone()).or_insert(probability);
            assert_eq!(first, probability, "{version}");
            total += 1;
        }
    }
    assert_eq!(total, 600);
    let final_answer = app
        .scoring_client()
        .await
        .score_customer(request())
        .await
        .expect("score")
        .into_inner();
    assert_eq!(final_answer.model_version, "health-v2");
    app.stop().await;
}

async fn promote_and_roll_back_move_the_active_version(database: TestDatabase) {
    let app = spawn_app(&database).await;
    app.install_model("health-v1", -2.0).await;
    app.register_model("health-v2", -1.0).await;
    let mut models = app.models_client().await;

    let promoted = models
        .promote_model(PromoteModelRequest {
            version: "health-v2".into(),
        })
        .await
        .expect("promote")
        .into_inner();
    assert_eq!(promoted.status(), ModelStatus::Active);
    let listed = models
        .list_models(ListModelsRequest { kind: health() })
        .await
        .expect("list")
        .into_inner()
        .models;
    let status_of = |version: &str| {
        listed
            .iter()
            .find(|m| m.version == version)
            .map(|m| m.status())
    };
    assert_eq!(status_of("health-v1"), Some(ModelStatus::Retired));
    assert_eq!(status_of("health-v2"), Some(ModelStatus::Active));

    let rolled_back = models
        .rollback_model(RollbackModelRequest { kind: health() })
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(rolled_back.version, "health-v1");
    assert_eq!(app.models.current().expect("serving").version, "health-v1");
    let info = models
        .get_model(GetModelRequest {
            version: "health-v1".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(info.status(), ModelStatus::Active);
    assert_eq!(
        info.feature_names.len(),
        rescue::features::FEATURE_NAMES.len()
    );
    assert!(info.holdout_metrics.is_some());

    let unknown = models
        .promote_model(PromoteModelRequest {
            version: "health-v9".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let unknown = models
        .get_model(GetModelRequest {
            version: "health-v9".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    // A 10 KB version is not echoed whole: the status fits any client's metadata limit.
    let unknown = models
        .get_model(GetModelRequest {
            version: "v".repeat(10_000),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().len() < 400,
        "{} bytes",
        unknown.message().len()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_corrupt_artifact_is_refused_and_the_serving_model_stays() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    app.install_model("health-v1", -2.0).await;
    let mut artifact = fixtures::artifact("health-bad", -1.0);
    let json = artifact
        .to_json()
        .expect("json")
        .replacen("-1.0", "-1.5", 1);
    app.register_artifact("health-bad", json, artifact.created_at)
        .await;
    let status = app
        .models_client()
        .await
        .promote_model(PromoteModelRequest {
            version: "health-bad".into(),
        })
        .await
        .expect_err("corrupt");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("checksum"),
        "{}",
        status.message()
    );
    assert_eq!(app.models.current().expect("serving").version, "health-v1");
    app.stop().await;
}

#[tokio::test]
async fn rolling_back_with_no_earlier_model_is_refused() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let mut models = app.models_client().await;
    // Whatever served first (the shipped baseline, if any) has nothing before it.
    let status = models
        .rollback_model(RollbackModelRequest { kind: health() })
        .await
        .expect_err("nothing earlier");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = models
        .list_models(ListModelsRequest { kind: 0 })
        .await
        .expect_err("no kind");
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await;
}

/// Two servers on one database, as replicas on PostgreSQL or a server and `rescue train` on
/// one SQLite file: a promotion through either reaches the other.
async fn a_promotion_on_one_replica_reaches_the_others(database: TestDatabase) {
    let first = spawn_app(&database).await;
    first.install_model("health-v1", -2.0).await;
    first.register_model("health-v2", -1.0).await;
    let second = spawn_app(&database).await;
    assert_eq!(
        second.models.current().expect("serving").version,
        "health-v1"
    );
    // Give the second replica's listener a moment to subscribe (PostgreSQL).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    first
        .models_client()
        .await
        .promote_model(PromoteModelRequest {
            version: "health-v2".into(),
        })
        .await
        .expect("promote");
    // A deadline generous enough for a loaded machine: this checks that the change
    // propagates, not how fast (it takes milliseconds).
    let promoted_at = std::time::Instant::now();
    while second.models.current().expect("serving").version != "health-v2" {
        assert!(
            promoted_at.elapsed() < std::time::Duration::from_secs(10),
            "the second replica still serves the old model"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    second.stop().await;
    first.stop().await;
}

/// Stores `customers` simulated customers and returns the simulator's snapshot dates.
async fn simulated_world(app: &TestApp, customers: usize) -> Vec<prost_types::Timestamp> {
    for customer in
        rescue::simulate::simulate(rescue::simulate::SimulationParams { customers, seed: 3 })
    {
        app.store
            .write_batch(&customer.records)
            .await
            .expect("store simulated records");
    }
    rescue::simulate::snapshot_dates()
        .into_iter()
        .map(|at| {
            let (seconds, nanos) = at.to_seconds_nanos();
            prost_types::Timestamp {
                seconds,
                nanos: nanos as i32,
            }
        })
        .collect()
}

async fn training_streams_progress_then_a_registered_model_and_its_decision(
    database: TestDatabase,
) {
    let app = spawn_app(&database).await;
    app.install_model("health-v1", -2.0).await;
    let as_of = simulated_world(&app, 1_500).await;
    let mut models = app.models_client().await;
    let mut events = models
        .train(rescue::proto::v1::TrainRequest {
            kind: health(),
            horizon_days: None,
            auto_promote: None,
            as_of,
            min_outcomes: None,
        })
        .await
        .expect("training starts")
        .into_inner();
    let mut stages = Vec::new();
    let mut result = None;
    // While it runs, a second training of the kind is refused.
    let first = events.message().await.expect("training progresses");
    let refused = models
        .train(rescue::proto::v1::TrainRequest {
            kind: health(),
            horizon_days: None,
            auto_promote: None,
            as_of: Vec::new(),
            min_outcomes: None,
        })
        .await
        .expect_err("one training of a kind at a time");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("already running"), "{refused:?}");
    let mut next = first;
    while let Some(event) = next {
        match event.event.expect("an event") {
            rescue::proto::v1::train_progress::Event::Stage(stage) => stages.push(stage),
            rescue::proto::v1::train_progress::Event::Result(r) => result = Some(r),
        }
        next = events.message().await.expect("training progresses");
    }
    let result = result.expect("a result at the end");
    assert!(
        stages.iter().any(|s| s.contains("hold-out rows")),
        "{stages:?}"
    );
    let model = result.model.expect("the new model");
    let metrics = model.holdout_metrics.expect("hold-out metrics");
    assert!(metrics.roc_auc > 0.75, "{metrics:?}");
    assert_eq!(metrics.calibration.len(), 10);
    assert_eq!(model.horizon_days, 90);
    assert_eq!(result.active_version, "health-v1");
    let active = result
        .active_on_same_holdout
        .expect("the active model on the same hold-out");
    assert_eq!(active.rows, metrics.rows, "both judged on the same rows");
    // The hand-made v1 ignores most features: the trained model beats it and is promoted.
    assert!(result.promoted, "{}", result.decision);
    assert!(metrics.roc_auc >= active.roc_auc - 0.005);
    assert_eq!(
        app.models.current().expect("serving").version,
        model.version
    );

    // Not asked to promote: it stays a candidate and v-new keeps serving.
    let mut events = models
        .train(rescue::proto::v1::TrainRequest {
            kind: health(),
            horizon_days: None,
            auto_promote: Some(false),
            as_of: Vec::new(),
            min_outcomes: None,
        })
        .await
        .expect("training starts")
        .into_inner();
    let mut last = None;
    while let Some(event) = events.message().await.expect("training progresses") {
        last = event.event;
    }
    let Some(rescue::proto::v1::train_progress::Event::Result(second)) = last else {
        panic!("no result")
    };
    assert!(!second.promoted);
    assert_eq!(
        second.model.expect("model").status(),
        ModelStatus::Candidate
    );
    assert_eq!(
        app.models.current().expect("serving").version,
        model.version
    );
    app.stop().await;
}

#[tokio::test]
async fn training_without_outcomes_is_refused_with_the_reason() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    app.ingest(vec![fixtures::customer("c-1")], 1).await;
    let status = training_failure(
        &app,
        rescue::proto::v1::TrainRequest {
            kind: health(),
            horizon_days: Some(0),
            auto_promote: None,
            as_of: Vec::new(),
            min_outcomes: None,
        },
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = training_failure(
        &app,
        rescue::proto::v1::TrainRequest {
            kind: health(),
            horizon_days: None,
            auto_promote: None,
            as_of: Vec::new(),
            min_outcomes: None,
        },
    )
    .await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("no churn outcomes"),
        "{}",
        status.message()
    );
    app.stop().await;
}
