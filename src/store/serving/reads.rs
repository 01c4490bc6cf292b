//! Reading serving states: one customer at a time through batched reads and a cache of
//! decoded states, or a page of customers in one query.
//!
//! A decoded state is kept with the [`Version`] it was read at, and served again only after a
//! read of the customer's current version (a few integers from the head and the log's index,
//! not the records) finds it unchanged. The version moves with every change to a state: an
//! append adds a log row, and whatever removes rows (compaction, a rebuild) counts the head's
//! revision up in the same transaction. So a cached state is served exactly when the stored
//! one is the same, whichever process or replica wrote to it.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Compactions, FORMAT, compact_soon, decode};
use crate::domain::CustomerId;
use crate::store::StoreError;
use crate::store::coalesce::Coalesced;
use crate::store::history::{self, BoxedRow, CustomerRecords};
use crate::store::rows::ReadRow;
use crate::store::statements::Statements;
use crate::store::tables::Value;

use super::cache::{StateCache, Version};

/// A customer's trusted state as read: their log rows concatenated, and which rows they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub records: Vec<u8>,
    /// How many log rows were read.
    pub segments: u64,
    /// The lowest and highest `seq` among them.
    pub seqs: (i64, i64),
    /// The head's revision when they were read.
    pub revision: i64,
}

impl State {
    fn new(revision: i64) -> Self {
        Self {
            records: Vec::new(),
            segments: 0,
            seqs: (i64::MAX, i64::MIN),
            revision,
        }
    }

    fn push(&mut self, seq: i64, records: &[u8]) {
        self.records.extend_from_slice(records);
        self.segments += 1;
        self.seqs = (self.seqs.0.min(seq), self.seqs.1.max(seq));
    }

    fn version(&self) -> Version {
        Version {
            revision: self.revision,
            segments: self.segments,
        }
    }
}

/// Runs a query whose one parameter is a list of customer ids, on a reader.
pub(crate) type FetchForIds = Arc<
    dyn Fn(Arc<str>, Vec<String>) -> BoxFuture<'static, Result<Vec<BoxedRow>, StoreError>>
        + Send
        + Sync,
>;

/// How many reads of serving states (and of their versions) run at once, each for a batch of
/// customers.
const READERS: usize = 1;

/// A store's reads of single customers' states: batched, and cached; and the compactions
/// those reads start.
#[derive(Debug, Clone)]
pub(crate) struct StateReads {
    states: Coalesced<State>,
    versions: Coalesced<Version>,
    cache: StateCache,
    pub(super) compactions: Compactions,
}

impl StateReads {
    /// Reads through `fetch`, whose id-list test is `ids_match`, keeping up to `cache_bytes`
    /// of encoded state decoded in memory (none when 0).
    pub(crate) fn start(fetch: FetchForIds, ids_match: &str, cache_bytes: u64) -> Self {
        let states = select_states(ids_match).into();
        let versions = select_versions(ids_match).into();
        Self {
            states: Coalesced::start(batched(Arc::clone(&fetch), states, trusted_states), READERS),
            versions: Coalesced::start(batched(fetch, versions, versions_of), READERS),
            cache: StateCache::new(cache_bytes),
            compactions: Compactions::default(),
        }
    }
}

/// Reads the rows of one batched query into values by customer id.
type ReadRows<V> = fn(&[BoxedRow]) -> Result<HashMap<String, V>, StoreError>;

/// A [`Coalesced`] fetch running `sql` through `fetch` and reading its rows with `read`.
fn batched<V: Send + 'static>(
    fetch: FetchForIds,
    sql: Arc<str>,
    read: ReadRows<V>,
) -> crate::store::coalesce::Fetch<V> {
    Arc::new(move |ids: Vec<String>| {
        let rows = fetch(Arc::clone(&sql), ids);
        Box::pin(async move { read(&rows.await?) })
    })
}

/// The trusted state's log rows of each customer that matches `ids_match` (a backend's test of
/// `customer_id` against a list parameter): customer id, `seq`, `records`, revision.
fn select_states(ids_match: &str) -> String {
    format!(
        "SELECT s.customer_id, l.seq, l.records, s.revision FROM serving_state s \
         JOIN serving_log l ON l.customer_id = s.customer_id \
         WHERE s.customer_id {ids_match} AND s.complete AND s.format = {FORMAT}"
    )
}

/// The version of each trusted state among `ids_match`: customer id, revision, log rows.
fn select_versions(ids_match: &str) -> String {
    format!(
        "SELECT s.customer_id, s.revision, COUNT(*) FROM serving_state s \
         JOIN serving_log l ON l.customer_id = s.customer_id \
         WHERE s.customer_id {ids_match} AND s.complete AND s.format = {FORMAT} \
         GROUP BY s.customer_id, s.revision"
    )
}

