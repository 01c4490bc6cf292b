//! The audit trail's rows: one per audited call, appended, read newest first in pages — the
//! same SQL on both backends.

use super::StoreError;
use super::rows::ReadRow;
use super::statements::Statements;
use super::tables::Value;
use crate::domain::Timestamp;

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub event_id: String,
    /// When the call was answered.
    pub at: Timestamp,
    /// `key:NAME`, `jwt:SUBJECT` or `anonymous`.
    pub caller: String,
    /// The RPC's name, e.g. `PromoteModel`.
    pub method: String,
    /// What the call asked for.
    pub target: String,
    /// What it changed; empty when nothing.
    pub changed: String,
    /// The gRPC code it ended with, e.g. `Ok`.
    pub code: String,
    /// The error message when it failed.
    pub message: String,
}

/// Which events to read: newest first, older than `before` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub caller: Option<String>,
    pub method: Option<String>,
    /// The `(at, event_id)` of the last event of the previous page.
    pub before: Option<(Timestamp, String)>,
    pub limit: u32,
}

const COLUMNS: &str = "event_id, at, caller, method, target, changed, code, message";

pub(super) async fn insert(source: &dyn Statements, event: &AuditEvent) -> Result<(), StoreError> {
    source
        .execute_values(
            &format!(
                "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[
                Value::Text(Some(&event.event_id)),
                Value::Time(Some(event.at)),
                Value::Text(Some(&event.caller)),
                Value::Text(Some(&event.method)),
                Value::Text(Some(&event.target)),
                Value::Text(Some(&event.changed)),
                Value::Text(Some(&event.code)),
                Value::Text(Some(&event.message)),
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn events(
    source: &dyn Statements,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut conditions = Vec::new();
    let mut bound: Vec<Value<'_>> = Vec::new();
    for (column, value) in [("caller", &query.caller), ("method", &query.method)] {
        if let Some(value) = value {
            bound.push(Value::Text(Some(value)));
            conditions.push(format!("{column} = ${}", bound.len()));
        }
    }
    if let Some((at, event_id)) = &query.before {
        bound.push(Value::Time(Some(*at)));
        let at_first = bound.len();
        bound.push(Value::Time(Some(*at)));
        bound.push(Value::Text(Some(event_id)));
        conditions.push(format!(
            "(at < ${at_first} OR (at = ${} AND event_id < ${}))",
            at_first + 1,
            at_first + 2
        ));
    }
    bound.push(Value::BigInt(i64::from(query.limit)));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events {filter} ORDER BY at DESC, event_id DESC LIMIT ${}",
        bound.len()
    );
    source
        .rows_with(&sql, &bound)
        .await?
        .iter()
        .map(|row| event(row.as_ref()))
        .collect()
}

fn event(row: &dyn ReadRow) -> Result<AuditEvent, StoreError> {
    let corrupt = |column: &str| StoreError::Corrupt(format!("audit_events.{column} is NULL"));
    let text = |i: usize, column: &str| row.text(i)?.ok_or_else(|| corrupt(column));
    Ok(AuditEvent {
        event_id: text(0, "event_id")?,
        at: row.time(1)?.ok_or_else(|| corrupt("at"))?,
        caller: text(2, "caller")?,
        method: text(3, "method")?,
        target: text(4, "target")?,
        changed: text(5, "changed")?,
        code: text(6, "code")?,
        message: text(7, "message")?,
    })
}
