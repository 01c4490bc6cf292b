//! The server's TLS (rustls through tonic): its certificate chain and key, and, when a client
//! CA is given, client certificates required and verified against it (mutual TLS). Bearer
//! credentials are checked on top, by the authentication layer, either way.

use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsSettings;

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("Cannot read the {what} {}", path.display()))
}

/// The TLS configuration `settings` describe; an unreadable file is an error at start-up.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<ServerTlsConfig> {
    let identity = Identity::from_pem(
        read(&settings.cert, "TLS certificate")?,
        read(&settings.key, "TLS key")?,
    );
    let config = ServerTlsConfig::new().identity(identity);
    Ok(match &settings.client_ca {
        Some(ca) => config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?)),
        None => config,
    })
}
