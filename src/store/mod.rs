//! Persistence. One [`Store`] trait, two implementations that pass one contract test suite:
//! SQLite (the embedded default, one file, one process) and PostgreSQL (shared by replicas).
//!
//! Writes go through [`batch::write_batch`], which owns the rules every backend shares
//! (customers first, unknown customers refused, duplicates and conflicts told apart, newest
//! version wins); a backend only supplies the SQL, behind [`batch::BatchTransaction`].

mod audit;
mod batch;
mod coalesce;
mod decisions;
mod fingerprint;
mod group_commit;
mod history;
mod migrations;
mod postgres;
mod registry;
mod rows;
mod serving;
mod sql;
mod sqlite;
mod statements;
mod tables;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::decision::Decision;
use crate::decision::funnel::FunnelInput;
use crate::domain::{CaseId, CustomerId, Record, RecordKind, RecoveryCase, Timestamp, shortened};
use crate::model::ModelKind;

pub use audit::{AuditEvent, AuditQuery};
pub use batch::Outcome;
pub use history::CustomerRecords;
use postgres::PostgresStore;
pub use postgres::follow_activations;
pub use registry::{ModelStatus, StoredModel};
pub use serving::Completion;
use sqlite::SqliteStore;

/// Failures of the store itself, as opposed to records it refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; retrying later may succeed.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database URL or options are unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("failed to apply database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database holds something this build cannot read.
    #[error("the database holds data this build cannot read: {0}")]
    Corrupt(String),
    /// The database (or its disk, or its configured size) is full; writes succeed again once
    /// space is freed, without a restart.
    #[error("the database is out of space")]
    Full(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // A protocol error is a conversation cut short or garbled on the way (a
            // connection dropped mid-handshake, a proxy between): the database itself may be
            // fine a moment later.
            sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error),
            sqlx::Error::Database(ref db) if is_transient(db.code().as_deref()) => {
                Self::Unavailable(error)
            }
            // SQLite: SQLITE_FULL. PostgreSQL: disk_full.
            sqlx::Error::Database(ref db)
                if matches!(db.code().as_deref(), Some("13" | "53100")) =>
            {
                Self::Full(error)
            }
            other => Self::Database(other),
        }
    }
}

/// Database error codes that mean "try again later" rather than "this is wrong".
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        // SQLite: busy, locked. PostgreSQL: serialization failure, deadlock, too many
        // connections, admin shutdown, cannot connect now.
        Some("5" | "6" | "40001" | "40P01" | "53300" | "57P01" | "57P03")
    )
}

/// How many records of each kind are stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordCounts(pub BTreeMap<RecordKind, u64>);

impl RecordCounts {
    pub fn get(&self, kind: RecordKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How a store's connection pools are used at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub in_use: u32,
    pub idle: u32,
    /// The most connections the pools open.
    pub max: u32,
}

impl std::ops::Add for PoolUsage {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            in_use: self.in_use + other.in_use,
            idle: self.idle + other.idle,
            max: self.max + other.max,
        }
    }
}

/// Everything the service persists.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;

    /// Writes `records` in one transaction and judges each one; outcomes come back in input
    /// order. Either every accepted record is committed or the call fails and none is.
    async fn write_batch(&self, records: &[Record]) -> Result<Vec<Outcome>, StoreError>;

    /// How many records of each kind are stored.
    async fn counts(&self) -> Result<RecordCounts, StoreError>;

    /// Whether the database answers, through every pool the store writes and reads with.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The connections of every pool the store holds, summed.
    fn pool_usage(&self) -> PoolUsage;

    /// The stored version of a recovery case.
    async fn recovery_case(&self, case_id: &CaseId) -> Result<Option<RecoveryCase>, StoreError>;

    /// A customer with everything stored about them, from their serving state (one indexed
    /// read, or a read of its version when this process holds it decoded) when it is
    /// complete, otherwise from the tables.
    async fn customer_records(
        &self,
        customer_id: &CustomerId,
    ) -> Result<Option<Arc<CustomerRecords>>, StoreError>;

    /// A customer with everything stored about them, read from every table whatever their
    /// serving state holds: the reference the serving state equals.
    async fn customer_records_from_tables(
        &self,
        customer_id: &CustomerId,
    ) -> Result<Option<CustomerRecords>, StoreError>;

    /// Rebuilds from the tables the serving state of up to `limit` customers after `after`
    /// whose state is missing (stored before states were kept), incomplete or of another
    /// format. Safe beside writes and beside other processes doing the same.
    async fn complete_serving_states(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Completion, StoreError>;

    /// The latest time a churn outcome was observed: labels are known up to it.
    async fn latest_churn_observation(
        &self,
    ) -> Result<Option<crate::domain::Timestamp>, StoreError>;

    /// Registers a model version as a candidate. Fails if the version exists.
    async fn insert_model(&self, model: &StoredModel) -> Result<(), StoreError>;

    /// Every version of `kind`, newest first.
    async fn models(&self, kind: ModelKind) -> Result<Vec<StoredModel>, StoreError>;

    async fn model(&self, version: &str) -> Result<Option<StoredModel>, StoreError>;

    async fn active_model(&self, kind: ModelKind) -> Result<Option<StoredModel>, StoreError>;

    /// Makes `version` the active one of its kind and retires the one it replaces, in one
    /// transaction. `None` if there is no such version.
    async fn activate_model(
        &self,
        version: &str,
        at: crate::domain::Timestamp,
    ) -> Result<Option<StoredModel>, StoreError>;

    /// The version of `kind` that was active most recently before the current one.
    async fn previously_active_model(
        &self,
        kind: ModelKind,
    ) -> Result<Option<StoredModel>, StoreError>;

    /// Up to `limit` customers with everything stored about them, in customer-id order,
    /// starting after `after`; an empty page means there are no more.
    async fn customer_page(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerRecords>, StoreError>;

    /// Appends an event to the audit trail.
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError>;

    /// Audit events, newest first, as `query` selects.
    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;

    /// Stores a recovery decision.
    async fn insert_decision(&self, decision: &Decision) -> Result<(), StoreError>;

    /// The decisions made for `[from, to)` (by `as_of`), with the recovery cases and churn
    /// outcomes of their customers.
    async fn funnel_input(&self, from: Timestamp, to: Timestamp)
    -> Result<FunnelInput, StoreError>;

    /// Which customer the record of `kind` with the id `id` belongs to, if it exists.
    async fn record_owner(
        &self,
        kind: RecordKind,
        id: &str,
    ) -> Result<Option<CustomerId>, StoreError>;
}

/// Database connection settings. The URL may carry a password, so it is held as a secret
/// (`secrecy`): only [`DatabaseUrl::expose`] gives it out, to connect, and every printed form
/// (`Display`, `Debug`, logs, errors) is the URL with its password and password parameters
/// replaced by `***`, worked out once by a URL parser.
#[derive(Clone)]
pub struct DatabaseUrl {
    secret: SecretString,
    shown: String,
}

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        let url: String = url.into();
        let shown = redacted(&url);
        Self {
            secret: SecretString::from(url),
            shown,
        }
    }

    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    pub fn backend(&self) -> Result<Backend, StoreError> {
        let url = self.expose();
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {self}: use sqlite://FILE or postgres://…"
            )))
        }
    }
}

