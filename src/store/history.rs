//! Reading customers back with their whole history, one customer or a page of customers at a
//! time, the same way on both backends. Pages keep memory bounded however many customers the
//! store holds, which is what lets training read every customer.

use std::collections::HashMap;

use async_trait::async_trait;

use super::rows::{self, ReadRow};
use super::statements::Statements;
use super::tables::Value;
use super::{RecordCounts, StoreError, tables};
use crate::domain::{CaseId, ChurnOutcome, CustomerId, RecordKind, RecoveryCase, Timestamp};
use crate::features::History;

/// A customer's history and, when known, their churn outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecords {
    pub history: History,
    pub churn: Option<ChurnOutcome>,
}

impl CustomerRecords {
    /// Groups one customer's records (a profile and any history) the way the store returns
    /// them; `None` without a profile. Records of other customers are ignored.
    pub fn from_records(records: impl IntoIterator<Item = crate::domain::Record>) -> Option<Self> {
        use crate::domain::Record;
        let mut records: Vec<Record> = records.into_iter().collect();
        let position = records
            .iter()
            .position(|r| matches!(r, Record::Customer(_)))?;
        let Record::Customer(customer) = records.swap_remove(position) else {
            return None;
        };
        let owner = customer.customer_id.clone();
        let mut grouped = Self {
            history: History::new(customer),
            churn: None,
        };
        for record in records.into_iter().filter(|r| *r.customer_id() == owner) {
            match record {
                Record::UsageEvent(r) => grouped.history.usage.push(r),
                Record::Interaction(r) => grouped.history.interactions.push(r),
                Record::Survey(r) => grouped.history.surveys.push(r),
                Record::RecoveryCase(r) => grouped.history.recovery_cases.push(r),
                Record::ChurnOutcome(r) => grouped.churn = Some(r),
                Record::Customer(_) => {}
            }
        }
        Some(grouped)
    }
}

pub(super) type BoxedRow = Box<dyn ReadRow + Send>;

/// The queries a backend runs for history reads.
#[async_trait]
pub(super) trait RowSource: Sync {
    /// SQL testing `customer_id` against the one list parameter of [`rows_for_ids`].
    fn ids_match(&self) -> &'static str;

    /// The rows of `sql`, whose one parameter is the list `ids`.
    async fn rows_for_ids(&self, sql: String, ids: &[&str]) -> Result<Vec<BoxedRow>, StoreError>;
}

fn decode<T>(
    rows: Vec<BoxedRow>,
    decode: fn(&dyn ReadRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|row| decode(row.as_ref())).collect()
}

