//! The embedded default: one SQLite file, created and migrated on open.
//!
//! All writes go through a single connection, so batches never contend for SQLite's one
//! write lock inside this process; reads use a pool of their own. WAL mode lets reads run
//! beside a write, and `synchronous = FULL` makes a committed batch survive power loss,
//! which is what "accepted" promises.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, Transaction};

use super::batch::{self, BatchTransaction, StoredVersion};
use super::coalesce::Coalesced;
use super::decisions;
use super::group_commit::GroupCommit;
use super::history::{self, BoxedRow, RowSource};
use super::registry;
use super::rows;
use super::serving;
use super::statements::{self, Statements, Step};
use super::tables::{self, ColumnType, Value};
use super::{
    Backend, CustomerRecords, DatabaseUrl, Outcome, PoolOptions, RecordCounts, Store, StoreError,
    StoredModel,
};
use crate::decision::Decision;
use crate::decision::funnel::FunnelInput;
use crate::domain::{CaseId, CustomerId, Record, RecordKind, RecoveryCase, Timestamp};
use crate::model::ModelKind;

/// How this backend tests a column against a list of ids bound as one JSON array parameter.
const IDS_MATCH: &str = "IN (SELECT value FROM json_each(?))";

/// SQLite refuses statements with more bound parameters than this (its default limit).
const MAX_PARAMETERS: usize = 32_766;
/// 64 MiB of page cache instead of SQLite's 2 MiB default, so index pages of a large ingest
/// stay in memory instead of being re-read from disk for every random-order id.
const CACHE_KIB: i64 = 64 * 1024;
/// How long a write waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's default page size, which this store keeps.
const SQLITE_PAGE_BYTES: u64 = 4_096;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    states: Coalesced<serving::State>,
    compactions: serving::Compactions,
    decision_commits: GroupCommit<Decision>,
}

/// Trusted serving states, read in batches from `reader`.
fn state_reads(reader: SqlitePool) -> Coalesced<serving::State> {
    let sql: Arc<str> = serving::select_states(IDS_MATCH).into();
    Coalesced::start(
        Arc::new(move |ids: Vec<String>| {
            let (reader, sql) = (reader.clone(), Arc::clone(&sql));
            Box::pin(async move {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .bind(json_ids(&ids))
                    .fetch_all(&reader)
                    .await?;
                serving::trusted_states(&rows)
            })
        }),
        serving::STATE_READERS,
    )
}

