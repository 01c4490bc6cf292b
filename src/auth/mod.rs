//! Who is calling and what they may do. Callers present a bearer credential — an API key
//! from the key file or a JWT from a configured issuer — which names them and grants roles;
//! each RPC needs one role ([`access`]). The check is one tower layer in front of every
//! service ([`layer`]), and the verified [`Caller`] rides on the request for the services
//! (the audit trail names it). The credential files are read again while the server runs, so
//! a key is added or revoked without a restart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::reloading::{Swappable, reload_every};

mod access;
mod jwt;
mod keys;
mod layer;

pub use access::{Access, access};
pub use jwt::{JwtAlgorithm, JwtSettings};
pub use keys::{ApiKeys, KEY_PREFIX, key_digest, new_key};
pub use layer::{AuthLayer, Authenticate};

/// What a credential may do. Roles are independent: a key for a CRM holds `score` (and maybe
/// `read`), an operator's holds `admin`; `admin` does not imply the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// ScoreCustomer(s), RecommendRecovery/Recoveries.
    Score,
    /// IngestRecords, RecordRecoveryOutcome.
    Ingest,
    /// Train.
    Train,
    /// PromoteModel, RollbackModel, ReloadProgram, ListAuditEvents.
    Admin,
    /// ListModels, GetModel, GetProgram, RecoveryFunnel.
    Read,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Score,
        Role::Ingest,
        Role::Train,
        Role::Admin,
        Role::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Score => "score",
            Role::Ingest => "ingest",
            Role::Train => "train",
            Role::Admin => "admin",
            Role::Read => "read",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified caller: who (as the audit trail names them) and the roles they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `key:NAME` for an API key, `jwt:SUBJECT` for a token, `anonymous` when the server
    /// runs without authentication.
    pub identity: Arc<str>,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self {
            identity: Arc::from("anonymous"),
            roles: Role::ALL.to_vec(),
        }
    }

    pub fn holds(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a credential was not accepted; the text goes back to the caller, so it says what is
/// wrong without revealing what the server holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this call needs a credential: send `authorization: Bearer <API key or JWT>`")]
    Missing,
    #[error("the authorization header is not `Bearer <credential>`")]
    Malformed,
    #[error("the API key is not known (it may have been revoked)")]
    UnknownKey,
    #[error("the token is not accepted: {0}")]
    BadToken(String),
    #[error("this server accepts no {0}")]
    NotConfigured(&'static str),
}

/// A credential file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is refused: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl CredentialError {
    fn invalid(path: &Path, reason: impl fmt::Display) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }
}

fn file_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn read_file(path: &Path) -> Result<Vec<u8>, CredentialError> {
    std::fs::read(path).map_err(|source| CredentialError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Where credentials come from; at least one of the two is set when authentication is on.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// The API key file (TOML, keys stored as SHA-256 digests).
    pub api_keys: Option<PathBuf>,
    pub jwt: Option<JwtSettings>,
    /// How often the files are read again.
    pub reload: Duration,
}

/// The credentials accepted at one moment, as read from the files.
#[derive(Debug)]
struct Credentials {
    api_keys: Option<ApiKeys>,
    jwt: Option<jwt::JwtVerifier>,
    /// The files' SHA-256 digests, to tell a changed file from an unchanged one (digests, not
    /// bytes: an HMAC secret must not sit where a debug print could show it).
    read_from: Vec<[u8; 32]>,
}

impl Credentials {
    fn read(settings: &AuthSettings) -> Result<Self, CredentialError> {
        let mut read_from = Vec::new();
        let api_keys = match &settings.api_keys {
            Some(path) => {
                let bytes = read_file(path)?;
                let keys = ApiKeys::parse(&bytes).map_err(|e| CredentialError::invalid(path, e))?;
                read_from.push(file_digest(&bytes));
                Some(keys)
            }
            None => None,
        };
        let jwt = match &settings.jwt {
            Some(jwt) => {
                let bytes = read_file(&jwt.key)?;
                let verifier = jwt::JwtVerifier::new(jwt, &bytes)
                    .map_err(|e| CredentialError::invalid(&jwt.key, e))?;
                read_from.push(file_digest(&bytes));
                Some(verifier)
            }
            None => None,
        };
        Ok(Self {
            api_keys,
            jwt,
            read_from,
        })
    }

    fn verify(&self, credential: &str) -> Result<Caller, Refusal> {
        if jwt::looks_like_jwt(credential) {
            let verifier = self.jwt.as_ref().ok_or(Refusal::NotConfigured("JWTs"))?;
            return verifier.verify(credential);
        }
        let keys = self
            .api_keys
            .as_ref()
            .ok_or(Refusal::NotConfigured("API keys"))?;
        keys.verify(credential).cloned().ok_or(Refusal::UnknownKey)
    }
}

/// Verifies credentials against the files, read again while the server runs.
#[derive(Debug)]
pub struct Authenticator {
    settings: AuthSettings,
    current: Swappable<Credentials>,
}

impl Authenticator {
    /// Reads the credential files; a bad file at start-up is an error, not an open door.
    pub fn open(settings: AuthSettings) -> Result<Self, CredentialError> {
        let credentials = Credentials::read(&settings)?;
        Ok(Self {
            settings,
            current: Swappable::new(credentials),
        })
    }

    /// The caller a bearer credential names.
    pub fn verify(&self, credential: &str) -> Result<Caller, Refusal> {
        self.current.current().verify(credential)
    }

    /// Reads the files again and serves what they hold now if they changed and are valid;
    /// otherwise the credentials accepted so far stay.
    pub fn reload(&self) -> Result<(), CredentialError> {
        let read = Credentials::read(&self.settings)?;
        if read.read_from != self.current.current().read_from {
            tracing::info!(
                keys = read.api_keys.as_ref().map_or(0, ApiKeys::len),
                "credentials reloaded"
            );
            self.current.replace(Arc::new(read));
        }
        Ok(())
    }

    /// Reloads the files every `settings.reload` until dropped.
    pub async fn watch(self: Arc<Self>) {
        reload_every(self.settings.reload, "credentials", || self.reload()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debug_print_of_the_authenticator_shows_no_secret() {
        let secret = "a shared secret of at least thirty-two bytes, never printed";
        let path = std::env::temp_dir().join(format!("rescue-jwt-secret-{}", std::process::id()));
        std::fs::write(&path, secret).expect("write the secret");
        let authenticator = Authenticator::open(AuthSettings {
            api_keys: None,
            jwt: Some(JwtSettings {
                issuer: "https://id.example".into(),
                audience: "rescue".into(),
                key: path.clone(),
                algorithm: JwtAlgorithm::Hs256,
            }),
            reload: Duration::from_secs(5),
        })
        .expect("valid settings");
        let printed = format!("{authenticator:?}");
        std::fs::remove_file(path).ok();
        assert!(!printed.contains("never printed"), "{printed}");
        assert!(
            !printed.contains(&format!("{:?}", secret.as_bytes())),
            "{printed}"
        );
    }
}
