//! Stored recovery decisions: the row of one decision, and the reads the program's funnel
//! needs — the decisions of a window with the recovery cases and churn outcomes of their
//! customers — the same way on both backends.

use std::collections::BTreeSet;

use futures::future::BoxFuture;

use super::StoreError;
use super::rows::{self, ReadRow};
use super::statements::{Statements, Step};
use super::tables::{self, Value};
use crate::decision::Decision;
use crate::decision::funnel::{FunnelDecision, FunnelInput};
use crate::domain::{CustomerId, RecordKind, Timestamp};

const COLUMNS: &[&str] = &[
    "decision_id",
    "decided_at",
    "as_of",
    "customer_id",
    "segment",
    "customer_value",
    "trigger_interaction_id",
    "trigger_survey_id",
    "trigger_at",
    "tag",
    "eligible",
    "holdout",
    "invest",
    "would_invest",
    "action",
    "cost",
    "expected_uplift",
    "expected_value",
    "net_value",
    "approval",
    "respond_by",
    "churn_probability",
    "health_score",
    "health_model_version",
    "uplift_source",
    "uplift_version",
    "program_version",
    "reasons",
];

fn insert_sql() -> String {
    let placeholders: Vec<String> = (1..=COLUMNS.len()).map(|i| format!("${i}")).collect();
    format!(
        // A decision id is new to the table unless this very decision was committed before:
        // a write retried after its commit was cut off must not fail on itself.
        "INSERT INTO decisions ({}) VALUES ({}) ON CONFLICT (decision_id) DO NOTHING",
        COLUMNS.join(", "),
        placeholders.join(", ")
    )
}

/// The values of `decision`, in [`COLUMNS`] order.
fn values<'a>(d: &'a Decision, reasons: &'a str) -> Vec<Value<'a>> {
    let best = d.recommended();
    let trigger = d.trigger.as_ref();
    vec![
        Value::Text(Some(&d.decision_id)),
        Value::Time(Some(d.decided_at)),
        Value::Time(Some(d.as_of)),
        Value::Text(Some(d.customer_id.as_str())),
        Value::Text(Some(d.segment.as_str())),
        Value::Real(Some(d.customer_value)),
        Value::Text(
            trigger
                .and_then(|t| t.interaction_id.as_ref())
                .map(|id| id.as_str()),
        ),
        Value::Text(
            trigger
                .and_then(|t| t.survey_id.as_ref())
                .map(|id| id.as_str()),
        ),
        Value::Time(trigger.map(|t| t.at)),
        Value::Text(d.tag.map(|t| t.as_str())),
        Value::Bool(Some(d.eligible)),
        Value::Bool(Some(d.holdout)),
        Value::Bool(Some(d.invest)),
        Value::Bool(Some(d.would_invest)),
        Value::Text(best.map(|b| b.action.as_str())),
        Value::Real(best.map(|b| b.cost)),
        Value::Real(best.map(|b| b.retention.uplift())),
        Value::Real(best.map(|b| b.expected_value)),
        Value::Real(best.map(|b| b.net_value)),
        Value::Text(best.map(|b| b.approval.as_str())),
        Value::Time(d.respond_by),
        Value::Real(Some(d.churn_probability)),
        Value::Real(Some(d.health_score)),
        Value::Text(Some(&d.health_model_version)),
        Value::Text(Some(d.uplift_source.as_str())),
        Value::Text(Some(&d.uplift_version)),
        Value::Text(Some(&d.program_version)),
        Value::Text(Some(reasons)),
    ]
}

/// Stores `decision`, committed together with the decisions of concurrent callers.
pub(super) async fn insert<S: Statements + Clone + Send + Sync + 'static>(
    store: &S,
    decision: &Decision,
) -> Result<(), StoreError> {
    store
        .decision_commits()
        .write(store, decision.clone(), insert_all::<S>)
        .await
}

/// Stores `decisions` in one transaction.
fn insert_all<'a, S: Statements>(
    store: &'a S,
    decisions: &'a [Decision],
) -> BoxFuture<'a, Result<(), StoreError>> {
    Box::pin(async move {
        let sql = insert_sql();
        let reasons: Vec<String> = decisions.iter().map(|d| d.reasons.join("\n")).collect();
        let steps: Vec<Step<'_>> = decisions
            .iter()
            .zip(&reasons)
            .map(|(decision, reasons)| Step {
                sql: &sql,
                values: values(decision, reasons),
                changes: None,
            })
            .collect();
        store.transact(&steps).await?;
        Ok(())
    })
}

