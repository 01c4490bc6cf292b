//! Per-customer serving state: every record written for a customer, appended to their log
//! in the transaction that writes the record, so a customer is read back after one indexed
//! read instead of one query per table.
//!
//! The log holds the records themselves (every version written, in the columns of their
//! tables), not aggregates, so it serves any model and feature spec at any as-of time: a
//! history decoded from it equals the one read from the tables, field for field and in the
//! same order, which the store's property test checks. An encoding ([`codec`]) is a sequence
//! of records, so two of them concatenated are one: each ingest inserts one `serving_log` row
//! per customer it wrote to, never rewriting what is there, and a customer's state is their
//! rows concatenated in any order (the newest version of a versioned record is found by its
//! version, not by position). A state read in more than [`MAX_SEGMENTS`] rows is compacted
//! into one in the background, content unchanged.
//!
//! A state is trusted only when its head (`serving_state`) is `complete` and of this build's
//! [`FORMAT`]. A customer stored before states existed, or under another format, is read
//! from the tables until [`complete_page`] rebuilds their log from them, guarded by the head's
//! revision so a write that lands during the rebuild is never lost.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::StoreError;
use super::batch::{BatchTransaction, Insert};
use super::history::{self, CustomerRecords};
use super::rows;
use super::statements::{Statements, Step};
use super::tables::{ColumnType, Value};
use crate::domain::{CustomerId, Record, RecordKind};
use crate::features::History;

mod cache;
mod codec;
mod reads;

pub(super) use reads::{FetchForIds, State, StateReads, customer_records, page};

/// The version of the encoding in [`codec`]. Bumped when a table gains or loses a column or the
/// encoding changes: rows of another format are rebuilt from the tables, not misread.
pub(super) const FORMAT: i16 = 2;

/// The encoding of `records`, to append to their customer's state.
pub(super) fn encode<'r>(records: impl IntoIterator<Item = &'r Record>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for record in records {
        codec::put_record(&mut bytes, record);
    }
    bytes
}

/// The encoding of a whole history as read from the tables: every version of the profile
/// and of each case (the newest alone when no versions are kept), and the rest as stored.
fn encode_history(records: &CustomerRecords) -> Vec<u8> {
    let h = &records.history;
    let profiles: Vec<Record> = if h.profile_versions.is_empty() {
        vec![Record::Customer(h.customer.clone())]
    } else {
        h.profile_versions
            .iter()
            .cloned()
            .map(Record::Customer)
            .collect()
    };
    let cases = if h.case_versions.is_empty() {
        &h.recovery_cases
    } else {
        &h.case_versions
    };
    let rest = h
        .usage
        .iter()
        .cloned()
        .map(Record::UsageEvent)
        .chain(h.interactions.iter().cloned().map(Record::Interaction))
        .chain(h.surveys.iter().cloned().map(Record::Survey))
        .chain(cases.iter().cloned().map(Record::RecoveryCase))
        .chain(records.churn.iter().cloned().map(Record::ChurnOutcome));
    let all: Vec<Record> = profiles.into_iter().chain(rest).collect();
    encode(&all)
}

