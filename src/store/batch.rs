//! The rules of writing a batch, shared by every backend: customers are written first so
//! records in the same batch can name them; records naming an unknown customer are refused;
//! an id that appears twice in one batch is written once; and whatever was not written is
//! judged against what is stored (duplicate, superseded or conflict).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;

use super::history::BoxedRow;
use super::statements::IdLists;
use super::{StoreError, fingerprint, serving, tables};
use crate::domain::{FieldViolation, Record, RecordKind, Timestamp};

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: new, or a newer version of a versioned record.
    Accepted,
    /// Identical to what is stored; nothing changed.
    Duplicate,
    /// An older version than the one stored; nothing changed.
    Superseded,
    /// Not stored, for the reason given.
    Rejected(FieldViolation),
}

/// What the store holds for an id, as far as judging a re-send needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoredVersion {
    pub version: Option<Timestamp>,
    pub fingerprint: i64,
}

impl StoredVersion {
    fn of(record: &Record) -> Self {
        Self {
            version: record.version(),
            fingerprint: fingerprint::of_record(record),
        }
    }
}

/// The ids a [`BatchTransaction::write`] wrote.
pub(super) type Written = Result<HashSet<String>, StoreError>;

/// The SQL a backend runs inside one open transaction.
#[async_trait]
pub(super) trait BatchTransaction: Send {
    /// Writes records of one kind with distinct ids: inserts new ids, and for versioned kinds
    /// replaces stored rows that are older. Returns the ids actually written.
    async fn write(&mut self, kind: RecordKind, records: &[&Record]) -> Written;

    /// How SQL uses the one list parameter of [`Self::rows_for_ids`].
    fn id_lists(&self) -> IdLists;

    /// Runs `sql`, whose one parameter is the list `ids`; the rows it returns, if any.
    async fn rows_for_ids(&mut self, sql: &str, ids: &[&str]) -> Result<Vec<BoxedRow>, StoreError>;

    /// Inserts the rows of `insert` in the backend's batched form.
    async fn insert_rows(&mut self, insert: Insert<'_>) -> Result<(), StoreError>;
}

/// Rows of `columns` for `table`, inserted with each statement ending in `tail` (an
/// `ON CONFLICT` clause, or nothing).
#[derive(Debug, Clone, Copy)]
pub(super) struct Insert<'a> {
    pub table: &'a str,
    pub columns: &'a [(&'a str, tables::ColumnType)],
    pub rows: &'a [Vec<tables::Value<'a>>],
    pub tail: &'a str,
}

/// Which of `ids` are stored customers (including ones written earlier in this transaction).
async fn existing_customers(
    tx: &mut dyn BatchTransaction,
    ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let sql = format!(
        "SELECT customer_id FROM customers WHERE customer_id IN ({})",
        tx.id_lists().list
    );
    let rows = tx.rows_for_ids(&sql, ids).await?;
    rows.iter()
        .map(|row| {
            row.text(0)?
                .ok_or_else(|| StoreError::Corrupt("customers.customer_id is NULL".into()))
        })
        .collect()
}

/// The stored version and fingerprint of each of `ids` of `kind` that is stored.
async fn stored_versions(
    tx: &mut dyn BatchTransaction,
    kind: RecordKind,
    ids: &[&str],
) -> Result<HashMap<String, StoredVersion>, StoreError> {
    let table = tables::table(kind);
    let sql = format!("{}{}", table.stored_versions_head(), tx.id_lists().matches);
    let rows = tx.rows_for_ids(&sql, ids).await?;
    let corrupt = |column: &str| StoreError::Corrupt(format!("{}.{column} is NULL", table.name));
    rows.iter()
        .map(|row| {
            let id = row.text(0)?.ok_or_else(|| corrupt("id"))?;
            let version = row.time(1)?;
            let fingerprint = row.big(2)?.ok_or_else(|| corrupt("fingerprint"))?;
            Ok((
                id,
                StoredVersion {
                    version,
                    fingerprint,
                },
            ))
        })
        .collect()
}

