//! Health checks and server reflection, as load balancers and grpcurl use them.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{TestDatabase, spawn_app};

#[tokio::test]
async fn health_reports_serving_overall_and_for_ingest() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "rescue.v1.Ingest"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check answers")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await;
    assert_eq!(
        unknown.expect_err("unknown service").code(),
        tonic::Code::NotFound
    );
    app.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_services_in_both_protocol_versions() {
    use tonic_reflection::pb::{v1, v1alpha};
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("a reflection reply")
        .expect("one message");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("expected a service list, got {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["rescue.v1.Ingest", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1alpha reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("a reflection reply")
        .expect("one message");
    assert!(
        format!("{answer:?}").contains("rescue.v1.Ingest"),
        "{answer:?}"
    );
    app.stop().await;
}

/// A TCP relay to the PostgreSQL server that can be cut (every connection dropped, new ones
/// refused) and restored: a database outage, as a replica sees one.
struct Relay {
    address: std::net::SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<RelayState>>,
    accepting: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct RelayState {
    cut: bool,
    connections: Vec<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let address = listener.local_addr().expect("relay address");
        let state = std::sync::Arc::new(std::sync::Mutex::new(RelayState::default()));
        let shared = std::sync::Arc::clone(&state);
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = shared.lock().expect("relay state");
                if state.cut {
                    continue; // dropped: the connection is refused
                }
                let upstream = upstream.clone();
                state.connections.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self {
            address,
            state,
            accepting,
        }
    }

    fn cut(&self) {
        let mut state = self.state.lock().expect("relay state");
        state.cut = true;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.state.lock().expect("relay state").cut = false;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// The status of `service` as the health service reports it.
async fn status_of(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check answers")
        .into_inner()
        .status()
}

/// Waits (generously: this checks that it happens, not how fast) until every service reports
/// `wanted`.
async fn wait_for(health: &mut HealthClient<tonic::transport::Channel>, wanted: ServingStatus) {
    let since = std::time::Instant::now();
    for service in ["", "rescue.v1.Scoring", "rescue.v1.Ingest"] {
        while status_of(health, service).await != wanted {
            assert!(
                since.elapsed() < std::time::Duration::from_secs(30),
                "{service:?} still not {wanted:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// PostgreSQL going away turns health to NOT_SERVING and calls to UNAVAILABLE; once it is back
/// the server serves again by itself, with everything it acknowledged still stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database_through_an_outage() {
    use crate::fixtures::{customer, usage_event};
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let url = database.url.expose().to_owned();
    let (before, rest) = url.split_once('@').expect("user@host");
    let (host, name) = rest.split_once('/').expect("host/database");
    let relay = Relay::start(host.to_owned()).await;
    let relayed = rescue::store::DatabaseUrl::new(format!("{before}@{}/{name}", relay.address));
    let app = crate::helpers::spawn_app_with(&database, |settings| {
        settings.database = relayed;
    })
    .await;
    let mut health = HealthClient::new(app.channel().await);
    wait_for(&mut health, ServingStatus::Serving).await;
    let verdict = app
        .ingest(vec![customer("c-1"), usage_event("u-1", "c-1")], 10)
        .await;
    assert_eq!(verdict.accepted, 2);

    relay.cut();
    wait_for(&mut health, ServingStatus::NotServing).await;
    let status = app
        .ingest_client()
        .await
        .ingest_records(tokio_stream::iter([
            rescue::proto::v1::IngestRecordsRequest {
                records: vec![usage_event("u-2", "c-1")],
            },
        ]))
        .await
        .expect_err("no database");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    relay.restore();
    wait_for(&mut health, ServingStatus::Serving).await;
    let verdict = app
        .ingest(
            vec![usage_event("u-1", "c-1"), usage_event("u-2", "c-1")],
            10,
        )
        .await;
    assert_eq!(
        (verdict.duplicate, verdict.accepted),
        (1, 1),
        "what was acknowledged before the outage is stored: {verdict:?}"
    );
    app.stop().await;
}
