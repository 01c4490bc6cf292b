//! Prometheus metrics, through the `metrics` facade and its Prometheus exporter: the series
//! are named here, once, and recorded where things happen (the RPC layer, ingest, scoring,
//! the registry, training, the store's pool). Without `--metrics-listen` no recorder is
//! installed and every recording is a no-op.
//!
//! RPC series use the names of the gRPC ecosystem's Prometheus interceptors
//! (`grpc_server_started_total`, `grpc_server_handled_total`, `grpc_server_handling_seconds`
//! with `grpc_service`, `grpc_method`, `grpc_type` and `grpc_code`), so existing dashboards
//! and alerts apply.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use anyhow::Context;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use prost::Message;

pub const RPC_STARTED: &str = "grpc_server_started_total";
pub const RPC_HANDLED: &str = "grpc_server_handled_total";
pub const RPC_SECONDS: &str = "grpc_server_handling_seconds";
pub const STREAMS_OPEN: &str = "rescue_streams_open";
pub const INGEST_RECORDS: &str = "rescue_ingest_records_total";
pub const SCORES: &str = "rescue_scores_total";
pub const ACTIVE_MODEL: &str = "rescue_active_model";
pub const TRAINING_RUNS: &str = "rescue_training_runs_total";
pub const TRAINING_SECONDS: &str = "rescue_training_seconds";
pub const POOL_CONNECTIONS: &str = "rescue_db_pool_connections";
pub const POOL_MAX: &str = "rescue_db_pool_max_connections";

/// Latency buckets in seconds: a stored score takes about a millisecond, a training minutes.
const RPC_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];
const TRAINING_BUCKETS: [f64; 8] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

/// Scrapes answered at once; Prometheus sends one at a time per target.
const MAX_SCRAPERS: usize = 8;
/// How long a scrape connection may stay open, slow or idle.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// The exporter's handle once installed: one recorder per process (a second server in the
/// same process, as in tests, shares it).
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder, once per process, and returns its handle for rendering.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(RPC_SECONDS.into()), &RPC_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(TRAINING_SECONDS.into()), &TRAINING_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Another server in this process may have won the race: keep the first.
    if metrics::set_global_recorder(recorder).is_ok() {
        describe();
        let _ = HANDLE.set(handle);
    }
    HANDLE
        .get()
        .cloned()
        .context("another metrics recorder is installed in this process")
}

/// Answers HTTP/1.1 requests on the listener with the rendered metrics (`GET /metrics`) or
/// 404, one request per connection, a few connections at a time.
pub async fn serve_scrapes(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    use hyper::service::service_fn;
    let scrapers = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait instead of spinning on the error.
                tracing::warn!(%error, "cannot accept a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A scraper over the limit waits for one to finish: metrics never crowd out gRPC.
        let Ok(permit) = Arc::clone(&scrapers).acquire_owned().await else {
            return;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let handle = handle.clone();
                async move {
                    let (status, body) = if request.uri().path() == "/metrics" {
                        (hyper::StatusCode::OK, handle.render())
                    } else {
                        (
                            hyper::StatusCode::NOT_FOUND,
                            "not found: try /metrics\n".into(),
                        )
                    };
                    hyper::Response::builder()
                        .status(status)
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(io, service);
            match tokio::time::timeout(SCRAPE_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "metrics connection failed"),
                Err(_) => tracing::debug!("metrics connection timed out"),
            }
        });
    }
}

fn describe() {
    describe_counter!(RPC_STARTED, "RPCs started, by service, method and type.");
    describe_counter!(
        RPC_HANDLED,
        "RPCs finished, by service, method, type and gRPC code."
    );
    describe_histogram!(
        RPC_SECONDS,
        metrics::Unit::Seconds,
        "Time from an RPC's arrival to its response's end."
    );
    describe_gauge!(STREAMS_OPEN, "Streaming RPCs open now, by method.");
    describe_counter!(
        INGEST_RECORDS,
        "Records received, by kind and verdict (accepted, duplicate, superseded, rejected)."
    );
    describe_counter!(SCORES, "Health scores served, by band and model version.");
    describe_gauge!(
        ACTIVE_MODEL,
        "1 for the model version serving each kind, 0 once replaced."
    );
    describe_counter!(TRAINING_RUNS, "Training runs, by model kind and outcome.");
    describe_histogram!(
        TRAINING_SECONDS,
        metrics::Unit::Seconds,
        "Duration of training runs, by model kind."
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database pool connections, by state (idle, in_use)."
    );
    describe_gauge!(POOL_MAX, "The most connections the database pool opens.");
}