/// The columns [`funnel_decision`] reads, in order.
const FUNNEL_COLUMNS: &str = "customer_id, as_of, decided_at, trigger_interaction_id, \
     trigger_survey_id, segment, tag, eligible, holdout, invest, would_invest, customer_value";

fn funnel_decision(row: &dyn ReadRow) -> Result<FunnelDecision, StoreError> {
    let corrupt =
        |column: &str| StoreError::Corrupt(format!("decisions.{column} is NULL or invalid"));
    let text = |i: usize, column: &str| row.text(i)?.ok_or_else(|| corrupt(column));
    let time = |i: usize, column: &str| row.time(i)?.ok_or_else(|| corrupt(column));
    let flag = |i: usize, column: &str| row.flag(i)?.ok_or_else(|| corrupt(column));
    let name_error = |e: crate::domain::UnknownName| StoreError::Corrupt(e.to_string());
    Ok(FunnelDecision {
        customer_id: CustomerId::parse(text(0, "customer_id")?)
            .map_err(|_| corrupt("customer_id"))?,
        as_of: time(1, "as_of")?,
        decided_at: time(2, "decided_at")?,
        trigger_interaction_id: row.text(3)?,
        trigger_survey_id: row.text(4)?,
        segment: text(5, "segment")?.parse().map_err(name_error)?,
        tag: row
            .text(6)?
            .map(|t| t.parse())
            .transpose()
            .map_err(name_error)?,
        eligible: flag(7, "eligible")?,
        holdout: flag(8, "holdout")?,
        invest: flag(9, "invest")?,
        would_invest: flag(10, "would_invest")?,
        customer_value: row.real(11)?.ok_or_else(|| corrupt("customer_value"))?,
    })
}

/// The decisions made for `[from, to)` (by `as_of`), with their customers' recovery cases
/// and churn outcomes.
pub(super) async fn funnel_input(
    source: &dyn Statements,
    from: Timestamp,
    to: Timestamp,
) -> Result<FunnelInput, StoreError> {
    let sql = format!(
        "SELECT {FUNNEL_COLUMNS} FROM decisions WHERE as_of >= $1 AND as_of < $2 ORDER BY as_of, decided_at"
    );
    let decisions = source
        .rows_with(&sql, &[Value::Time(Some(from)), Value::Time(Some(to))])
        .await?
        .iter()
        .map(|row| funnel_decision(row.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let customers: BTreeSet<&str> = decisions.iter().map(|d| d.customer_id.as_str()).collect();
    let ids: Vec<&str> = customers.into_iter().collect();
    if ids.is_empty() {
        return Ok(FunnelInput::default());
    }
    let select = |kind| tables::table(kind).select_for_customers(source.ids_match());
    let cases = source
        .rows_for_ids(select(RecordKind::RecoveryCase), &ids)
        .await?
        .iter()
        .map(|row| rows::recovery_case(row.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let churn = source
        .rows_for_ids(select(RecordKind::ChurnOutcome), &ids)
        .await?
        .iter()
        .map(|row| rows::churn_outcome(row.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FunnelInput {
        decisions,
        cases,
        churn,
    })
}

/// Whose record of `kind` has the id `id`, if any.
pub(super) async fn record_owner(
    source: &dyn Statements,
    kind: RecordKind,
    id: &str,
) -> Result<Option<CustomerId>, StoreError> {
    let table = tables::table(kind);
    let sql = format!(
        "SELECT customer_id FROM {} WHERE {} {}",
        table.name,
        table.id_column,
        source.ids_match()
    );
    let rows = source.rows_for_ids(sql, &[id]).await?;
    rows.first()
        .map(|row| {
            let owner = row.text(0)?.ok_or_else(|| {
                StoreError::Corrupt(format!("{}.customer_id is NULL", table.name))
            })?;
            CustomerId::parse(owner).map_err(StoreError::Corrupt)
        })
        .transpose()
}