/// `url` with its password and any `password`-like query parameter replaced; a URL that does
/// not parse shows only its scheme, since where a password sits in it cannot be known.
fn redacted(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut parsed) = url::Url::parse(url) else {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        return format!("{}:<unparsed URL>", shortened(scheme, 32));
    };
    if parsed.password().is_some() {
        // Only URLs that cannot carry credentials refuse a password; they have none.
        let _ = parsed.set_password(Some(HIDDEN));
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(key, value)| {
            let secret = key.to_ascii_lowercase().contains("password");
            (
                key.into_owned(),
                if secret {
                    HIDDEN.to_owned()
                } else {
                    value.into_owned()
                },
            )
        })
        .collect();
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Read from a settings file as the plain string it is written as.
impl<'de> serde::Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown)
    }
}

/// How a store is opened, on either backend: its pools, SQLite's size limit, its cache.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
    /// SQLite: the most the database file may grow to, in bytes (its `max_page_count`);
    /// `None` lets it fill the disk.
    pub sqlite_max_bytes: Option<u64>,
    /// How much serving state, in bytes of its stored encoding, the process keeps decoded in
    /// memory for customers asked about again; 0 keeps none.
    pub serving_cache_bytes: u64,
}

/// The default of [`PoolOptions::serving_cache_bytes`]: 64 MiB of encoded state, a few thousand
/// customers with years of history.
pub const DEFAULT_SERVING_CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(5),
            sqlite_max_bytes: None,
            serving_cache_bytes: DEFAULT_SERVING_CACHE_BYTES,
        }
    }
}

/// Opens the database at `url`, creating it (SQLite) and applying migrations as needed.
pub async fn open(url: &DatabaseUrl, options: PoolOptions) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url.backend()? {
        Backend::Sqlite => Arc::new(SqliteStore::open(url, options).await?),
        Backend::Postgres => Arc::new(PostgresStore::open(url, options).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_a_displayed_url() {
        let url = DatabaseUrl::new("postgres://app:s3cret@db.internal:5432/rescue");
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db.internal:5432/rescue"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let no_password = DatabaseUrl::new("postgres://postgres@127.0.0.1/rescue");
        assert_eq!(
            no_password.to_string(),
            "postgres://postgres@127.0.0.1/rescue"
        );
        let in_query =
            DatabaseUrl::new("postgres://db/rescue?sslmode=require&password=s3cret&user=app");
        assert_eq!(
            in_query.to_string(),
            "postgres://db/rescue?sslmode=require&password=***&user=app"
        );
        let unparsed = DatabaseUrl::new("postgres://app:s3cret@[bad");
        assert!(!unparsed.to_string().contains("s3cret"), "{unparsed}");
        assert_eq!(unparsed.expose(), "postgres://app:s3cret@[bad");
        assert_eq!(
            DatabaseUrl::new("sqlite://rescue.db").to_string(),
            "sqlite://rescue.db"
        );
    }

    #[test]
    fn the_scheme_selects_the_backend() {
        assert_eq!(
            DatabaseUrl::new("sqlite://rescue.db").backend().ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            DatabaseUrl::new("postgresql://x/y").backend().ok(),
            Some(Backend::Postgres)
        );
        assert!(DatabaseUrl::new("mysql://x/y").backend().is_err());
    }
}
