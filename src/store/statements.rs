//! Statements with values bound in order (`$1…$n`), which every shared query beyond the
//! ingest transaction — the registry, decisions, the audit trail, serving states, counts — is
//! written and read with, the same SQL on both backends.

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::StoreError;
use super::history::{BoxedRow, RowSource, boxed};
use super::rows::ReadRow;
use super::tables::Value;
use crate::domain::Timestamp;

#[async_trait]
pub(super) trait Statements: RowSource {
    /// Runs `sql` with `values` bound to `$1…$n`, on the writer; how many rows it changed.
    async fn execute_values(&self, sql: &str, values: &[Value<'_>]) -> Result<u64, StoreError>;

    /// The rows of `sql` with `values` bound to `$1…$n`, from a reader.
    async fn rows_with(&self, sql: &str, values: &[Value<'_>])
    -> Result<Vec<BoxedRow>, StoreError>;

    /// Runs `steps` in order in one transaction on the writer and commits them only if each
    /// changed as many rows as it expects: a compare-and-set over several statements.
    /// `false` when a step's count differed and nothing was changed.
    async fn transact(&self, steps: &[Step<'_>]) -> Result<bool, StoreError>;

    /// This store's reads of single customers' serving states.
    fn state_reads(&self) -> &super::serving::StateReads;

    /// The queue through which this store's decisions are committed together.
    fn decision_commits(&self) -> &super::group_commit::GroupCommit<crate::decision::Decision>;
}

/// One statement of [`Statements::transact`].
#[derive(Debug)]
pub(super) struct Step<'a> {
    pub sql: &'a str,
    pub values: Vec<Value<'a>>,
    /// How many rows it must change; `None` when any number will do.
    pub changes: Option<u64>,
}

impl Step<'_> {
    /// Whether `changed` rows is what the step expects.
    pub(super) fn as_expected(&self, changed: u64) -> bool {
        self.changes.is_none_or(|expected| expected == changed)
    }
}

/// What a database encodes its own way: times, a list of ids bound as one parameter, and how
/// many rows a statement changed.
pub(super) trait Encoding: sqlx::Database {
    const BACKEND: super::Backend;

    /// SQL testing a column against a list of ids bound as one parameter.
    const IDS_MATCH: &'static str;

    /// A subquery of the ids of that parameter, for `IN (…)`: joined rather than tested row
    /// by row, which PostgreSQL plans better for a table about the size of the list.
    const ID_LIST: &'static str;

    type Time: Send + 'static;
    type Ids: Send + 'static;

    fn time(at: Timestamp) -> Self::Time;

    fn ids(ids: &[&str]) -> Self::Ids;

    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// The statements every database runs the same way through sqlx, written once for any
/// database with an [`Encoding`]: the bounds sqlx needs are stated on the one implementation
/// below, not wherever a statement runs.
pub(super) trait Sql: Encoding {
    /// Runs `sql` with `values` bound to `$1…$n` on `pool`; the rows it changed.
    fn execute<'e>(
        pool: &'e sqlx::Pool<Self>,
        sql: &'e str,
        values: &'e [Value<'e>],
    ) -> BoxFuture<'e, Result<u64, StoreError>>;

    /// The rows of `sql` with `values` bound to `$1…$n`, from `pool`.
    fn fetch<'e>(
        pool: &'e sqlx::Pool<Self>,
        sql: &'e str,
        values: &'e [Value<'e>],
    ) -> BoxFuture<'e, Result<Vec<BoxedRow>, StoreError>>;

    /// The rows of `sql`, whose one parameter is the list `ids`.
    fn fetch_for_ids<'e>(
        on: On<'e, Self>,
        sql: &'e str,
        ids: &'e [&'e str],
    ) -> BoxFuture<'e, Result<Vec<BoxedRow>, StoreError>>;

    /// Runs `steps` in `tx` as [`Statements::transact`] describes, then commits or rolls back.
    fn run_steps<'t>(
        tx: sqlx::Transaction<'t, Self>,
        steps: &'t [Step<'t>],
    ) -> BoxFuture<'t, Result<bool, StoreError>>;

    /// One trivial query on `pool`: whether the database answers at all.
    fn ping(pool: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), StoreError>>;
}