/// The states in rows of [`select_states`], by customer.
fn trusted_states(rows: &[BoxedRow]) -> Result<HashMap<String, State>, StoreError> {
    let mut states: HashMap<String, State> = HashMap::new();
    for row in rows {
        let (id, seq, records, revision) = log_columns(row.as_ref())?;
        states
            .entry(id)
            .or_insert_with(|| State::new(revision))
            .push(seq, &records);
    }
    Ok(states)
}

/// The versions in rows of [`select_versions`], by customer.
fn versions_of(rows: &[BoxedRow]) -> Result<HashMap<String, Version>, StoreError> {
    let null = |column: &str| StoreError::Corrupt(format!("serving state {column} is NULL"));
    rows.iter()
        .map(|row| {
            let id = row.text(0)?.ok_or_else(|| null("customer_id"))?;
            let revision = row.big(1)?.ok_or_else(|| null("revision"))?;
            let segments = row.big(2)?.ok_or_else(|| null("row count"))?;
            let segments = u64::try_from(segments)
                .map_err(|_| StoreError::Corrupt(format!("{segments} log rows")))?;
            Ok((id, Version { revision, segments }))
        })
        .collect()
}

/// The customer id, `seq`, `records` and head revision of a log row.
fn log_columns<R: ReadRow + ?Sized>(row: &R) -> Result<(String, i64, Vec<u8>, i64), StoreError> {
    let corrupt = |column: &str| StoreError::Corrupt(format!("serving state {column} is NULL"));
    let id = row.text(0)?.ok_or_else(|| corrupt("customer_id"))?;
    let seq = row.big(1)?.ok_or_else(|| corrupt("seq"))?;
    let records = row.bytes(2)?.ok_or_else(|| corrupt("records"))?;
    let revision = row.big(3)?.ok_or_else(|| corrupt("revision"))?;
    Ok((id, seq, records, revision))
}

/// A customer with everything stored about them: from the serving state when it is
/// trusted (decoded again only when it changed), otherwise from the tables.
pub(crate) async fn customer_records<S: Statements + Clone + Send + 'static>(
    store: &S,
    customer_id: &CustomerId,
) -> Result<Option<Arc<CustomerRecords>>, StoreError> {
    let id = customer_id.as_str();
    let reads = store.state_reads();
    if let Some(cached) = reads.cache.get(id)
        && reads.versions.get(id).await? == Some(cached.version)
    {
        return Ok(cached.records);
    }
    match reads.states.get(id).await? {
        Some(state) => {
            compact_soon(store, id, &state);
            let records = decode(id, &state.records)?.map(Arc::new);
            reads
                .cache
                .keep(id, state.version(), &records, state.records.len());
            Ok(records)
        }
        None => {
            reads.cache.forget(id);
            Ok(history::customer_records(store, customer_id)
                .await?
                .map(Arc::new))
        }
    }
}

/// Up to `limit` customers after `after`, in id order, each from their serving state when it
/// is trusted and from the tables otherwise. A page is read in one query and not cached: a
/// pass over every customer would only push out the states asked about one by one.
pub(crate) async fn page<S: Statements + Clone + Send + 'static>(
    store: &S,
    after: Option<&CustomerId>,
    limit: usize,
) -> Result<Vec<CustomerRecords>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // One row per log row of a trusted state, and one with NULLs for any other customer.
    let rows = store
        .rows_with(
            &format!(
                "SELECT c.customer_id, l.seq, l.records, s.revision FROM \
                 (SELECT customer_id FROM customers WHERE customer_id > $1 \
                  ORDER BY customer_id LIMIT $2) c \
                 LEFT JOIN serving_state s ON s.customer_id = c.customer_id \
                   AND s.complete AND s.format = {FORMAT} \
                 LEFT JOIN serving_log l ON l.customer_id = s.customer_id \
                 ORDER BY c.customer_id"
            ),
            &[
                Value::Text(Some(after.map_or("", CustomerId::as_str))),
                Value::BigInt(limit),
            ],
        )
        .await?;
    let mut customers: Vec<(String, Option<State>)> = Vec::new();
    for row in &rows {
        let id = row
            .text(0)?
            .ok_or_else(|| StoreError::Corrupt("customer_id is NULL".into()))?;
        let logged = match row.big(1)? {
            Some(_) => Some(log_columns(row.as_ref())?),
            None => None,
        };
        if customers.last().is_none_or(|(last, _)| *last != id) {
            customers.push((id, None));
        }
        if let (Some((_, seq, records, revision)), Some((_, state))) =
            (logged, customers.last_mut())
        {
            state
                .get_or_insert_with(|| State::new(revision))
                .push(seq, &records);
        }
    }
    let mut page: Vec<Option<CustomerRecords>> = Vec::with_capacity(customers.len());
    let mut untrusted: Vec<(usize, CustomerId)> = Vec::new();
    for (id, state) in customers {
        match state {
            Some(state) => {
                compact_soon(store, &id, &state);
                page.push(decode(&id, &state.records)?);
            }
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
