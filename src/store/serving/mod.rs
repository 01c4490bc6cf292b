//! Per-customer serving state: every record written for a customer, appended to one row in
//! the transaction that writes the record, so a customer is read back after one indexed read
//! instead of one query per table.
//!
//! The row holds the records themselves (every version written, in the columns of their
//! tables), not aggregates, so it serves any model and feature spec at any as-of time: a
//! history decoded from it equals the one read from the tables, field for field and in the
//! same order, which the store's property test checks. An encoding ([`codec`]) is a sequence
//! of records, so two of them concatenated are one: an ingest appends with SQL's `||` without
//! reading the row back, and concurrent appends commute: what the row says does not depend on their order
//! (the newest version of a versioned record is found by its version, not by position).
//!
//! A row is trusted only when `complete` and of this build's [`FORMAT`]. A customer stored
//! before the table existed, or under another format, is read from the tables until
//! [`complete_page`] rebuilds its row from them, guarded by the row's revision so a write
//! that lands during the rebuild is never lost.

use std::collections::HashMap;

use super::StoreError;
use super::history::{self, CustomerRecords};
use super::rows::{self, ReadRow};
use super::statements::Statements;
use super::tables::{ColumnType, Value};
use crate::domain::{CustomerId, Record, RecordKind};
use crate::features::History;

mod codec;

/// The version of the encoding in [`codec`]. Bumped when a table gains or loses a column or the
/// encoding changes: rows of another format are rebuilt from the tables, not misread.
pub(super) const FORMAT: i16 = 2;

/// The columns of `serving_state`, in the order [`append_row`] gives values.
pub(super) const COLUMNS: &[(&str, ColumnType)] = &[
    ("customer_id", ColumnType::Text),
    ("format", ColumnType::SmallInt),
    ("complete", ColumnType::Bool),
    ("revision", ColumnType::BigInt),
    ("records", ColumnType::Bytes),
];

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
    let (mut profiles, mut usage, mut interactions, mut surveys, mut churn, mut cases) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
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

/// The values of `append`, in [`COLUMNS`] order.
pub(super) fn append_row<'a>(append: &'a Append<'_>) -> Vec<Value<'a>> {
    vec![
        Value::Text(Some(append.customer_id)),
        Value::SmallInt(Some(FORMAT)),
        Value::Bool(Some(append.new_customer)),
        Value::BigInt(0),
        Value::Bytes(&append.records),
    ]
}

/// `INSERT INTO serving_state (…) ` — each backend appends its own row source.
pub(super) fn append_head() -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    format!("INSERT INTO serving_state ({}) ", names.join(", "))
}

/// Appends to a stored row of this format; a row of another format restarts from the new
/// records, no longer complete, for [`complete_page`] to rebuild. `concatenated` is the
/// backend's expression for `serving_state.records` followed by `excluded.records`.
pub(super) fn append_tail(concatenated: &str) -> String {
    format!(
        " ON CONFLICT (customer_id) DO UPDATE SET \
         records = CASE WHEN serving_state.format = excluded.format THEN {concatenated} ELSE excluded.records END, \
         complete = serving_state.complete AND serving_state.format = excluded.format, \
         format = excluded.format, \
         revision = serving_state.revision + 1"
    )
}

/// The customer's trusted state row, if any: `None` when the tables must be read instead.
fn trusted(row: &dyn ReadRow) -> Result<Option<Vec<u8>>, StoreError> {
    let complete = row.flag(0)?.unwrap_or(false);
    let format = row.small(1)?;
    if complete && format == Some(FORMAT) {
        Ok(row.bytes(2)?)
    } else {
        Ok(None)
    }
}

/// How many reads of serving states run at once, each for a batch of customers.
pub(super) const STATE_READERS: usize = 1;

/// Each state of the customers that match `ids_match` (a backend's test of `customer_id`
/// against a list parameter), after its customer id.
pub(super) fn select_states(ids_match: &str) -> String {
    format!(
        "SELECT customer_id, complete, format, records FROM serving_state WHERE customer_id {ids_match}"
    )
}

/// The trusted states among rows of [`select_states`], by customer.
pub(super) fn trusted_states<R: ReadRow>(
    rows: &[R],
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let mut states = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = row
            .text(0)?
            .ok_or_else(|| StoreError::Corrupt("customer_id is NULL".into()))?;
        if let Some(bytes) = trusted(&StateColumns(row))? {
            states.insert(id, bytes);
        }
    }
    Ok(states)
}

/// A customer with everything stored about them: from the serving state when it is
/// trusted, otherwise from the tables.
pub(super) async fn customer_records(
    store: &dyn Statements,
    customer_id: &CustomerId,
) -> Result<Option<CustomerRecords>, StoreError> {
    match store.trusted_state(customer_id.as_str()).await? {
        Some(bytes) => decode(customer_id.as_str(), &bytes),
        None => history::customer_records(store, customer_id).await,
    }
}