impl<DB> Sql for DB
where
    DB: Encoding,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::Row: ReadRow + Send + 'static,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i16>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<DB::Time>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Ids: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    fn execute<'e>(
        pool: &'e sqlx::Pool<Self>,
        sql: &'e str,
        values: &'e [Value<'e>],
    ) -> BoxFuture<'e, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = bound::<DB>(sql, values).execute(pool).await?;
            Ok(DB::rows_affected(&done))
        })
    }

    fn fetch<'e>(
        pool: &'e sqlx::Pool<Self>,
        sql: &'e str,
        values: &'e [Value<'e>],
    ) -> BoxFuture<'e, Result<Vec<BoxedRow>, StoreError>> {
        Box::pin(async move {
            let rows = bound::<DB>(sql, values).fetch_all(pool).await?;
            Ok(boxed(rows))
        })
    }

    fn fetch_for_ids<'e>(
        on: On<'e, Self>,
        sql: &'e str,
        ids: &'e [&'e str],
    ) -> BoxFuture<'e, Result<Vec<BoxedRow>, StoreError>> {
        Box::pin(async move {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(DB::ids(ids));
            let rows = match on {
                On::Pool(pool) => query.fetch_all(pool).await?,
                On::Connection(connection) => query.fetch_all(connection).await?,
            };
            Ok(boxed(rows))
        })
    }

    fn run_steps<'t>(
        mut tx: sqlx::Transaction<'t, Self>,
        steps: &'t [Step<'t>],
    ) -> BoxFuture<'t, Result<bool, StoreError>> {
        Box::pin(async move {
            for step in steps {
                let changed = bound::<DB>(step.sql, &step.values)
                    .execute(&mut *tx)
                    .await?;
                if !step.as_expected(DB::rows_affected(&changed)) {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    fn ping(pool: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }
}

/// The pools a store runs its statements on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pools<'p, DB: sqlx::Database> {
    /// Where statements that write run.
    pub writer: &'p sqlx::Pool<DB>,
    /// Where reads run: a pool of their own, or the writer's.
    pub reader: Option<&'p sqlx::Pool<DB>>,
}

impl<'p, DB: sqlx::Database> Pools<'p, DB> {
    /// One pool for writes and reads.
    pub(super) fn shared(pool: &'p sqlx::Pool<DB>) -> Self {
        Self {
            writer: pool,
            reader: None,
        }
    }

    /// A writer's pool and a readers' pool.
    pub(super) fn split(writer: &'p sqlx::Pool<DB>, reader: &'p sqlx::Pool<DB>) -> Self {
        Self {
            writer,
            reader: Some(reader),
        }
    }

    pub(super) fn reader(&self) -> &'p sqlx::Pool<DB> {
        self.reader.unwrap_or(self.writer)
    }

    /// Every distinct pool.
    pub(super) fn each(&self) -> impl Iterator<Item = &'p sqlx::Pool<DB>> {
        std::iter::once(self.writer).chain(self.reader)
    }
}

/// A pool of at most `connections` connections made with `connect`, waiting at most
/// `options.acquire_timeout` for one.
pub(super) async fn open_pool<DB: sqlx::Database>(
    connections: u32,
    options: &super::PoolOptions,
    connect: <DB::Connection as sqlx::Connection>::Options,
) -> Result<sqlx::Pool<DB>, StoreError> {
    Ok(sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await?)
}

/// Parses `url` into a backend's connection options.
pub(super) fn connect_options<O>(url: &super::DatabaseUrl) -> Result<O, StoreError>
where
    O: std::str::FromStr,
    O::Err: std::fmt::Display,
{
    url.expose()
        .parse()
        .map_err(|e| StoreError::Config(format!("{url}: {e}")))
}

/// A database's two ways of using a list of ids bound as one parameter.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdLists {
    /// [`Encoding::IDS_MATCH`].
    pub matches: &'static str,
    /// [`Encoding::ID_LIST`].
    pub list: &'static str,
}

impl IdLists {
    pub(super) fn of<DB: Encoding>() -> Self {
        Self {
            matches: DB::IDS_MATCH,
            list: DB::ID_LIST,
        }
    }
}

/// Where a statement runs: on a pool, or on one connection (inside a transaction).
pub(super) enum On<'e, DB: sqlx::Database> {
    Pool(&'e sqlx::Pool<DB>),
    Connection(&'e mut DB::Connection),
}

/// `sql` with `values` bound in order, times encoded the database's way.
fn bound<'q, DB>(sql: &str, values: &[Value<'_>]) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Encoding,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i16>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<DB::Time>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for value in values {
        query = match *value {
            Value::Text(v) => query.bind(v.map(str::to_owned)),
            Value::Real(v) => query.bind(v),
            Value::SmallInt(v) => query.bind(v),
            Value::Bool(v) => query.bind(v),
            Value::Time(v) => query.bind(v.map(DB::time)),
            Value::BigInt(v) => query.bind(v),
            Value::Bytes(v) => query.bind(v.to_vec()),
        };
    }
    query
}