/// The customer's records as the tables hold them, from the encoding of every record
/// written for them; `None` when no profile was written.
pub(super) fn decode(
    customer_id: &str,
    bytes: &[u8],
) -> Result<Option<CustomerRecords>, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("serving state of {customer_id:?}: {e}"));
    let (mut profiles, mut usage, mut interactions, mut surveys, mut churn, mut cases) =
        <(Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>, Vec<_>)>::default();
    let mut records = codec::Records::new(customer_id, bytes);
    while let Some((kind, row)) = records.next_row().map_err(corrupt)? {
        match kind {
            RecordKind::Customer => profiles.push(rows::customer(&row)?),
            RecordKind::UsageEvent => usage.push(rows::usage_event(&row)?),
            RecordKind::Interaction => interactions.push(rows::interaction(&row)?),
            RecordKind::Survey => surveys.push(rows::survey(&row)?),
            RecordKind::ChurnOutcome => churn.push(rows::churn_outcome(&row)?),
            RecordKind::RecoveryCase => cases.push(rows::recovery_case(&row)?),
        }
    }
    // Every version once, oldest first; the newest is the profile the tables keep.
    profiles.sort_by_key(|p| p.updated_at);
    profiles.dedup_by_key(|p| p.updated_at);
    let Some(customer) = profiles.last().cloned() else {
        return Ok(None);
    };
    cases.sort_by(|a, b| (&a.case_id, a.updated_at).cmp(&(&b.case_id, b.updated_at)));
    cases.dedup_by(|a, b| a.case_id == b.case_id && a.updated_at == b.updated_at);
    // Versions are grouped by case, oldest first: the last of each group is the newest.
    let mut newest_cases: Vec<crate::domain::RecoveryCase> = Vec::new();
    for case in &cases {
        match newest_cases.last_mut() {
            Some(newest) if newest.case_id == case.case_id => *newest = case.clone(),
            _ => newest_cases.push(case.clone()),
        }
    }
    let mut history = History {
        customer,
        usage,
        interactions,
        surveys,
        recovery_cases: newest_cases,
        profile_versions: profiles,
        case_versions: cases,
    };
    history.sort_canonically();
    // Immutable records are appended once, when first stored; should one ever be appended
    // twice, its copies sit side by side once sorted, and one is kept.
    history.usage.dedup_by(|a, b| a.event_id == b.event_id);
    history
        .interactions
        .dedup_by(|a, b| a.interaction_id == b.interaction_id);
    history.surveys.dedup_by(|a, b| a.survey_id == b.survey_id);
    Ok(Some(CustomerRecords {
        history,
        churn: churn.into_iter().max_by_key(|c| c.observed_at),
    }))
}

/// What one batch appends to one customer's state.
#[derive(Debug)]
pub(super) struct Append<'a> {
    pub customer_id: &'a str,
    /// The customer's profile was first stored by this batch, so the appended records are
    /// their whole history.
    pub new_customer: bool,
    pub records: Vec<u8>,
}

/// The columns of `serving_log` an append gives, in [`log_row`] order.
pub(super) const LOG_COLUMNS: &[(&str, ColumnType)] = &[
    ("customer_id", ColumnType::Text),
    ("records", ColumnType::Bytes),
];

/// The columns of `serving_state`, a customer's head, in [`head_row`] order.
pub(super) const HEAD_COLUMNS: &[(&str, ColumnType)] = &[
    ("customer_id", ColumnType::Text),
    ("format", ColumnType::SmallInt),
    ("complete", ColumnType::Bool),
    ("revision", ColumnType::BigInt),
];

fn log_row<'a>(append: &'a Append<'_>) -> Vec<Value<'a>> {
    vec![
        Value::Text(Some(append.customer_id)),
        Value::Bytes(&append.records),
    ]
}

/// A new customer's head: complete, since the log holds everything written for them.
fn head_row<'a>(customer_id: &'a str) -> Vec<Value<'a>> {
    vec![
        Value::Text(Some(customer_id)),
        Value::SmallInt(Some(FORMAT)),
        Value::Bool(Some(true)),
        Value::BigInt(0),
    ]
}

/// Appends each customer's records to their log in the ingest transaction `tx`: one
/// inserted row per customer, whatever the length of their history. New customers get a
/// complete head; the head of a customer whose state is not trusted yet has its revision
/// counted up, so a rebuild from the tables that read before this write does not replace it.
/// `appends` come in customer-id order, so concurrent batches lock heads in one order.
pub(super) async fn append(
    tx: &mut dyn BatchTransaction,
    appends: &[Append<'_>],
) -> Result<(), StoreError> {
    if appends.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<Value<'_>>> = appends.iter().map(log_row).collect();
    tx.insert_rows(Insert {
        table: "serving_log",
        columns: LOG_COLUMNS,
        rows: &rows,
        tail: "",
    })
    .await?;
    let (new, existing): (Vec<&Append<'_>>, Vec<&Append<'_>>) =
        appends.iter().partition(|a| a.new_customer);
    if !new.is_empty() {
        let heads: Vec<Vec<Value<'_>>> = new.iter().map(|a| head_row(a.customer_id)).collect();
        tx.insert_rows(Insert {
            table: "serving_state",
            columns: HEAD_COLUMNS,
            rows: &heads,
            tail: " ON CONFLICT (customer_id) DO NOTHING",
        })
        .await?;
    }
    if !existing.is_empty() {
        let ids: Vec<&str> = existing.iter().map(|a| a.customer_id).collect();
        let sql = format!(
            "UPDATE serving_state SET revision = revision + 1 \
             WHERE customer_id {} AND NOT (complete AND format = {FORMAT})",
            tx.id_lists().matches
        );
        tx.rows_for_ids(&sql, &ids).await?;
    }
    Ok(())
}

/// Log rows a state is read in before it is compacted: each read costs a little per row, and a
/// customer written by many batches would otherwise be read in as many rows.
const MAX_SEGMENTS: u64 = 8;

/// Compactions running at once at most, so reads of many fragmented customers cannot queue
/// unbounded work on the writer; a state left uncompacted is compacted on a later read.
const MAX_COMPACTIONS: usize = 4;

/// The customers whose states are being compacted.
#[derive(Debug, Clone, Default)]
pub(super) struct Compactions(Arc<Mutex<HashSet<String>>>);

impl Compactions {
    /// Takes `customer_id` for one compaction, unless it is taken or too many run.
    fn claim(&self, customer_id: &str) -> Option<Claim> {
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if running.len() >= MAX_COMPACTIONS || running.contains(customer_id) {
            return None;
        }
        running.insert(customer_id.to_owned());
        Some(Claim {
            compactions: self.clone(),
            customer_id: customer_id.to_owned(),
        })
    }
}

/// One customer's compaction, released when it ends however it ends.
struct Claim {
    compactions: Compactions,
    customer_id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut running = self
            .compactions
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.remove(&self.customer_id);
    }
}

