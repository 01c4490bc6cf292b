//! Statements with values bound in order (`$1…$n`), which the tables beyond the customer data
//! — decisions, the audit trail — are written and read with, the same SQL on both backends.

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
