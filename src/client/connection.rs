//! How the client reaches a server: the address and timeouts, from flags or `RESCUE_*`
//! environment variables, turned into a tonic [`Endpoint`]. Everything about the connection
//! is decided here, so TLS and credentials can join as further options without changing any
//! command.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

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
}

impl ConnectionOptions {
    pub fn with_server(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            connect_timeout: 10.0,
            timeout: 120.0,
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
    pub fn channel(&self) -> anyhow::Result<Channel> {
        Ok(self.endpoint()?.connect_lazy())
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