/// Writes `records` through `tx` and returns each one's outcome, in input order. The caller
/// commits `tx` only if this succeeds.
pub(super) async fn write_batch(
    tx: &mut dyn BatchTransaction,
    records: &[Record],
) -> Result<Vec<Outcome>, StoreError> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];

    // `RecordKind` orders customers first, so later kinds can name customers of this batch.
    let mut positions_by_kind: BTreeMap<RecordKind, Vec<usize>> = BTreeMap::new();
    for (position, record) in records.iter().enumerate() {
        positions_by_kind
            .entry(record.kind())
            .or_default()
            .push(position);
    }

    // The records written for each customer, for their serving state, and the customers
    // this batch stores first.
    let mut written_for: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    let mut new_customers: HashSet<&str> = HashSet::new();

    for (kind, mut positions) in positions_by_kind {
        if kind == RecordKind::Customer {
            let mut ids: Vec<&str> = positions.iter().map(|&p| records[p].id()).collect();
            ids.sort_unstable();
            ids.dedup();
            let known = existing_customers(tx, &ids).await?;
            new_customers.extend(ids.into_iter().filter(|id| !known.contains(*id)));
        } else {
            refuse_unknown_customers(tx, records, &mut positions, &mut outcomes).await?;
        }
        let (leaders, followers) = leaders_and_followers(records, &positions);
        if leaders.is_empty() {
            continue;
        }

        let leader_records: Vec<&Record> = leaders.iter().map(|&p| &records[p]).collect();
        let written = tx.write(kind, &leader_records).await?;
        for record in leader_records.iter().filter(|r| written.contains(r.id())) {
            written_for
                .entry(record.customer_id().as_str())
                .or_default()
                .push(record);
        }
        if let Some(versions) = tables::versions(kind)
            && !written.is_empty()
        {
            let ids: Vec<&str> = written.iter().map(String::as_str).collect();
            let copy = tables::table(kind).copy_into_versions(versions, tx.id_lists().matches);
            tx.rows_for_ids(&copy, &ids).await?;
        }
        let unwritten: Vec<&str> = leader_records
            .iter()
            .map(|r| r.id())
            .filter(|id| !written.contains(*id))
            .collect();
        let mut stored = if unwritten.is_empty() {
            HashMap::new()
        } else {
            stored_versions(tx, kind, &unwritten).await?
        };
        // The fingerprints of the records to judge against what is stored, each taken once.
        let fingerprints: HashMap<&str, i64> = leader_records
            .iter()
            .filter(|r| stored.contains_key(r.id()))
            .map(|r| (r.id(), fingerprint::of_record(r)))
            .collect();
        refingerprint_differing(tx, kind, &leader_records, &fingerprints, &mut stored).await?;

        // What each id holds once this batch commits, which the followers are judged by: the
        // leader if it was written or equal to what was stored, otherwise whatever was
        // stored before.
        let mut now_stored: HashMap<&str, StoredVersion> = HashMap::new();
        for &position in &leaders {
            let record = &records[position];
            let outcome = if written.contains(record.id()) {
                Outcome::Accepted
            } else {
                let fingerprint = fingerprints
                    .get(record.id())
                    .copied()
                    .unwrap_or_else(|| fingerprint::of_record(record));
                judge(record, fingerprint, stored.get(record.id()).copied())
            };
            if !followers.is_empty() {
                let holds = match outcome {
                    Outcome::Accepted | Outcome::Duplicate => Some(StoredVersion::of(record)),
                    Outcome::Superseded | Outcome::Rejected(_) => stored.get(record.id()).copied(),
                };
                if let Some(holds) = holds {
                    now_stored.insert(record.id(), holds);
                }
            }
            outcomes[position] = Some(outcome);
        }
        for position in followers {
            let record = &records[position];
            let fingerprint = fingerprint::of_record(record);
            let holds = now_stored.get(record.id()).copied();
            outcomes[position] = Some(judge(record, fingerprint, holds));
        }
    }

    if !written_for.is_empty() {
        let appends: Vec<serving::Append<'_>> = written_for
            .into_iter()
            .map(|(customer_id, written)| serving::Append {
                customer_id,
                new_customer: new_customers.contains(customer_id),
                records: serving::encode(written),
            })
            .collect();
        serving::append(tx, &appends).await?;
    }

    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Outcome::Rejected(not_stored("record"))))
        .collect())
}

