//! The one SQL store: every [`Store`] operation written once, over a [`Dialect`] that holds
//! what the two databases do differently — their connection pools, how a write transaction
//! begins, how a list of ids and a time are bound, and the batched insert form. The queries
//! themselves live with what they are about (`registry`, `history`, `serving`, `decisions`,
//! `audit`) and run through [`Statements`], the same SQL on both backends.

use std::sync::Arc;

use async_trait::async_trait;

use super::group_commit::GroupCommit;
use super::history::{self, BoxedRow, RowSource};
use super::statements::{Encoding, On, Pools, Sql, Statements, Step};
use super::tables::{self, Value};
use super::{
    AuditEvent, AuditQuery, Backend, Completion, CustomerRecords, DatabaseUrl, Outcome,
    PoolOptions, PoolUsage, RecordCounts, Store, StoreError, StoredModel, audit, decisions,
    registry, serving,
};
use crate::decision::Decision;
use crate::decision::funnel::FunnelInput;
use crate::domain::{CaseId, CustomerId, Record, RecordKind, RecoveryCase, Timestamp};
use crate::model::ModelKind;

/// What one database does its own way; everything else is [`SqlStore`]'s.
#[async_trait]
pub(super) trait Dialect: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The database, with how it encodes times and id lists.
    type Database: Sql;

    /// Connects to `url` and applies the migrations.
    async fn connect(url: &DatabaseUrl, options: PoolOptions) -> Result<Self, StoreError>;

    /// Writes `records` in one write transaction through `batch::write_batch`, committed
    /// only if it succeeds.
    async fn write_batch(&self, records: &[Record]) -> Result<Vec<Outcome>, StoreError>;

    /// As [`Statements::transact`].
    async fn transact(&self, steps: &[Step<'_>]) -> Result<bool, StoreError>;

    /// The pools statements run on.
    fn pools(&self) -> Pools<'_, Self::Database>;
}

/// A store on the database `D` speaks to.
#[derive(Debug, Clone)]
pub(super) struct SqlStore<D> {
    database: D,
    state_reads: serving::StateReads,
    decision_commits: GroupCommit<Decision>,
}

impl<D: Dialect> SqlStore<D> {
    /// Connects to `url`, creating the database where the backend does (SQLite), and applies
    /// the migrations.
    pub(super) async fn open(url: &DatabaseUrl, options: PoolOptions) -> Result<Self, StoreError> {
        let database = D::connect(url, options).await?;
        Ok(Self {
            state_reads: state_reads(database.clone(), options.serving_cache_bytes),
            database,
            decision_commits: GroupCommit::default(),
        })
    }
}

/// Serving states read from `database`'s readers, with up to `cache_bytes` of them cached.
fn state_reads<D: Dialect>(database: D, cache_bytes: u64) -> serving::StateReads {
    let fetch: serving::FetchForIds = Arc::new(move |sql: Arc<str>, ids: Vec<String>| {
        let database = database.clone();
        Box::pin(async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            D::Database::fetch_for_ids(On::Pool(database.pools().reader()), &sql, &ids).await
        })
    });
    serving::StateReads::start(fetch, D::Database::IDS_MATCH, cache_bytes)
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    fn backend(&self) -> Backend {
        D::Database::BACKEND
    }

    async fn write_batch(&self, records: &[Record]) -> Result<Vec<Outcome>, StoreError> {
        self.database.write_batch(records).await
    }

    async fn counts(&self) -> Result<RecordCounts, StoreError> {
        history::counts(self).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        for pool in self.database.pools().each() {
            D::Database::ping(pool).await?;
        }
        Ok(())
    }

    fn pool_usage(&self) -> PoolUsage {
        let pools = self.database.pools();
        pools
            .each()
            .map(tables::pool_usage)
            .fold(PoolUsage::default(), |a, b| a + b)
    }

    async fn recovery_case(&self, case_id: &CaseId) -> Result<Option<RecoveryCase>, StoreError> {
        history::recovery_case(self, case_id).await
    }

    async fn customer_records(
        &self,
        customer_id: &CustomerId,
    ) -> Result<Option<Arc<CustomerRecords>>, StoreError> {
        serving::customer_records(self, customer_id).await
    }

    async fn customer_records_from_tables(
        &self,
        customer_id: &CustomerId,
    ) -> Result<Option<CustomerRecords>, StoreError> {
        history::customer_records(self, customer_id).await
    }

    async fn complete_serving_states(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Completion, StoreError> {
        serving::complete_page(self, after, limit).await
    }

    async fn latest_churn_observation(&self) -> Result<Option<Timestamp>, StoreError> {
        history::latest_churn_observation(self).await
    }

    async fn insert_model(&self, model: &StoredModel) -> Result<(), StoreError> {
        registry::insert(self, model).await
    }

    async fn models(&self, kind: ModelKind) -> Result<Vec<StoredModel>, StoreError> {
        registry::of_kind(self, kind).await
    }

    async fn model(&self, version: &str) -> Result<Option<StoredModel>, StoreError> {
        registry::first(self, registry::BY_VERSION, version).await
    }

    async fn active_model(&self, kind: ModelKind) -> Result<Option<StoredModel>, StoreError> {
        registry::first(self, registry::ACTIVE_OF_KIND, kind.as_str()).await
    }

    async fn activate_model(
        &self,
        version: &str,
        at: Timestamp,
    ) -> Result<Option<StoredModel>, StoreError> {
        registry::activate(self, version, at).await
    }

    async fn previously_active_model(
        &self,
        kind: ModelKind,
    ) -> Result<Option<StoredModel>, StoreError> {
        registry::first(self, registry::PREVIOUSLY_ACTIVE_OF_KIND, kind.as_str()).await
    }

    async fn customer_page(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerRecords>, StoreError> {
        serving::page(self, after, limit).await
    }

    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        audit::insert(self, event).await
    }

    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        audit::events(self, query).await
    }

    async fn insert_decision(&self, decision: &Decision) -> Result<(), StoreError> {
        decisions::insert(self, decision).await
    }

    async fn funnel_input(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<FunnelInput, StoreError> {
        decisions::funnel_input(self, from, to).await
    }

    async fn record_owner(
        &self,
        kind: RecordKind,
        id: &str,
    ) -> Result<Option<CustomerId>, StoreError> {
        decisions::record_owner(self, kind, id).await
    }
}

#[async_trait]
impl<D: Dialect> Statements for SqlStore<D> {
    async fn execute_values(&self, sql: &str, values: &[Value<'_>]) -> Result<u64, StoreError> {
        D::Database::execute(self.database.pools().writer, sql, values).await
    }

    async fn rows_with(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<Vec<BoxedRow>, StoreError> {
        D::Database::fetch(self.database.pools().reader(), sql, values).await
    }

    async fn transact(&self, steps: &[Step<'_>]) -> Result<bool, StoreError> {
        self.database.transact(steps).await
    }

    fn state_reads(&self) -> &serving::StateReads {
        &self.state_reads
    }

    fn decision_commits(&self) -> &GroupCommit<Decision> {
        &self.decision_commits
    }
}

#[async_trait]
impl<D: Dialect> RowSource for SqlStore<D> {
    fn ids_match(&self) -> &'static str {
        D::Database::IDS_MATCH
    }

    async fn rows_for_ids(&self, sql: String, ids: &[&str]) -> Result<Vec<BoxedRow>, StoreError> {
        D::Database::fetch_for_ids(On::Pool(self.database.pools().reader()), &sql, ids).await
    }
}
