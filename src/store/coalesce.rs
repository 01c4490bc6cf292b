//! Point reads by key gathered into one query: concurrent callers asking for one key each are
//! answered together by a single `WHERE key IN (…)` read, so the fixed cost of a query (a
//! round trip, a hop to SQLite's connection thread and back) is paid once per batch instead
//! of once per caller. A caller alone is sent at once, so an idle store adds no delay; under
//! load, the requests that arrive while a read runs make the next batch. Every caller's read
//! starts after its call, so it sees every write committed before it.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::StoreError;

/// Reads the values of `keys` in one query; keys without a value are left out.
pub(super) type Fetch<V> = Arc<
    dyn Fn(Vec<String>) -> BoxFuture<'static, Result<HashMap<String, V>, StoreError>> + Send + Sync,
>;

/// Keys in one batch at most: a bound on the query's size and on the memory of one answer.
const MAX_BATCH: usize = 64;
/// Requests waiting for a batch at most; a caller beyond waits for room.
const QUEUE: usize = 1_024;

struct Request<V> {
    key: String,
    reply: oneshot::Sender<Result<Option<V>, ()>>,
}

/// A handle to the batching readers; they stop when every handle is dropped.
pub(super) struct Coalesced<V> {
    requests: mpsc::Sender<Request<V>>,
    fetch: Fetch<V>,
}

impl<V> std::fmt::Debug for Coalesced<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalesced").finish_non_exhaustive()
    }
}

impl<V> Clone for Coalesced<V> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
            fetch: Arc::clone(&self.fetch),
        }
    }
}

impl<V: Clone + Send + 'static> Coalesced<V> {
    /// Starts `readers` tasks reading through `fetch`: as many batches run at once.
    pub(super) fn start(fetch: Fetch<V>, readers: usize) -> Self {
        let (requests, received) = mpsc::channel(QUEUE);
        let received = Arc::new(Mutex::new(received));
        for _ in 0..readers.max(1) {
            tokio::spawn(read_batches(Arc::clone(&received), Arc::clone(&fetch)));
        }
        Self { requests, fetch }
    }

    /// The value stored under `key`, if any.
    pub(super) async fn get(&self, key: &str) -> Result<Option<V>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            key: key.to_owned(),
            reply,
        };
        if self.requests.send(request).await.is_ok()
            && let Ok(Ok(value)) = answer.await
        {
            return Ok(value);
        }
        // The batch failed (or the readers are gone): read alone, for this caller's own error.
        let mut values = (self.fetch)(vec![key.to_owned()]).await?;
        Ok(values.remove(key))
    }
}

async fn read_batches<V: Clone + Send + 'static>(
    received: Arc<Mutex<mpsc::Receiver<Request<V>>>>,
    fetch: Fetch<V>,
) {
    loop {
        let mut batch: Vec<Request<V>> = Vec::new();
        {
            let mut received = received.lock().await;
            let Some(first) = received.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match received.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
        }
        let mut keys: Vec<String> = batch.iter().map(|r| r.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        match fetch(keys).await {
            Ok(values) => {
                for request in batch {
                    let value = values.get(&request.key).cloned();
                    let _ = request.reply.send(Ok(value));
                }
            }
            Err(_) => {
                for request in batch {
                    let _ = request.reply.send(Err(()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(queries: Arc<AtomicUsize>) -> Fetch<usize> {
        Arc::new(move |keys: Vec<String>| {
            let queries = Arc::clone(&queries);
            Box::pin(async move {
                queries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(keys
                    .into_iter()
                    .filter(|k| k != "missing")
                    .map(|k| (k.clone(), k.len()))
                    .collect())
            })
        })
    }

    #[tokio::test]
    async fn concurrent_reads_share_queries_and_each_gets_its_own_value() {
        let queries = Arc::new(AtomicUsize::new(0));
        let reads = Coalesced::start(counting(Arc::clone(&queries)), 1);
        let keys: Vec<String> = (0..200).map(|i| "k".repeat(i % 7 + 1)).collect();
        let answers = futures::future::join_all(keys.iter().map(|k| reads.get(k))).await;
        for (key, answer) in keys.iter().zip(answers) {
            assert_eq!(answer.expect("read"), Some(key.len()));
        }
        assert!(
            queries.load(Ordering::SeqCst) < 20,
            "{} queries for 200 reads",
            queries.load(Ordering::SeqCst)
        );
        assert_eq!(reads.get("missing").await.expect("read"), None);
    }

    #[tokio::test]
    async fn a_failed_batch_reads_alone_and_reports_its_own_error() {
        let fetch: Fetch<usize> = Arc::new(|_keys: Vec<String>| {
            Box::pin(async { Err(StoreError::Config("no database".into())) })
        });
        let reads = Coalesced::start(fetch, 2);
        let error = reads.get("k").await.expect_err("fails");
        assert!(matches!(error, StoreError::Config(_)), "{error:?}");
    }
}