/// Compacts `state`, just read for `customer_id`, in the background if it was read in too
/// many log rows.
fn compact_soon<S: Statements + Clone + Send + 'static>(
    store: &S,
    customer_id: &str,
    state: &State,
) {
    if state.segments <= MAX_SEGMENTS {
        return;
    }
    let Some(claim) = store.state_reads().compactions.claim(customer_id) else {
        return;
    };
    let (store, state) = (store.clone(), state.clone());
    tokio::spawn(async move {
        if let Err(error) = compact(&store, &claim.customer_id, &state).await {
            tracing::debug!(%error, customer_id = %claim.customer_id, "serving state not compacted");
        }
    });
}

/// Replaces the log rows `state` was read from with one row of their concatenation. Rows are
/// deleted by their `seq` range and the count must match: a row that was not read but
/// committed since inside that range (PostgreSQL hands out sequence values before commit),
/// or rows another compaction or rebuild replaced (leaving one row where there were more
/// than [`MAX_SEGMENTS`], even where SQLite reuses the highest `seq` for it), leave everything
/// as it was. Rows still uncommitted are not seen by the delete and stay. `false` when
/// nothing was changed.
pub(super) async fn compact(
    store: &dyn Statements,
    customer_id: &str,
    state: &State,
) -> Result<bool, StoreError> {
    store
        .transact(&[
            Step {
                sql: "DELETE FROM serving_log WHERE customer_id = $1 AND seq BETWEEN $2 AND $3",
                values: vec![
                    Value::Text(Some(customer_id)),
                    Value::BigInt(state.seqs.0),
                    Value::BigInt(state.seqs.1),
                ],
                changes: Some(state.segments),
            },
            Step {
                sql: "INSERT INTO serving_log (customer_id, records) VALUES ($1, $2)",
                values: vec![Value::Text(Some(customer_id)), Value::Bytes(&state.records)],
                changes: Some(1),
            },
            // The state's version moves on, so a copy cached before is not served again as
            // this one (SQLite may hand the new row a `seq` a deleted one had).
            Step {
                sql: "UPDATE serving_state SET revision = revision + 1 WHERE customer_id = $1",
                values: vec![Value::Text(Some(customer_id))],
                changes: Some(1),
            },
        ])
        .await
}

/// What one pass of [`complete_page`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// Customers whose state was missing, incomplete or of another format.
    pub examined: usize,
    /// Of those, the ones whose state is now complete; the others were written to while
    /// they were read and are tried again on a later pass.
    pub completed: usize,
    /// The last customer examined: the next pass starts after it.
    pub last: Option<CustomerId>,
}