impl SqliteStore {
    /// The first registry row matching `condition`, whose one parameter is `key`.
    async fn first_model(
        &self,
        condition: &str,
        key: &str,
    ) -> Result<Option<StoredModel>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(registry::select_first(condition)))
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref()
            .map(|row| registry::stored_model(row))
            .transpose()
    }

    pub async fn open(url: &DatabaseUrl, options: PoolOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", format!("-{CACHE_KIB}"));
        let writer_connect = match options.sqlite_max_bytes {
            // Pages of the default 4 KiB; the limit binds the writer, the only connection that
            // grows the file.
            Some(bytes) => connect.clone().pragma(
                "max_page_count",
                (bytes / SQLITE_PAGE_BYTES).max(1).to_string(),
            ),
            None => connect.clone(),
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(writer_connect)
            .await?;
        super::migrations::migrator(Backend::Sqlite)
            .await?
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        let states = state_reads(reader.clone());
        Ok(Self {
            writer,
            reader,
            states,
            compactions: serving::Compactions::default(),
            decision_commits: GroupCommit::default(),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn write_batch(&self, records: &[Record]) -> Result<Vec<Outcome>, StoreError> {
        let mut connection = self.writer.acquire().await?;
        let written = async {
            // IMMEDIATE takes the write lock up front, so another process cannot make this
            // transaction fail half-way when it first writes.
            let mut tx = SqliteBatch(connection.begin_with("BEGIN IMMEDIATE").await?);
            let outcomes = batch::write_batch(&mut tx, records).await?;
            tx.0.commit().await?;
            Ok(outcomes)
        }
        .await;
        if written.is_err() {
            // A write that failed in SQLite (a full disk, an I/O error) can leave the
            // connection counting a transaction SQLite already rolled back, and every later
            // BEGIN on it would fail; the pool opens a fresh one instead.
            connection.close_on_drop();
        }
        written
    }

    async fn counts(&self) -> Result<RecordCounts, StoreError> {
        tables::count_rows(&self.reader).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        tables::ping(&self.writer).await?;
        tables::ping(&self.reader).await
    }

    fn pool_usage(&self) -> super::PoolUsage {
        tables::pool_usage(&self.writer) + tables::pool_usage(&self.reader)
    }

    async fn recovery_case(&self, case_id: &CaseId) -> Result<Option<RecoveryCase>, StoreError> {
        let sql = tables::table(RecordKind::RecoveryCase).select_by_id("?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(|row| rows::recovery_case(row)).transpose()
    }

    async fn latest_churn_observation(&self) -> Result<Option<Timestamp>, StoreError> {
        let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(observed_at) FROM churn_outcomes")
            .fetch_one(&self.reader)
            .await?;
        Ok(latest.map(Timestamp::from_unix_micros))
    }

    async fn insert_model(&self, model: &StoredModel) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO models (version, kind, status, source, artifact, created_at, activated_at) \
             VALUES (?, ?, 'candidate', ?, ?, ?, NULL)",
        )
        .bind(&model.version)
        .bind(model.kind.as_str())
        .bind(&model.source)
        .bind(&model.artifact)
        .bind(model.created_at.unix_micros())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn models(&self, kind: ModelKind) -> Result<Vec<StoredModel>, StoreError> {
        let sql = format!(
            "SELECT {} FROM models WHERE kind = ? ORDER BY created_at DESC, version DESC",
            registry::COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind.as_str())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|row| registry::stored_model(row)).collect()
    }

    async fn model(&self, version: &str) -> Result<Option<StoredModel>, StoreError> {
        self.first_model(registry::BY_VERSION, version).await
    }

    async fn active_model(&self, kind: ModelKind) -> Result<Option<StoredModel>, StoreError> {
        self.first_model(registry::ACTIVE_OF_KIND, kind.as_str())
            .await
    }

    async fn activate_model(
        &self,
        version: &str,
        at: Timestamp,
    ) -> Result<Option<StoredModel>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM models WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(kind) = kind else {
            return Ok(None);
        };
        sqlx::query("UPDATE models SET status = 'retired' WHERE kind = ? AND status = 'active' AND version <> ?")
            .bind(&kind)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE models SET status = 'active', activated_at = ? WHERE version = ?")
            .bind(at.unix_micros())
            .bind(version)
            .execute(&mut *tx)
            .await?;
        let sql = registry::select_first(registry::BY_VERSION);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        let model = registry::stored_model(&row)?;
        tx.commit().await?;
        Ok(Some(model))
    }

    async fn previously_active_model(
        &self,
        kind: ModelKind,
    ) -> Result<Option<StoredModel>, StoreError> {
        self.first_model(registry::PREVIOUSLY_ACTIVE_OF_KIND, kind.as_str())
            .await
    }

    async fn customer_records(
        &self,
        customer_id: &CustomerId,
    ) -> Result<Option<CustomerRecords>, StoreError> {
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
    ) -> Result<super::Completion, StoreError> {
        serving::complete_page(self, after, limit).await
    }

    async fn customer_page(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerRecords>, StoreError> {
        serving::page(self, after, limit).await
    }

    async fn insert_audit_event(&self, event: &super::AuditEvent) -> Result<(), StoreError> {
        super::audit::insert(self, event).await
    }

    async fn audit_events(
        &self,
        query: &super::AuditQuery,
    ) -> Result<Vec<super::AuditEvent>, StoreError> {
        super::audit::events(self, query).await
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
impl Statements for SqliteStore {
    async fn execute_values(&self, sql: &str, values: &[Value<'_>]) -> Result<u64, StoreError> {
        let done = statements::bound(sql, values, Timestamp::unix_micros)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn rows_with(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> Result<Vec<BoxedRow>, StoreError> {
        let rows = statements::bound(sql, values, Timestamp::unix_micros)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Box::new(row) as BoxedRow)
            .collect())
    }

    async fn transact(&self, steps: &[Step<'_>]) -> Result<bool, StoreError> {
        let mut connection = self.writer.acquire().await?;
        let done = async {
            let tx = connection.begin_with("BEGIN IMMEDIATE").await?;
            statements::run_steps(
                tx,
                steps,
                Timestamp::unix_micros,
                sqlx::sqlite::SqliteQueryResult::rows_affected,
            )
            .await
        }
        .await;
        if done.is_err() {
            // As after a failed batch: the pool opens a fresh connection instead.
            connection.close_on_drop();
        }
        done
    }

    fn compactions(&self) -> &serving::Compactions {
        &self.compactions
    }

    fn decision_commits(&self) -> &GroupCommit<Decision> {
        &self.decision_commits
    }
}

#[async_trait]
impl RowSource for SqliteStore {
    fn ids_match(&self) -> &'static str {
        IDS_MATCH
    }

    async fn rows_for_ids(&self, sql: String, ids: &[&str]) -> Result<Vec<BoxedRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json_ids(ids))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Box::new(row) as BoxedRow)
            .collect())
    }

    async fn trusted_state(&self, customer_id: &str) -> Result<Option<serving::State>, StoreError> {
        self.states.get(customer_id).await
    }
}

struct SqliteBatch<'c>(Transaction<'c, Sqlite>);

