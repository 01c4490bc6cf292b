//! PostgreSQL's dialect of the store: the shared database when one machine is not enough.
//! Every replica of the service connects to the same database; transactions keep batches
//! atomic across them.
//!
//! A batch of rows travels as one array per column and is expanded by `UNNEST`, so a whole
//! batch is one statement whatever its size.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Postgres, Row, Transaction};

use super::batch::{self, BatchTransaction, Insert, Written};
use super::history::BoxedRow;
use super::sql::{Dialect, SqlStore};
use super::statements::{self, Encoding, IdLists, On, Pools, Sql, Step};
use super::tables::{self, ColumnType, Value};
use super::{Backend, DatabaseUrl, Outcome, PoolOptions, StoreError};
use crate::domain::{Record, RecordKind, Timestamp};

/// A store on a PostgreSQL database, shared by every replica.
pub(super) type PostgresStore = SqlStore<PostgresDb>;

/// How this backend tests a column against a list of ids bound as one array parameter.
const IDS_MATCH: &str = "= ANY($1)";
/// The ids of that parameter as rows. (`IN` over it rather than `= ANY`, where a table is
/// about the size of the list: under a prepared statement's generic plan PostgreSQL tests
/// `= ANY` by scanning the array for every row it reads, a quadratic sequential scan.)
const ID_LIST: &str = "SELECT unnest($1::text[])";

/// The database's connection pool.
#[derive(Debug, Clone)]
pub(super) struct PostgresDb {
    pool: PgPool,
}

#[async_trait]
impl Dialect for PostgresDb {
    type Database = Postgres;

