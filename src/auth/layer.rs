//! The one place every call is authenticated: a tower layer in front of all services that
//! reads the bearer credential, checks the role the method needs ([`access`]) and puts the
//! [`Caller`] on the request. Refusals never reach a service: `UNAUTHENTICATED` for a
//! missing or bad credential, `PERMISSION_DENIED` for a good one without the role.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};

use super::{Access, Authenticator, Caller, Refusal, access};

/// Wraps every service in [`Authenticate`]; without an authenticator every caller is
/// [`Caller::anonymous`] (a server that only listens on loopback, or was told to).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Option<Arc<Authenticator>>,
}

impl AuthLayer {
    pub fn new(authenticator: Option<Arc<Authenticator>>) -> Self {
        Self { authenticator }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Option<Arc<Authenticator>>,
}

impl<S> Authenticate<S> {
    /// The caller a request comes from, or the status refusing it.
    fn admit<B>(&self, request: &Request<B>) -> Result<Option<Caller>, tonic::Status> {
        let path = request.uri().path();
        let needed = access(path);
        if needed == Some(Access::Open) {
            return Ok(None);
        }
        let Some(authenticator) = &self.authenticator else {
            return Ok(Some(Caller::anonymous()));
        };
        let unauthenticated =
            |refusal: Refusal| tonic::Status::unauthenticated(refusal.to_string());
        let credential = bearer(request.headers()).map_err(unauthenticated)?;
        let caller = authenticator.verify(credential).map_err(unauthenticated)?;
        match needed {
            Some(Access::Requires(role)) if !caller.holds(role) => {
                let method = path.rsplit('/').next().unwrap_or(path);
                Err(tonic::Status::permission_denied(format!(
                    "{} lacks the role `{role}` that {method} needs",
                    caller.identity
                )))
            }
            _ => Ok(Some(caller)),
        }
    }
}

fn bearer(headers: &http::HeaderMap) -> Result<&str, Refusal> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(Refusal::Missing)?;
    let value = value.to_str().map_err(|_| Refusal::Malformed)?;
    let (scheme, credential) = value.split_once(' ').ok_or(Refusal::Malformed)?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(credential)
}

impl<S, RequestBody, ResponseBody> tower_service::Service<Request<RequestBody>> for Authenticate<S>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<RequestBody>) -> Self::Future {
        match self.admit(&request) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                tracing::info!(code = ?status.code(), reason = status.message(), "call refused");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_credential_is_read() {
        let headers = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(value).expect("header"),
            );
            headers
        };
        assert_eq!(bearer(&headers("Bearer rsk_1")), Ok("rsk_1"));
        assert_eq!(bearer(&headers("bearer  rsk_1 ")), Ok("rsk_1"));
        assert_eq!(bearer(&headers("Basic dXNlcg==")), Err(Refusal::Malformed));
        assert_eq!(bearer(&headers("Bearer")), Err(Refusal::Malformed));
        assert_eq!(bearer(&http::HeaderMap::new()), Err(Refusal::Missing));
    }
}