/// SQLite has no array parameters: a list of ids travels as one JSON array.
fn json_ids(ids: &[&str]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

fn push_value<'a>(
    query: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    value: Value<'a>,
) {
    match value {
        Value::Text(v) => query.push_bind(v),
        Value::Real(v) => query.push_bind(v),
        Value::SmallInt(v) => query.push_bind(v),
        Value::Bool(v) => query.push_bind(v),
        Value::Time(v) => query.push_bind(v.map(Timestamp::unix_micros)),
        Value::BigInt(v) => query.push_bind(v),
        Value::Bytes(v) => query.push_bind(v.to_vec()),
    };
}

#[async_trait]
impl BatchTransaction for SqliteBatch<'_> {
    async fn existing_customers(&mut self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT customer_id FROM customers WHERE customer_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_ids(ids))
        .fetch_all(&mut *self.0)
        .await?;
        Ok(found.into_iter().collect())
    }

    async fn write(
        &mut self,
        kind: RecordKind,
        records: &[&Record],
    ) -> Result<HashSet<String>, StoreError> {
        let table = tables::table(kind);
        let rows_per_statement = MAX_PARAMETERS / table.columns.len();
        let head = table.insert_head();
        let tail = table.upsert_tail();
        let mut written = HashSet::with_capacity(records.len());
        for chunk in records.chunks(rows_per_statement) {
            let mut query = QueryBuilder::<Sqlite>::new(head.as_str());
            query.push_values(chunk, |mut row, record| {
                for value in tables::row(record) {
                    push_value(&mut row, value);
                }
            });
            query.push(tail.as_str());
            let ids: Vec<String> = query.build_query_scalar().fetch_all(&mut *self.0).await?;
            written.extend(ids);
        }
        Ok(written)
    }

    fn ids_match(&self) -> &'static str {
        IDS_MATCH
    }

    async fn insert_rows(
        &mut self,
        table: &str,
        columns: &[(&str, ColumnType)],
        rows: &[Vec<Value<'_>>],
        tail: &str,
    ) -> Result<(), StoreError> {
        let head = tables::insert_head(table, columns);
        for chunk in rows.chunks(MAX_PARAMETERS / columns.len().max(1)) {
            let mut query = QueryBuilder::<Sqlite>::new(head.as_str());
            query.push_values(chunk, |mut row, values| {
                for value in values {
                    push_value(&mut row, *value);
                }
            });
            query.push(tail);
            query.build().execute(&mut *self.0).await?;
        }
        Ok(())
    }

    async fn execute_for_ids(&mut self, sql: String, ids: &[&str]) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json_ids(ids))
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn stored_versions(
        &mut self,
        kind: RecordKind,
        ids: &[&str],
    ) -> Result<HashMap<String, StoredVersion>, StoreError> {
        let table = tables::table(kind);
        let sql = format!("{}{IDS_MATCH}", table.stored_versions_head());
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json_ids(ids))
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let version: Option<i64> = row.try_get(1)?;
                let fingerprint: i64 = row.try_get(2)?;
                Ok((
                    id,
                    StoredVersion {
                        version: version.map(Timestamp::from_unix_micros),
                        fingerprint,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