/// The labels of every method the server answers — the contract's and health's, read from
/// their descriptors, and reflection's — by path. Built once; its names live as long as the
/// process, so a call's labels are borrowed, never allocated.
static KNOWN_METHODS: LazyLock<HashMap<String, RpcLabels>> = LazyLock::new(|| {
    let mut known = HashMap::new();
    for set in [
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(descriptors) = prost_types::FileDescriptorSet::decode(set) else {
            continue;
        };
        for file in &descriptors.file {
            for service in &file.service {
                for method in &service.method {
                    let kind = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    let service = format!("{}.{}", file.package(), service.name());
                    let path = format!("/{service}/{}", method.name());
                    known.insert(
                        path,
                        RpcLabels::named(service, method.name().to_owned(), kind),
                    );
                }
            }
        }
    }
    for version in ["v1", "v1alpha"] {
        let service = format!("grpc.reflection.{version}.ServerReflection");
        let path = format!("/{service}/ServerReflectionInfo");
        known.insert(
            path,
            RpcLabels::named(service, "ServerReflectionInfo".to_owned(), "bidi_stream"),
        );
    }
    known
});

/// One RPC as the metrics name it.
#[derive(Debug, Clone, Copy)]
pub struct RpcLabels {
    service: &'static str,
    method: &'static str,
    kind: &'static str,
}

impl RpcLabels {
    /// Labels of names kept for the process's life (one per known method, made once).
    fn named(service: String, method: String, kind: &'static str) -> Self {
        Self {
            service: Box::leak(service.into_boxed_str()),
            method: Box::leak(method.into_boxed_str()),
            kind,
        }
    }

    /// The labels of a request to `path`. Paths outside the contract, health and reflection
    /// all count as `unknown`: a caller must not mint a series per path it makes up.
    pub fn of(path: &str) -> Self {
        KNOWN_METHODS.get(path).copied().unwrap_or(Self {
            service: "unknown",
            method: "unknown",
            kind: "unknown",
        })
    }

    fn is_stream(&self) -> bool {
        !matches!(self.kind, "unary" | "unknown")
    }

    pub fn started(&self) {
        counter!(RPC_STARTED, "grpc_service" => self.service, "grpc_method" => self.method, "grpc_type" => self.kind)
            .increment(1);
        if self.is_stream() {
            gauge!(STREAMS_OPEN, "grpc_method" => self.method).increment(1.0);
        }
    }

    /// The RPC ended with `code` (`None`: cut off before its status) after `seconds`.
    pub fn handled(&self, code: Option<tonic::Code>, seconds: f64) {
        let code = code.map_or("Cancelled".to_owned(), |code| format!("{code:?}"));
        counter!(RPC_HANDLED, "grpc_service" => self.service, "grpc_method" => self.method, "grpc_type" => self.kind, "grpc_code" => code)
            .increment(1);
        histogram!(RPC_SECONDS, "grpc_service" => self.service, "grpc_method" => self.method, "grpc_type" => self.kind)
            .record(seconds);
        if self.is_stream() {
            gauge!(STREAMS_OPEN, "grpc_method" => self.method).decrement(1.0);
        }
    }
}

pub fn ingested(kind: &'static str, verdict: &'static str) {
    counter!(INGEST_RECORDS, "kind" => kind, "verdict" => verdict).increment(1);
}

pub fn scored(band: &'static str, model_version: &str) {
    counter!(SCORES, "band" => band, "model_version" => model_version.to_owned()).increment(1);
}

/// `now` serves `kind` in place of `before`.
pub fn model_serving(kind: &'static str, before: Option<&str>, now: &str) {
    if let Some(before) = before.filter(|before| *before != now) {
        gauge!(ACTIVE_MODEL, "kind" => kind, "version" => before.to_owned()).set(0.0);
    }
    gauge!(ACTIVE_MODEL, "kind" => kind, "version" => now.to_owned()).set(1.0);
}

pub fn trained(kind: &'static str, outcome: &'static str, seconds: f64) {
    counter!(TRAINING_RUNS, "kind" => kind, "outcome" => outcome).increment(1);
    histogram!(TRAINING_SECONDS, "kind" => kind).record(seconds);
}

pub fn pool(in_use: u32, idle: u32, max: u32) {
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    gauge!(POOL_MAX).set(f64::from(max));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_health_and_reflection_are_named_and_any_other_path_is_unknown() {
        let score = RpcLabels::of("/rescue.v1.Scoring/ScoreCustomers");
        assert_eq!(
            (score.service, score.method, score.kind),
            ("rescue.v1.Scoring", "ScoreCustomers", "bidi_stream")
        );
        assert_eq!(
            RpcLabels::of("/rescue.v1.Ingest/IngestRecords").kind,
            "client_stream"
        );
        assert_eq!(
            RpcLabels::of("/grpc.health.v1.Health/Check").method,
            "Check"
        );
        for made_up in [
            "/x/y",
            "/rescue.v1.Scoring/Nope",
            "nonsense",
            "/grpc.health.v1.Health/Zap",
        ] {
            let labels = RpcLabels::of(made_up);
            assert_eq!((labels.service, labels.method), ("unknown", "unknown"));
        }
    }
}