/// Up to `limit` customers after `after`, in id order, each from their serving state when it
/// is trusted and from the tables otherwise.
pub(super) async fn page(
    store: &dyn Statements,
    after: Option<&CustomerId>,
    limit: usize,
) -> Result<Vec<CustomerRecords>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = store
        .rows_with(
            "SELECT c.customer_id, s.complete, s.format, s.records FROM customers c \
             LEFT JOIN serving_state s ON s.customer_id = c.customer_id \
             WHERE c.customer_id > $1 ORDER BY c.customer_id LIMIT $2",
            &[
                Value::Text(Some(after.map_or("", CustomerId::as_str))),
                Value::BigInt(limit),
            ],
        )
        .await?;
    let mut page: Vec<Option<CustomerRecords>> = Vec::with_capacity(rows.len());
    let mut untrusted: Vec<(usize, CustomerId)> = Vec::new();
    for row in &rows {
        let id = row
            .text(0)?
            .ok_or_else(|| StoreError::Corrupt("customer_id is NULL".into()))?;
        match trusted(&StateColumns(row.as_ref()))? {
            Some(bytes) => page.push(decode(&id, &bytes)?),
            None => {
                let id = CustomerId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                untrusted.push((page.len(), id));
                page.push(None);
            }
        }
    }
    if !untrusted.is_empty() {
        let ids: Vec<&CustomerId> = untrusted.iter().map(|(_, id)| id).collect();
        let mut read: HashMap<CustomerId, CustomerRecords> = history::customers(store, &ids)
            .await?
            .into_iter()
            .map(|r| (r.history.customer.customer_id.clone(), r))
            .collect();
        for (position, id) in &untrusted {
            page[*position] = read.remove(id);
        }
    }
    Ok(page.into_iter().flatten().collect())
}

/// The state columns of a row that starts with its customer id.
struct StateColumns<'a, R: ReadRow + ?Sized>(&'a R);

impl<R: ReadRow + ?Sized> ReadRow for StateColumns<'_, R> {
    fn text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
        self.0.text(index + 1)
    }
    fn real(&self, index: usize) -> Result<Option<f64>, sqlx::Error> {
        self.0.real(index + 1)
    }
    fn small(&self, index: usize) -> Result<Option<i16>, sqlx::Error> {
        self.0.small(index + 1)
    }
    fn flag(&self, index: usize) -> Result<Option<bool>, sqlx::Error> {
        self.0.flag(index + 1)
    }
    fn time(&self, index: usize) -> Result<Option<crate::domain::Timestamp>, sqlx::Error> {
        self.0.time(index + 1)
    }
    fn big(&self, index: usize) -> Result<Option<i64>, sqlx::Error> {
        self.0.big(index + 1)
    }
    fn bytes(&self, index: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.0.bytes(index + 1)
    }
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
/// is not trusted. A rebuilt row replaces the old one only if no write changed it meanwhile
/// (its revision is unchanged, or it still does not exist), so a record written during the
/// rebuild is either in the tables read or appended to the rebuilt row, never lost.
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
        let revision = revision(row.as_ref())?;
        completion.examined += 1;
        if let Some(records) = history::customer_records(store, &id).await? {
            let encoded = encode_history(&records);
            let changed = match revision {
                None => {
                    store
                        .execute_values(
                            "INSERT INTO serving_state (customer_id, format, complete, revision, records) \
                             VALUES ($1, $2, TRUE, 0, $3) ON CONFLICT (customer_id) DO NOTHING",
                            &[
                                Value::Text(Some(id.as_str())),
                                Value::SmallInt(Some(FORMAT)),
                                Value::Bytes(&encoded),
                            ],
                        )
                        .await?
                }
                Some(revision) => {
                    store
                        .execute_values(
                            "UPDATE serving_state SET records = $1, format = $2, complete = TRUE, \
                             revision = revision + 1 WHERE customer_id = $3 AND revision = $4",
                            &[
                                Value::Bytes(&encoded),
                                Value::SmallInt(Some(FORMAT)),
                                Value::Text(Some(id.as_str())),
                                Value::BigInt(revision),
                            ],
                        )
                        .await?
                }
            };
            if changed > 0 {
                completion.completed += 1;
            }
        }
        completion.last = Some(id);
    }
    Ok(completion)
}

/// The revision of a completion candidate's row; `None` when it has no row.
fn revision(row: &(dyn ReadRow + Send)) -> Result<Option<i64>, StoreError> {
    Ok(row.big(1)?)
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
