//! The server's TLS (rustls): its certificate chain and key, and, when a client CA is given,
//! client certificates required and verified against it (mutual TLS). Bearer credentials are
//! checked on top, by the authentication layer, either way. The handshake happens as
//! connections are accepted ([`super::connection`]), so the TLS stream is wrapped like a
//! plaintext one and its small HTTP/2 frames leave together too.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSettings;

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("Cannot read the {what} {}", path.display()))
}

fn certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, what)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("The {what} {} is not PEM certificates", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "The {what} {} holds no certificate",
        path.display()
    );
    Ok(certificates)
}

/// The server's side of every TLS handshake.
#[derive(Clone)]
pub struct ServerTls(pub(super) TlsAcceptor);

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

/// The TLS `settings` describe; an unreadable or invalid file is an error at start-up.
pub fn acceptor(settings: &TlsSettings) -> anyhow::Result<ServerTls> {
    let chain = certificates(&settings.cert, "TLS certificate")?;
    let key =
        PrivateKeyDer::from_pem_slice(&read(&settings.key, "TLS key")?).with_context(|| {
            format!(
                "The TLS key {} is not a PEM private key",
                settings.key.display()
            )
        })?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &settings.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in certificates(ca, "client CA")? {
                roots.add(certificate).context("The client CA is refused")?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .context("The client CA is refused")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("The TLS certificate and key do not make a pair")?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls(TlsAcceptor::from(Arc::new(config))))
}
