//! Statements with values bound in order (`$1…$n`), which every shared query beyond the
//! ingest transaction — the registry, decisions, the audit trail, serving states, counts — is
//! written and read with, the same SQL on both backends.

use async_trait::async_trait;

use super::StoreError;
use super::history::{BoxedRow, RowSource};
use super::tables::Value;

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

    /// The serving-state compactions this store runs.
    fn compactions(&self) -> &super::serving::Compactions;

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

/// `sql` with `values` bound in order, times encoded by `time` (each backend stores them its
/// own way).
pub(super) fn bound<'q, DB, T>(
    sql: &str,
    values: &[Value<'_>],
    time: fn(crate::domain::Timestamp) -> T,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: sqlx::Database,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i16>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<T>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    T: Send + 'q,
{
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for value in values {
        query = match *value {
            Value::Text(v) => query.bind(v.map(str::to_owned)),
            Value::Real(v) => query.bind(v),
            Value::SmallInt(v) => query.bind(v),
            Value::Bool(v) => query.bind(v),
            Value::Time(v) => query.bind(v.map(time)),
            Value::BigInt(v) => query.bind(v),
            Value::Bytes(v) => query.bind(v.to_vec()),
        };
    }
    query
}

/// Runs `steps` in `tx` as [`Statements::transact`] describes, then commits or rolls back;
/// `rows_affected` reads the backend's result of a statement.
pub(super) async fn run_steps<DB, T>(
    mut tx: sqlx::Transaction<'_, DB>,
    steps: &[Step<'_>],
    time: fn(crate::domain::Timestamp) -> T,
    rows_affected: fn(&DB::QueryResult) -> u64,
) -> Result<bool, StoreError>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i16>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<T>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    T: Send + 'static,
{
    for step in steps {
        let changed = bound(step.sql, &step.values, time)
            .execute(&mut *tx)
            .await?;
        if !step.as_expected(rows_affected(&changed)) {
            tx.rollback().await?;
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}