    async fn connect(url: &DatabaseUrl, options: PoolOptions) -> Result<Self, StoreError> {
        let connect: PgConnectOptions = statements::connect_options(url)?;
        let pool = statements::open_pool(options.max_connections, &options, connect).await?;
        // The migrator takes an advisory lock, so replicas starting together migrate once.
        super::migrations::migrator(Backend::Postgres)
            .await?
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    async fn write_batch(&self, records: &[Record]) -> Result<Vec<Outcome>, StoreError> {
        let mut tx = PostgresBatch(self.pool.begin().await?);
        let outcomes = batch::write_batch(&mut tx, records).await?;
        tx.0.commit().await?;
        Ok(outcomes)
    }

    async fn transact(&self, steps: &[Step<'_>]) -> Result<bool, StoreError> {
        Postgres::run_steps(self.pool.begin().await?, steps).await
    }

    fn pools(&self) -> Pools<'_, Postgres> {
        Pools::shared(&self.pool)
    }
}

/// The channel the `models_activation` trigger notifies (see migration 0002).
const ACTIVATION_CHANNEL: &str = "rescue_model_activated";

/// Sends the kind of every model activated in the database, by any replica, until `notices`
/// is closed. Reconnects after a lost connection, so a restart of PostgreSQL costs at most
/// the notices sent while it was down.
pub async fn follow_activations(url: &DatabaseUrl, notices: tokio::sync::mpsc::Sender<String>) {
    loop {
        match sqlx::postgres::PgListener::connect(url.expose()).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(ACTIVATION_CHANNEL).await {
                    tracing::warn!(%error, "cannot listen for model activations");
                } else {
                    // `recv` reconnects by itself after a lost connection.
                    while let Ok(notice) = listener.recv().await {
                        if notices.send(notice.payload().to_owned()).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot connect to listen for model activations"),
        }
        if notices.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

impl Encoding for Postgres {
    const BACKEND: Backend = Backend::Postgres;
    const IDS_MATCH: &'static str = IDS_MATCH;
    const ID_LIST: &'static str = ID_LIST;

    type Time = DateTime<Utc>;
    /// A `text[]`.
    type Ids = Vec<String>;

    fn time(at: Timestamp) -> DateTime<Utc> {
        to_datetime(at)
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

struct PostgresBatch(Transaction<'static, Postgres>);

fn to_datetime(at: Timestamp) -> DateTime<Utc> {
    let (seconds, nanos) = at.to_seconds_nanos();
    // Every stored timestamp passed `TimestampBounds`, well inside chrono's range.
    DateTime::from_timestamp(seconds, nanos).unwrap_or_default()
}

/// One column of a batch, as the typed array PostgreSQL receives.
enum ColumnArray<'a> {
    Text(Vec<Option<&'a str>>),
    Real(Vec<Option<f64>>),
    SmallInt(Vec<Option<i16>>),
    Bool(Vec<Option<bool>>),
    Time(Vec<Option<DateTime<Utc>>>),
    BigInt(Vec<i64>),
    Bytes(Vec<&'a [u8]>),
}

impl<'a> ColumnArray<'a> {
    fn new(ty: ColumnType, capacity: usize) -> Self {
        match ty {
            ColumnType::Text => Self::Text(Vec::with_capacity(capacity)),
            ColumnType::Real => Self::Real(Vec::with_capacity(capacity)),
            ColumnType::SmallInt => Self::SmallInt(Vec::with_capacity(capacity)),
            ColumnType::Bool => Self::Bool(Vec::with_capacity(capacity)),
            ColumnType::Time => Self::Time(Vec::with_capacity(capacity)),
            ColumnType::BigInt => Self::BigInt(Vec::with_capacity(capacity)),
            ColumnType::Bytes => Self::Bytes(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, value: Value<'a>) {
        match (self, value) {
            (Self::Text(column), Value::Text(v)) => column.push(v),
            (Self::Real(column), Value::Real(v)) => column.push(v),
            (Self::SmallInt(column), Value::SmallInt(v)) => column.push(v),
            (Self::Bool(column), Value::Bool(v)) => column.push(v),
            (Self::Time(column), Value::Time(v)) => column.push(v.map(to_datetime)),
            (Self::BigInt(column), Value::BigInt(v)) => column.push(v),
            (Self::Bytes(column), Value::Bytes(v)) => column.push(v),
            // `tables` pairs every value with its column's type; a unit test holds it to that.
            (_, value) => unreachable!("value {value:?} does not match its column type"),
        }
    }

    fn sql_type(ty: ColumnType) -> &'static str {
        match ty {
            ColumnType::Text => "text[]",
            ColumnType::Real => "float8[]",
            ColumnType::SmallInt => "int2[]",
            ColumnType::Bool => "bool[]",
            ColumnType::Time => "timestamptz[]",
            ColumnType::BigInt => "int8[]",
            ColumnType::Bytes => "bytea[]",
        }
    }
}

/// `SELECT * FROM UNNEST($1::t1[], …)`: rows from one array parameter per column.
fn unnest(columns: &[(&str, ColumnType)]) -> String {
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, &(_, ty))| format!("${}::{}", i + 1, ColumnArray::sql_type(ty)))
        .collect();
    format!("SELECT * FROM UNNEST({})", arrays.join(", "))
}

/// The values of `rows` as one array per column of `columns`.
fn column_arrays<'a>(
    columns: &[(&str, ColumnType)],
    rows: impl ExactSizeIterator<Item = Vec<Value<'a>>>,
) -> Vec<ColumnArray<'a>> {
    let mut arrays: Vec<ColumnArray<'a>> = columns
        .iter()
        .map(|&(_, ty)| ColumnArray::new(ty, rows.len()))
        .collect();
    for row in rows {
        for (column, value) in arrays.iter_mut().zip(row) {
            column.push(value);
        }
    }
    arrays
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds each column array, in order, as one parameter.
fn bind_columns<'q>(mut query: PgQuery<'q>, columns: &'q [ColumnArray<'q>]) -> PgQuery<'q> {
    for column in columns {
        query = match column {
            ColumnArray::Text(v) => query.bind(v.as_slice()),
            ColumnArray::Real(v) => query.bind(v.as_slice()),
            ColumnArray::SmallInt(v) => query.bind(v.as_slice()),
            ColumnArray::Bool(v) => query.bind(v.as_slice()),
            ColumnArray::Time(v) => query.bind(v.as_slice()),
            ColumnArray::BigInt(v) => query.bind(v.as_slice()),
            ColumnArray::Bytes(v) => query.bind(v.as_slice()),
        };
    }
    query
}

#[async_trait]
impl BatchTransaction for PostgresBatch {
    async fn write(&mut self, kind: RecordKind, records: &[&Record]) -> Written {
        let table = tables::table(kind);
        let columns = column_arrays(table.columns, records.iter().map(|r| tables::row(r)));
        let insert = format!("{}{}", table.insert_head(), unnest(table.columns));

        // Fast path for immutable kinds: a plain INSERT is markedly cheaper for PostgreSQL than
        // ON CONFLICT's speculative insertion, and new events are the common case. If any id
        // is already stored, the savepoint undoes the attempt and the general path sorts it out.
        if table.version_column.is_none() {
            sqlx::query("SAVEPOINT plain_insert")
                .execute(&mut *self.0)
                .await?;
            let attempt = bind_columns(sqlx::query(sqlx::AssertSqlSafe(insert.clone())), &columns)
                .execute(&mut *self.0)
                .await;
            match attempt {
                Ok(_) => {
                    sqlx::query("RELEASE SAVEPOINT plain_insert")
                        .execute(&mut *self.0)
                        .await?;
                    return Ok(records.iter().map(|r| r.id().to_owned()).collect());
                }
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    sqlx::query("ROLLBACK TO SAVEPOINT plain_insert")
                        .execute(&mut *self.0)
                        .await?;
                }
                Err(error) => return Err(error.into()),
            }
        }

        let upsert = format!("{insert}{}", table.upsert_tail());
        let written = bind_columns(sqlx::query(sqlx::AssertSqlSafe(upsert)), &columns)
            .fetch_all(&mut *self.0)
            .await?;
        written
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    fn id_lists(&self) -> IdLists {
        IdLists::of::<Postgres>()
    }

    async fn rows_for_ids(&mut self, sql: &str, ids: &[&str]) -> Result<Vec<BoxedRow>, StoreError> {
        Postgres::fetch_for_ids(On::Connection(&mut *self.0), sql, ids).await
    }

    async fn insert_rows(&mut self, insert: Insert<'_>) -> Result<(), StoreError> {
        let arrays = column_arrays(insert.columns, insert.rows.iter().cloned());
        let sql = format!(
            "{}{}{}",
            tables::insert_head(insert.table, insert.columns),
            unnest(insert.columns),
            insert.tail
        );
        bind_columns(sqlx::query(sqlx::AssertSqlSafe(sql)), &arrays)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}
