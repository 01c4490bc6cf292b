//! Structured logs with `tracing`: human-readable lines by default, JSON objects for log
//! pipelines. The level filter comes from `RESCUE_LOG` (e.g. `info`, `rescue=debug`).

use std::time::Duration;

use serde::Deserialize;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tower_http::classify::{GrpcErrorsAsFailures, GrpcFailureClass, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RESCUE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// The tower layer that gives every RPC a span and one closing line with its gRPC status
/// code and latency.
pub type RpcTraceLayer = TraceLayer<
    SharedClassifier<GrpcErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    (),
    fn(&Response<Body>, Duration, &Span),
    (),
    fn(Option<&HeaderMap>, Duration, &Span),
    fn(GrpcFailureClass, Duration, &Span),
>;

pub fn rpc_trace_layer() -> RpcTraceLayer {
    TraceLayer::new_for_grpc()
        .make_span_with(rpc_span as fn(&Request<Body>) -> Span)
        .on_request(())
        .on_response(on_rpc_response as fn(&Response<Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(on_rpc_end_of_stream as fn(Option<&HeaderMap>, Duration, &Span))
        .on_failure(on_rpc_failure as fn(GrpcFailureClass, Duration, &Span))
}

fn rpc_span(request: &Request<Body>) -> Span {
    tracing::info_span!("rpc", method = %request.uri().path())
}

/// An error returned before any message is sent comes back trailers-only: its status is in
/// the headers, and no trailers follow.
fn on_rpc_response(response: &Response<Body>, latency: Duration, _: &Span) {
    if let Some(code) = grpc_code(response.headers()) {
        log_rpc_end(code, latency);
    }
}

fn on_rpc_end_of_stream(trailers: Option<&HeaderMap>, latency: Duration, _: &Span) {
    if let Some(code) = trailers.and_then(grpc_code) {
        log_rpc_end(code, latency);
    }
}

/// Failures with a status code were logged by the two above; this is a broken stream.
fn on_rpc_failure(failure: GrpcFailureClass, latency: Duration, _: &Span) {
    if let GrpcFailureClass::Error(error) = failure {
        tracing::warn!(%error, latency_ms = millis(latency), "rpc stream failed");
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|value| tonic::Code::from_bytes(value.as_bytes()))
}

fn millis(latency: Duration) -> f64 {
    latency.as_secs_f64() * 1_000.0
}

fn log_rpc_end(code: tonic::Code, latency: Duration) {
    let latency_ms = millis(latency);
    match code {
        // The caller's mistakes are not the server's trouble.
        tonic::Code::Ok | tonic::Code::NotFound | tonic::Code::InvalidArgument => {
            tracing::info!(code = ?code, latency_ms, "rpc finished");
        }
        _ => tracing::warn!(code = ?code, latency_ms, "rpc finished"),
    }
}
