//! Prometheus metrics, scraped with a real HTTP client from a `rescue serve` process of its own
//! (the recorder is per process, so no other test's traffic is counted): after known traffic
//! the documented series carry exactly its counts.

use std::collections::BTreeMap;
use std::time::Duration;

use rescue::proto::v1::{
    IngestRecordsRequest, ScoreCustomerRequest, TrainRequest, ingest_client::IngestClient,
    models_client::ModelsClient, score_customer_request::Subject, scoring_client::ScoringClient,
};
use tonic::transport::Channel;

use crate::fixtures;
use crate::helpers::{ServeProcess, TestDatabase};

/// One sample of the exposition: a series' name, its labels, and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include every pair of `with`.
fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            with.iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
        .sum()
}

async fn scrape(address: &str) -> Vec<Sample> {
    let url = format!("http://{address}/metrics");
    let body = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .expect("GET /metrics")
            .into_body()
            .read_to_string()
            .expect("a text body")
    })
    .await
    .expect("the scrape");
    parse(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_traffic_finds_every_documented_series_with_its_counts() {
    let database = TestDatabase::sqlite();
    let server = ServeProcess::start_with(
        &database,
        "127.0.0.1:0",
        &["--metrics-listen", "127.0.0.1:0"],
    )
    .await;
    assert_ne!(server.metrics, "off");
    let channel = Channel::from_shared(format!("http://{}", server.address))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");

    // Ingest: three customers accepted, one sent again (a duplicate), one malformed.
    let mut ingest = IngestClient::new(channel.clone());
    let mut bad = fixtures::customer("");
    if let Some(rescue::proto::v1::record::Kind::Customer(customer)) = bad.kind.as_mut() {
        customer.customer_id = String::new();
    }
    let first = IngestRecordsRequest {
        records: vec![
            fixtures::customer("m-1"),
            fixtures::customer("m-2"),
            fixtures::customer("m-3"),
        ],
    };
    let second = IngestRecordsRequest {
        records: vec![fixtures::customer("m-1"), bad],
    };
    for message in [first, second] {
        ingest
            .ingest_records(tokio_stream::iter(vec![message]))
            .await
            .expect("ingest answers");
    }
    // Scoring: each stored customer once, and one unknown customer (NOT_FOUND).
    let mut scoring = ScoringClient::new(channel.clone());
    for id in ["m-1", "m-2", "m-3"] {
        scoring
            .score_customer(ScoreCustomerRequest {
                subject: Some(Subject::CustomerId(id.into())),
                ..Default::default()
            })
            .await
            .expect("a score");
    }
    let unknown = scoring
        .score_customer(ScoreCustomerRequest {
            subject: Some(Subject::CustomerId("nobody".into())),
            ..Default::default()
        })
        .await;
    assert_eq!(unknown.expect_err("unknown").code(), tonic::Code::NotFound);
    // A training that cannot run on three customers without outcomes.
    let mut models = ModelsClient::new(channel.clone());
    let trained = match models
        .train(TrainRequest {
            kind: rescue::proto::v1::ModelKind::Health.into(),
            ..Default::default()
        })
        .await
    {
        Ok(progress) => {
            let mut progress = progress.into_inner();
            loop {
                match progress.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            }
        }
        Err(status) => Err(status),
    };
    assert!(trained.is_err(), "training on nothing should fail");

    // The pool gauges are published by the store probe, once a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let samples = scrape(&server.metrics).await;
    let handled = |method: &str, code: &str| {
        total(
            &samples,
            "grpc_server_handled_total",
            &[("grpc_method", method), ("grpc_code", code)],
        )
    };
    assert_eq!(handled("IngestRecords", "Ok"), 2.0);
    assert_eq!(handled("ScoreCustomer", "Ok"), 3.0);
    assert_eq!(handled("ScoreCustomer", "NotFound"), 1.0);
    assert_eq!(
        total(
            &samples,
            "grpc_server_started_total",
            &[
                ("grpc_method", "ScoreCustomer"),
                ("grpc_service", "rescue.v1.Scoring"),
                ("grpc_type", "unary")
            ]
        ),
        4.0
    );
    assert_eq!(
        total(
            &samples,
            "grpc_server_handled_total",
            &[
                ("grpc_method", "IngestRecords"),
                ("grpc_type", "client_stream")
            ]
        ),
        2.0
    );
    assert_eq!(
        total(
            &samples,
            "grpc_server_handling_seconds_count",
            &[("grpc_method", "ScoreCustomer")]
        ),
        4.0
    );
    assert!(
        total(
            &samples,
            "grpc_server_handling_seconds_sum",
            &[("grpc_method", "ScoreCustomer")]
        ) > 0.0
    );
    assert_eq!(
        total(
            &samples,
            "grpc_server_handling_seconds_bucket",
            &[("grpc_method", "ScoreCustomer"), ("le", "+Inf")]
        ),
        4.0
    );
    let ingested = |verdict: &str| {
        total(
            &samples,
            "rescue_ingest_records_total",
            &[("kind", "customer"), ("verdict", verdict)],
        )
    };
    assert_eq!(ingested("accepted"), 3.0);
    assert_eq!(ingested("duplicate"), 1.0);
    assert_eq!(ingested("rejected"), 1.0);
    // Every score is of the serving (baseline) model, whose series says 1.
    let serving: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == "rescue_active_model"
                && s.labels.get("kind").map(String::as_str) == Some("health")
                && s.value == 1.0
        })
        .collect();
    assert_eq!(serving.len(), 1, "{serving:?}");
    let version = serving[0].labels["version"].clone();
    assert_eq!(
        total(
            &samples,
            "rescue_scores_total",
            &[("model_version", &version)]
        ),
        3.0
    );
    assert_eq!(
        total(
            &samples,
            "rescue_training_runs_total",
            &[("kind", "health"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &samples,
            "rescue_training_seconds_count",
            &[("kind", "health")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &samples,
            "rescue_streams_open",
            &[("grpc_method", "IngestRecords")]
        ),
        0.0
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "rescue_db_pool_connections"
                && s.labels.get("state").map(String::as_str) == Some("idle"))
    );
    assert!(total(&samples, "rescue_db_pool_max_connections", &[]) >= 2.0);
}