/// Rebuilds, from the tables, the state of up to `limit` customers after `after` whose state
/// is not trusted: the log rows are replaced by one holding the whole history, only if the
/// head's revision is what it was before the tables were read. Every write to such a customer
/// counts the revision up, so a record written during the rebuild is either in the tables
/// read or in a log row the rebuild leaves alone, never lost.
pub(super) async fn complete_page(
    store: &dyn Statements,
    after: Option<&CustomerId>,
    limit: usize,
) -> Result<Completion, StoreError> {
    let rows = store
        .rows_with(
            "SELECT c.customer_id, s.revision FROM customers c \
             LEFT JOIN serving_state s ON s.customer_id = c.customer_id \
             WHERE c.customer_id > $1 AND (s.customer_id IS NULL OR NOT s.complete OR s.format <> $2) \
             ORDER BY c.customer_id LIMIT $3",
            &[
                Value::Text(Some(after.map_or("", CustomerId::as_str))),
                Value::SmallInt(Some(FORMAT)),
                Value::BigInt(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        )
        .await?;
    let mut completion = Completion::default();
    for row in rows {
        let id = row
            .text(0)?
            .ok_or_else(|| StoreError::Corrupt("customer_id is NULL".into()))?;
        let id = CustomerId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        completion.examined += 1;
        if complete_one(store, &id, row.big(1)?).await? {
            completion.completed += 1;
        }
        completion.last = Some(id);
    }
    Ok(completion)
}

/// Rebuilds one customer's state; `revision` is their head's, `None` when they have none.
async fn complete_one(
    store: &dyn Statements,
    id: &CustomerId,
    revision: Option<i64>,
) -> Result<bool, StoreError> {
    let revision = match revision {
        Some(revision) => revision,
        None => {
            // A head first, so that writes from now on count its revision up; a write that
            // committed before it is in the tables read next.
            let head = head_row(id.as_str());
            let created = store
                .execute_values(
                    "INSERT INTO serving_state (customer_id, format, complete, revision) \
                     VALUES ($1, $2, FALSE, 0) ON CONFLICT (customer_id) DO NOTHING",
                    &head[..2],
                )
                .await?;
            if created == 0 {
                return Ok(false);
            }
            0
        }
    };
    let Some(records) = history::customer_records(store, id).await? else {
        return Ok(false);
    };
    let encoded = encode_history(&records);
    store
        .transact(&[
            Step {
                sql: "UPDATE serving_state SET format = $1, complete = TRUE, revision = revision + 1 \
                      WHERE customer_id = $2 AND revision = $3",
                values: vec![
                    Value::SmallInt(Some(FORMAT)),
                    Value::Text(Some(id.as_str())),
                    Value::BigInt(revision),
                ],
                changes: Some(1),
            },
            Step {
                sql: "DELETE FROM serving_log WHERE customer_id = $1",
                values: vec![Value::Text(Some(id.as_str()))],
                changes: None,
            },
            Step {
                sql: "INSERT INTO serving_log (customer_id, records) VALUES ($1, $2)",
                values: vec![Value::Text(Some(id.as_str())), Value::Bytes(&encoded)],
                changes: Some(1),
            },
        ])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::examples;

    #[test]
    fn a_history_reads_back_from_its_encoding_as_from_the_tables() {
        let records = examples::one_of_each_kind();
        let expected = CustomerRecords::from_records(records.clone()).map(|mut r| {
            r.history.profile_versions = vec![r.history.customer.clone()];
            r.history.case_versions = r.history.recovery_cases.clone();
            r.history.sort_canonically();
            r
        });
        let customer = records[0].customer_id().as_str().to_owned();
        let decoded = decode(&customer, &encode(&records)).expect("decodes");
        assert_eq!(decoded, expected);
    }

    #[test]
    fn appended_encodings_read_as_one_whatever_their_order() {
        let records = examples::one_of_each_kind();
        let customer = records[0].customer_id().as_str().to_owned();
        let (first, second) = records.split_at(3);
        let mut forward = encode(first);
        forward.extend(encode(second));
        let mut backward = encode(second);
        backward.extend(encode(first));
        let whole = decode(&customer, &encode(&records)).expect("decodes");
        assert_eq!(decode(&customer, &forward).expect("decodes"), whole);
        assert_eq!(decode(&customer, &backward).expect("decodes"), whole);
    }

    #[test]
    fn a_state_without_a_profile_reads_as_no_customer() {
        let records: Vec<Record> = examples::one_of_each_kind()
            .into_iter()
            .filter(|r| r.kind() != RecordKind::Customer)
            .collect();
        let customer = records[0].customer_id().as_str().to_owned();
        assert_eq!(decode(&customer, &encode(&records)).expect("decodes"), None);
    }

    #[test]
    fn garbage_is_refused_as_corrupt() {
        let result = decode("c-1", &[0xff, 0xff, 0xff]);
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    }
}
