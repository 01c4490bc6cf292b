//! How the client reaches a server: the address and timeouts, from flags or `RESCUE_*`
//! environment variables, turned into a tonic [`Endpoint`]. Everything about the connection
//! is decided here, so TLS and credentials can join as further options without changing any
//! command.

use std::time::Duration;

use anyhow::Context;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// What every command talks to the server over: a channel that adds the caller's credential
/// to each call.
pub type Connection = InterceptedService<Channel, Credential>;

/// The bearer credential sent with every call, if any. Its `Debug` never shows it.
#[derive(Clone, Default)]
pub struct Credential(Option<AsciiMetadataValue>);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Credential(<redacted>)"
        } else {
            "Credential(none)"
        })
    }
}

impl Credential {
    /// `token` as an `authorization: Bearer` value; refused if it cannot travel in a header.
    pub fn bearer(token: &str) -> anyhow::Result<Self> {
        let token = token.trim();
        anyhow::ensure!(!token.is_empty(), "--token is empty");
        let mut value: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("--token holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

impl Interceptor for Credential {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Where `rescue serve` listens by default (`config::DEFAULT_LISTEN`), as a URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Connection options shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionOptions {
    /// The server's address: http://HOST:PORT (or HOST:PORT).
    #[arg(long, env = "RESCUE_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Seconds to wait for a connection to the server.
    #[arg(
        long,
        env = "RESCUE_CONNECT_TIMEOUT",
        default_value_t = 10.0,
        global = true
    )]
    pub connect_timeout: f64,
    /// Seconds a call may take to be answered (for streams, until the answer starts; a
    /// backfill chunk is answered once it is stored).
    #[arg(long, env = "RESCUE_TIMEOUT", default_value_t = 120.0, global = true)]
    pub timeout: f64,
    /// The API key or JWT to call with (sent as `authorization: Bearer …`).
    #[arg(long, env = "RESCUE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

impl ConnectionOptions {
    pub fn with_server(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            connect_timeout: 10.0,
            timeout: 120.0,
            token: None,
        }
    }

    /// The server's URL, with `http://` added to a bare `HOST:PORT`.
    pub fn url(&self) -> String {
        if self.server.contains("://") {
            self.server.clone()
        } else {
            format!("http://{}", self.server)
        }
    }

    pub fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let url = self.url();
        let seconds = |value: f64, flag: &str| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| {
                    format!("--{flag} must be a positive number of seconds, got {value}")
                })
        };
        Ok(Endpoint::from_shared(url.clone())
            .with_context(|| format!("{url:?} is not a server address"))?
            .connect_timeout(seconds(self.connect_timeout, "connect-timeout")?)
            .timeout(seconds(self.timeout, "timeout")?)
            .tcp_nodelay(true))
    }

    /// A channel that connects on first use and reconnects after a broken connection, so a
    /// server that is down or restarting surfaces as UNAVAILABLE on a call, which callers retry.
    pub fn channel(&self) -> anyhow::Result<Connection> {
        let credential = match &self.token {
            Some(token) => Credential::bearer(token)?,
            None => Credential::default(),
        };
        Ok(InterceptedService::new(
            self.endpoint()?.connect_lazy(),
            credential,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_server_is_where_rescue_serve_listens() {
        assert_eq!(
            DEFAULT_SERVER,
            format!("http://{}", crate::config::DEFAULT_LISTEN)
        );
    }

    #[test]
    fn a_bare_address_gets_a_scheme_and_bad_timeouts_are_refused() {
        let mut options = ConnectionOptions::with_server("10.1.2.3:50051");
        assert_eq!(options.url(), "http://10.1.2.3:50051");
        options.timeout = 0.0;
        let error = options.endpoint().expect_err("zero timeout");
        assert!(error.to_string().contains("--timeout"), "{error}");
    }
}
