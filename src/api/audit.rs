//! The audit trail at the API: [`Auditor`] records each admin, train and ingest call — the
//! caller the authentication layer verified, what the call asked for, what it changed and the
//! code it ended with — and [`AuditService`] serves the trail (`rescue.v1.Audit`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::error::ApiError;
use crate::auth::Caller;
use crate::domain::{MAX_ECHOED_BYTES, Timestamp, Violations, shortened};
use crate::proto::v1::{self as proto, audit_server::Audit};
use crate::store::{AuditEvent, AuditQuery, Store};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// Records audited calls in the store.
#[derive(Debug, Clone)]
pub struct Auditor {
    store: Arc<dyn Store>,
}

impl Auditor {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Starts the record of `method` asked by `request`'s caller for `target` (cut to a few
    /// hundred bytes: it may repeat the caller's text).
    pub fn call<T>(
        &self,
        request: &Request<T>,
        method: &'static str,
        target: impl AsRef<str>,
    ) -> AuditedCall {
        let caller = request.extensions().get::<Caller>().map_or_else(
            || Arc::from("unknown"),
            |caller| Arc::clone(&caller.identity),
        );
        AuditedCall {
            auditor: self.clone(),
            caller,
            method,
            target: shortened(target.as_ref(), MAX_ECHOED_BYTES).to_owned(),
        }
    }
}

/// An audited call under way: recorded by [`AuditedCall::finish`].
#[derive(Debug)]
pub struct AuditedCall {
    auditor: Auditor,
    caller: Arc<str>,
    method: &'static str,
    target: String,
}

impl AuditedCall {
    /// The same call, asking for `target` (known once the request is read).
    pub fn with_target(self, target: impl AsRef<str>) -> Self {
        Self {
            target: shortened(target.as_ref(), MAX_ECHOED_BYTES).to_owned(),
            ..self
        }
    }

    /// Records how the call ended: what it changed, or the status it failed with. The call has
    /// had its effect by now, so a trail that cannot be written is logged, not answered.
    pub async fn finish(self, ended: Result<String, &Status>) {
        let (changed, code, message) = match ended {
            Ok(changed) => (changed, tonic::Code::Ok, String::new()),
            Err(status) => (
                String::new(),
                status.code(),
                shortened(status.message(), 4 * MAX_ECHOED_BYTES).to_owned(),
            ),
        };
        let event = AuditEvent {
            event_id: format!("{:032x}", rand::random::<u128>()),
            at: Timestamp::now(),
            caller: self.caller.to_string(),
            method: self.method.to_owned(),
            target: self.target,
            changed,
            code: format!("{code:?}"),
            message,
        };
        if let Err(error) = self.auditor.store.insert_audit_event(&event).await {
            tracing::error!(
                error = %super::error_chain(&error),
                caller = %event.caller,
                method = %event.method,
                target = %event.target,
                changed = %event.changed,
                code = %event.code,
                "cannot write the audit trail"
            );
        }
    }

    /// Records `result` — its change described by `changed` — and hands it on as the RPC's.
    pub async fn outcome<T>(
        self,
        result: Result<T, ApiError>,
        changed: impl FnOnce(&T) -> String,
    ) -> Result<T, Status> {
        match result {
            Ok(value) => {
                self.finish(Ok(changed(&value))).await;
                Ok(value)
            }
            Err(error) => {
                let status = Status::from(error);
                self.finish(Err(&status)).await;
                Err(status)
            }
        }
    }
}

/// `rescue.v1.Audit`.
#[derive(Debug, Clone)]
pub struct AuditService {
    store: Arc<dyn Store>,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

/// The token after an event: its time and id, which order the trail.
fn page_token(event: &AuditEvent) -> String {
    format!("{}/{}", event.at.unix_micros(), event.event_id)
}

fn parse_page_token(token: &str) -> Option<(Timestamp, String)> {
    let (micros, event_id) = token.split_once('/')?;
    let micros: i64 = micros.parse().ok()?;
    (!event_id.is_empty()
        && event_id.len() <= 64
        && event_id.bytes().all(|b| b.is_ascii_hexdigit()))
    .then(|| (Timestamp::from_unix_micros(micros), event_id.to_owned()))
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn list_audit_events(
        &self,
        request: Request<proto::ListAuditEventsRequest>,
    ) -> Result<Response<proto::ListAuditEventsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::default();
        let limit = match request.page_size {
            0 => DEFAULT_PAGE,
            size if size <= MAX_PAGE => size,
            size => {
                violations.push("page_size", format!("must be 1–{MAX_PAGE}, got {size}"));
                DEFAULT_PAGE
            }
        };
        let before = match request.page_token.as_str() {
            "" => None,
            token => {
                let parsed = parse_page_token(token);
                if parsed.is_none() {
                    violations.push("page_token", "is not a next_page_token this server gave");
                }
                parsed
            }
        };
        if !violations.is_empty() {
            return Err(ApiError::InvalidArgument(violations).into());
        }
        let filter = |text: String| (!text.is_empty()).then_some(text);
        let events = self
            .store
            .audit_events(&AuditQuery {
                caller: filter(request.caller),
                method: filter(request.method),
                before,
                // One more than asked, to know whether an older page exists.
                limit: limit + 1,
            })
            .await
            .map_err(ApiError::from)?;
        let more = events.len() > limit as usize;
        let events: Vec<AuditEvent> = events.into_iter().take(limit as usize).collect();
        let next_page_token = match events.last() {
            Some(last) if more => page_token(last),
            _ => String::new(),
        };
        Ok(Response::new(proto::ListAuditEventsResponse {
            events: events.into_iter().map(audit_event).collect(),
            next_page_token,
        }))
    }
}

fn audit_event(event: AuditEvent) -> proto::AuditEvent {
    proto::AuditEvent {
        event_id: event.event_id,
        at: Some(timestamp(event.at)),
        caller: event.caller,
        method: event.method,
        target: event.target,
        changed: event.changed,
        code: event.code,
        message: event.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_names_the_last_event_and_nothing_else_parses() {
        let event = AuditEvent {
            event_id: "0af3".into(),
            at: Timestamp::from_unix_micros(1_767_225_600_000_000),
            caller: "key:ops".into(),
            method: "PromoteModel".into(),
            target: String::new(),
            changed: String::new(),
            code: "Ok".into(),
            message: String::new(),
        };
        assert_eq!(
            parse_page_token(&page_token(&event)),
            Some((event.at, event.event_id.clone()))
        );
        for bad in ["", "12", "x/0af3", "12/", "12/not-hex'; --"] {
            assert_eq!(parse_page_token(bad), None, "{bad}");
        }
    }
}
