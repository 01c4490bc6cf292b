//! Group commit: concurrent writes of one kind made durable together. Each caller's item
//! waits in a queue; one writer task, running only while items wait, commits whatever has
//! gathered in one transaction and answers each caller once that transaction is committed,
//! so a caller's answer still means its item is stored. On SQLite, where every commit is a
//! sync of the file on the one writer connection, this turns a queue of commits into one;
//! on PostgreSQL it saves a commit per item.
//!
//! A batch that fails is not retried as a whole: each of its callers then writes its own
//! item alone, so one bad item fails only its own caller and every caller gets its own error.
//! A caller that goes away does not take its item with it: the writer task, not the caller,
//! owns the write once it is queued.

use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::StoreError;

/// Items committed in one transaction at most: a bound on the transaction's size, and on
/// how long the first caller of a batch waits for the last.
const MAX_BATCH: usize = 64;

/// Writes `items` in one transaction through `store`, all or none.
pub(super) type WriteAll<S, T> =
    for<'a> fn(&'a S, &'a [T]) -> BoxFuture<'a, Result<(), StoreError>>;

/// The queue of one kind of write; clones share it.
pub(super) struct GroupCommit<T>(Arc<Mutex<Queue<T>>>);

impl<T> Default for GroupCommit<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Queue {
            waiting: Vec::new(),
            writing: false,
        })))
    }
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> std::fmt::Debug for GroupCommit<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

struct Queue<T> {
    waiting: Vec<(T, oneshot::Sender<Committed>)>,
    /// Whether a writer task is running; it clears this when it finds the queue empty.
    writing: bool,
}

/// What the writer task tells a caller: its item is stored, or its batch failed.
type Committed = Result<(), ()>;

impl<T: Clone + Send + 'static> GroupCommit<T> {
    /// Stores `item` through `store` with `write_all`, together with the items of concurrent
    /// callers; returns once it is committed.
    pub(super) async fn write<S: Clone + Send + Sync + 'static>(
        &self,
        store: &S,
        item: T,
        write_all: WriteAll<S, T>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((item.clone(), reply));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            tokio::spawn(write_batches(Arc::clone(&self.0), store.clone(), write_all));
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            // The batch failed, or the writer task was lost with it: nothing of the batch was
            // committed, so this caller writes its own item alone, for its own answer.
            Ok(Err(())) | Err(_) => write_all(store, std::slice::from_ref(&item)).await,
        }
    }
}

/// Commits the queue's items in batches until it is empty.
async fn write_batches<S, T>(queue: Arc<Mutex<Queue<T>>>, store: S, write_all: WriteAll<S, T>) {
    let mut running = Running {
        queue: Arc::clone(&queue),
        ended: false,
    };
    loop {
        let batch: Vec<(T, oneshot::Sender<Committed>)> = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.waiting.is_empty() {
                // From here the next caller starts a writer of its own.
                queue.writing = false;
                running.ended = true;
                return;
            }
            let taken = queue.waiting.len().min(MAX_BATCH);
            queue.waiting.drain(..taken).collect()
        };
        let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
        let committed = write_all(&store, &items).await.map_err(|_| ());
        for reply in replies {
            // A caller that went away no longer needs its answer.
            let _ = reply.send(committed);
        }
    }
}

/// The writer task's hold on its queue. Should the task end other than by finding the
/// queue empty (a panic, or its runtime shutting down), the callers still waiting are
/// answered (they write alone) and the next caller starts a new task.
struct Running<T> {
    queue: Arc<Mutex<Queue<T>>>,
    /// Whether the task ended by finding the queue empty, having handed the queue on.
    ended: bool,
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.writing = false;
        queue.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store that records each committed batch, refuses any batch holding [`BAD`], and
    /// with `panics_first` panics on its first commit.
    #[derive(Clone, Default)]
    struct Recorder {
        batches: Arc<Mutex<Vec<Vec<u32>>>>,
        attempts: Arc<AtomicUsize>,
        panics_first: bool,
    }

    const BAD: u32 = 13;

    fn write_all<'a>(
        store: &'a Recorder,
        items: &'a [u32],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let earlier = store.attempts.fetch_add(1, Ordering::SeqCst);
            assert!(
                !(store.panics_first && earlier == 0),
                "the first commit fails hard"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            if items.contains(&BAD) {
                return Err(StoreError::Config("a bad item".into()));
            }
            store.batches.lock().unwrap().push(items.to_vec());
            Ok(())
        })
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_each_is_committed_once() {
        let (commits, store) = (GroupCommit::default(), Recorder::default());
        let writes = (100..300).map(|i| commits.write(&store, i, write_all));
        for written in futures::future::join_all(writes).await {
            written.expect("stored");
        }
        let batches = store.batches.lock().unwrap().clone();
        let mut stored: Vec<u32> = batches.iter().flatten().copied().collect();
        stored.sort_unstable();
        assert_eq!(stored, (100..300).collect::<Vec<_>>());
        assert!(
            batches.len() < 20,
            "{} commits for 200 writes",
            batches.len()
        );
        assert!(batches.iter().all(|b| b.len() <= MAX_BATCH));
    }

    #[tokio::test]
    async fn a_bad_item_fails_only_its_own_caller() {
        let (commits, store) = (GroupCommit::default(), Recorder::default());
        let writes = (0..40).map(|i| commits.write(&store, i, write_all));
        let answers = futures::future::join_all(writes).await;
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Err(StoreError::Config(_)) if i == BAD as usize => {}
                Ok(()) if i != BAD as usize => {}
                other => panic!("item {i}: {other:?}"),
            }
        }
        let mut stored: Vec<u32> = store.batches.lock().unwrap().concat();
        stored.sort_unstable();
        assert_eq!(stored, (0..40).filter(|&i| i != BAD).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_leaves_its_item_to_be_committed() {
        let (commits, store) = (GroupCommit::default(), Recorder::default());
        // Polled once (so queued, with a writer started), then dropped.
        let first = commits.write(&store, 1, write_all);
        let gave_up = tokio::time::timeout(std::time::Duration::ZERO, first).await;
        assert!(
            gave_up.is_err(),
            "the first write answered before its commit"
        );
        commits.write(&store, 2, write_all).await.expect("stored");
        let stored: Vec<u32> = store.batches.lock().unwrap().concat();
        assert!(stored.contains(&1) && stored.contains(&2), "{stored:?}");
    }

    #[tokio::test]
    async fn a_writer_that_panics_leaves_its_callers_answered_and_the_queue_usable() {
        let store = Recorder {
            panics_first: true,
            ..Recorder::default()
        };
        let commits = GroupCommit::default();
        let writes = (0..10).map(|i| commits.write(&store, i, write_all));
        for written in futures::future::join_all(writes).await {
            written.expect("stored alone after the panic");
        }
        commits.write(&store, 10, write_all).await.expect("stored");
        let mut stored: Vec<u32> = store.batches.lock().unwrap().concat();
        stored.sort_unstable();
        assert_eq!(stored, (0..=10).collect::<Vec<_>>());
    }
}
