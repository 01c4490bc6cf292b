//! The embedded default, SQLite's dialect of the store: one file, created and migrated on
//! open.
//!
//! All writes go through a single connection, so batches never contend for SQLite's one
//! write lock inside this process; reads use a pool of their own. WAL mode lets reads run
//! beside a write, and `synchronous = FULL` makes a committed batch survive power loss,
//! which is what "accepted" promises.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, Transaction};

use super::batch::{self, BatchTransaction, Insert, Written};
use super::history::BoxedRow;
use super::sql::{Dialect, SqlStore};
use super::statements::{self, Encoding, IdLists, On, Pools, Sql, Step};
use super::tables::{self, Value};
use super::{Backend, DatabaseUrl, Outcome, PoolOptions, StoreError};
use crate::domain::{Record, RecordKind, Timestamp};

/// A store on one SQLite file.
pub(super) type SqliteStore = SqlStore<SqliteDb>;

/// SQLite has no array parameters: a list of ids travels as one JSON array, read as rows.
const ID_LIST: &str = "SELECT value FROM json_each(?)";
/// How this backend tests a column against a list of ids.
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

/// The file's connections: one writer, and a pool of readers.
#[derive(Debug, Clone)]
pub(super) struct SqliteDb {
    writer: SqlitePool,
    reader: SqlitePool,
}

#[async_trait]
impl Dialect for SqliteDb {
    type Database = Sqlite;

    async fn connect(url: &DatabaseUrl, options: PoolOptions) -> Result<Self, StoreError> {
        let connect = statements::connect_options::<SqliteConnectOptions>(url)?
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
        let writer = statements::open_pool(1, &options, writer_connect).await?;
        super::migrations::migrator(Backend::Sqlite)
            .await?
            .run(&writer)
            .await?;
        let reader = statements::open_pool(options.max_connections, &options, connect).await?;
        Ok(Self { writer, reader })
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

    async fn transact(&self, steps: &[Step<'_>]) -> Result<bool, StoreError> {
        let mut connection = self.writer.acquire().await?;
        let done = async {
            let tx = connection.begin_with("BEGIN IMMEDIATE").await?;
            Sqlite::run_steps(tx, steps).await
        }
        .await;
        if done.is_err() {
            // As after a failed batch: the pool opens a fresh connection instead.
            connection.close_on_drop();
        }
        done
    }

    fn pools(&self) -> Pools<'_, Sqlite> {
        Pools::split(&self.writer, &self.reader)
    }
}

impl Encoding for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    const IDS_MATCH: &'static str = IDS_MATCH;
    const ID_LIST: &'static str = ID_LIST;

    /// Microseconds since 1970 (UTC), an INTEGER.
    type Time = i64;
    /// A JSON array, read back as rows by [`ID_LIST`].
    type Ids = String;

    fn time(at: Timestamp) -> i64 {
        at.unix_micros()
    }

    fn ids(ids: &[&str]) -> String {
        json_ids(ids)
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
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
    async fn write(&mut self, kind: RecordKind, records: &[&Record]) -> Written {
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

    fn id_lists(&self) -> IdLists {
        IdLists::of::<Sqlite>()
    }

    async fn rows_for_ids(&mut self, sql: &str, ids: &[&str]) -> Result<Vec<BoxedRow>, StoreError> {
        Sqlite::fetch_for_ids(On::Connection(&mut *self.0), sql, ids).await
    }

    async fn insert_rows(&mut self, insert: Insert<'_>) -> Result<(), StoreError> {
        let head = tables::insert_head(insert.table, insert.columns);
        for chunk in insert
            .rows
            .chunks(MAX_PARAMETERS / insert.columns.len().max(1))
        {
            let mut query = QueryBuilder::<Sqlite>::new(head.as_str());
            query.push_values(chunk, |mut row, values| {
                for value in values {
                    push_value(&mut row, *value);
                }
            });
            query.push(insert.tail);
            query.build().execute(&mut *self.0).await?;
        }
        Ok(())
    }
}
