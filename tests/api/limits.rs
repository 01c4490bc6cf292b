//! The server's limits hold whatever a client does: calls beyond the budget are refused at once
//! with RESOURCE_EXHAUSTED (health still answers), and connections beyond the limit wait until
//! one closes.

use std::time::Duration;

use rescue::proto::v1::{IngestRecordsRequest, ingest_client::IngestClient};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestApp, TestDatabase, spawn_app_with};

/// An ingest stream left open: it holds its call until `sender` drops.
fn idle_stream(
    channel: &Channel,
) -> (
    tokio::sync::mpsc::Sender<IngestRecordsRequest>,
    tokio::task::JoinHandle<
        Result<tonic::Response<rescue::proto::v1::IngestRecordsResponse>, tonic::Status>,
    >,
) {
    let (sender, requests) = tokio::sync::mpsc::channel::<IngestRecordsRequest>(1);
    let mut client = IngestClient::new(channel.clone());
    let call = tokio::spawn(async move {
        client
            .ingest_records(tokio_stream::wrappers::ReceiverStream::new(requests))
            .await
    });
    (sender, call)
}

async fn healthy(channel: Channel) -> bool {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

async fn connect(app: &TestApp) -> Channel {
    app.channel().await
}

#[tokio::test]
async fn calls_beyond_the_budget_are_refused_and_health_still_answers() {
    let database = TestDatabase::sqlite();
    let app = spawn_app_with(&database, |settings| settings.limits.max_calls = 3).await;
    let channel = connect(&app).await;
    let open: Vec<_> = (0..3).map(|_| idle_stream(&channel)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_extra_sender, extra) = idle_stream(&channel);
    let refused = tokio::time::timeout(Duration::from_secs(5), extra)
        .await
        .expect("refused at once, not queued")
        .expect("the call task");
    let status = refused.expect_err("over the budget");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit of 3 calls"), "{status:?}");
    assert!(
        healthy(channel.clone()).await,
        "health is outside the budget"
    );

    // A finished call gives its slot back.
    let mut open = open.into_iter();
    let (sender, call) = open.next().expect("a stream");
    drop(sender);
    call.await.expect("task").expect("an empty stream succeeds");
    let (sender, call) = idle_stream(&channel);
    drop(sender);
    call.await.expect("task").expect("admitted again");
    drop(open);
    app.stop().await;
}

#[tokio::test]
async fn a_connection_beyond_the_limit_waits_until_one_closes() {
    let database = TestDatabase::sqlite();
    let app = spawn_app_with(&database, |settings| settings.limits.max_connections = 1).await;
    let first = connect(&app).await;
    assert!(healthy(first.clone()).await);

    let endpoint = Channel::from_shared(app.endpoint())
        .expect("endpoint")
        .timeout(Duration::from_secs(1));
    let second = endpoint.connect_lazy();
    assert!(
        !healthy(second.clone()).await,
        "a second connection was served while the first held the only slot"
    );
    drop(first);
    let served = async {
        loop {
            if healthy(second.clone()).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("served once the first connection closed");
    app.stop().await;
}
