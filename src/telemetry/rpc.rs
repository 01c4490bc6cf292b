//! One span per RPC, and one line when it ends: the method, its gRPC status code, and the
//! latency from the request's arrival to the response's last byte (the status code travels
//! in the trailers, so the response body has to be watched to the end), recorded as metrics
//! too. On the way it gives an oversized message gRPC's code for it (see [`relabel_oversize`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tracing::{Instrument, Span};

use super::metrics::RpcLabels;

/// Wraps every service of the server in [`RpcLog`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcLogLayer;

impl<S> tower_layer::Layer<S> for RpcLogLayer {
    type Service = RpcLog<S>;

    fn layer(&self, inner: S) -> RpcLog<S> {
        RpcLog { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcLog<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower_service::Service<Request<RequestBody>> for RpcLog<S>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<LoggedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let span = tracing::info_span!("rpc", method = %request.uri().path());
        let labels = RpcLabels::of(request.uri().path());
        labels.started();
        let started = Instant::now();
        let response = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(async move {
            let mut response = response.instrument(span.clone()).await?;
            // An error returned before any message comes back "trailers-only": its status
            // is in the headers and the body ends without trailers.
            relabel_oversize(response.headers_mut());
            let header_code = grpc_code(response.headers());
            Ok(response.map(|inner| LoggedBody {
                inner,
                end: Some(RpcEnd {
                    span,
                    labels,
                    started,
                    header_code,
                }),
            }))
        })
    }
}

/// Logs once, when the RPC ends one way or another.
#[derive(Debug)]
struct RpcEnd {
    span: Span,
    labels: RpcLabels,
    started: Instant,
    header_code: Option<tonic::Code>,
}

impl RpcEnd {
    fn finished(self, trailers: Option<&HeaderMap>) {
        let code = trailers.and_then(grpc_code).or(self.header_code);
        let latency_ms = self.latency_ms();
        self.labels.handled(code, latency_ms / 1_000.0);
        let _entered = self.span.enter();
        match code {
            // The caller's mistakes are not the server's trouble.
            Some(
                code @ (tonic::Code::Ok | tonic::Code::NotFound | tonic::Code::InvalidArgument),
            ) => {
                tracing::info!(code = ?code, latency_ms, "rpc finished");
            }
            Some(code) => tracing::warn!(code = ?code, latency_ms, "rpc finished"),
            None => tracing::warn!(latency_ms, "rpc finished without a status"),
        }
    }

    fn failed(self, error: &dyn std::fmt::Display) {
        let latency_ms = self.latency_ms();
        self.labels.handled(None, latency_ms / 1_000.0);
        let _entered = self.span.enter();
        tracing::warn!(%error, latency_ms, "rpc response failed");
    }

    fn latency_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1_000.0
    }
}

pin_project_lite::pin_project! {
    /// A response body that reports the RPC's end.
    #[derive(Debug)]
    pub struct LoggedBody<B> {
        #[pin]
        inner: B,
        end: Option<RpcEnd>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            match this.project().end.take() {
                // A trailers-only response is complete without its body being read.
                Some(end) if end.header_code.is_some() => end.finished(None),
                // Dropped before its end: the client went away or the server was cut off.
                Some(end) => end.failed(&"cancelled before the response ended"),
                None => {}
            }
        }
    }
}

impl<B> Body for LoggedBody<B>
where
    B: Body,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let mut polled = this.inner.poll_frame(cx);
        match &mut polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    relabel_oversize(trailers);
                    if let Some(end) = this.end.take() {
                        end.finished(Some(trailers));
                    }
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(end) = this.end.take() {
                    end.failed(error);
                }
            }
            Poll::Ready(None) => {
                if let Some(end) = this.end.take() {
                    end.finished(None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// tonic refuses a message over the size limit with OUT_OF_RANGE; gRPC's convention, which
/// clients and proxies act on, is RESOURCE_EXHAUSTED. No handler here answers OUT_OF_RANGE, so
/// every one is tonic's size check and is relabelled (its message, with the sizes, stays).
fn relabel_oversize(headers: &mut HeaderMap) {
    if grpc_code(headers) == Some(tonic::Code::OutOfRange) {
        let exhausted = i32::from(tonic::Code::ResourceExhausted);
        headers.insert("grpc-status", http::HeaderValue::from(exhausted));
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|value| tonic::Code::from_bytes(value.as_bytes()))
}