/// Replaces the stored fingerprint of each id in `stored` whose record in `records` has
/// the stored version but another fingerprint with the fingerprint of the stored row itself,
/// as the current scheme computes it: the stored figure may be of an earlier scheme.
async fn refingerprint_differing(
    tx: &mut dyn BatchTransaction,
    kind: RecordKind,
    records: &[&Record],
    fingerprints: &HashMap<&str, i64>,
    stored: &mut HashMap<String, StoredVersion>,
) -> Result<(), StoreError> {
    let differing: Vec<&str> = records
        .iter()
        .filter(|record| {
            let fingerprint = fingerprints.get(record.id());
            stored.get(record.id()).is_some_and(|s| {
                s.version == record.version() && Some(&s.fingerprint) != fingerprint
            })
        })
        .map(|record| record.id())
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    let table = tables::table(kind);
    let rows = tx
        .rows_for_ids(&table.select_hashed(tx.id_lists().matches), &differing)
        .await?;
    for row in rows {
        let id = row.text(0)?.ok_or_else(|| {
            StoreError::Corrupt(format!("{}.{} is NULL", table.name, table.id_column))
        })?;
        let now = fingerprint::of_stored_row(table, row.as_ref())?;
        if let Some(version) = stored.get_mut(&id) {
            version.fingerprint = now;
        }
    }
    Ok(())
}

async fn refuse_unknown_customers(
    tx: &mut dyn BatchTransaction,
    records: &[Record],
    positions: &mut Vec<usize>,
    outcomes: &mut [Option<Outcome>],
) -> Result<(), StoreError> {
    let mut named: Vec<&str> = positions
        .iter()
        .map(|&p| records[p].customer_id().as_str())
        .collect();
    named.sort_unstable();
    named.dedup();
    let known = existing_customers(tx, &named).await?;
    positions.retain(|&position| {
        let record = &records[position];
        let customer = record.customer_id().as_str();
        if known.contains(customer) {
            return true;
        }
        outcomes[position] = Some(Outcome::Rejected(FieldViolation::new(
            format!("{}.customer_id", record.kind().field_name()),
            format!("unknown customer {customer:?}: send the customer's profile first"),
        )));
        false
    });
    Ok(())
}

/// Splits positions into one leader per id (the record to write: the first for immutable
/// kinds, the newest version for versioned ones) and the followers sharing a leader's id.
fn leaders_and_followers(records: &[Record], positions: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut leader_of: HashMap<&str, usize> = HashMap::with_capacity(positions.len());
    let mut followers = Vec::new();
    for &position in positions {
        let record = &records[position];
        match leader_of.get_mut(record.id()) {
            None => {
                leader_of.insert(record.id(), position);
            }
            Some(leader) => {
                if record.version() > records[*leader].version() {
                    followers.push(*leader);
                    *leader = position;
                } else {
                    followers.push(position);
                }
            }
        }
    }
    let mut leaders: Vec<usize> = leader_of.into_values().collect();
    leaders.sort_unstable();
    (leaders, followers)
}

/// The outcome of a record that was not written, given its fingerprint and what is stored
/// under its id.
fn judge(record: &Record, fingerprint: i64, stored: Option<StoredVersion>) -> Outcome {
    let kind = record.kind();
    let Some(stored) = stored else {
        // Only reachable if the row vanished between statements; nothing was lost.
        return Outcome::Rejected(not_stored(kind.field_name()));
    };
    if stored.fingerprint == fingerprint {
        return Outcome::Duplicate;
    }
    let id_field = format!("{}.{}", kind.field_name(), kind.id_field());
    match (record.version(), stored.version) {
        (Some(version), Some(stored_version)) if version < stored_version => Outcome::Superseded,
        (Some(version), Some(stored_version)) if version == stored_version => {
            Outcome::Rejected(FieldViolation::new(
                id_field,
                format!(
                    "conflict: a different version with the same time ({version}) is already \
                     stored; send changes with a newer time"
                ),
            ))
        }
        (None, _) => Outcome::Rejected(FieldViolation::new(
            id_field,
            format!(
                "conflict: a different {} with this id is already stored, and they cannot change",
                kind.field_name().replace('_', " ")
            ),
        )),
        _ => Outcome::Rejected(not_stored(kind.field_name())),
    }
}

fn not_stored(field: &str) -> FieldViolation {
    FieldViolation::new(
        field,
        "changed by a concurrent write while being stored; send it again",
    )
}
