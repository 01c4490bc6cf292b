//! Admission: how many calls the server runs at once. Every call but health and reflection
//! takes a slot from one budget shared by all connections and keeps it until its response
//! has ended (a stream holds it while open); with none left the call is refused at once with
//! RESOURCE_EXHAUSTED, so no client, however many streams it opens, grows the server past
//! the budget, and health checks still answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{Access, access};

/// Wraps every service in [`Admit`], sharing one budget of `limit` calls.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    slots: Arc<Semaphore>,
    limit: usize,
}

impl AdmissionLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower_layer::Layer<S> for AdmissionLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            slots: Arc::clone(&self.slots),
            limit: self.limit,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admit<S> {
    inner: S,
    slots: Arc<Semaphore>,
    limit: usize,
}

impl<S, RequestBody, ResponseBody> tower_service::Service<Request<RequestBody>> for Admit<S>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Default + Send + 'static,
{
    type Response = Response<Admitted<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let slot = if access(request.uri().path()) == Some(Access::Open) {
            None
        } else {
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    let status = tonic::Status::resource_exhausted(format!(
                        "the server is running its limit of {} calls; retry shortly",
                        self.limit
                    ));
                    return Box::pin(async move {
                        Ok(status.into_http::<ResponseBody>().map(|body| Admitted {
                            inner: body,
                            slot: None,
                        }))
                    });
                }
            }
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| Admitted { inner, slot }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its call's slot until it ends or is dropped.
    #[derive(Debug)]
    pub struct Admitted<B> {
        #[pin]
        inner: B,
        slot: Option<OwnedSemaphorePermit>,
    }
}

impl<B: Body> Body for Admitted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.slot.take();
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