/// Every row of `table` for the customers `ids`, decoded.
async fn read<T>(
    source: &dyn RowSource,
    table: &tables::Table,
    ids: &[&str],
    decode_row: fn(&dyn ReadRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let sql = table.select_for_customers(source.ids_match());
    decode(source.rows_for_ids(sql, ids).await?, decode_row)
}

/// The customers of `customer_rows` with everything stored about them.
async fn assemble(
    source: &dyn RowSource,
    customer_rows: Vec<BoxedRow>,
) -> Result<Vec<CustomerRecords>, StoreError> {
    let customers = decode(customer_rows, rows::customer)?;
    let ids: Vec<&str> = customers.iter().map(|c| c.customer_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let kind = |kind| tables::table(kind);
    let usage = read(
        source,
        kind(RecordKind::UsageEvent),
        &ids,
        rows::usage_event,
    )
    .await?;
    let interactions = read(
        source,
        kind(RecordKind::Interaction),
        &ids,
        rows::interaction,
    )
    .await?;
    let surveys = read(source, kind(RecordKind::Survey), &ids, rows::survey).await?;
    let cases = read(
        source,
        kind(RecordKind::RecoveryCase),
        &ids,
        rows::recovery_case,
    )
    .await?;
    let outcomes = read(
        source,
        kind(RecordKind::ChurnOutcome),
        &ids,
        rows::churn_outcome,
    )
    .await?;
    let profile_versions = read(source, &tables::CUSTOMER_VERSIONS, &ids, rows::customer).await?;
    let case_versions = read(
        source,
        &tables::RECOVERY_CASE_VERSIONS,
        &ids,
        rows::recovery_case,
    )
    .await?;

    let position: HashMap<CustomerId, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.customer_id.clone(), i))
        .collect();
    let mut records: Vec<CustomerRecords> = customers
        .into_iter()
        .map(|customer| CustomerRecords {
            history: History::new(customer),
            churn: None,
        })
        .collect();
    let index = |customer: &CustomerId| position.get(customer).copied();
    for event in usage {
        if let Some(i) = index(&event.customer_id) {
            records[i].history.usage.push(event);
        }
    }
    for interaction in interactions {
        if let Some(i) = index(&interaction.customer_id) {
            records[i].history.interactions.push(interaction);
        }
    }
    for survey in surveys {
        if let Some(i) = index(&survey.customer_id) {
            records[i].history.surveys.push(survey);
        }
    }
    for case in cases {
        if let Some(i) = index(&case.customer_id) {
            records[i].history.recovery_cases.push(case);
        }
    }
    for outcome in outcomes {
        if let Some(i) = index(&outcome.customer_id) {
            records[i].churn = Some(outcome);
        }
    }
    for profile in profile_versions {
        if let Some(i) = index(&profile.customer_id) {
            records[i].history.profile_versions.push(profile);
        }
    }
    for case in case_versions {
        if let Some(i) = index(&case.customer_id) {
            records[i].history.case_versions.push(case);
        }
    }
    for customer in &mut records {
        customer.history.sort_canonically();
    }
    Ok(records)
}

/// A customer with everything stored about them, read from every table.
pub(super) async fn customer_records(
    source: &dyn RowSource,
    customer_id: &CustomerId,
) -> Result<Option<CustomerRecords>, StoreError> {
    Ok(customers(source, &[customer_id]).await?.into_iter().next())
}

/// The customers `ids` that are stored, with everything stored about them, in id order.
pub(super) async fn customers(
    source: &dyn RowSource,
    ids: &[&CustomerId],
) -> Result<Vec<CustomerRecords>, StoreError> {
    let sql = tables::table(RecordKind::Customer).select_for_customers(source.ids_match());
    let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    let rows = source.rows_for_ids(sql, &ids).await?;
    assemble(source, rows).await
}

/// How many rows each kind's table holds.
pub(super) async fn counts(store: &dyn Statements) -> Result<RecordCounts, StoreError> {
    let mut counts = RecordCounts::default();
    for kind in RecordKind::ALL {
        let sql = format!("SELECT COUNT(*) FROM {}", tables::table(kind).name);
        let rows = store.rows_with(&sql, &[]).await?;
        let count = rows.first().map(|row| row.big(0)).transpose()?.flatten();
        counts
            .0
            .insert(kind, count.and_then(|c| u64::try_from(c).ok()).unwrap_or(0));
    }
    Ok(counts)
}

/// The stored version of the recovery case `case_id`.
pub(super) async fn recovery_case(
    store: &dyn Statements,
    case_id: &CaseId,
) -> Result<Option<RecoveryCase>, StoreError> {
    let sql = tables::table(RecordKind::RecoveryCase).select_by_id("$1");
    let rows = store
        .rows_with(&sql, &[Value::Text(Some(case_id.as_str()))])
        .await?;
    rows.first()
        .map(|row| rows::recovery_case(row.as_ref()))
        .transpose()
}

/// The latest time a churn outcome was observed.
pub(super) async fn latest_churn_observation(
    store: &dyn Statements,
) -> Result<Option<Timestamp>, StoreError> {
    let rows = store
        .rows_with("SELECT MAX(observed_at) FROM churn_outcomes", &[])
        .await?;
    Ok(rows.first().map(|row| row.time(0)).transpose()?.flatten())
}

/// `rows` as the rows every shared query decodes.
pub(super) fn boxed<R: ReadRow + Send + 'static>(rows: Vec<R>) -> Vec<BoxedRow> {
    rows.into_iter()
        .map(|row| Box::new(row) as BoxedRow)
        .collect()
}
