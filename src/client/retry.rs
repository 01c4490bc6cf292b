//! Retrying calls that failed for a passing reason — the server unavailable or restarting, a
//! connection broken mid-call — with exponential backoff and jitter. Only calls that are safe
//! to repeat go through here: ingest ids make re-sending records harmless.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tonic::{Code, Status};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 fails on the first error.
    pub retries: u32,
    /// The wait before the first retry; each later wait doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

/// The default number of retries: with the default delays, about a minute of waiting — a
/// server restart, not an outage.
pub const DEFAULT_RETRIES: u32 = 10;

impl RetryPolicy {
    pub fn with_retries(retries: u32) -> Self {
        Self {
            retries,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }

    /// The wait before retry `attempt` (from 1): doubling, capped, then jittered by ±25% so
    /// many clients do not return at the same instant.
    fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let capped = doubled.min(self.max_delay);
        capped.mul_f64(rand::thread_rng().gen_range(0.75..1.25))
    }

    /// Runs `call` until it succeeds, fails for good, or the retries are used up.
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(status) if attempt < self.retries && is_retryable(&status) => {
                    attempt += 1;
                    let delay = self.delay(attempt);
                    tracing::warn!(
                        call = what,
                        code = ?status.code(),
                        error = status.message(),
                        retry_in_seconds = (delay.as_secs_f64() * 10.0).round() / 10.0,
                        attempt,
                        of = self.retries,
                        "call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(status) => return Err(status),
            }
        }
    }
}

/// Whether a failure may pass: the server or its store unavailable, the connection broken or
/// refused, the call cut off. A refusal of the request itself is never retried, nor is an
/// internal error the server reported.
pub fn is_retryable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable
        | Code::Aborted
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::ResourceExhausted => true,
        // Raised by the client's own transport (a reset or broken connection), not sent by
        // the server: those carry the transport error as their source.
        Code::Unknown | Code::Internal => std::error::Error::source(status).is_some(),
        _ => false,
    }
}

/// A failed call as an error for people: what failed, the status code and the message, and
/// the transport's cause when the call never reached the server.
pub fn call_error(call: &str, status: &Status) -> anyhow::Error {
    let mut text = format!("{call} failed: {:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    anyhow::anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_failures_are_retried_and_refusals_are_not() {
        assert!(is_retryable(&Status::unavailable("restarting")));
        assert!(is_retryable(&Status::aborted("conflict")));
        assert!(!is_retryable(&Status::invalid_argument("bad")));
        assert!(!is_retryable(&Status::internal("server bug")));
        let broken = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert!(is_retryable(&broken), "{broken:?}");
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = RetryPolicy::with_retries(5);
        let within = |attempt, nominal: f64| {
            let seconds = policy.delay(attempt).as_secs_f64();
            (nominal * 0.75..=nominal * 1.25).contains(&seconds)
        };
        assert!(within(1, 0.25));
        assert!(within(3, 1.0));
        assert!(within(12, 10.0));
    }

    #[tokio::test]
    async fn a_call_is_retried_until_it_succeeds() {
        let quick = |retries| RetryPolicy {
            retries,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let mut calls = 0;
        let result = quick(3)
            .run("test", || {
                calls += 1;
                let outcome = if calls < 3 {
                    Err(Status::unavailable("down"))
                } else {
                    Ok(calls)
                };
                async move { outcome }
            })
            .await;
        assert_eq!(result.ok(), Some(3));

        let mut calls = 0;
        let result: Result<(), Status> = quick(2)
            .run("test", || {
                calls += 1;
                async { Err(Status::unavailable("down")) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 3);
    }
}
