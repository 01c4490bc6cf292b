//! How the client reaches a server: the address and timeouts, from flags or `RESCUE_*`
//! environment variables, turned into a tonic [`Endpoint`]. Everything about the connection
//! is decided here — TLS for `https://` servers and the bearer credential included — so no
//! command deals with either.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

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
    /// For an https:// server: the CA certificate (PEM) to trust instead of the system's.
    #[arg(long, env = "RESCUE_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// For a server that requires client certificates: this client's certificate (PEM).
    #[arg(
        long,
        env = "RESCUE_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(
        long,
        env = "RESCUE_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

impl ConnectionOptions {
    pub fn with_server(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            connect_timeout: 10.0,
            timeout: 120.0,
            token: None,
            ca: None,
            client_cert: None,
            client_key: None,
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
        let endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("{url:?} is not a server address"))?
            .connect_timeout(seconds(self.connect_timeout, "connect-timeout")?)
            .timeout(seconds(self.timeout, "timeout")?)
            .tcp_nodelay(true);
        match self.tls()? {
            Some(tls) => endpoint
                .tls_config(tls)
                .context("The TLS settings are refused"),
            None => Ok(endpoint),
        }
    }

    /// TLS for an `https://` server (the given CA, or the system's roots; a client
    /// certificate if given); none for `http://`, where TLS options are a mistake to report.
    fn tls(&self) -> anyhow::Result<Option<ClientTlsConfig>> {
        let url = self.url();
        if !url.starts_with("https://") {
            anyhow::ensure!(
                self.ca.is_none() && self.client_cert.is_none(),
                "--ca and --client-cert are for an https:// server, and {url} is plaintext"
            );
            return Ok(None);
        }
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .with_context(|| format!("Cannot read the {what} {}", path.display()))
        };
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?)),
            None => tls.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            tls = tls.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        Ok(Some(tls))
    }

    /// What to try when a call failed with `error`: https:// when a plaintext connection was
    /// cut (a TLS server closes it), a credential when the server asked for one.
    pub fn hint(&self, error: &str) -> Option<String> {
        let url = self.url();
        if url.starts_with("http://") && error.contains("transport error") {
            return Some(format!(
                "{url} is plaintext: if the server serves TLS, use https:// (and --ca if its \
                 certificate is not from a CA the system trusts)"
            ));
        }
        if error.contains("Unauthenticated") && self.token.is_none() {
            return Some("the server needs a credential: give --token or RESCUE_TOKEN".into());
        }
        None
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
